//! The charts: load per server over time, written as SVG.

use callosum_fleet_sim::fleet::{Scenarios, Series};
use callosum_fleet_sim::svg::{render, Chart, Line};
use std::path::PathBuf;

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
