//! The virtual-time reports: calibration against the socket mode, the load
//! sweep (four balancers, 10% to 95% of capacity, two fleets), what was tried
//! to make Callosum do better, and the scale runs.

use super::sockets::{self, f2, write_svg};
use callosum_fleet_sim::fleet::{self, Scenarios};
use callosum_fleet_sim::svg::{Chart, Line};
use callosum_fleet_sim::vt::{block_on, Balancer, Dist, Sim, SlotPolicy, VtConfig};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options shared by the virtual-time commands.
#[derive(Clone, Debug)]
pub struct Opts {
    pub servers: usize,
    pub clients: usize,
    pub max_slots: usize,
    pub roving_ms: u64,
    pub workers: u32,
    pub service_ms: f64,
    pub warmup: u32,
    pub window: u32,
    pub loads: Vec<f64>,
    pub seed: u64,
    pub svg_dir: Option<PathBuf>,
    /// calibrate: skip the socket run.
    pub no_sockets: bool,
    /// scale: sizes as servers x clients.
    pub sizes: Vec<(usize, usize)>,
    pub load: f64,
    /// `--loads` was given (tune's own default is 80 and 95).
    pub loads_given: bool,
}

const HELP: &str = "virtual-time commands: calibrate, load, tune, scale, scale-one

  --servers N       servers (100)
  --clients M       clients (2000)
  --max-slots S     MAX_SLOTS (3)
  --roving-ms R     ROVING_INTERVAL in ms (1000)
  --workers W       requests a server serves at once (4)
  --service-ms T    mean service time at speed 1, exponential (10)
  --warmup K        seconds before measuring: pools fill and settle (10)
  --window K        seconds measured (20)
  --loads LIST      offered loads, % of capacity (10,20,30,40,50,60,70,80,90,95;
                    tune: 80,95)
  --load L          offered load of scale and scale-one, % (80)
  --sizes LIST      scale: servers x clients (100x2000,1000x20000,3000x60000,10000x200000)
  --seed X          seed (1)
  --svg-dir DIR     where the charts go (docs/fleet; 'none' for none)
  --no-sockets      calibrate: the virtual-time side only
";

pub fn parse(args: impl Iterator<Item = String>) -> Opts {
    let mut o = Opts {
        servers: 100,
        clients: 2000,
        max_slots: 3,
        roving_ms: 1000,
        workers: 4,
        service_ms: 10.0,
        warmup: 10,
        window: 20,
        loads: vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0],
        seed: 1,
        svg_dir: Some(crate::docs_dir()),
        no_sockets: false,
        sizes: vec![
            (100, 2000),
            (1000, 20_000),
            (3000, 60_000),
            (10_000, 200_000),
        ],
        load: 80.0,
        loads_given: false,
    };
    let mut it = args;
    fn val<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
        let v = v.unwrap_or_else(|| sockets::die(&format!("{flag} needs a value")));
        v.parse()
            .unwrap_or_else(|_| sockets::die(&format!("{flag}: bad value {v:?}")))
    }
    while let Some(f) = it.next() {
        match f.as_str() {
            "--servers" => o.servers = val(&f, it.next()),
            "--clients" => o.clients = val(&f, it.next()),
            "--max-slots" => o.max_slots = val(&f, it.next()),
            "--roving-ms" => o.roving_ms = val(&f, it.next()),
            "--workers" => o.workers = val(&f, it.next()),
            "--service-ms" => o.service_ms = val(&f, it.next()),
            "--warmup" => o.warmup = val(&f, it.next()),
            "--window" => o.window = val(&f, it.next()),
            "--load" => o.load = val(&f, it.next()),
            "--seed" => o.seed = val(&f, it.next()),
            "--no-sockets" => o.no_sockets = true,
            "--loads" => {
                let v: String = val(&f, it.next());
                o.loads = v.split(',').map(|x| val(&f, Some(x.into()))).collect();
                o.loads_given = true;
            }
            "--sizes" => {
                let v: String = val(&f, it.next());
                o.sizes = v
                    .split(',')
                    .map(|x| {
                        let (a, b) = x
                            .split_once('x')
                            .unwrap_or_else(|| sockets::die(&format!("--sizes: {x:?} is not NxM")));
                        (val(&f, Some(a.into())), val(&f, Some(b.into())))
                    })
                    .collect();
            }
            "--svg-dir" => {
                let d: String = val(&f, it.next());
                o.svg_dir = (d != "none").then(|| PathBuf::from(d));
            }
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            _ => sockets::die(&format!("unknown argument {f:?}\n\n{HELP}")),
        }
    }
    if o.servers < 10 || o.clients == 0 || o.max_slots == 0 || o.roving_ms == 0 {
        sockets::die("need --servers >= 10, and --clients, --max-slots, --roving-ms > 0");
    }
    o
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

