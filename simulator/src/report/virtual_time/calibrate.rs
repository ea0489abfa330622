//! Calibration: the socket mode's default run beside the same fleet in
//! virtual time.

use super::{load_average, Opts};
use crate::report::sockets;
use callosum_fleet_sim::fleet::{self, Scenarios};
use callosum_fleet_sim::vt::{block_on, Sim, VtConfig};
use std::time::{Duration, Instant};

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
