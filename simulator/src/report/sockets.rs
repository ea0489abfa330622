//! The socket mode: real servers and clients over loopback TCP in one
//! process, the pool core of the Node addon in every client.
//!
//!     cargo run --release -- sockets --servers 100 --clients 2000
//!
//! Prints one table per scenario (markdown), the run time and peak memory,
//! and writes SVG charts (load per server over time) to `docs/fleet/`.

use callosum_fleet_sim::client::ClientConfig;
use callosum_fleet_sim::fleet::{self, Driver, Fleet, FleetConfig, Scenarios, Series};
use callosum_fleet_sim::svg::{render, Chart, Line};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Args {
    servers: usize,
    clients: usize,
    max_slots: usize,
    roving_ms: u64,
    request_ms: f64,
    delay_ms: f64,
    settle: u32,
    window: u32,
    phase: u32,
    sweep: bool,
    main: bool,
    sweep_servers: usize,
    sweep_clients: usize,
    sweep_slots: Vec<usize>,
    sweep_roving: Vec<u64>,
    sweep_settle: u32,
    sweep_phase: u32,
    seed: u64,
    threads: usize,
    verbose: bool,
    backoff: bool,
    pub svg_dir: Option<PathBuf>,
}

const HELP: &str = "sockets: a Callosum fleet on loopback, on the callosum-pool core

  --servers N         servers (100)
  --clients M         clients, each with a pool and a rover (2000)
  --max-slots S       MAX_SLOTS of every pool (3)
  --roving-ms R       ROVING_INTERVAL in ms (1000, the JavaScript rover's default)
  --request-ms T      mean time between two requests of one client, ms (1000)
  --delay-ms D        server's delay before answering a request, ms (2)
  --settle K          intervals to let the balance settle after the pools fill (40)
  --window K          intervals of steady-state measurement (20)
  --phase K           intervals watched after scale-out and after failure (40)
  --no-main           skip steady state / scale-out / failure at full size
  --no-sweep          skip the MAX_SLOTS x interval sweep
  --sweep-servers N   servers in each sweep run (50)
  --sweep-clients M   clients in each sweep run (500)
  --sweep-slots LIST  MAX_SLOTS values (2,4,8)
  --sweep-roving LIST roving intervals in ms (100,250,500)
  --sweep-settle K    intervals to settle after the pools fill, in a sweep run (20)
  --sweep-phase K     intervals watched after scale-out in a sweep run (30)
  --seed X            seed of every random choice (1)
  --threads T         tokio worker threads (2)
  --backoff           rovers back off unreachable servers (backOffUnreachable: true;
                      ceiling 30 intervals); off by default, as the JavaScript rover
  --verbose           a progress line on stderr every second
  --svg-dir DIR       where the charts go (docs/fleet of the workspace; 'none' for none)
";

pub fn parse(args: impl Iterator<Item = String>) -> Args {
    let mut a = Args {
        servers: 100,
        clients: 2000,
        max_slots: 3,
        roving_ms: 1000,
        request_ms: 1000.0,
        delay_ms: 2.0,
        settle: 40,
        window: 20,
        phase: 40,
        sweep: true,
        main: true,
        sweep_servers: 50,
        sweep_clients: 500,
        sweep_slots: vec![2, 4, 8],
        sweep_roving: vec![100, 250, 500],
        sweep_settle: 20,
        sweep_phase: 30,
        seed: 1,
        threads: 2,
        verbose: false,
        backoff: false,
        svg_dir: Some(crate::docs_dir()),
    };
    let mut it = args;
    fn val<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
        let v = v.unwrap_or_else(|| die(&format!("{flag} needs a value")));
        v.parse()
            .unwrap_or_else(|_| die(&format!("{flag}: bad value {v:?}")))
    }
    fn list<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Vec<T> {
        let v: String = val(flag, v);
        v.split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .unwrap_or_else(|_| die(&format!("{flag}: bad value {x:?}")))
            })
            .collect()
    }
    while let Some(f) = it.next() {
        match f.as_str() {
            "--servers" => a.servers = val(&f, it.next()),
            "--clients" => a.clients = val(&f, it.next()),
            "--max-slots" => a.max_slots = val(&f, it.next()),
            "--roving-ms" => a.roving_ms = val(&f, it.next()),
            "--request-ms" => a.request_ms = val(&f, it.next()),
            "--delay-ms" => a.delay_ms = val(&f, it.next()),
            "--settle" => a.settle = val(&f, it.next()),
            "--window" => a.window = val(&f, it.next()),
            "--phase" => a.phase = val(&f, it.next()),
            "--no-main" => a.main = false,
            "--verbose" => a.verbose = true,
            "--backoff" => a.backoff = true,
            "--no-sweep" => a.sweep = false,
            "--sweep-servers" => a.sweep_servers = val(&f, it.next()),
            "--sweep-clients" => a.sweep_clients = val(&f, it.next()),
            "--sweep-slots" => a.sweep_slots = list(&f, it.next()),
            "--sweep-roving" => a.sweep_roving = list(&f, it.next()),
            "--sweep-phase" => a.sweep_phase = val(&f, it.next()),
            "--sweep-settle" => a.sweep_settle = val(&f, it.next()),
            "--seed" => a.seed = val(&f, it.next()),
            "--threads" => a.threads = val(&f, it.next()),
            "--svg-dir" => {
                let d: String = val(&f, it.next());
                a.svg_dir = (d != "none").then(|| PathBuf::from(d));
            }
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            _ => die(&format!("unknown argument {f:?}\n\n{HELP}")),
        }
    }
    if a.servers < 10 || a.clients == 0 || a.max_slots == 0 || a.roving_ms == 0 {
        die("need --servers >= 10, and --clients, --max-slots, --roving-ms > 0");
    }
    a
}

