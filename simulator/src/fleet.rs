//! A fleet in one process: servers and clients on loopback, snapshots of the
//! load per server, and the scenarios the `fleet` example runs.

use crate::client::{quantile, Client, ClientConfig, Directory};
use crate::rng::Rng;
use crate::server::Server;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct FleetConfig {
    pub client: ClientConfig,
    /// How long a server takes to answer a request.
    pub server_delay: Duration,
    pub seed: u64,
}

pub struct Fleet {
    pub cfg: FleetConfig,
    pub dir: Arc<Directory>,
    pub servers: Vec<Server>,
    pub clients: Vec<Client>,
    start: Instant,
}

/// The fleet at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Since the fleet started.
    pub at: Duration,
    /// Pooled connections per server (every server ever started).
    pub pooled: Vec<i64>,
    /// Requests answered per server since it started.
    pub answered: Vec<u64>,
    pub alive: Vec<bool>,
    pub ok: u64,
    pub failed: u64,
    pub no_connection: u64,
    pub connect_failures: u64,
    /// Rover attempts started.
    pub connects: u64,
    pub displaced: u64,
    pub latency: Vec<u64>,
}

impl Snapshot {
    pub fn total_pooled(&self) -> i64 {
        self.pooled.iter().sum()
    }

    /// Pooled connections of the live servers.
    pub fn alive_pooled(&self) -> Vec<f64> {
        self.pooled
            .iter()
            .zip(&self.alive)
            .filter(|(_, &a)| a)
            .map(|(&p, _)| p as f64)
            .collect()
    }
}

/// max/mean (1.00 is perfect) and min/mean of some per-server figures.
pub fn spread(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    if mean <= 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    let min = values.iter().cloned().fold(f64::MAX, f64::min);
    (max / mean, min / mean)
}

/// What the scenarios below need of a fleet: the socket mode's [`Fleet`]
/// and the virtual-time [`crate::vt::Sim`] both provide it, so both are
/// measured by the very same code.
#[allow(async_fn_in_trait)] // used with concrete types only, never spawned
pub trait Driver {
    fn snapshot(&self) -> Snapshot;
    fn roving_interval(&self) -> Duration;
    fn max_slots(&self) -> usize;
    fn seed(&self) -> u64;
    fn server_count(&self) -> usize;
    fn client_count(&self) -> usize;
    /// Open connections kept by pools, at most.
    fn capacity(&self) -> i64 {
        (self.client_count() * self.max_slots()) as i64
    }
    /// Samples every `period` for `span` (the first sample at once), passing
    /// each snapshot to `f`; stops early when `f` says so.
    async fn watch(
        &mut self,
        period: Duration,
        span: Duration,
        f: impl FnMut(&Snapshot) -> bool,
    ) -> Snapshot;
    /// Starts `n` servers, known to every client at once; their indices.
    async fn add_servers(&mut self, n: usize) -> std::io::Result<std::ops::Range<usize>>;
    fn kill(&mut self, server: usize);
    /// Kills several servers at once.
    fn kill_all(&mut self, servers: &[usize]) {
        for &s in servers {
            self.kill(s);
        }
    }
}

impl Fleet {
    /// An empty fleet with room for `capacity` servers.
    pub fn new(cfg: FleetConfig, capacity: usize) -> Fleet {
        Fleet {
            cfg,
            dir: Arc::new(Directory::new(capacity)),
            servers: Vec::new(),
            clients: Vec::new(),
            start: Instant::now(),
        }
    }

    /// Starts `n` servers and makes them known to every client. Returns their
    /// indices.
    pub async fn start_servers(&mut self, n: usize) -> std::io::Result<std::ops::Range<usize>> {
        let from = self.servers.len();
        for _ in 0..n {
            let s = Server::start(self.cfg.server_delay).await?;
            let i = self.dir.add_server(s.addr());
            debug_assert_eq!(i, self.servers.len());
            self.servers.push(s);
        }
        Ok(from..self.servers.len())
    }

