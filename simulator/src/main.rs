//! `callosum-fleet-sim`: the Callosum fleet simulator's command line.
//!
//!     cargo run --release                 # every table and chart of docs/fleet.md
//!     cargo run --release -- sockets ...  # the socket mode alone
//!     cargo run --release -- help         # every command and option

mod report {
    pub mod sockets;
    pub mod virtual_time;
}

use std::path::PathBuf;

/// `docs/fleet` of the repository, where the charts go.
pub fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/fleet")
}

/// Peak resident memory so far, for the tables.
pub fn peak() -> String {
    callosum_fleet_sim::peak_rss_kib().map_or("unknown".into(), |k| {
        format!("{:.0} MiB", k as f64 / 1024.0)
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_else(|| "all".into());
    use report::virtual_time as vt;
    match cmd.as_str() {
        "sockets" => report::sockets::run(args),
        "calibrate" => vt::calibrate(&vt::parse(args)),
        "load" => vt::load(&vt::parse(args)),
        "tune" => vt::tune(&vt::parse(args)),
        "scale" => vt::scale(&vt::parse(args)),
        "scale-one" => vt::scale_one(&vt::parse(args)),
        "adaptive" => vt::adaptive(&vt::parse(args)),
        "adaptive-tune" => vt::adaptive_tune(&vt::parse(args)),
        "all" => all(args),
        "help" | "-h" | "--help" => print!("{HELP}"),
        _ => report::sockets::die(&format!("unknown command {cmd:?}\n\n{HELP}")),
    }
}

const HELP: &str = "callosum-fleet-sim: the Callosum fleet simulator

  (no command)  all: every table and chart of docs/fleet.md, in its order
  calibrate     the socket mode's default run (100 x 2000) and the same in virtual time
  sockets       the socket mode alone (scenarios and the MAX_SLOTS x interval sweep)
  load          virtual time: four balancers, 10% to 95% load, two fleets
  tune          virtual time: Callosum variants at 80% and 95% load
  scale         virtual time: one run per size, each in its own process
  adaptive      virtual time: every balancer on issue 20's six scenarios, 10% to 95% load,
                seeds at 80% and 95%
  adaptive-tune virtual time: the adaptive mode's estimator choices, one at a time
  help          this

  `COMMAND --help` lists a command's options.
";

/// Everything docs/fleet.md shows, in its order, at the sizes it shows.
fn all(args: impl Iterator<Item = String>) {
    let rest: Vec<String> = args.collect();
    let t = std::time::Instant::now();
    println!(
        "load average at start: {}\n",
        report::virtual_time::load_average()
    );
    let o = report::virtual_time::parse(rest.iter().cloned());
    report::virtual_time::calibrate(&o);
    println!();
    report::sockets::run(["--no-main".to_string()].into_iter());
    println!();
    report::virtual_time::load(&o);
    println!();
    report::virtual_time::tune(&o);
    println!();
    report::virtual_time::adaptive(&o);
    println!();
    report::virtual_time::adaptive_tune(&report::virtual_time::Opts {
        seeds: 2,
        ..o.clone()
    });
    println!();
    report::virtual_time::scale(&o);
    println!(
        "\nall: {:.0} s, load average at the end: {}",
        t.elapsed().as_secs_f64(),
        report::virtual_time::load_average()
    );
}