pub fn die(msg: &str) -> ! {
    eprintln!("callosum-fleet-sim: {msg}");
    std::process::exit(2)
}

pub fn config(a: &Args, max_slots: usize, roving_ms: u64) -> FleetConfig {
    let ri = Duration::from_millis(roving_ms);
    FleetConfig {
        client: ClientConfig {
            max_slots,
            roving_interval: ri,
            back_off_unreachable: a.backoff,
            // 30 s at the JavaScript default of 1 s, scaled like the interval.
            max_backoff: ri * 30,
            connect_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(2),
            request_every: (a.request_ms > 0.0)
                .then(|| Duration::from_secs_f64(a.request_ms / 1e3)),
        },
        server_delay: Duration::from_secs_f64(a.delay_ms / 1e3),
        seed: a.seed,
    }
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Descriptors needed at most: both ends of every pooled connection and of
/// one probe per client (a rover has one attempt at a time), listeners.
fn fds_needed(servers: usize, clients: usize, slots: usize) -> u64 {
    (2 * clients * (slots + 1) + servers + 100) as u64
}

pub fn f2(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.2}")
    }
}

pub fn secs(v: Option<f64>, ri: f64) -> String {
    match v {
        Some(s) => format!("{s:.2} s ({:.1} RI)", s / ri),
        None => "not within the phase".into(),
    }
}

/// min / mean / max of a group of servers at each point, plus each server of
/// `single` on its own.
pub fn lines(
    series: &Series,
    group: &[usize],
    group_color: &'static str,
    single: &[usize],
    single_color: &'static str,
) -> Vec<Line> {
    let mut min = Vec::new();
    let mut max = Vec::new();
    let mut mean = Vec::new();
    for (t, p) in &series.points {
        let v: Vec<f64> = group
            .iter()
            .filter_map(|&i| p.get(i))
            .map(|&x| x as f64)
            .collect();
        if v.is_empty() {
            continue;
        }
        min.push((*t, v.iter().cloned().fold(f64::MAX, f64::min)));
        max.push((*t, v.iter().cloned().fold(f64::MIN, f64::max)));
        mean.push((*t, v.iter().sum::<f64>() / v.len() as f64));
    }
    let mut out = vec![
        Line {
            points: min,
            color: group_color,
            width: 1.0,
            opacity: 0.8,
        },
        Line {
            points: max,
            color: group_color,
            width: 1.0,
            opacity: 0.8,
        },
        Line {
            points: mean,
            color: "#000",
            width: 2.0,
            opacity: 1.0,
        },
    ];
    for &i in single {
        let pts = series
            .points
            .iter()
            .map(|(t, p)| (*t, p.get(i).copied().unwrap_or(0) as f64))
            .collect();
        out.push(Line {
            points: pts,
            color: single_color,
            width: 1.0,
            opacity: 0.7,
        });
    }
    out
}