    /// Starts `m` clients, each with its own seed.
    pub fn add_clients(&mut self, m: usize) {
        for _ in 0..m {
            let seed = self
                .cfg
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(self.clients.len() as u64);
            self.clients.push(Client::start(
                self.cfg.client.clone(),
                self.dir.clone(),
                seed,
            ));
        }
    }

    pub fn kill_server(&self, server: usize) {
        self.servers[server].kill();
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn snapshot_now(&self) -> Snapshot {
        let m = &self.dir.metrics;
        let n = self.servers.len();
        Snapshot {
            at: self.start.elapsed(),
            pooled: self.dir.pooled[..n]
                .iter()
                .map(|a| a.load(Relaxed))
                .collect(),
            answered: self
                .servers
                .iter()
                .map(|s| s.stats().answered.load(Relaxed))
                .collect(),
            alive: self.servers.iter().map(|s| !s.is_killed()).collect(),
            ok: m.requests_ok.load(Relaxed),
            failed: m.requests_failed.load(Relaxed),
            no_connection: m.requests_no_connection.load(Relaxed),
            connect_failures: m.connect_failures.load(Relaxed),
            connects: m.connects.load(Relaxed),
            displaced: m.displaced.load(Relaxed),
            latency: m.latency_snapshot(),
        }
    }
}

impl Driver for Fleet {
    fn snapshot(&self) -> Snapshot {
        self.snapshot_now()
    }
    fn roving_interval(&self) -> Duration {
        self.cfg.client.roving_interval
    }
    fn max_slots(&self) -> usize {
        self.cfg.client.max_slots
    }
    fn seed(&self) -> u64 {
        self.cfg.seed
    }
    fn server_count(&self) -> usize {
        self.servers.len()
    }
    fn client_count(&self) -> usize {
        self.clients.len()
    }
    async fn watch(
        &mut self,
        period: Duration,
        span: Duration,
        mut f: impl FnMut(&Snapshot) -> bool,
    ) -> Snapshot {
        let end = tokio::time::Instant::now() + span;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let s = self.snapshot_now();
            if f(&s) || tokio::time::Instant::now() >= end {
                return s;
            }
        }
    }
    async fn add_servers(&mut self, n: usize) -> std::io::Result<std::ops::Range<usize>> {
        self.start_servers(n).await
    }
    fn kill(&mut self, server: usize) {
        self.kill_server(server);
    }
}

/// Load per server over time, for the charts.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// (seconds since the phase began, pooled connections per server).
    pub points: Vec<(f64, Vec<i64>)>,
}

impl Series {
    fn push(&mut self, t0: Duration, s: &Snapshot) {
        self.points
            .push(((s.at.saturating_sub(t0)).as_secs_f64(), s.pooled.clone()));
    }
}

/// Steady state over a window.
#[derive(Clone, Debug)]
pub struct Steady {
    pub servers: usize,
    pub clients: usize,
    /// Seconds from start until the pools held 99% of their slots.
    pub fill_secs: Option<f64>,
    pub window_secs: f64,
    pub conn_mean: f64,
    /// Of each server's connections averaged over the window.
    pub conn_max_mean: f64,
    pub conn_min_mean: f64,
    /// At the last instant of the window.
    pub conn_max_mean_now: f64,
    pub req_per_sec: f64,
    pub req_max_mean: f64,
    pub req_min_mean: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub failed: u64,
    pub no_connection: u64,
    /// Displacements per second (the churn that balancing costs).
    pub displaced_per_sec: f64,
    /// Rover attempts per second, and what the interval asks for: lower
    /// means the machine could not keep up.
    pub roves_per_sec: f64,
    pub roves_expected: f64,
    /// What a random assignment of as many connections would give (computed).
    pub random_max_mean: f64,
}