// --- calibration ---------------------------------------------------------

/// The socket mode's default run and the same in virtual time, side by side.
pub fn calibrate(o: &Opts) {
    let a = sockets::parse(
        [
            "--servers",
            &o.servers.to_string(),
            "--clients",
            &o.clients.to_string(),
            "--max-slots",
            &o.max_slots.to_string(),
            "--roving-ms",
            &o.roving_ms.to_string(),
            "--seed",
            &o.seed.to_string(),
        ]
        .into_iter()
        .map(String::from),
    );
    let ri = Duration::from_millis(o.roving_ms);
    let (settle, window, phase) = (40, 20, 40);
    println!(
        "# Calibration: {} servers, {} clients, MAX_SLOTS {}, RI {} ms, 1 request per client per second, 2 ms per request\n",
        o.servers, o.clients, o.max_slots, o.roving_ms
    );
    let socket = (!o.no_sockets).then(|| {
        let t = Instant::now();
        let load = load_average();
        let cfg = sockets::config(&a, o.max_slots, o.roving_ms);
        let sc = sockets::sockets_scenarios(&a, &cfg);
        let secs = t.elapsed().as_secs_f64();
        println!("sockets: {secs:.0} s (load average before: {load})");
        sockets::charts(
            &o.svg_dir,
            "",
            o.servers,
            o.clients,
            o.max_slots,
            o.roving_ms,
            &sc,
        );
        (sc, secs)
    });
    let t = Instant::now();
    let cfg = VtConfig::like_sockets(
        o.max_slots,
        ri,
        Duration::from_millis(2),
        o.clients as f64,
        o.seed,
    );
    let mut sim = Sim::new(cfg.clone(), o.servers, o.clients);
    let vt = block_on(fleet::scenarios(
        &mut sim,
        ri * settle,
        ri * window,
        ri * phase,
    ))
    .expect("virtual time cannot fail to add servers");
    sim.check();
    // One socket run is one draw: the virtual time's spread over seeds says
    // how far apart two draws fall.
    let others: Vec<Scenarios> = (1..=CALIBRATION_SEEDS)
        .map(|k| {
            let mut c = cfg.clone();
            c.seed = o.seed.wrapping_add(1000 * k);
            let mut sim = Sim::new(c, o.servers, o.clients);
            block_on(fleet::scenarios(
                &mut sim,
                ri * settle,
                ri * window,
                ri * phase,
            ))
            .expect("virtual time cannot fail to add servers")
        })
        .collect();
    let vt_secs = t.elapsed().as_secs_f64();
    println!(
        "virtual time: {vt_secs:.1} s for {} runs\n",
        CALIBRATION_SEEDS + 1
    );
    calibration_table(
        socket.as_ref().map(|s| &s.0),
        &vt,
        &others,
        ri.as_secs_f64(),
    );
    if let Some((s, _)) = &socket {
        println!();
        sockets::print_scenarios(
            o.servers,
            o.clients,
            o.max_slots,
            o.roving_ms,
            settle,
            s,
            " (sockets)",
        );
    }
    println!();
    sockets::print_scenarios(
        o.servers,
        o.clients,
        o.max_slots,
        o.roving_ms,
        settle,
        &vt,
        " (virtual time)",
    );
}

/// Further virtual-time runs of the calibration, with other seeds.
const CALIBRATION_SEEDS: u64 = 10;