pub fn write_svg(dir: &Option<PathBuf>, name: &str, chart: &Chart) {
    let Some(dir) = dir else { return };
    if let Err(e) =
        std::fs::create_dir_all(dir).and_then(|_| std::fs::write(dir.join(name), render(chart)))
    {
        eprintln!("callosum-fleet-sim: cannot write {name}: {e}");
    } else {
        println!("chart: {}", dir.join(name).display());
    }
}

pub fn run(args: impl Iterator<Item = String>) {
    let a = parse(args);
    let started = Instant::now();
    let nofile = callosum_fleet_sim::raise_nofile_limit();
    println!(
        "# Callosum fleet on loopback (callosum-pool core, tokio, {} worker threads)\n",
        a.threads
    );
    if a.roving_ms == 1000 {
        println!("ROVING_INTERVAL is 1000 ms, the JavaScript rover's default: no time scaling; the back-off ceiling is 30 s,");
    } else {
        println!(
            "Time is scaled: ROVING_INTERVAL is {} ms here (the JavaScript rover's default is 1000 ms), the back-off ceiling 30 intervals,",
            a.roving_ms
        );
    }
    println!(
        "requests arrive {} ms apart per client on average (Poisson), servers answer after {} ms. Durations are given in seconds of",
        a.request_ms, a.delay_ms
    );
    println!(
        "this run and in roving intervals (RI); at an interval of X ms, multiply RI by X ms.\n"
    );
    println!("open-file limit: {nofile}\n");
    if a.main {
        run_main(&a, nofile);
    }
    if a.sweep {
        run_sweep(&a, nofile);
    }
    println!(
        "\nrun time {:.1} s, peak memory (VmHWM) {}",
        started.elapsed().as_secs_f64(),
        crate::peak()
    );
}

fn run_main(a: &Args, nofile: u64) {
    let need = fds_needed(a.servers, a.clients, a.max_slots);
    if need > nofile {
        die(&format!(
            "{} clients x {} slots need about {need} open files (both ends in this process); the limit is {nofile}",
            a.clients, a.max_slots
        ));
    }
    let cfg = config(a, a.max_slots, a.roving_ms);
    let t = Instant::now();
    let sc = sockets_scenarios(a, &cfg);
    let main_secs = t.elapsed().as_secs_f64();
    print_scenarios(
        a.servers,
        a.clients,
        a.max_slots,
        a.roving_ms,
        a.settle,
        &sc,
        "",
    );
    println!("\nmain scenarios: {main_secs:.1} s\n");
    charts(
        &a.svg_dir,
        "",
        a.servers,
        a.clients,
        a.max_slots,
        a.roving_ms,
        &sc,
    );
}

/// The three scenarios on sockets, at the size `a` gives.
pub fn sockets_scenarios(a: &Args, cfg: &FleetConfig) -> Scenarios {
    let ri = cfg.client.roving_interval;
    let rt = runtime(a.threads);
    let t = Instant::now();
    let added = a.servers.div_ceil(10);
    let sc = rt.block_on(async {
        let mut fleet = Fleet::new(cfg.clone(), a.servers + added);
        fleet.add_servers(a.servers).await.expect("servers start");
        fleet.add_clients(a.clients);
        if a.verbose {
            let dir = fleet.dir.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    eprintln!("{}", fleet::progress(&dir, t));
                }
            });
        }
        let sc = fleet::scenarios(&mut fleet, ri * a.settle, ri * a.window, ri * a.phase)
            .await
            .expect("servers start");
        for c in &fleet.clients {
            c.check();
        }
        sc
    });
    drop(rt);
    sc
}

