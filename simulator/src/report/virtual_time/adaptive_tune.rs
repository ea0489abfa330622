//! `adaptive-tune`: the adaptive mode's estimator choices, one at a time
//! from the defaults, on the scenarios that tell them apart: 10% at half
//! speed (80% and 95%), the homogeneous fleet at 95%, the slowdown at 80%
//! (p99 ratio, seconds back), the join at 80% (seconds to fill).

use super::adaptive::SAMPLE_EVERY;
use super::scenarios::{run, Outcome, Scenario};
use super::{ms, Opts};
use callosum_fleet_sim::vt::{Balancer, VtConfig};
use callosum_pool::{AdaptiveConfig, Reference};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

type Variant = (&'static str, fn(&mut VtConfig, &mut AdaptiveConfig));

const VARIANTS: &[Variant] = &[
    ("defaults", |_, _| {}),
    (
        "Peak EWMA (a larger sample replaces the estimate)",
        |_, a| a.peak = true,
    ),
    ("decay 0.5 s", |_, a| a.decay_us = 0.5e6),
    ("decay 1 s", |_, a| a.decay_us = 1e6),
    ("decay 5 s", |_, a| a.decay_us = 5e6),
    ("decay 10 s", |_, a| a.decay_us = 10e6),
    ("weight clamp 2", |_, a| a.max_weight = 2.0),
    ("weight clamp 4", |_, a| a.max_weight = 4.0),
    ("weight clamp 16", |_, a| a.max_weight = 16.0),
    ("dead band 0", |_, a| a.dead_band = 0.0),
    ("dead band 0.05", |_, a| a.dead_band = 0.05),
    ("dead band 0.2", |_, a| a.dead_band = 0.2),
    ("no-history weight 0.5", |_, a| a.no_history_weight = 0.5),
    ("no-history weight 2", |_, a| a.no_history_weight = 2.0),
    ("reference: mean", |_, a| a.reference = Reference::Mean),
    ("a lease still out counts", |_, a| {
        a.count_outstanding = true
    }),
    ("every lease timed", |c, _| c.sample_every = 1),
    ("1 lease in 4 timed", |c, _| c.sample_every = 4),
    ("1 lease in 8 timed", |c, _| c.sample_every = 8),
    ("1 lease in 12 timed", |c, _| c.sample_every = 12),
    ("1 lease in 32 timed", |c, _| c.sample_every = 32),
];

/// The cells of a row: (scenario, load).
const CELLS: [(Scenario, f64); 5] = [
    (Scenario::Half, 80.0),
    (Scenario::Half, 95.0),
    (Scenario::Homogeneous, 95.0),
    (Scenario::Slowdown, 80.0),
    (Scenario::Join, 80.0),
];

pub fn adaptive_tune(o: &Opts) {
    let seeds: Vec<u64> = (0..o.seeds.max(1)).map(|k| o.seed + k).collect();
    let mut jobs = Vec::new();
    for v in 0..VARIANTS.len() {
        for &p in &o.probes {
            for (cell, _) in CELLS.iter().enumerate() {
                for &seed in &seeds {
                    jobs.push((v, p, cell, seed));
                }
            }
        }
    }
    let t = Instant::now();
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|s| {
        for _ in 0..o.threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(v, p, cell, seed)) = jobs.get(i) else {
                    break;
                };
                let (sc, load) = CELLS[cell];
                let mut c = sc.config(o, load, seed);
                c.balancer = Balancer::Callosum;
                c.probes = p;
                c.offer_every_probe = true;
                c.sample_every = SAMPLE_EVERY;
                let mut a = AdaptiveConfig::default();
                (VARIANTS[v].1)(&mut c, &mut a);
                c.adaptive = Some(a);
                let r = run(o, sc, c);
                out.lock().unwrap()[i] = Some(r);
            });
        }
    });
    let out: Vec<Outcome> = out.into_inner().unwrap().into_iter().flatten().collect();
    println!(
        "## Adaptive estimator choices (seeds {seeds:?}, p99 and ratio averaged over them; 1 lease in {SAMPLE_EVERY} timed unless said)\n"
    );
    println!("p99 ms on 10% at half speed at 80% and 95%, homogeneous at 95%; slowdown at 80%: p99 during / steady, seconds back within 20%; join at 80%: seconds until new servers hold 80% of the mean connections\n");
    println!("| variant | probes | half 80% | half 95% | homogeneous 95% | slowdown ratio | back, s | join fill, s |");
    println!("|---|---|---|---|---|---|---|---|");
    let n = seeds.len();
    for (i, &(v, p, cell, _)) in jobs.iter().enumerate().step_by(n) {
        if cell != 0 {
            continue;
        }
        // Cell k, seed j is at i + k * n + j.
        let cell = |k: usize| &out[i + k * n..i + (k + 1) * n];
        let mean =
            |k: usize, f: &dyn Fn(&Outcome) -> f64| cell(k).iter().map(f).sum::<f64>() / n as f64;
        let list = |k: usize, f: &dyn Fn(&Outcome) -> Option<f64>, d: usize| {
            cell(k)
                .iter()
                .map(|r| f(r).map_or("-".into(), |s| format!("{s:.d$}")))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "| {} | {p} | {} | {} | {} | {:.2} | {} | {} |",
            VARIANTS[v].0,
            ms(mean(0, &|r| r.p99_ms)),
            ms(mean(1, &|r| r.p99_ms)),
            ms(mean(2, &|r| r.p99_ms)),
            mean(3, &|r| r.p99_ms / r.p99_steady_ms),
            list(3, &|r| r.back_secs, 0),
            list(4, &|r| r.fill_conn_secs, 2),
        );
    }
    println!(
        "\n({} runs, {:.0} s)",
        jobs.len(),
        t.elapsed().as_secs_f64()
    );
}