fn calibration_table(s: Option<&Scenarios>, v: &Scenarios, others: &[Scenarios], ri: f64) {
    type Row = (&'static str, fn(&Scenarios, f64) -> f64);
    let rows: Vec<Row> = vec![
        ("pools 99% full after (RI)", |s, ri| {
            (s.steady.fill_secs.unwrap_or(f64::NAN)) / ri
        }),
        ("connections max/mean, window average", |s, _| {
            s.steady.conn_max_mean
        }),
        ("requests max/mean per server", |s, _| s.steady.req_max_mean),
        ("requests per second, whole fleet", |s, _| {
            s.steady.req_per_sec
        }),
        ("displacements per second, steady", |s, _| {
            s.steady.displaced_per_sec
        }),
        ("scale-out: new servers average 50% after (RI)", |s, ri| {
            s.scale.avg_half_secs.unwrap_or(f64::NAN) / ri
        }),
        ("scale-out: new servers average 80% after (RI)", |s, ri| {
            s.scale.avg_80_secs.unwrap_or(f64::NAN) / ri
        }),
        (
            "scale-out: every new server within 20% after (RI)",
            |s, ri| s.scale.all_80_secs.unwrap_or(f64::NAN) / ri,
        ),
        ("scale-out: displacements", |s, _| s.scale.displaced as f64),
        ("failure: connections lost", |s, _| s.fail.lost as f64),
        ("failure: pools back to 99% after (RI)", |s, ri| {
            s.fail.refill_99_secs.unwrap_or(f64::NAN) / ri
        }),
        ("failure: pools back to 100% after (RI)", |s, ri| {
            s.fail.refill_full_secs.unwrap_or(f64::NAN) / ri
        }),
        ("failure: balance back within 10% after (RI)", |s, ri| {
            s.fail.balance_secs.unwrap_or(f64::NAN) / ri
        }),
        ("failure: connections max/mean at the end", |s, _| {
            s.fail.conn_max_mean_end
        }),
        ("failure: connects refused by the dead servers", |s, _| {
            s.fail.connect_failures as f64
        }),
        ("latency p50 (ms)", |s, _| s.steady.p50_ms),
        ("latency p99 (ms)", |s, _| s.steady.p99_ms),
    ];
    println!(
        "| measure | sockets | virtual time, same seed | virtual / sockets | virtual time, {} other seeds: median (min-max) |\n|---|---|---|---|---|",
        others.len()
    );
    for (name, f) in rows {
        let vv = f(v, ri);
        let (sv, ratio) = match s {
            Some(s) => {
                let sv = f(s, ri);
                (
                    num(sv),
                    if sv > 0.0 {
                        format!("{:.2}", vv / sv)
                    } else {
                        "-".into()
                    },
                )
            }
            None => ("-".into(), "-".into()),
        };
        let mut o: Vec<f64> = others.iter().map(|x| f(x, ri)).collect();
        o.sort_by(f64::total_cmp);
        let mean = o.get(o.len() / 2).copied().unwrap_or(f64::NAN);
        let lo = o.iter().cloned().fold(f64::MAX, f64::min);
        let hi = o.iter().cloned().fold(f64::MIN, f64::max);
        println!(
            "| {name} | {sv} | {} | {ratio} | {} ({}-{}) |",
            num(vv),
            num(mean),
            num(lo),
            num(hi)
        );
    }
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

// --- the load sweep ------------------------------------------------------

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
fn load_table_header<T: std::fmt::Display>(columns: impl ExactSizeIterator<Item = T>) {
    let n = columns.len();
    print!("| load |");
    for b in columns {
        print!(" {b} |");
    }
    println!();
    println!("|---|{}", "---|".repeat(n));
}

pub fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 1000.0 {
        format!("{:.1} s", v / 1e3)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
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

// --- what was tried ------------------------------------------------------

/// Callosum variants against P2C at the loads given, on both fleets.
pub fn tune(o: &Opts) {
    let mut o = o.clone();
    if !o.loads_given {
        o.loads = vec![80.0, 95.0];
    }
    let o = &o;
    type Variant = (&'static str, fn(&mut VtConfig));
    let variants: Vec<Variant> = vec![
        ("P2C least-outstanding (reference)", |c| {
            c.balancer = Balancer::P2c
        }),
        ("Callosum as specified", |_| {}),
        ("Callosum, fair tie-break among equal lowest slots", |c| {
            c.fair_ties = true
        }),
        (
            "Callosum, rover probes two servers, offers the lower slot",
            |c| c.probes = 2,
        ),
        ("Callosum, servers announce slot / speed (weighted)", |c| {
            c.slot_policy = SlotPolicy::Weighted
        }),
        ("Callosum, weighted slots and two probes", |c| {
            c.slot_policy = SlotPolicy::Weighted;
            c.probes = 2
        }),
        (
            "Callosum, servers announce slot x (1 + outstanding / workers)",
            |c| c.slot_policy = SlotPolicy::LoadAware,
        ),
        ("Callosum, load-aware slots and two probes", |c| {
            c.slot_policy = SlotPolicy::LoadAware;
            c.probes = 2
        }),
        ("Callosum, MAX_SLOTS 2", |c| c.max_slots = 2),
        ("Callosum, MAX_SLOTS 8", |c| c.max_slots = 8),
        ("Callosum, RI 250 ms", |c| {
            c.roving_interval = Duration::from_millis(250)
        }),
    ];
    let t = Instant::now();
    for slow in [false, true] {
        println!(
            "\n### Callosum variants, {}: p99 ms (p50), utilisation max/mean, requests max/mean\n",
            if slow {
                "10% of the servers 2x slower"
            } else {
                "homogeneous fleet"
            }
        );
        print!("| variant |");
        for l in &o.loads {
            print!(" {l:.0}% |");
        }
        println!("\n|---|{}", "---|".repeat(o.loads.len()));
        for (name, set) in &variants {
            print!("| {name} |");
            for &l in &o.loads {
                let mut c = load_config(o, Balancer::Callosum, slow, l);
                set(&mut c);
                let p = load_run(c, o.servers, o.clients, o.warmup, o.window);
                print!(
                    " {} ({}), {}, {} |",
                    ms(p.p99_ms),
                    ms(p.p50_ms),
                    f2(p.util_max_mean),
                    f2(p.req_max_mean)
                );
            }
            println!();
        }
    }
    println!("\n({:.1} s)", t.elapsed().as_secs_f64());
}

// --- scale ---------------------------------------------------------------

/// One size, in this process: the three scenarios at the load sweep's
/// server model, Callosum, 10% of the servers 2x slower. Prints one `SCALE`
/// line for [`scale`] to read.
pub fn scale_one(o: &Opts) {
    let ri = Duration::from_millis(o.roving_ms);
    let cfg = load_config(o, Balancer::Callosum, true, o.load);
    let t = Instant::now();
    let mut sim = Sim::new(cfg, o.servers, o.clients);
    let built = t.elapsed().as_secs_f64();
    let sc = block_on(fleet::scenarios(
        &mut sim,
        ri * o.warmup,
        ri * o.window,
        ri * o.window,
    ))
    .expect("virtual time cannot fail to add servers");
    let secs = t.elapsed().as_secs_f64();
    let peak = callosum_fleet_sim::peak_rss_kib().unwrap_or(0);
    let st = &sc.steady;
    println!(
        "SCALE {} {} {:.1} {} {} {:.1} {:.2} {} {:.3} {:.3} {:.2} {:.2} {:.2} {:.2} {:.2}",
        o.servers,
        o.clients,
        sim.now().as_secs_f64(),
        sim.counters.ok,
        sim.counters.events,
        secs,
        built,
        peak,
        st.conn_max_mean,
        st.req_max_mean,
        st.p50_ms,
        st.p99_ms,
        sc.scale
            .all_80_secs
            .map_or(f64::NAN, |s| s / ri.as_secs_f64()),
        sc.fail
            .refill_full_secs
            .map_or(f64::NAN, |s| s / ri.as_secs_f64()),
        st.fill_secs.map_or(f64::NAN, |s| s / ri.as_secs_f64()),
    );
}

/// Every size in its own process (so each peak memory is its own), smallest
/// first; a table of run time and memory.
pub fn scale(o: &Opts) {
    let exe = std::env::current_exe().expect("this program's path");
    println!(
        "## Scale: Callosum at {}% load, 10% of the servers 2x slower, {} workers x {} ms; pools fill, {} RI settle, {} RI measured, {} RI after a 10% scale-out, {} RI after 10% fail\n",
        o.load, o.workers, o.service_ms, o.warmup, o.window, o.window, o.window
    );
    println!("| servers | clients | simulated | requests | events | run time | peak memory | load average before | conns max/mean | reqs max/mean | p50 / p99 ms | new within 20% after | pools whole after failure |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &(n, m) in &o.sizes {
        let before = load_average();
        let out = std::process::Command::new(&exe)
            .args([
                "scale-one",
                "--servers",
                &n.to_string(),
                "--clients",
                &m.to_string(),
                "--max-slots",
                &o.max_slots.to_string(),
                "--roving-ms",
                &o.roving_ms.to_string(),
                "--workers",
                &o.workers.to_string(),
                "--service-ms",
                &o.service_ms.to_string(),
                "--warmup",
                &o.warmup.to_string(),
                "--window",
                &o.window.to_string(),
                "--load",
                &o.load.to_string(),
                "--seed",
                &o.seed.to_string(),
            ])
            .output()
            .expect("run scale-one");
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(line) = text.lines().find(|l| l.starts_with("SCALE ")) else {
            println!(
                "| {n} | {m} | failed: {} |",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            continue;
        };
        let v: Vec<&str> = line.split_whitespace().skip(1).collect();
        let f = |i: usize| v[i].parse::<f64>().unwrap_or(f64::NAN);
        println!(
            "| {n} | {m} | {:.0} s | {:.1} M | {:.0} M | {:.1} s | {:.0} MiB | {before} | {:.3} | {:.2} | {:.1} / {:.1} | {:.1} RI | {:.1} RI |",
            f(2),
            f(3) / 1e6,
            f(4) / 1e6,
            f(5),
            f(7) / 1024.0,
            f(8),
            f(9),
            f(10),
            f(11),
            f(12),
            f(13),
        );
    }
}
