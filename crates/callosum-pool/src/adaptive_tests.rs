//! Tests of the adaptive mode (`adaptive.rs`).

use super::*;
use crate::tests::Rng;
use std::collections::BTreeMap;

fn kept(offer: Offer) -> Handle {
    match offer {
        Offer::Kept { handle, .. } => handle,
        other => panic!("expected Kept, got {other:?}"),
    }
}

/// Lends and returns `h` with a sample of `us`, at `now`.
fn lend_sample(p: &mut Pool, h: Handle, us: u64, now: u64) {
    assert!(p.record_sample(h, us, now), "sample of {h} refused");
}

/// Teaches the pool that server `s` takes `us` per lease: leases every
/// idle entry, samples each, returns them.
fn teach(p: &mut Pool, rounds: usize, per_server: &[(u32, u64)], now: &mut u64) {
    for _ in 0..rounds {
        let mut lent = Vec::new();
        while let Some(h) = p.lease() {
            lent.push(h);
        }
        for &h in &lent {
            let server = server_of(h);
            let us = per_server.iter().find(|(s, _)| *s == server).unwrap().1;
            *now += 1_000;
            lend_sample(p, h, us, *now);
            p.release(h).unwrap();
        }
    }
}

/// The server a handle was offered on (through `offer_on` below).
fn server_of(h: Handle) -> u32 {
    SERVERS.with(|m| m.borrow()[&h])
}

thread_local! {
    static SERVERS: std::cell::RefCell<BTreeMap<Handle, u32>> = Default::default();
}

fn offer_on(p: &mut Pool, server: u32, slot: u64) -> Handle {
    let h = kept(p.offer_on(server, slot, false).unwrap());
    SERVERS.with(|m| m.borrow_mut().insert(h, server));
    h
}

fn drain(p: &mut Pool) -> Vec<Handle> {
    std::iter::from_fn(|| p.lease()).collect()
}

#[test]
fn equal_servers_with_noisy_estimates_keep_the_plain_slot_order() {
    let mut rng = Rng(7);
    let mut a = Pool::new_adaptive(40, AdaptiveConfig::default());
    let mut plain = Pool::new(40);
    for _ in 0..40 {
        let server = rng.below(6) as u32;
        let slot = rng.below(20);
        assert_eq!(
            offer_on(&mut a, server, slot),
            kept(plain.offer(slot, false).unwrap())
        );
    }
    // Noise of +-5%: inside the dead band.
    let mut now = 0;
    for _ in 0..20 {
        let lent = drain(&mut a);
        assert_eq!(lent, drain(&mut plain), "lease order");
        for &h in &lent {
            now += 500;
            lend_sample(&mut a, h, 950 + rng.below(101), now);
            a.release(h).unwrap();
            plain.release(h).unwrap();
        }
        a.check_invariants();
    }
    assert!(
        a.servers().iter().all(|s| s.weight == 1.0),
        "{:?}",
        a.servers()
    );
    assert!(a.servers().iter().all(|s| s.estimate_us.is_some()));
}

#[test]
fn a_slow_servers_slots_rank_behind_a_fast_servers() {
    let mut p = Pool::new_adaptive(12, AdaptiveConfig::default());
    // Server 0 fast, 1 as fast (the median), 2 four times slower.
    for slot in 1..=4 {
        for server in 0..3 {
            offer_on(&mut p, server, slot);
        }
    }
    let mut now = 0;
    teach(&mut p, 3, &[(0, 1_000), (1, 1_000), (2, 4_000)], &mut now);
    let w: Vec<f64> = p.servers().iter().map(|s| s.weight).collect();
    assert_eq!(w, vec![1.0, 1.0, 4.0]);
    p.check_invariants();
    // Keys (slot + 1) x weight: servers 0 and 1 at 2..5, server 2 at 8, 12,
    // 16, 20 (effective slots 7, 11, 15, 19): every fast entry comes first.
    let order: Vec<(u32, u64)> = drain(&mut p)
        .into_iter()
        .map(|h| (server_of(h), p.slot(h).unwrap()))
        .collect();
    let slow_first = order.iter().position(|&(s, _)| s == 2).unwrap();
    assert_eq!(slow_first, 8, "{order:?}"); // after 0 and 1's slots 1..4
    assert_eq!(&order[8..], &[(2, 1), (2, 2), (2, 3), (2, 4)], "{order:?}");
}

