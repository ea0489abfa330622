//! `callosum-fleet-sim`: the Callosum fleet simulator's command line.
//!
//!     cargo run --release                 # every table and chart of docs/fleet.md
//!     cargo run --release -- sockets ...  # the socket mode alone
//!     cargo run --release -- help         # every command and option

mod report {
    pub mod sockets;
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
    match cmd.as_str() {
        "sockets" => report::sockets::run(args),
        _ => report::sockets::die(&format!("unknown command {cmd:?}")),
    }
}
