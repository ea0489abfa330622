//! Issue 20's scenarios and one run of a balancer on one of them.
//!
//! Every scenario is the load sweep's server model (workers, exponential
//! service) unless it says otherwise; the load is a share of the fleet's
//! capacity before any change. The timelines, in seconds of virtual time
//! (`w`: `--warmup`, `m`: `--window`):
//!
//! - steady scenarios (homogeneous, half, quarter, heavy-tail): warm up `w`,
//!   measure `m`;
//! - slowdown: server 0 runs at a third of its speed from `w + m` for 30 s,
//!   then recovers; watched for 30 s more. The steady p99 is of `w .. w + m`,
//!   the p99 of the scenario is of the 30 s of slowdown;
//! - join: 10% more servers join at `w`, measured over `w .. w + m`.

use super::Opts;
use callosum_fleet_sim::vt::{Dist, Sim, VtConfig};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Homogeneous,
    Half,
    Quarter,
    Slowdown,
    Join,
    HeavyTail,
}

/// Seconds a slowdown lasts, and watched after it.
pub const SLOWDOWN_SECS: u64 = 30;
/// The slowed server runs at this speed.
pub const SLOWDOWN_SPEED: f64 = 1.0 / 3.0;
/// Buckets of the new servers' share, seconds.
pub const JOIN_BUCKET: f64 = 0.25;

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Homogeneous,
        Scenario::Half,
        Scenario::Quarter,
        Scenario::Slowdown,
        Scenario::Join,
        Scenario::HeavyTail,
    ];

    /// The short name (`--scenarios`, chart file names).
    pub fn slug(self) -> &'static str {
        match self {
            Scenario::Homogeneous => "homogeneous",
            Scenario::Half => "half",
            Scenario::Quarter => "quarter",
            Scenario::Slowdown => "slowdown",
            Scenario::Join => "join",
            Scenario::HeavyTail => "heavy-tail",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Scenario::Homogeneous => "homogeneous fleet",
            Scenario::Half => "10% of the servers at half speed",
            Scenario::Quarter => "10% of the servers at a quarter speed",
            Scenario::Slowdown => "one server at a third of its speed for 30 s (p99 of those 30 s)",
            Scenario::Join => "10% new servers join under load (p99 of the 20 s after)",
            Scenario::HeavyTail => "heavy-tailed service: 90% at 5 ms, 10% at 100 ms",
        }
    }

    /// The fleet at `load` % of its capacity; the balancer is the caller's.
    pub fn config(self, o: &Opts, load: f64, seed: u64) -> VtConfig {
        let mut c = VtConfig::like_sockets(
            o.max_slots,
            Duration::from_millis(o.roving_ms),
            Duration::from_secs_f64(o.service_ms / 1e3),
            0.0,
            seed,
        );
        c.workers = o.workers;
        c.dist = Dist::Exponential;
        match self {
            Scenario::Half | Scenario::Quarter => {
                c.slow_every = 10;
                c.slow_speed = if self == Scenario::Half { 0.5 } else { 0.25 };
            }
            Scenario::HeavyTail => c.dist = Dist::HeavyTail,
            _ => {}
        }
        c.request_rate = load / 100.0 * c.capacity(o.servers);
        c
    }
}

/// What one run gives.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub p50_ms: f64,
    /// Of the scenario's measured span (the slowdown's 30 s for slowdown).
    pub p99_ms: f64,
    /// Slowdown: p99 before it; others: the same as `p99_ms`.
    pub p99_steady_ms: f64,
    /// Slowdown: server 0's share of the requests sent (its count over the
    /// mean per server), per second from `w + m - 10` to the end.
    pub share: Vec<f64>,
    /// Slowdown: its mean share during the slowdown.
    pub share_during: f64,
    /// Slowdown: seconds from recovery until its share is within 20% of the
    /// mean for five seconds in a row (the end of the first of them).
    pub back_secs: Option<f64>,
    /// Join: seconds until the new servers' mean share of requests sent is
    /// 80% of the old servers' mean, for one second (four buckets) in a row.
    pub fill_req_secs: Option<f64>,
    /// Join: the same for their pooled connections (Callosum only).
    pub fill_conn_secs: Option<f64>,
    /// Half and quarter: the slow servers' share of the requests sent over
    /// the window, over their share of the fleet's capacity (1: in
    /// proportion to speed).
    pub slow_share: f64,
    pub events: u64,
}