#[test]
fn displacement_and_refusal_use_effective_slots() {
    let mut p = Pool::new_adaptive(3, AdaptiveConfig::default());
    let a = offer_on(&mut p, 0, 4);
    let b = offer_on(&mut p, 1, 2);
    let c = offer_on(&mut p, 2, 5);
    let mut now = 0;
    teach(&mut p, 2, &[(0, 1_000), (1, 4_000), (2, 1_000)], &mut now);
    // Keys are (slot + 1) x weight: b's is 3 x 4 = 12, an effective slot of 11.
    assert_eq!(p.effective_slot(b), Some(11.0));
    // Plain order would displace c (slot 5); the effective one displaces b.
    assert_eq!(p.refuse_from(), Some(11));
    assert_eq!(p.offer_on(0, 11, false), Ok(Offer::Full { highest: 2 }));
    match p.offer_on(0, 6, false).unwrap() {
        Offer::Kept {
            displaced: Some(d), ..
        } => assert_eq!((d.handle, d.slot), (b, 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.state(b), State::Free);
    assert_eq!(p.state(a), State::Idle);
    assert_eq!(p.state(c), State::Idle);
    p.check_invariants();
    // An offer on the slow server at slot 2 (effective 11) no longer beats
    // the highest now kept (slot 6, effective 6): refused, whatever its plain
    // slot says.
    assert_eq!(p.offer_on(1, 2, false), Ok(Offer::Full { highest: 6 }));
}

#[test]
fn refuse_from_is_safe_for_every_server() {
    // JavaScript refuses without a crossing every slot >= refuse_from: Rust
    // must refuse each such offer, whatever its server.
    let mut p = Pool::new_adaptive(4, AdaptiveConfig::default());
    for (server, slot) in [(0, 3), (1, 3), (2, 3), (3, 9)] {
        offer_on(&mut p, server, slot);
    }
    let mut now = 0;
    teach(
        &mut p,
        2,
        &[(0, 200), (1, 1_000), (2, 1_000), (3, 1_000)],
        &mut now,
    );
    let from = p.refuse_from().unwrap();
    for server in 0..6 {
        for slot in from..from + 3 {
            assert!(
                matches!(p.offer_on(server, slot, false), Ok(Offer::Full { .. })),
                "server {server} slot {slot} (refuse_from {from})"
            );
        }
    }
    // The fast server (weight 1/5) can displace with a slot below it.
    assert!(matches!(
        p.offer_on(0, from - 1, false),
        Ok(Offer::Kept { .. })
    ));
}

#[test]
fn peak_ewma_jumps_up_and_decays_with_time() {
    let cfg = AdaptiveConfig {
        peak: true,
        ..AdaptiveConfig::default()
    };
    let mut p = Pool::new_adaptive(2, cfg);
    let h = offer_on(&mut p, 5, 1);
    p.lease();
    let est = |p: &Pool| p.servers()[0].estimate_us.unwrap();
    lend_sample(&mut p, h, 1_000, 0);
    assert_eq!(est(&p), 1_000.0);
    lend_sample(&mut p, h, 9_000, 10);
    assert_eq!(est(&p), 9_000.0, "a larger sample replaces the estimate");
    // One time constant later, a small sample pulls it 1 - 1/e of the way.
    lend_sample(&mut p, h, 1_000, 10 + cfg.decay_us as u64);
    let expect = 9_000.0 - 8_000.0 * (1.0 - (-1.0f64).exp());
    assert!((est(&p) - expect).abs() < 1.0, "{} vs {expect}", est(&p));
    // Same instant: only the minimum weight.
    let before = est(&p);
    lend_sample(&mut p, h, 1_000, 10 + cfg.decay_us as u64);
    let expect = before + cfg.min_sample_weight * (1_000.0 - before);
    assert!((est(&p) - expect).abs() < 1e-6);
}

#[test]
fn plain_ewma_does_not_jump() {
    let cfg = AdaptiveConfig {
        peak: false,
        ..AdaptiveConfig::default()
    };
    let mut p = Pool::new_adaptive(2, cfg);
    let h = offer_on(&mut p, 5, 1);
    p.lease();
    lend_sample(&mut p, h, 1_000, 0);
    lend_sample(&mut p, h, 9_000, 0);
    let e = p.servers()[0].estimate_us.unwrap();
    assert!((e - (1_000.0 + 8_000.0 / 128.0)).abs() < 1e-6, "{e}");
}

#[test]
fn a_server_with_no_history_is_neutral_not_pessimistic() {
    let mut p = Pool::new_adaptive(9, AdaptiveConfig::default());
    for server in 0..3 {
        offer_on(&mut p, server, 1);
    }
    let mut now = 0;
    teach(&mut p, 2, &[(0, 1_000), (1, 2_000), (2, 3_000)], &mut now);
    let new = offer_on(&mut p, 7, 1);
    let info = p.servers();
    let s7 = info.iter().find(|s| s.server == 7).unwrap();
    assert_eq!((s7.estimate_us, s7.weight), (None, 1.0));
    // Weight 1 is the median's: lent before the slow server (weight 1.5)
    // and after the fast one (0.5).
    assert_eq!(p.effective_slot(new), Some(1.0));
    let order: Vec<u32> = drain(&mut p).iter().map(|&h| server_of(h)).collect();
    assert_eq!(order, vec![0, 1, 7, 2]);
}

#[test]
fn a_lease_still_out_can_raise_its_servers_estimate() {
    let cfg = AdaptiveConfig {
        count_outstanding: true,
        reweigh_every: 1,
        ..AdaptiveConfig::default()
    };
    let mut p = Pool::new_adaptive(4, cfg);
    let a = offer_on(&mut p, 0, 1);
    let b = offer_on(&mut p, 1, 1);
    let mut now = 0;
    teach(&mut p, 1, &[(0, 1_000), (1, 1_000)], &mut now);
    p.set_clock(now);
    assert_eq!(p.lease(), Some(a));
    p.set_clock(now + 50_000); // `a` out for 50 ms
    assert_eq!(p.lease(), Some(b));
    lend_sample(&mut p, b, 1_000, now + 50_000);
    let s = p.servers();
    assert_eq!(s[0].estimate_us, Some(50_000.0));
    // Two servers: the median is their mean, 25.5 ms.
    assert_eq!(s[0].weight, (50.0f64 / 25.5 * 128.0).round() / 128.0);
    assert_eq!(s[1].weight, 0.125, "clamped at 1/8");
}

#[test]
fn the_server_table_is_bounded() {
    let cfg = AdaptiveConfig {
        max_servers: 3,
        ..AdaptiveConfig::default()
    };
    let mut p = Pool::new_adaptive(3, cfg);
    let held: Vec<Handle> = (0..3)
        .map(|s| offer_on(&mut p, s, 7 - u64::from(s)))
        .collect();
    // Every remembered server holds an entry: a fourth is kept untracked.
    while p.lease().is_some() {}
    let h = kept(p.offer_on(9, 1, false).unwrap());
    assert_eq!(p.state(held[0]), State::Displaced);
    assert_eq!(p.server_table_len(), 3);
    assert!(p.servers().iter().all(|s| s.server != 9));
    assert_eq!(p.lease(), Some(h));
    assert!(
        !p.record_sample(h, 10, 0),
        "an untracked entry takes no sample"
    );
    assert!(p.record_sample(held[0], 10, 0), "a displaced one does");
    p.check_invariants();
    // Server 0's displaced entry is returned: it holds nothing now, and is
    // forgotten for the next new server.
    p.release(held[0]).unwrap(); // displaced by `h`: destroyed
    assert_eq!(p.state(held[0]), State::Free);
    offer_on(&mut p, 10, 0);
    let ids: Vec<u32> = p.servers().iter().map(|s| s.server).collect();
    assert_eq!(ids, vec![1, 2, 10]);
    p.check_invariants();

    // The default bound, max(2 * max_slots, 64), under a flood of names.
    let mut p = Pool::new_adaptive(4, AdaptiveConfig::default());
    for i in 0..10_000u32 {
        let _ = p.offer_on(i, u64::from(10_000 - i), false);
        assert!(p.server_table_len() <= 64);
    }
    assert_eq!(p.server_table_len(), 64);
    p.check_invariants();
}

/// Random operations with samples from servers of different speeds: the
/// heaps stay valid through every re-keying, each key is the slot times the
/// weight in use, and each lease is the naive model's lowest effective slot.
#[test]
fn rekeying_keeps_the_heaps_valid_against_a_naive_model() {
    for seed in 1..=30u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let max = 1 + rng.below(16) as usize;
        let cfg = AdaptiveConfig {
            reweigh_every: 1 + rng.below(8) as u32,
            count_outstanding: rng.below(2) == 0,
            ..AdaptiveConfig::default()
        };
        let mut p = Pool::new_adaptive(max, cfg);
        let speed = [300u64, 1_000, 1_000, 2_500, 9_000];
        let mut server = BTreeMap::<Handle, u32>::new();
        let mut now = 0u64;
        for step in 0..3_000 {
            let ctx = format!("seed {seed} step {step}");
            now += rng.below(2_000);
            match rng.below(100) {
                0..=29 => {
                    let s = rng.below(speed.len() as u64) as u32;
                    if let Ok(Offer::Kept { handle, .. }) =
                        p.offer_on(s, rng.below(30), rng.below(5) == 0)
                    {
                        server.insert(handle, s);
                    }
                }
                30..=59 => {
                    // The naive model: lowest ((slot + 1) x weight, handle) idle.
                    let weight: BTreeMap<u32, f64> =
                        p.servers().iter().map(|i| (i.server, i.weight)).collect();
                    let expect = server
                        .iter()
                        .filter(|(&h, _)| p.state(h) == State::Idle)
                        .map(|(&h, s)| {
                            let w = (weight[s] * WEIGHT_ONE_F).round() as u64;
                            ((p.slot(h).unwrap() + 1) * w, h)
                        })
                        .min()
                        .map(|(_, h)| h);
                    assert_eq!(p.lease(), expect, "{ctx}");
                }
                60..=89 => {
                    let lent: Vec<Handle> = server
                        .keys()
                        .copied()
                        .filter(|&h| matches!(p.state(h), State::Leased | State::Displaced))
                        .collect();
                    if !lent.is_empty() {
                        let h = lent[rng.below(lent.len() as u64) as usize];
                        let base = speed[server[&h] as usize];
                        p.record_sample(h, base / 2 + rng.below(base), now);
                        p.release(h).unwrap();
                    }
                }
                _ => {
                    let hs: Vec<Handle> = server.keys().copied().collect();
                    if let Some(&h) = hs.get(rng.below(hs.len() as u64 + 1) as usize) {
                        let _ = p.remove(h);
                    }
                }
            }
            server.retain(|&h, _| p.state(h) != State::Free);
            p.check_invariants();
        }
        // Distinct speeds were learnt: the slowest weighs most (unless
        // leases left out long count, which the model does not time).
        let info = p.servers();
        if cfg.count_outstanding {
            continue;
        }
        if let (Some(fast), Some(slow)) = (
            info.iter().find(|s| s.server == 0 && s.held > 0),
            info.iter().find(|s| s.server == 4 && s.held > 0),
        ) {
            assert!(slow.weight > fast.weight, "seed {seed}: {info:?}");
        }
    }
}

const WEIGHT_ONE_F: f64 = adaptive::WEIGHT_ONE as f64;

#[test]
fn adaptive_counts_leases_per_server() {
    let mut p = Pool::new_adaptive(4, AdaptiveConfig::default());
    let a = offer_on(&mut p, 3, 1);
    offer_on(&mut p, 4, 2);
    assert_eq!(p.lease(), Some(a));
    p.release(a).unwrap();
    assert_eq!(p.release_all_then_lease(&[]), Some(a));
    assert_eq!(p.release_all_then_lease(&[a]), Some(a));
    let info = p.servers();
    assert_eq!((info[0].server, info[0].leases, info[0].held), (3, 3, 1));
    assert_eq!((info[1].server, info[1].leases, info[1].held), (4, 0, 1));
}

#[test]
fn slot_zero_counts_its_servers_weight() {
    // Every server's first connection has slot 0: a client holding slot 0 on
    // each of its servers must still rank the slow one's last.
    let mut p = Pool::new_adaptive(3, AdaptiveConfig::default());
    for server in 0..3 {
        offer_on(&mut p, server, 0);
    }
    let mut now = 0;
    teach(&mut p, 3, &[(0, 4_000), (1, 1_000), (2, 1_000)], &mut now);
    let order: Vec<u32> = drain(&mut p).into_iter().map(server_of).collect();
    assert_eq!(order.last(), Some(&0), "{order:?}");
}
