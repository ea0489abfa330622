//! Scale: the scenarios from 100 x 2,000 up to 10,000 x 200,000, each size
//! in a process of its own.

use super::load::load_config;
use super::{load_average, Opts};
use callosum_fleet_sim::fleet;
use callosum_fleet_sim::vt::{block_on, Balancer, Sim};
use std::time::{Duration, Instant};

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