fn p(sim: &Sim, q: f64) -> f64 {
    sim.log_latency
        .quantile(q)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

fn delta(now: &[u64], before: &[u64]) -> Vec<f64> {
    now.iter()
        .zip(before.iter().chain(std::iter::repeat(&0)))
        .map(|(a, b)| (a - b) as f64)
        .collect()
}

/// The first index from which `ok` holds for `run` items in a row.
fn first_run(ok: impl Iterator<Item = bool>, run: usize) -> Option<usize> {
    let mut streak = 0;
    for (i, v) in ok.enumerate() {
        streak = if v { streak + 1 } else { 0 };
        if streak == run {
            return Some(i + 1 - run);
        }
    }
    None
}

/// One run of `cfg` (a [`Scenario::config`] with its balancer set).
pub fn run(o: &Opts, sc: Scenario, cfg: VtConfig) -> Outcome {
    let (w, m) = (o.warmup as u64, o.window as u64);
    let mut sim = Sim::new(cfg, o.servers, o.clients);
    let secs = Duration::from_secs;
    let mut out = Outcome::default();
    sim.run_until(secs(w));
    sim.clear_latency();
    match sc {
        Scenario::Slowdown => {
            let from = w + m - 10;
            sim.run_until(secs(from));
            let mut last = sim.sent();
            let mut second = |sim: &mut Sim, out: &mut Outcome, t: u64| {
                sim.run_until(secs(t + 1));
                let now = sim.sent();
                let d = delta(&now, &last);
                let mean = d.iter().sum::<f64>() / d.len() as f64;
                out.share.push(d[0] / mean.max(1e-9));
                last = now;
            };
            for t in from..w + m {
                second(&mut sim, &mut out, t);
            }
            out.p99_steady_ms = p(&sim, 0.99);
            sim.clear_latency();
            let base = sim.speeds()[0];
            sim.set_speed(0, base * SLOWDOWN_SPEED);
            let slow_from = w + m;
            for t in slow_from..slow_from + SLOWDOWN_SECS {
                second(&mut sim, &mut out, t);
            }
            out.p50_ms = p(&sim, 0.5);
            out.p99_ms = p(&sim, 0.99);
            let during = &out.share[out.share.len() - SLOWDOWN_SECS as usize..];
            out.share_during = during.iter().sum::<f64>() / during.len() as f64;
            sim.set_speed(0, base);
            let back_from = out.share.len();
            let rec = slow_from + SLOWDOWN_SECS;
            for t in rec..rec + SLOWDOWN_SECS {
                second(&mut sim, &mut out, t);
            }
            out.back_secs = first_run(
                out.share[back_from..]
                    .iter()
                    .map(|s| (s - 1.0).abs() <= 0.2),
                5,
            )
            .map(|i| (i + 1) as f64);
        }
        Scenario::Join => {
            let old = o.servers;
            let new = sim.add_servers_now(o.servers.div_ceil(10));
            let bucket = Duration::from_secs_f64(JOIN_BUCKET);
            let buckets = (m as f64 / JOIN_BUCKET) as usize;
            let mut last = sim.sent();
            let (mut req_ok, mut conn_ok) = (Vec::new(), Vec::new());
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            for k in 1..=buckets {
                sim.run_until(secs(w) + bucket * k as u32);
                let now = sim.sent();
                let d = delta(&now, &last);
                last = now;
                let (o_, n_) = (mean(&d[..old]), mean(&d[new.clone()]));
                req_ok.push(n_ >= 0.8 * o_);
                let pooled: Vec<f64> = sim.pooled().iter().map(|&x| x as f64).collect();
                let (o_, n_) = (mean(&pooled[..old]), mean(&pooled[new.clone()]));
                conn_ok.push(o_ > 0.0 && n_ >= 0.8 * o_);
            }
            let at = |i: Option<usize>| i.map(|i| (i + 1) as f64 * JOIN_BUCKET);
            out.fill_req_secs = at(first_run(req_ok.into_iter(), 4));
            out.fill_conn_secs = at(first_run(conn_ok.into_iter(), 4));
            out.p50_ms = p(&sim, 0.5);
            out.p99_ms = p(&sim, 0.99);
            out.p99_steady_ms = out.p99_ms;
        }
        _ => {
            let before = sim.sent();
            sim.run_until(secs(w + m));
            let d = delta(&sim.sent(), &before);
            let speeds = sim.speeds();
            let slow = |v: &[f64]| -> f64 {
                v.iter()
                    .zip(&speeds)
                    .filter(|(_, &sp)| sp < 1.0)
                    .map(|(x, _)| x)
                    .sum::<f64>()
                    / v.iter().sum::<f64>()
            };
            out.slow_share = slow(&d) / slow(&speeds);
            out.p50_ms = p(&sim, 0.5);
            out.p99_ms = p(&sim, 0.99);
            out.p99_steady_ms = out.p99_ms;
        }
    }
    out.events = sim.counters.events;
    out
}

#[cfg(test)]
mod tests {
    use super::first_run;

    #[test]
    fn first_run_finds_the_start_of_a_long_enough_streak() {
        let v = [false, true, true, false, true, true, true, false];
        assert_eq!(first_run(v.iter().copied(), 2), Some(1));
        assert_eq!(first_run(v.iter().copied(), 3), Some(4));
        assert_eq!(first_run(v.iter().copied(), 4), None);
    }
}
