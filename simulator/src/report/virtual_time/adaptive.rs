//! `adaptive`: every balancer on issue 20's scenarios ([`Scenario`]), 10% to
//! 95% load at the first seed, and at 80% and 95% load at `--seeds` seeds;
//! the p99 of each, the slowdown's and the join's own measures, the charts.
//! Runs `--threads` runs at once.

use super::load::load_table_header;
use super::scenarios::{run, Outcome, Scenario, JOIN_BUCKET, SLOWDOWN_SECS};
use super::{ms, Opts};
use crate::report::sockets::write_svg;
use callosum_fleet_sim::svg::{Chart, Line};
use callosum_fleet_sim::vt::{Balancer, VtConfig};
use callosum_pool::AdaptiveConfig;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A line of the tables: a balancer and its settings.
pub type Contender = (&'static str, fn(&mut VtConfig));

/// One lease in this many is timed by the JavaScript client (the binding's
/// notes: 1 in 16, for the cost of two clock reads in JavaScript).
pub const SAMPLE_EVERY: u32 = 16;

fn adaptive_probes(c: &mut VtConfig, probes: u32) {
    c.balancer = Balancer::Callosum;
    c.adaptive = Some(AdaptiveConfig::default());
    c.sample_every = SAMPLE_EVERY;
    c.probes = probes;
    c.offer_every_probe = true;
}

pub const CONTENDERS: [Contender; 8] = [
    ("P2C idealised (every queue known)", |c| {
        c.balancer = Balancer::P2c
    }),
    ("client-side P2C least-outstanding", |c| {
        c.balancer = Balancer::P2cLocal
    }),
    ("client-side P2C Peak EWMA", |c| {
        c.balancer = Balancer::PeakEwma
    }),
    ("random", |c| c.balancer = Balancer::Random),
    ("round-robin", |c| c.balancer = Balancer::RoundRobin),
    ("Callosum as specified", |c| c.balancer = Balancer::Callosum),
    ("Callosum adaptive, probes 1", |c| adaptive_probes(c, 1)),
    ("Callosum adaptive, probes 2", |c| adaptive_probes(c, 2)),
];

const COLORS: [&str; 8] = [
    "#2ca02c", "#17becf", "#9467bd", "#1f77b4", "#ff7f0e", "#d62728", "#8c564b", "#e377c2",
];

/// The loads every seed runs at.
const SEED_LOADS: [f64; 2] = [80.0, 95.0];

#[derive(Clone, Copy, Debug, PartialEq)]
struct Job {
    sc: Scenario,
    line: usize,
    load: f64,
    seed: u64,
}

/// Runs every job, `threads` at a time; the outcomes in the jobs' order.
fn run_all(o: &Opts, jobs: &[Job]) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|s| {
        for _ in 0..o.threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(j) = jobs.get(i) else { break };
                let mut cfg = j.sc.config(o, j.load, j.seed);
                (CONTENDERS[j.line].1)(&mut cfg);
                let r = run(o, j.sc, cfg);
                out.lock().unwrap()[i] = Some(r);
            });
        }
    });
    out.into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