/// The three scenarios' tables. `note` goes after each title.
pub fn print_scenarios(
    servers: usize,
    clients: usize,
    max_slots: usize,
    roving_ms: u64,
    settle: u32,
    sc: &Scenarios,
    note: &str,
) {
    let ris = roving_ms as f64 / 1e3;
    let (steady, scale, fail) = (&sc.steady, &sc.scale, &sc.fail);

    println!(
        "## Steady state: {servers} servers, {clients} clients, MAX_SLOTS {max_slots}, ROVING_INTERVAL {roving_ms} ms{note}\n"
    );
    println!("| measure | value |\n|---|---|");
    println!(
        "| pools filled (99% of {} slots) after | {} |",
        clients * max_slots,
        secs(steady.fill_secs, ris)
    );
    println!(
        "| then settled for | {} RI, measured over {:.1} s |",
        settle, steady.window_secs
    );
    println!("| connections per server, mean | {:.1} |", steady.conn_mean);
    println!(
        "| connections max/mean (min/mean), window average | {} ({}) |",
        f2(steady.conn_max_mean),
        f2(steady.conn_min_mean)
    );
    println!(
        "| connections max/mean, last instant | {} |",
        f2(steady.conn_max_mean_now)
    );
    println!(
        "| connections max/mean if assigned at random (computed) | {} |",
        f2(steady.random_max_mean)
    );
    println!(
        "| requests per second, whole fleet | {:.0} |",
        steady.req_per_sec
    );
    println!(
        "| requests max/mean (min/mean) per server | {} ({}) |",
        f2(steady.req_max_mean),
        f2(steady.req_min_mean)
    );
    println!(
        "| latency p50 / p99 | {:.1} / {:.1} ms |",
        steady.p50_ms, steady.p99_ms
    );
    println!(
        "| requests failed / found no idle connection | {} / {} |",
        steady.failed, steady.no_connection
    );
    println!(
        "| displacements per second | {:.0} |",
        steady.displaced_per_sec
    );
    println!(
        "| rover attempts per second (the interval asks for {:.0}) | {:.0} |",
        steady.roves_expected, steady.roves_per_sec
    );

    println!(
        "\n## Scale-out: {} servers added to {servers}{note}\n",
        scale.added
    );
    println!("| measure | value |\n|---|---|");
    println!(
        "| mean connections per server before / after | {:.1} / {:.1} |",
        scale.mean_before, scale.mean_after
    );
    println!(
        "| new servers average 50% of the mean after | {} |",
        secs(scale.avg_half_secs, ris)
    );
    println!(
        "| new servers average 80% of the mean after | {} |",
        secs(scale.avg_80_secs, ris)
    );
    println!(
        "| every new server within 20% of the mean after | {} |",
        secs(scale.all_80_secs, ris)
    );
    println!(
        "| new servers' share at the end ({:.1} s) | {:.0}% of the mean |",
        scale.phase_secs,
        scale.new_share_end * 100.0
    );
    println!(
        "| connections max/mean at the end | {} |",
        f2(scale.conn_max_mean_end)
    );
    println!("| displacements during the phase | {} |", scale.displaced);
    println!(
        "| requests failed / found no idle connection | {} / {} |",
        scale.failed, scale.no_connection
    );

    println!(
        "\n## Failure: {} of the {} servers killed at once{note}\n",
        fail.killed,
        servers + scale.added
    );
    println!("| measure | value |\n|---|---|");
    println!(
        "| connections they held | {} of {} |",
        fail.lost, fail.pooled_before
    );
    println!("| requests failed (in flight on them) | {} |", fail.failed);
    println!(
        "| requests that found no idle connection | {} (of {} answered) |",
        fail.no_connection, fail.ok
    );
    println!(
        "| every dead connection dropped from its pool after | {} |",
        secs(fail.dropped_secs, ris)
    );
    println!(
        "| pools back to 99% after | {} |",
        secs(fail.refill_99_secs, ris)
    );
    println!(
        "| pools back to 100% after | {} |",
        secs(fail.refill_full_secs, ris)
    );
    println!(
        "| balance back within 10% of before ({}) after | {} |",
        f2(fail.conn_max_mean_before),
        secs(fail.balance_secs, ris)
    );
    println!(
        "| connections max/mean at the end | {} |",
        f2(fail.conn_max_mean_end)
    );
    println!(
        "| connect attempts refused by the dead servers | {} |",
        fail.connect_failures
    );
}

