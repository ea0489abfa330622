//! What adaptive mode costs a lease and a return, on a 100-entry pool
//! (10 servers, 10 slots each): `cargo run --release --example adaptive_cost`.
//!
//! Two loops, each with 8 leases out at a time (the oldest is returned, then
//! one is lent): `lease+release` (each through the heaps) and `batched`
//! (`release_all_then_lease(&[returned])`, the binding's hot path). Adaptive
//! rows feed a sample with one return in 8, as JavaScript would, from
//! servers of two speeds. Prints the best of 7 rounds, in ns per lease+return.

use callosum_pool::{AdaptiveConfig, Handle, Pool};
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant;

const OPS: u64 = 4_000_000;
const OUT: usize = 8;

fn pool(adaptive: bool) -> Pool {
    let mut p = if adaptive {
        Pool::new_adaptive(100, AdaptiveConfig::default())
    } else {
        Pool::new(100)
    };
    for slot in 0..10u64 {
        for server in 0..10u32 {
            p.offer_on(server, slot * 3 + u64::from(server % 3), false)
                .unwrap();
        }
    }
    p
}

/// The sample of a return, if it is one of the 1 in 8 sampled: server 0 is
/// three times slower than the others (its server is `h % 10` by the offer
/// order above, while handles are not reused).
fn sample(p: &mut Pool, i: u64, h: Handle, adaptive: bool) {
    if adaptive && i.is_multiple_of(8) {
        let us = if h.is_multiple_of(10) { 3_000 } else { 1_000 } + (i % 7) * 50;
        p.record_sample(h, us, i * 10);
    }
}

fn run(adaptive: bool, batched: bool) -> f64 {
    let mut p = pool(adaptive);
    let mut out: VecDeque<Handle> = (0..OUT).map(|_| p.lease().unwrap()).collect();
    let t = Instant::now();
    for i in 0..OPS {
        let back = out.pop_front().unwrap();
        sample(&mut p, i, back, adaptive);
        let h = if batched {
            p.release_all_then_lease(&[back])
        } else {
            p.release(back).unwrap();
            p.lease()
        };
        out.push_back(black_box(h.unwrap()));
    }
    t.elapsed().as_nanos() as f64 / OPS as f64
}

fn main() {
    for batched in [false, true] {
        for adaptive in [false, true] {
            let best = (0..7)
                .map(|_| run(adaptive, batched))
                .fold(f64::INFINITY, f64::min);
            println!(
                "{:<14} adaptive {:<5}: {best:.1} ns per lease+return",
                if batched { "batched" } else { "lease+release" },
                adaptive
            );
        }
    }
}