pub fn adaptive(o: &Opts) {
    let scenarios: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|s| o.scenarios.is_empty() || o.scenarios.iter().any(|n| n == s.slug()))
        .collect();
    let seeds: Vec<u64> = (0..o.seeds.max(1)).map(|k| o.seed + k).collect();
    let mut jobs = Vec::new();
    for &sc in &scenarios {
        for line in 0..CONTENDERS.len() {
            let mut loads = o.loads.clone();
            loads.extend(SEED_LOADS.iter().filter(|l| !o.loads.contains(l)));
            for &load in &loads {
                jobs.push(Job {
                    sc,
                    line,
                    load,
                    seed: seeds[0],
                });
            }
            for &seed in &seeds[1..] {
                for load in SEED_LOADS {
                    jobs.push(Job {
                        sc,
                        line,
                        load,
                        seed,
                    });
                }
            }
        }
    }
    let t = Instant::now();
    let results = run_all(o, &jobs);
    let get = |sc: Scenario, line: usize, load: f64, seed: u64| -> &Outcome {
        let i = jobs
            .iter()
            .position(|j| {
                *j == Job {
                    sc,
                    line,
                    load,
                    seed,
                }
            })
            .expect("a job for every cell");
        &results[i]
    };
    println!(
        "## Issue 20's scenarios: {} servers x {} workers, {} clients, MAX_SLOTS {}, RI {} ms, service {} ms (exponential unless said); {} s warm-up, {} s measured; seeds {:?} at 80% and 95%\n",
        o.servers, o.workers, o.clients, o.max_slots, o.roving_ms, o.service_ms, o.warmup, o.window, seeds
    );
    for &sc in &scenarios {
        println!("### {}\n", sc.title());
        println!(
            "p99 latency, ms, seeds {}:\n",
            seeds
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" / ")
        );
        println!("| balancer | 80% | 95% |\n|---|---|---|");
        for (k, (name, _)) in CONTENDERS.iter().enumerate() {
            print!("| {name} |");
            for load in SEED_LOADS {
                let v: Vec<String> = seeds
                    .iter()
                    .map(|&s| ms(get(sc, k, load, s).p99_ms))
                    .collect();
                print!(" {} |", v.join(" / "));
            }
            println!();
        }
        println!("\np99 latency, ms, against load (seed {}):\n", seeds[0]);
        load_table_header(CONTENDERS.iter().map(|c| c.0));
        for &l in &o.loads {
            print!("| {l:.0}% |");
            for k in 0..CONTENDERS.len() {
                print!(" {} |", ms(get(sc, k, l, seeds[0]).p99_ms));
            }
            println!();
        }
        match sc {
            Scenario::Slowdown => slowdown_table(&seeds, &get),
            Scenario::Join => join_table(&seeds, &get),
            Scenario::Half | Scenario::Quarter => slow_share_table(sc, &seeds, &get),
            _ => {}
        }
        println!();
        chart_p99(o, sc, seeds[0], &get);
        if sc == Scenario::Slowdown {
            chart_share(o, seeds[0], &get);
        }
        println!();
    }
    println!(
        "({} runs, {:.0} s, {:.0} M events, {} at once)",
        jobs.len(),
        t.elapsed().as_secs_f64(),
        results.iter().map(|r| r.events as f64).sum::<f64>() / 1e6,
        o.threads
    );
}

type Get<'a> = dyn Fn(Scenario, usize, f64, u64) -> &'a Outcome + 'a;

fn per_seed(seeds: &[u64], f: impl Fn(u64) -> String) -> String {
    seeds.iter().map(|&s| f(s)).collect::<Vec<_>>().join(" / ")
}

fn opt_secs(v: Option<f64>) -> String {
    v.map_or("not within 30 s".into(), |s| format!("{s:.0}"))
}

fn slowdown_table<'a>(seeds: &[u64], get: &Get<'a>) {
    println!(
        "\nServer 0 at a third of its speed for {SLOWDOWN_SECS} s: p99 before (steady) and during, their ratio, its share of requests during (1 = the mean), seconds after recovery until its share is within 20% of the mean for 5 s in a row; seeds as above:\n"
    );
    println!("| balancer | load | p99 steady | p99 during | ratio | share during | back within 20% after, s |");
    println!("|---|---|---|---|---|---|---|");
    for (k, (name, _)) in CONTENDERS.iter().enumerate() {
        for load in SEED_LOADS {
            let g = |s| get(Scenario::Slowdown, k, load, s);
            println!(
                "| {name} | {load:.0}% | {} | {} | {} | {} | {} |",
                per_seed(seeds, |s| ms(g(s).p99_steady_ms)),
                per_seed(seeds, |s| ms(g(s).p99_ms)),
                per_seed(seeds, |s| format!(
                    "{:.2}",
                    g(s).p99_ms / g(s).p99_steady_ms
                )),
                per_seed(seeds, |s| format!("{:.2}", g(s).share_during)),
                per_seed(seeds, |s| opt_secs(g(s).back_secs)),
            );
        }
    }
}

