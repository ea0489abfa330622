//! What a virtual-time run is: the fleet, its requests and how they are
//! balanced.

use super::SlotPolicy;
use callosum_pool::AdaptiveConfig;
use std::time::Duration;

/// How each request picks its server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balancer {
    /// A server drawn uniformly for every request.
    Random,
    /// Each client cycles through the servers from its own random start.
    RoundRobin,
    /// Two servers drawn at random; the one with fewer requests outstanding
    /// (queued or in service, as the server counts them: the best case for
    /// P2C, a client alone sees only its own).
    P2c,
    /// The client's pool lends its idle connection with the lowest slot.
    Callosum,
    /// P2C as a real client runs it: two servers drawn at random, the one
    /// with fewer of *this client's* requests outstanding (each client knows
    /// only its own; envoy's least_request, envoy #35935).
    P2cLocal,
    /// P2C on Peak EWMA, the linkerd2-proxy / tower / Finagle rule, each
    /// client seeing only its own requests: cost = estimate x (pending + 1);
    /// a response time above the estimate replaces it, otherwise the
    /// estimate decays toward it (and toward 0 when only looked at) with the
    /// time constant `ewma_decay`; a server starts from `ewma_default`.
    PeakEwma,
}

impl Balancer {
    pub const ALL: [Balancer; 6] = [
        Balancer::Random,
        Balancer::RoundRobin,
        Balancer::P2c,
        Balancer::Callosum,
        Balancer::P2cLocal,
        Balancer::PeakEwma,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Balancer::Random => "random",
            Balancer::RoundRobin => "round-robin",
            Balancer::P2c => "P2C least-outstanding",
            Balancer::Callosum => "Callosum",
            Balancer::P2cLocal => "client-side P2C least-outstanding",
            Balancer::PeakEwma => "client-side P2C Peak EWMA",
        }
    }

    /// Whether a client keeps per-server state of its own requests.
    pub fn client_side(self) -> bool {
        matches!(self, Balancer::P2cLocal | Balancer::PeakEwma)
    }
}

/// The distribution of a request's work (its service time at speed 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dist {
    Exponential,
    Fixed,
    /// Heavy-tailed: 90% of requests take half the mean service time, 10%
    /// ten times it (5 ms and 100 ms at a `service` of 10 ms; mean 1.45x).
    HeavyTail,
}

impl Dist {
    /// The mean work (1 for exponential and fixed).
    pub fn mean(self) -> f64 {
        match self {
            Dist::Exponential | Dist::Fixed => 1.0,
            Dist::HeavyTail => 0.9 * 0.5 + 0.1 * 10.0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct VtConfig {
    pub max_slots: usize,
    pub roving_interval: Duration,
    /// `backOffUnreachable` (off by default, as the JavaScript rover).
    pub back_off_unreachable: bool,
    pub max_backoff: Duration,
    /// Requests per second of the whole fleet of clients (Poisson).
    pub request_rate: f64,
    /// Mean service time of a request on a server of speed 1.
    pub service: Duration,
    pub dist: Dist,
    /// Requests a server serves at once; 0: unlimited (each request just
    /// takes its service time, as the socket mode's server).
    pub workers: u32,
    /// Every `slow_every`-th server (0, k, 2k...) runs at `slow_speed`; 0: none.
    pub slow_every: usize,
    pub slow_speed: f64,
    pub balancer: Balancer,
    pub slot_policy: SlotPolicy,
    /// Distinct servers a rover probes per tick (1: the JavaScript rover's
    /// default), offering the pool the one it ranks lowest, or with
    /// `offer_every_probe` each of them.
    pub probes: u32,
    /// With several probes, offer the pool every connection in turn (the
    /// JavaScript rover's `probes`: it keeps what it would keep) instead of
    /// only the one it ranks lowest.
    pub offer_every_probe: bool,
    /// Lend uniformly among idle connections with the same lowest slot
    /// (instead of the pool's own order among them, the lowest handle).
    pub fair_ties: bool,
    /// Peak EWMA's time constant (linkerd2-proxy's default: 10 s).
    pub ewma_decay: Duration,
    /// Peak EWMA's estimate for a server with no response yet
    /// (linkerd2-proxy's default: 30 ms).
    pub ewma_default: Duration,
    /// Callosum: the pool core's adaptive mode with this configuration
    /// (`None`: the protocol as specified).
    pub adaptive: Option<AdaptiveConfig>,
    /// Adaptive: one lease in this many is timed and given to the pool as a
    /// sample (the JavaScript client times a sample of leases, not all).
    pub sample_every: u32,
    pub seed: u64,
}

impl VtConfig {
    /// The socket mode's model: unlimited workers, a fixed service time.
    pub fn like_sockets(
        max_slots: usize,
        roving_interval: Duration,
        service: Duration,
        request_rate: f64,
        seed: u64,
    ) -> VtConfig {
        VtConfig {
            max_slots,
            roving_interval,
            back_off_unreachable: false,
            max_backoff: roving_interval * 30,
            request_rate,
            service,
            dist: Dist::Fixed,
            workers: 0,
            slow_every: 0,
            slow_speed: 1.0,
            balancer: Balancer::Callosum,
            slot_policy: SlotPolicy::Lowest,
            probes: 1,
            offer_every_probe: false,
            fair_ties: false,
            ewma_decay: Duration::from_secs(10),
            ewma_default: Duration::from_millis(30),
            adaptive: None,
            sample_every: 1,
            seed,
        }
    }

    /// Requests per second the servers `0..servers` can serve (workers busy
    /// all the time); unlimited workers count as one.
    pub fn capacity(&self, servers: usize) -> f64 {
        let per = self.workers.max(1) as f64 / self.service.as_secs_f64() / self.dist.mean();
        (0..servers).map(|s| per * self.speed(s)).sum()
    }

    pub fn speed(&self, server: usize) -> f64 {
        if self.slow_every > 0 && server.is_multiple_of(self.slow_every) {
            self.slow_speed
        } else {
            1.0
        }
    }
}
