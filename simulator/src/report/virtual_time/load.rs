//! The load sweep: every balancer from 10% to 95% of the fleet's capacity,
//! on a homogeneous fleet and on one with 10% of its servers at half speed.

use super::{ms, Opts};
use crate::report::sockets::{f2, write_svg};
use callosum_fleet_sim::fleet;
use callosum_fleet_sim::svg::{Chart, Line};
use callosum_fleet_sim::vt::{Balancer, Dist, Sim, SlotPolicy, VtConfig};
use std::time::{Duration, Instant};

/// What one run at one load gives.
#[derive(Clone, Copy, Debug)]
pub struct LoadPoint {
    pub load: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub util_mean: f64,
    pub util_max_mean: f64,
    pub req_max_mean: f64,
    /// Callosum: share of requests that waited for a connection.
    pub waited: f64,
    pub events: u64,
}

/// The fleet of the load sweep: `slow`: every tenth server at half speed.
pub fn load_config(o: &Opts, balancer: Balancer, slow: bool, load: f64) -> VtConfig {
    let mut c = VtConfig::like_sockets(
        o.max_slots,
        Duration::from_millis(o.roving_ms),
        Duration::from_secs_f64(o.service_ms / 1e3),
        0.0,
        o.seed,
    );
    c.workers = o.workers;
    c.dist = Dist::Exponential;
    c.balancer = balancer;
    if slow {
        c.slow_every = 10;
        c.slow_speed = 0.5;
    }
    c.request_rate = load / 100.0 * c.capacity(o.servers);
    c
}