fn slow_share_table<'a>(sc: Scenario, seeds: &[u64], get: &Get<'a>) {
    println!(
        "\nThe slow servers' share of the requests sent, over their share of the capacity (1: in proportion to speed; seeds as above):\n"
    );
    println!("| balancer | 80% | 95% |\n|---|---|---|");
    for (k, (name, _)) in CONTENDERS.iter().enumerate() {
        print!("| {name} |");
        for load in SEED_LOADS {
            print!(
                " {} |",
                per_seed(seeds, |s| format!("{:.2}", get(sc, k, load, s).slow_share))
            );
        }
        println!();
    }
}

fn join_table<'a>(seeds: &[u64], get: &Get<'a>) {
    let fmt = |v: Option<f64>| v.map_or("-".into(), |s| format!("{s:.2}"));
    println!(
        "\n10% new servers: seconds until their mean share of requests sent (and, for Callosum, of pooled connections) is 80% of the old servers' for 1 s in a row ({JOIN_BUCKET} s buckets); seeds as above:\n"
    );
    println!("| balancer | 80%: requests | 80%: connections | 95%: requests | 95%: connections |");
    println!("|---|---|---|---|---|");
    for (k, (name, _)) in CONTENDERS.iter().enumerate() {
        print!("| {name} |");
        for load in SEED_LOADS {
            let g = |s| get(Scenario::Join, k, load, s);
            print!(
                " {} | {} |",
                per_seed(seeds, |s| fmt(g(s).fill_req_secs)),
                per_seed(seeds, |s| fmt(g(s).fill_conn_secs)),
            );
        }
        println!();
    }
}

fn chart_p99<'a>(o: &Opts, sc: Scenario, seed: u64, get: &Get<'a>) {
    let mut lines = Vec::new();
    let mut legend = Vec::new();
    for (k, (name, _)) in CONTENDERS.iter().enumerate() {
        lines.push(Line {
            points: o
                .loads
                .iter()
                .map(|&l| (l, get(sc, k, l, seed).p99_ms))
                .collect(),
            color: COLORS[k % COLORS.len()],
            width: 2.0,
            opacity: 1.0,
        });
        legend.push((COLORS[k % COLORS.len()], name.to_string()));
    }
    write_svg(
        &o.svg_dir,
        &format!("scenario-p99-{}.svg", sc.slug()),
        &Chart {
            title: &format!(
                "p99 against load, {} ({} servers, {} clients)",
                sc.title(),
                o.servers,
                o.clients
            ),
            x_label: "offered load, % of fleet capacity",
            y_label: "p99 latency, ms (log scale)",
            lines,
            markers: vec![],
            legend,
            log_y: true,
        },
    );
}

fn chart_share<'a>(o: &Opts, seed: u64, get: &Get<'a>) {
    let from = (o.warmup + o.window) as f64 - 10.0;
    let mut lines = Vec::new();
    let mut legend = Vec::new();
    for (k, (name, _)) in CONTENDERS.iter().enumerate() {
        let r = get(Scenario::Slowdown, k, 80.0, seed);
        lines.push(Line {
            points: r
                .share
                .iter()
                .enumerate()
                .map(|(i, &v)| (from + i as f64 + 1.0, v))
                .collect(),
            color: COLORS[k % COLORS.len()],
            width: 1.5,
            opacity: 1.0,
        });
        legend.push((COLORS[k % COLORS.len()], name.to_string()));
    }
    let at = (o.warmup + o.window) as f64;
    write_svg(
        &o.svg_dir,
        "scenario-slowdown-share.svg",
        &Chart {
            title:
                "Server slowed to a third for 30 s, 80% load: its share of requests (1 = the mean)",
            x_label: "seconds",
            y_label: "requests sent to it / mean per server, per second",
            lines,
            markers: vec![
                (at, "slows".into()),
                (at + SLOWDOWN_SECS as f64, "recovers".into()),
            ],
            legend,
            log_y: false,
        },
    );
}