fn ms(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// Expected max/mean of a random assignment: each client holds `slots`
/// connections to distinct servers chosen at random (averaged over 20 draws).
pub fn random_assignment_max_mean(servers: usize, clients: usize, slots: usize, seed: u64) -> f64 {
    let mut rng = Rng::new(seed);
    let slots = slots.min(servers);
    let draws = 20;
    let mut sum = 0.0;
    for _ in 0..draws {
        let mut load = vec![0u32; servers];
        let mut chosen = Vec::with_capacity(slots);
        for _ in 0..clients {
            chosen.clear();
            while chosen.len() < slots {
                let s = rng.below(servers);
                if !chosen.contains(&s) {
                    chosen.push(s);
                    load[s] += 1;
                }
            }
        }
        let v: Vec<f64> = load.iter().map(|&l| l as f64).collect();
        sum += spread(&v).0;
    }
    sum / draws as f64
}

/// Waits for the pools to fill, lets the balance settle for `settle`, then
/// measures over `window`. `series` gets the load through it all.
pub async fn steady<F: Driver>(
    fleet: &mut F,
    settle: Duration,
    window: Duration,
    series: &mut Series,
) -> Steady {
    let ri = fleet.roving_interval();
    let t0 = Duration::ZERO;
    let cap = fleet.capacity();
    let mut fill_secs = None;
    fleet
        .watch(ri, ri * 400, |s| {
            series.push(t0, s);
            if s.total_pooled() as f64 >= 0.99 * cap as f64 {
                fill_secs = Some(s.at.as_secs_f64());
                true
            } else {
                false
            }
        })
        .await;
    fleet
        .watch(ri, settle, |s| {
            series.push(t0, s);
            false
        })
        .await;
    let before = fleet.snapshot();
    let mut sum = vec![0f64; fleet.server_count()];
    let mut samples = 0;
    let after = fleet
        .watch(ri, window, |s| {
            series.push(t0, s);
            for (a, &p) in sum.iter_mut().zip(&s.pooled) {
                *a += p as f64;
            }
            samples += 1;
            false
        })
        .await;
    let secs = (after.at - before.at).as_secs_f64();
    let avg: Vec<f64> = sum.iter().map(|&a| a / samples.max(1) as f64).collect();
    let (conn_max_mean, conn_min_mean) = spread(&avg);
    let reqs: Vec<f64> = after
        .answered
        .iter()
        .zip(&before.answered)
        .map(|(a, b)| (a - b) as f64)
        .collect();
    let (req_max_mean, req_min_mean) = spread(&reqs);
    let lat: Vec<u64> = after
        .latency
        .iter()
        .zip(&before.latency)
        .map(|(a, b)| a - b)
        .collect();
    Steady {
        servers: fleet.server_count(),
        clients: fleet.client_count(),
        fill_secs,
        window_secs: secs,
        conn_mean: avg.iter().sum::<f64>() / avg.len() as f64,
        conn_max_mean,
        conn_min_mean,
        conn_max_mean_now: spread(&after.alive_pooled()).0,
        req_per_sec: reqs.iter().sum::<f64>() / secs,
        req_max_mean,
        req_min_mean,
        p50_ms: ms(quantile(&lat, 0.5)),
        p99_ms: ms(quantile(&lat, 0.99)),
        failed: after.failed - before.failed,
        no_connection: after.no_connection - before.no_connection,
        displaced_per_sec: (after.displaced - before.displaced) as f64 / secs,
        roves_per_sec: (after.connects - before.connects) as f64 / secs,
        roves_expected: fleet.client_count() as f64 / ri.as_secs_f64(),
        random_max_mean: random_assignment_max_mean(
            fleet.server_count(),
            fleet.client_count(),
            fleet.max_slots(),
            fleet.seed(),
        ),
    }
}

/// Adding servers: how long until they hold their share.
#[derive(Clone, Debug)]
pub struct ScaleOut {
    pub added: usize,
    pub mean_before: f64,
    pub mean_after: f64,
    /// Seconds until the new servers together average 50% / 80% of the mean.
    pub avg_half_secs: Option<f64>,
    pub avg_80_secs: Option<f64>,
    /// Seconds until every new server holds at least 80% of the mean (within 20%).
    pub all_80_secs: Option<f64>,
    /// At the end of the phase.
    pub new_share_end: f64,
    pub conn_max_mean_end: f64,
    pub failed: u64,
    pub no_connection: u64,
    pub displaced: u64,
    pub phase_secs: f64,
}

pub async fn scale_out<F: Driver>(
    fleet: &mut F,
    add: usize,
    span: Duration,
    series: &mut Series,
) -> std::io::Result<ScaleOut> {
    let ri = fleet.roving_interval();
    let before = fleet.snapshot();
    let mean_before =
        before.alive_pooled().iter().sum::<f64>() / before.alive_pooled().len() as f64;
    let t0 = before.at;
    series.push(t0, &before);
    let new = fleet.add_servers(add).await?;
    let t_added = fleet.snapshot().at;
    let since = |s: &Snapshot| (s.at - t_added).as_secs_f64();
    let (mut half, mut avg80, mut all80) = (None, None, None);
    let mut share = 0.0;
    let last = fleet
        .watch(ri / 2, span, |s| {
            series.push(t0, s);
            let alive = s.alive_pooled();
            let mean = alive.iter().sum::<f64>() / alive.len() as f64;
            let fresh: Vec<f64> = s.pooled[new.clone()].iter().map(|&p| p as f64).collect();
            share = fresh.iter().sum::<f64>() / fresh.len() as f64 / mean;
            if share >= 0.5 && half.is_none() {
                half = Some(since(s));
            }
            if share >= 0.8 && avg80.is_none() {
                avg80 = Some(since(s));
            }
            if all80.is_none() && fresh.iter().all(|&p| p >= 0.8 * mean) {
                all80 = Some(since(s));
            }
            false
        })
        .await;
    let alive = last.alive_pooled();
    Ok(ScaleOut {
        added: add,
        mean_before,
        mean_after: alive.iter().sum::<f64>() / alive.len() as f64,
        avg_half_secs: half,
        avg_80_secs: avg80,
        all_80_secs: all80,
        new_share_end: share,
        conn_max_mean_end: spread(&alive).0,
        failed: last.failed - before.failed,
        no_connection: last.no_connection - before.no_connection,
        displaced: last.displaced - before.displaced,
        phase_secs: since(&last),
    })
}

/// Killing servers: what failed, and how long until the pools are whole.
#[derive(Clone, Debug)]
pub struct Failure {
    pub killed: usize,
    /// Connections the killed servers held.
    pub lost: i64,
    pub pooled_before: i64,
    /// Requests lent a connection that died under them.
    pub failed: u64,
    /// Requests that found no idle connection in their pool.
    pub no_connection: u64,
    pub ok: u64,
    /// Seconds until no client holds a connection to a killed server.
    pub dropped_secs: Option<f64>,
    /// Seconds until the pools hold 99% / 100% of what they held before
    /// (counted only once the dead connections are all dropped).
    pub refill_99_secs: Option<f64>,
    pub refill_full_secs: Option<f64>,
    /// Seconds until the connections max/mean is back within 10% of before.
    pub balance_secs: Option<f64>,
    pub conn_max_mean_before: f64,
    pub conn_max_mean_end: f64,
    /// Connect attempts to the dead servers (back-off keeps this low).
    pub connect_failures: u64,
    pub phase_secs: f64,
}

pub async fn failure<F: Driver>(
    fleet: &mut F,
    kill: &[usize],
    span: Duration,
    series: &mut Series,
) -> Failure {
    let ri = fleet.roving_interval();
    let before = fleet.snapshot();
    let t0 = before.at;
    series.push(t0, &before);
    let balance_before = spread(&before.alive_pooled()).0;
    let pooled_before = before.total_pooled();
    let lost = kill.iter().map(|&k| before.pooled[k]).sum();
    fleet.kill_all(kill);
    let t_kill = fleet.snapshot().at;
    let since = |s: &Snapshot| (s.at - t_kill).as_secs_f64();
    let (mut gone, mut r99, mut r100, mut bal) = (None, None, None, None);
    let last = fleet
        .watch(ri / 2, span, |s| {
            series.push(t0, s);
            let total = s.total_pooled();
            // Count from the moment every client has noticed its dead
            // connections: before that the totals still include them.
            if gone.is_none() && kill.iter().all(|&k| s.pooled[k] == 0) {
                gone = Some(since(s));
            }
            if gone.is_some() {
                if r99.is_none() && total as f64 >= 0.99 * pooled_before as f64 {
                    r99 = Some(since(s));
                }
                if r100.is_none() && total >= pooled_before {
                    r100 = Some(since(s));
                }
                if bal.is_none()
                    && total as f64 >= 0.99 * pooled_before as f64
                    && spread(&s.alive_pooled()).0 <= balance_before * 1.1
                {
                    bal = Some(since(s));
                }
            }
            false
        })
        .await;
    Failure {
        killed: kill.len(),
        lost,
        pooled_before,
        failed: last.failed - before.failed,
        no_connection: last.no_connection - before.no_connection,
        ok: last.ok - before.ok,
        dropped_secs: gone,
        refill_99_secs: r99,
        refill_full_secs: r100,
        balance_secs: bal,
        conn_max_mean_before: balance_before,
        conn_max_mean_end: spread(&last.alive_pooled()).0,
        connect_failures: last.connect_failures - before.connect_failures,
        phase_secs: since(&last),
    }
}

/// The three scenarios in a row, as the default run makes them.
#[derive(Clone, Debug)]
pub struct Scenarios {
    pub steady: Steady,
    pub fill: Series,
    pub scale: ScaleOut,
    pub scale_series: Series,
    pub fail: Failure,
    pub fail_series: Series,
    /// The servers added, and those killed.
    pub added: std::ops::Range<usize>,
    pub killed: Vec<usize>,
}

/// Steady state (settle, then measure over `window`), then a tenth more
/// servers added (watched for `phase`), then every tenth server of the
/// original ones killed (watched for `phase`).
pub async fn scenarios<F: Driver>(
    fleet: &mut F,
    settle: Duration,
    window: Duration,
    phase: Duration,
) -> std::io::Result<Scenarios> {
    let servers = fleet.server_count();
    let mut fill = Series::default();
    let steady = steady(fleet, settle, window, &mut fill).await;
    let mut scale_series = Series::default();
    let scale = scale_out(fleet, servers.div_ceil(10), phase, &mut scale_series).await?;
    let added = servers..servers + scale.added;
    let killed: Vec<usize> = (0..servers).step_by(10).collect();
    let mut fail_series = Series::default();
    let fail = failure(fleet, &killed, phase, &mut fail_series).await;
    Ok(Scenarios {
        steady,
        fill,
        scale,
        scale_series,
        fail,
        fail_series,
        added,
        killed,
    })
}

/// A one-line account of a fleet's clients (for `--verbose`): it needs only
/// the directory, so it can run beside the scenarios.
pub fn progress(dir: &Directory, since: Instant) -> String {
    let m = &dir.metrics;
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let pooled: i64 = dir.pooled.iter().map(|a| a.load(Relaxed)).sum();
    format!(
        "t={:.1}s pooled={pooled} fds={fds} roves={} kept={} refused={} displaced={} handshake_fail={} connect_fail={} ok={} failed={} no_conn={}",
        since.elapsed().as_secs_f64(),
        m.connects.load(Relaxed),
        m.kept.load(Relaxed),
        m.refused.load(Relaxed),
        m.displaced.load(Relaxed),
        m.handshake_failures.load(Relaxed),
        m.connect_failures.load(Relaxed),
        m.requests_ok.load(Relaxed),
        m.requests_failed.load(Relaxed),
        m.requests_no_connection.load(Relaxed),
    )
}
