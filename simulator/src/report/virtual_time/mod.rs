//! The virtual-time reports: calibration against the socket mode, the load
//! sweep (four balancers, 10% to 95% of capacity, two fleets), what was tried
//! to make Callosum do better, the scale runs, and issue 20's scenarios.
//!
//! One file per report: [`calibrate`], [`load`] (the load sweep), [`tune`]
//! (the Callosum variants), [`scale`], [`adaptive`] (every balancer on issue
//! 20's scenarios, defined in [`scenarios`]); this one holds their options.

mod adaptive;
mod adaptive_tune;
mod calibrate;
mod load;
mod scale;
mod scenarios;
mod tune;

pub use adaptive::adaptive;
pub use adaptive_tune::adaptive_tune;

pub use calibrate::calibrate;
pub use load::load;
pub use scale::{scale, scale_one};
pub use tune::tune;

use crate::report::sockets;
use std::path::PathBuf;

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
    /// adaptive: seeds at 80% and 95% (`seed`, `seed + 1`, ...).
    pub seeds: u64,
    /// adaptive: runs at once.
    pub threads: usize,
    /// adaptive: only these scenarios (by short name); empty: all.
    pub scenarios: Vec<String>,
    /// adaptive-tune: the rover's probes per tick to try.
    pub probes: Vec<u32>,
}

const HELP: &str = "virtual-time commands: calibrate, load, tune, scale, scale-one, adaptive

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
  --seeds K         adaptive: seeds at 80% and 95% (3)
  --threads T       adaptive: runs at once (2)
  --probes LIST     adaptive-tune: probes per tick to try (1,2)
  --scenarios LIST  adaptive: only these (homogeneous,half,quarter,slowdown,join,heavy-tail)
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
        seeds: 3,
        threads: 2,
        scenarios: Vec::new(),
        probes: vec![1, 2],
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
            "--seeds" => o.seeds = val(&f, it.next()),
            "--threads" => o.threads = val(&f, it.next()),
            "--probes" => {
                let v: String = val(&f, it.next());
                o.probes = v.split(',').map(|x| val(&f, Some(x.into()))).collect();
            }
            "--scenarios" => {
                let v: String = val(&f, it.next());
                o.scenarios = v.split(',').map(String::from).collect();
            }
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
