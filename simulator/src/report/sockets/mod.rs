//! The socket mode: real servers and clients over loopback TCP in one
//! process, the pool core of the Node addon in every client.
//!
//!     cargo run --release -- sockets --servers 100 --clients 2000
//!
//! Prints one table per scenario (markdown), the run time and peak memory,
//! and writes SVG charts (load per server over time) to `docs/fleet/`.
//!
//! This file: the options, the run and the scenarios on sockets; the tables
//! in [`tables`], the charts in [`charts`], the MAX_SLOTS x interval sweep in
//! [`sweep`].

mod charts;
mod sweep;
mod tables;

pub use charts::{charts, write_svg};
pub use tables::print_scenarios;

use sweep::run_sweep;

use callosum_fleet_sim::client::ClientConfig;
use callosum_fleet_sim::fleet::{self, Driver, Fleet, FleetConfig, Scenarios};
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