/// The charts of the three scenarios: `fill{suffix}.svg`, `scale-out{suffix}.svg`,
/// `failure{suffix}.svg`.
pub fn charts(
    dir: &Option<PathBuf>,
    suffix: &str,
    servers: usize,
    clients: usize,
    max_slots: usize,
    roving_ms: u64,
    sc: &Scenarios,
) {
    let (steady, fill, scale_series, fail_series) =
        (&sc.steady, &sc.fill, &sc.scale_series, &sc.fail_series);
    let added = sc.scale.added;
    let killed = &sc.killed;
    let old: Vec<usize> = (0..servers).collect();
    let new: Vec<usize> = sc.added.clone().collect();
    write_svg(
        dir,
        &format!("fill{suffix}.svg"),
        &Chart {
            title: &format!(
                "From cold start: {} servers, {} clients, MAX_SLOTS {}, RI {} ms",
                servers, clients, max_slots, roving_ms
            ),
            x_label: "seconds",
            y_label: "pooled connections per server",
            lines: lines(fill, &old, "#888", &[], ""),
            markers: steady
                .fill_secs
                .map(|s| (s, "pools 99% full".to_string()))
                .into_iter()
                .collect(),
            legend: vec![
                ("#888", "min and max over servers".into()),
                ("#000", "mean".into()),
            ],
            log_y: false,
        },
    );
    let t_add = scale_series.points.get(1).map_or(0.0, |p| p.0);
    write_svg(
        dir,
        &format!("scale-out{suffix}.svg"),
        &Chart {
            title: &format!("Scale-out: {added} servers added to {servers}"),
            x_label: "seconds",
            y_label: "pooled connections per server",
            lines: lines(scale_series, &old, "#888", &new, "#1f77b4"),
            markers: vec![(t_add, "servers added".into())],
            legend: vec![
                ("#888", "old servers, min and max".into()),
                ("#000", "mean of old".into()),
                ("#1f77b4", "each new server".into()),
            ],
            log_y: false,
        },
    );
    let alive: Vec<usize> = (0..servers + added)
        .filter(|i| !killed.contains(i))
        .collect();
    let t_kill = fail_series.points.get(1).map_or(0.0, |p| p.0);
    write_svg(
        dir,
        &format!("failure{suffix}.svg"),
        &Chart {
            title: &format!(
                "Failure: {} of {} servers killed",
                killed.len(),
                servers + added
            ),
            x_label: "seconds",
            y_label: "pooled connections per server",
            lines: lines(fail_series, &alive, "#888", killed, "#d62728"),
            markers: vec![(t_kill, "killed".into())],
            legend: vec![
                ("#888", "survivors, min and max".into()),
                ("#000", "mean of survivors".into()),
                ("#d62728", "each killed server".into()),
            ],
            log_y: false,
        },
    );
}