/// Warms up (pools fill, queues form), then measures over the window.
pub fn load_run(
    cfg: VtConfig,
    servers: usize,
    clients: usize,
    warmup: u32,
    window: u32,
) -> LoadPoint {
    let load = cfg.request_rate / cfg.capacity(servers) * 100.0;
    let workers = cfg.workers.max(1) as f64;
    let mut sim = Sim::new(cfg, servers, clients);
    sim.run_until(Duration::from_secs(warmup as u64));
    sim.clear_latency();
    let (a0, b0, w0, ok0) = (
        sim.answered(),
        sim.busy_ns(),
        sim.counters.no_connection,
        sim.counters.ok,
    );
    sim.run_until(Duration::from_secs((warmup + window) as u64));
    let secs = window as f64;
    let reqs: Vec<f64> = sim
        .answered()
        .iter()
        .zip(&a0)
        .map(|(a, b)| (a - b) as f64)
        .collect();
    let util: Vec<f64> = sim
        .busy_ns()
        .iter()
        .zip(&b0)
        .map(|(a, b)| (a - b) as f64 / 1e9 / secs / workers)
        .collect();
    let util_mean = util.iter().sum::<f64>() / util.len() as f64;
    let ok = (sim.counters.ok - ok0).max(1);
    let q = |x: f64| {
        sim.log_latency
            .quantile(x)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    LoadPoint {
        load,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        util_mean,
        util_max_mean: fleet::spread(&util).0,
        req_max_mean: fleet::spread(&reqs).0,
        waited: (sim.counters.no_connection - w0) as f64 / ok as f64,
        events: sim.counters.events,
    }
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// The header of a table with a row per load and a column per balancer.
pub(super) fn load_table_header<T: std::fmt::Display>(columns: impl ExactSizeIterator<Item = T>) {
    let n = columns.len();
    print!("| load |");
    for b in columns {
        print!(" {b} |");
    }
    println!();
    println!("|---|{}", "---|".repeat(n));
}

/// A line of the load sweep: a balancer, and for Callosum its settings.
pub type Contender = (&'static str, fn(&mut VtConfig));

/// The load sweep's lines: the four balancers, then Callosum with what
/// helped most in `tune` (two probes, slots weighted by speed).
pub const CONTENDERS: [Contender; 5] = [
    ("random", |c| c.balancer = Balancer::Random),
    ("round-robin", |c| c.balancer = Balancer::RoundRobin),
    ("P2C least-outstanding", |c| c.balancer = Balancer::P2c),
    ("Callosum", |c| c.balancer = Balancer::Callosum),
    ("Callosum, 2 probes + weighted slots", |c| {
        c.balancer = Balancer::Callosum;
        c.probes = 2;
        c.slot_policy = SlotPolicy::Weighted;
    }),
];

/// Every contender at every load, on one fleet; prints the tables, writes
/// the charts; returns the points per contender.
pub fn sweep_fleet(o: &Opts, slow: bool) -> Vec<(&'static str, Vec<LoadPoint>)> {
    let name = if slow { "slow10" } else { "homogeneous" };
    let title = if slow {
        "10% of the servers 2x slower"
    } else {
        "homogeneous fleet"
    };
    let t = Instant::now();
    let mut all = Vec::new();
    for (label, set) in CONTENDERS {
        let pts: Vec<LoadPoint> = o
            .loads
            .iter()
            .map(|&l| {
                let mut c = load_config(o, Balancer::Callosum, slow, l);
                set(&mut c);
                load_run(c, o.servers, o.clients, o.warmup, o.window)
            })
            .collect();
        all.push((label, pts));
    }
    println!(
        "\n### {title}: {} servers x {} workers, {} clients, exponential service {} ms (at speed 1)\n",
        o.servers, o.workers, o.clients, o.service_ms
    );
    println!("Latency p50 / p99 in ms, from the request's arrival at its client to its answer:\n");
    load_table_header(all.iter().map(|(b, _)| b));
    for (i, l) in o.loads.iter().enumerate() {
        print!("| {l:.0}% |");
        for (_, pts) in &all {
            print!(" {} / {} |", ms(pts[i].p50_ms), ms(pts[i].p99_ms));
        }
        println!();
    }
    println!("\nUtilisation max/mean (mean) and requests max/mean, per server over the window:\n");
    load_table_header(all.iter().map(|(b, _)| b));
    for (i, l) in o.loads.iter().enumerate() {
        print!("| {l:.0}% |");
        for (_, pts) in &all {
            let p = pts[i];
            print!(
                " {} ({:.2}), {} |",
                f2(p.util_max_mean),
                p.util_mean,
                f2(p.req_max_mean)
            );
        }
        println!();
    }
    let callosum = &all.iter().find(|x| x.0 == "Callosum").unwrap().1;
    print!("\nCallosum requests that waited for a connection:");
    for p in callosum {
        print!(" {:.0}%: {:.2}%;", p.load, p.waited * 100.0);
    }
    println!(
        "\n\n({} runs, {:.1} s, {:.0} M events)",
        o.loads.len() * all.len(),
        t.elapsed().as_secs_f64(),
        all.iter()
            .flat_map(|x| x.1.iter())
            .map(|p| p.events as f64)
            .sum::<f64>()
            / 1e6
    );
    let lines = |f: &dyn Fn(&LoadPoint) -> f64| -> (Vec<Line>, Vec<(&'static str, String)>) {
        let mut lines = Vec::new();
        let mut legend = Vec::new();
        for (k, (b, pts)) in all.iter().enumerate() {
            lines.push(Line {
                points: pts.iter().map(|p| (p.load, f(p))).collect(),
                color: COLORS[k],
                width: 2.0,
                opacity: 1.0,
            });
            legend.push((COLORS[k], b.to_string()));
        }
        (lines, legend)
    };
    let (l, legend) = lines(&|p| p.p99_ms);
    write_svg(
        &o.svg_dir,
        &format!("load-p99-{name}.svg"),
        &Chart {
            title: &format!(
                "p99 latency against load, {title} ({} servers, {} clients)",
                o.servers, o.clients
            ),
            x_label: "offered load, % of fleet capacity",
            y_label: "p99 latency, ms (log scale)",
            lines: l,
            markers: vec![],
            legend,
            log_y: true,
        },
    );
    let (l, legend) = lines(&|p| p.util_max_mean);
    write_svg(
        &o.svg_dir,
        &format!("load-util-{name}.svg"),
        &Chart {
            title: &format!("Busiest server's utilisation over the mean, {title}"),
            x_label: "offered load, % of fleet capacity",
            y_label: "utilisation max/mean (1 is perfect)",
            lines: l,
            markers: vec![],
            legend,
            log_y: false,
        },
    );
    all
}

pub fn load(o: &Opts) {
    println!(
        "## Load sweep: {} servers, {} clients, MAX_SLOTS {}, RI {} ms; {} s warm-up, {} s measured; seed {}",
        o.servers, o.clients, o.max_slots, o.roving_ms, o.warmup, o.window, o.seed
    );
    sweep_fleet(o, false);
    sweep_fleet(o, true);
}
