//! The socket mode's sweep: MAX_SLOTS x roving interval, steady state then
//! a scale-out, on a smaller fleet.

use super::{config, f2, fds_needed, runtime, write_svg, Args};
use callosum_fleet_sim::fleet::{self, Driver, Fleet, Series};
use callosum_fleet_sim::svg::{Chart, Line};
use std::time::Instant;

pub(super) fn run_sweep(a: &Args, nofile: u64) {
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