fn run_sweep(a: &Args, nofile: u64) {
    println!(
        "## Sweep: {} servers, {} clients; steady state after {} RI, then {} servers added\n",
        a.sweep_servers,
        a.sweep_clients,
        a.sweep_settle,
        a.sweep_servers.div_ceil(10)
    );
    println!("| MAX_SLOTS | RI ms | conns/server | conns max/mean | random max/mean | reqs max/mean | p99 ms | displaced/s | new within 20% after | new avg 80% after | run s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    type Point = (usize, u64, f64, Option<f64>, f64);
    let mut points: Vec<Point> = Vec::new();
    for &slots in &a.sweep_slots {
        for &roving in &a.sweep_roving {
            if fds_needed(a.sweep_servers, a.sweep_clients, slots) > nofile {
                println!("| {slots} | {roving} | skipped: needs more than {nofile} open files | | | | | | | | |");
                continue;
            }
            let cfg = config(a, slots, roving);
            let ri = cfg.client.roving_interval;
            let ris = ri.as_secs_f64();
            let t = Instant::now();
            let rt = runtime(a.threads);
            let added = a.sweep_servers.div_ceil(10);
            let (st, so) = rt.block_on(async {
                let mut fleet = Fleet::new(cfg.clone(), a.sweep_servers + added);
                fleet
                    .add_servers(a.sweep_servers)
                    .await
                    .expect("servers start");
                fleet.add_clients(a.sweep_clients);
                let mut s = Series::default();
                let st = fleet::steady(
                    &mut fleet,
                    ri * a.sweep_settle,
                    ri * (a.window / 2).max(5),
                    &mut s,
                )
                .await;
                let so = fleet::scale_out(
                    &mut fleet,
                    added,
                    ri * a.sweep_phase,
                    &mut Series::default(),
                )
                .await
                .expect("servers start");
                (st, so)
            });
            drop(rt);
            let short = |v: Option<f64>| {
                v.map_or("-".to_string(), |s| format!("{s:.2} s / {:.1} RI", s / ris))
            };
            println!(
                "| {slots} | {roving} | {:.1} | {} | {} | {} | {:.1} | {:.0} | {} | {} | {:.0} |",
                st.conn_mean,
                f2(st.conn_max_mean),
                f2(st.random_max_mean),
                f2(st.req_max_mean),
                st.p99_ms,
                st.displaced_per_sec,
                short(so.all_80_secs),
                short(so.avg_80_secs),
                t.elapsed().as_secs_f64()
            );
            points.push((
                slots,
                roving,
                st.conn_max_mean,
                so.all_80_secs.map(|s| s / ris),
                st.random_max_mean,
            ));
        }
    }
    const COLORS: [&str; 6] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    ];
    let per_interval =
        |pick: &dyn Fn(&Point) -> Option<f64>| -> (Vec<Line>, Vec<(&'static str, String)>) {
            let mut lines = Vec::new();
            let mut legend = Vec::new();
            for (k, &roving) in a.sweep_roving.iter().enumerate() {
                let color = COLORS[k % COLORS.len()];
                let pts: Vec<(f64, f64)> = points
                    .iter()
                    .filter(|p| p.1 == roving)
                    .filter_map(|p| pick(p).map(|y| (p.0 as f64, y)))
                    .collect();
                lines.push(Line {
                    points: pts,
                    color,
                    width: 2.0,
                    opacity: 1.0,
                });
                legend.push((color, format!("RI {roving} ms")));
            }
            (lines, legend)
        };
    let (lines, legend) = per_interval(&|p| p.3);
    write_svg(
        &a.svg_dir,
        "sweep-scale-out.svg",
        &Chart {
            title: &format!(
                "Scale-out, {} servers added to {}: intervals until every new one is within 20%",
                a.sweep_servers.div_ceil(10),
                a.sweep_servers
            ),
            x_label: "MAX_SLOTS",
            y_label: "roving intervals",
            lines,
            markers: vec![],
            legend,
            log_y: false,
        },
    );
    let (mut lines, mut legend) = per_interval(&|p| (!p.2.is_nan()).then_some(p.2));
    // Random assignment depends on MAX_SLOTS only.
    let mut random: Vec<(f64, f64)> = points.iter().map(|p| (p.0 as f64, p.4)).collect();
    random.sort_by(|a, b| a.0.total_cmp(&b.0));
    random.dedup_by(|a, b| a.0 == b.0);
    lines.push(Line {
        points: random,
        color: "#999",
        width: 2.0,
        opacity: 1.0,
    });
    legend.push(("#999", "random assignment (computed)".into()));
    write_svg(
        &a.svg_dir,
        "sweep-balance.svg",
        &Chart {
            title: &format!(
                "Steady state, {} servers, {} clients: connections max/mean, Callosum vs random",
                a.sweep_servers, a.sweep_clients
            ),
            x_label: "MAX_SLOTS",
            y_label: "max/mean (1 is perfect)",
            lines,
            markers: vec![],
            legend,
            log_y: false,
        },
    );
}
