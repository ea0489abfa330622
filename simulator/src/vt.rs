//! The fleet in virtual time: a discrete-event simulation with no sockets, no
//! threads and no wall clock, so a run is limited by CPU alone.
//!
//! What is the same as on sockets: every Callosum client has a
//! `callosum_pool::Pool` (the core the Node addon ships, unchanged) and a
//! [`Rover`] with the JavaScript rover's rules; every server gives each new
//! connection its lowest free slot ([`SlotAllocator`]) and frees it when the
//! connection closes. What is modelled instead of measured:
//!
//! - a connect, a slot line and a message take no time (loopback takes well
//!   under a millisecond; see `docs/fleet.md` for the calibration);
//! - a server has `workers` (0: unlimited, the socket mode's server) and a
//!   service time per request: a *work* drawn when the request is made
//!   (exponential or fixed, mean `service`), divided by the server's speed;
//!   requests beyond its workers queue in arrival order;
//! - requests arrive at Poisson times, each from a client drawn uniformly (the
//!   sum of one Poisson stream per client), from one generator, so every
//!   balancer sees the very same requests, clients and works;
//! - a Callosum request that finds no idle connection waits for one (as
//!   `acquire()` does), in arrival order, and is counted in `no_connection`.
//!
//! The engine: one binary heap of request completions, one FIFO of rover
//! ticks (every client's next tick is one interval after its last, so the
//! FIFO stays in time order), and the next arrival; requests live in a slab
//! reused through a free list, so a step allocates nothing.

use crate::client::{LATENCY_BUCKET, LATENCY_BUCKETS};
use crate::fleet::{Driver, Snapshot};
use crate::rng::Rng;
use crate::rover::Rover;
use crate::server::SlotAllocator;
use callosum_pool::{Handle, Offer, Pool, Release, State};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::ops::Range;
use std::time::Duration;

/// Virtual time, in nanoseconds since the simulation began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VTime(pub u64);

impl std::ops::Add<Duration> for VTime {
    type Output = VTime;
    fn add(self, d: Duration) -> VTime {
        VTime(self.0.saturating_add(d.as_nanos() as u64))
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

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
}

impl Balancer {
    pub const ALL: [Balancer; 4] = [
        Balancer::Random,
        Balancer::RoundRobin,
        Balancer::P2c,
        Balancer::Callosum,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Balancer::Random => "random",
            Balancer::RoundRobin => "round-robin",
            Balancer::P2c => "P2C least-outstanding",
            Balancer::Callosum => "Callosum",
        }
    }
}

/// What slot a server announces for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotPolicy {
    /// The lowest free slot (the protocol as written).
    Lowest,
    /// The lowest free slot divided by the server's speed: a server half as
    /// fast announces twice the slot, as if it held twice its connections.
    /// Only the number changes; the server still allocates the lowest free.
    Weighted,
    /// The lowest free slot times `1 + outstanding / workers` at the moment
    /// of the handshake: a server with a queue announces a higher slot, with
    /// no configured weight.
    LoadAware,
}

/// The distribution of a request's work (its service time at speed 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dist {
    Exponential,
    Fixed,
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
    /// Servers a rover probes per tick, offering the pool the lowest slot of
    /// them (1: the JavaScript rover).
    pub probes: u32,
    /// Lend uniformly among idle connections with the same lowest slot
    /// (instead of the pool's own order among them, the lowest handle).
    pub fair_ties: bool,
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
            fair_ties: false,
            seed,
        }
    }

    /// Requests per second the servers `0..servers` can serve (workers busy
    /// all the time); unlimited workers count as one.
    pub fn capacity(&self, servers: usize) -> f64 {
        let per = self.workers.max(1) as f64 / self.service.as_secs_f64();
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

struct Server {
    speed: f64,
    alive: bool,
    /// Requests in service.
    busy: u32,
    queue: VecDeque<u32>,
    slots: SlotAllocator,
    /// Pooled connections (kept, or displaced but still lent).
    pooled: i64,
    answered: u64,
    /// Service time given, summed (utilisation = busy_ns / workers / time).
    busy_ns: u64,
}

/// A pooled connection: its server and the slot the server allocated
/// (which the announced slot may differ from, see [`SlotPolicy`]).
#[derive(Clone, Copy, Debug, Default)]
struct Conn {
    server: u32,
    slot: u32,
}

struct Client {
    pool: Pool,
    /// Indexed by pool handle.
    conns: Vec<Conn>,
    /// Requests waiting for a connection: (made at, work).
    waiting: VecDeque<(u64, f32)>,
    rover: Rover<VTime>,
    rng: Rng,
    /// Round-robin position.
    next: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct Req {
    start: u64,
    client: u32,
    handle: Handle,
    server: u32,
    work: f32,
}

/// Counters of the whole run.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub ok: u64,
    pub failed: u64,
    /// Callosum requests that found no idle connection and waited.
    pub no_connection: u64,
    pub connects: u64,
    pub connect_failures: u64,
    pub kept: u64,
    pub refused: u64,
    pub displaced: u64,
    pub no_server: u64,
    /// Events processed (arrivals, completions, rover ticks).
    pub events: u64,
}

/// Latency histogram with 64 buckets per power of two, of nanoseconds: any
/// range, within 1.6%.
#[derive(Clone, Debug)]
pub struct LogHist {
    counts: Vec<u64>,
}

impl Default for LogHist {
    fn default() -> Self {
        LogHist {
            counts: vec![0; 64 * 60],
        }
    }
}

impl LogHist {
    fn index(ns: u64) -> usize {
        if ns < 64 {
            return ns as usize;
        }
        let e = 63 - ns.leading_zeros() as usize - 6; // ns >> e in 64..128
        (e + 1) * 64 + ((ns >> e) as usize - 64)
    }

    /// The smallest value of bucket `i` and the next bucket's.
    fn bounds(i: usize) -> (u64, u64) {
        if i < 64 {
            return (i as u64, i as u64 + 1);
        }
        let e = i / 64 - 1;
        let m = (i % 64 + 64) as u64;
        (m << e, (m + 1) << e)
    }

    pub fn record(&mut self, ns: u64) {
        self.counts[Self::index(ns)] += 1;
    }

    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The value under which `q` of the recorded ones fall (bucket midpoint).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                let (lo, hi) = Self::bounds(i);
                return Some(Duration::from_nanos((lo + hi) / 2));
            }
        }
        None
    }
}

const NO_ARRIVAL: u64 = u64::MAX;

pub struct Sim {
    pub cfg: VtConfig,
    now: u64,
    servers: Vec<Server>,
    clients: Vec<Client>,
    /// Completions: (time, request index).
    done: BinaryHeap<Reverse<(u64, u32)>>,
    /// Rover ticks in time order: (time, client).
    ticks: VecDeque<(u64, u32)>,
    next_arrival: u64,
    /// Arrival times, clients and works: the same for every balancer.
    arrivals: Rng,
    reqs: Vec<Req>,
    free_reqs: Vec<u32>,
    pub counters: Counters,
    /// Latency of every answered request (100 µs buckets, as on sockets).
    latency: Vec<u64>,
    /// The same, finer and unbounded; cleared by [`Sim::clear_latency`].
    pub log_latency: LogHist,
    ties: Vec<Handle>,
}

impl Sim {
    /// `servers` servers and `clients` clients; Callosum rovers start spread
    /// over one interval, as in the socket mode.
    pub fn new(cfg: VtConfig, servers: usize, clients: usize) -> Sim {
        let mut sim = Sim {
            now: 0,
            servers: Vec::with_capacity(servers + servers / 10 + 1),
            clients: Vec::with_capacity(clients),
            done: BinaryHeap::new(),
            ticks: VecDeque::with_capacity(clients),
            next_arrival: NO_ARRIVAL,
            arrivals: Rng::new(cfg.seed ^ 0x5EED_A771_0A15),
            reqs: Vec::new(),
            free_reqs: Vec::new(),
            counters: Counters::default(),
            latency: vec![0; LATENCY_BUCKETS],
            log_latency: LogHist::default(),
            ties: Vec::new(),
            cfg,
        };
        sim.add(servers);
        let ri = nanos(sim.cfg.roving_interval);
        let mut starts = Vec::new();
        for c in 0..clients {
            let mut rng = Rng::new(sim.cfg.seed.wrapping_mul(1_000_003).wrapping_add(c as u64));
            let first = (rng.unit() * ri as f64) as u64;
            let next = rng.below(servers.max(1)) as u32;
            sim.clients.push(Client {
                pool: Pool::new(sim.cfg.max_slots),
                conns: Vec::new(),
                waiting: VecDeque::new(),
                rover: Rover::new(
                    sim.cfg.roving_interval,
                    sim.cfg.back_off_unreachable.then_some(sim.cfg.max_backoff),
                ),
                rng,
                next,
            });
            starts.push((first, c as u32));
        }
        if sim.cfg.balancer == Balancer::Callosum {
            starts.sort_unstable();
            sim.ticks.extend(starts);
        }
        if sim.cfg.request_rate > 0.0 && clients > 0 {
            sim.next_arrival = sim.arrival_gap();
        }
        sim
    }

    fn add(&mut self, n: usize) -> Range<usize> {
        let from = self.servers.len();
        for s in from..from + n {
            self.servers.push(Server {
                speed: self.cfg.speed(s),
                alive: true,
                busy: 0,
                queue: VecDeque::new(),
                slots: SlotAllocator::new(),
                pooled: 0,
                answered: 0,
                busy_ns: 0,
            });
        }
        from..self.servers.len()
    }

    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    fn arrival_gap(&mut self) -> u64 {
        let gap = self.arrivals.exp(1e9 / self.cfg.request_rate);
        self.now + (gap as u64).max(1)
    }

    /// Runs every event up to and including `until`.
    pub fn run_until(&mut self, until: Duration) {
        let until = nanos(until);
        loop {
            let t_done = self.done.peek().map_or(u64::MAX, |r| r.0 .0);
            let t_tick = self.ticks.front().map_or(u64::MAX, |t| t.0);
            let t = t_done.min(t_tick).min(self.next_arrival);
            if t > until {
                break;
            }
            self.now = t;
            self.counters.events += 1;
            if t == t_done {
                let Reverse((_, r)) = self.done.pop().unwrap();
                self.complete(r);
            } else if t == t_tick {
                let (_, c) = self.ticks.pop_front().unwrap();
                self.ticks
                    .push_back((t + nanos(self.cfg.roving_interval), c));
                self.rove(c as usize);
            } else {
                self.arrive();
            }
        }
        self.now = self.now.max(until);
    }

    // --- requests -------------------------------------------------------

    fn arrive(&mut self) {
        let c = self.arrivals.below(self.clients.len());
        let work = match self.cfg.dist {
            Dist::Exponential => self.arrivals.exp(1.0) as f32,
            Dist::Fixed => 1.0,
        };
        self.next_arrival = self.arrival_gap();
        let now = self.now;
        match self.cfg.balancer {
            Balancer::Callosum => match self.lease(c) {
                Some(h) => self.send(c, h, now, work),
                None => {
                    self.counters.no_connection += 1;
                    self.clients[c].waiting.push_back((now, work));
                }
            },
            b => {
                let n = self.servers.len();
                let cl = &mut self.clients[c];
                let s = match b {
                    Balancer::Random => cl.rng.below(n),
                    Balancer::RoundRobin => {
                        let s = cl.next as usize % n;
                        cl.next = ((s + 1) % n) as u32;
                        s
                    }
                    _ if n < 2 => 0,
                    _ => {
                        let a = cl.rng.below(n);
                        let mut b = cl.rng.below(n - 1);
                        if b >= a {
                            b += 1;
                        }
                        let load = |s: &Server| s.busy as usize + s.queue.len();
                        if load(&self.servers[b]) < load(&self.servers[a]) {
                            b
                        } else {
                            a
                        }
                    }
                };
                self.submit(Req {
                    start: now,
                    client: c as u32,
                    handle: 0,
                    server: s as u32,
                    work,
                });
            }
        }
    }

    /// The pool's `lease`, or with `fair_ties` a uniform pick among the idle
    /// connections that share the lowest slot (the others go back idle).
    fn lease(&mut self, c: usize) -> Option<Handle> {
        let cl = &mut self.clients[c];
        let h = cl.pool.lease()?;
        if !self.cfg.fair_ties {
            return Some(h);
        }
        let slot = cl.pool.slot(h);
        self.ties.clear();
        self.ties.push(h);
        while let Some(o) = cl.pool.lease() {
            if cl.pool.slot(o) == slot {
                self.ties.push(o);
            } else {
                let _ = cl.pool.release(o);
                break;
            }
        }
        let pick = self.ties[cl.rng.below(self.ties.len())];
        for &o in &self.ties {
            if o != pick {
                let _ = cl.pool.release(o);
            }
        }
        Some(pick)
    }

    fn send(&mut self, c: usize, h: Handle, start: u64, work: f32) {
        let server = self.clients[c].conns[h as usize].server;
        self.submit(Req {
            start,
            client: c as u32,
            handle: h,
            server,
            work,
        });
    }

    fn submit(&mut self, req: Req) {
        let r = match self.free_reqs.pop() {
            Some(r) => {
                self.reqs[r as usize] = req;
                r
            }
            None => {
                self.reqs.push(req);
                (self.reqs.len() - 1) as u32
            }
        };
        let workers = self.cfg.workers;
        let s = &mut self.servers[req.server as usize];
        if workers == 0 || s.busy < workers {
            s.busy += 1;
            self.start_service(r);
        } else {
            s.queue.push_back(r);
        }
    }

    fn service_ns(&self, r: u32) -> u64 {
        let q = &self.reqs[r as usize];
        let speed = self.servers[q.server as usize].speed;
        ((q.work as f64 * self.cfg.service.as_nanos() as f64 / speed) as u64).max(1)
    }

    fn start_service(&mut self, r: u32) {
        let t = self.now + self.service_ns(r);
        self.done.push(Reverse((t, r)));
    }

    fn complete(&mut self, r: u32) {
        let q = self.reqs[r as usize];
        let si = q.server as usize;
        if !self.servers[si].alive {
            // Counted as failed when the server died.
            self.free_reqs.push(r);
            return;
        }
        let service = self.service_ns(r);
        self.free_reqs.push(r);
        let s = &mut self.servers[si];
        s.answered += 1;
        s.busy_ns += service;
        match s.queue.pop_front() {
            Some(next) => self.start_service(next),
            None => s.busy -= 1,
        }
        let lat = self.now - q.start;
        self.counters.ok += 1;
        let b = (lat / nanos(LATENCY_BUCKET)) as usize;
        self.latency[b.min(LATENCY_BUCKETS - 1)] += 1;
        self.log_latency.record(lat);
        if self.cfg.balancer == Balancer::Callosum {
            let c = q.client as usize;
            match self.clients[c].pool.release(q.handle) {
                Ok(Release::Idle) => {}
                Ok(Release::Destroy) => self.close(c, q.handle),
                Err(e) => unreachable!("release of a lent handle: {e:?}"),
            }
            self.serve_waiting(c);
        }
    }

    /// Lends idle connections to the requests waiting, oldest first.
    fn serve_waiting(&mut self, c: usize) {
        while !self.clients[c].waiting.is_empty() {
            let Some(h) = self.lease(c) else { break };
            let (start, work) = self.clients[c].waiting.pop_front().unwrap();
            self.send(c, h, start, work);
        }
    }

    /// Closes a connection the pool let go of (freed, or displaced and
    /// returned): the server frees its slot.
    fn close(&mut self, c: usize, h: Handle) {
        let conn = self.clients[c].conns[h as usize];
        let s = &mut self.servers[conn.server as usize];
        s.pooled -= 1;
        if s.alive {
            s.slots.free(conn.slot as u64);
        }
    }

    // --- the rover ------------------------------------------------------

    /// Connects to `server`: the slot the server allocates and the one it
    /// announces, or `None` if it is dead.
    fn connect(&mut self, c: usize, server: usize) -> Option<(u32, u64)> {
        self.counters.connects += 1;
        let now = VTime(self.now);
        if !self.servers[server].alive {
            self.counters.connect_failures += 1;
            self.clients[c].rover.connect_failed(server, now);
            return None;
        }
        self.clients[c].rover.handshake_ok(server);
        let s = &mut self.servers[server];
        let slot = s.slots.allocate() as u32;
        let announced = match self.cfg.slot_policy {
            SlotPolicy::Lowest => slot as u64,
            SlotPolicy::Weighted => (slot as f64 / s.speed).floor() as u64,
            SlotPolicy::LoadAware => {
                let outstanding = s.busy as f64 + s.queue.len() as f64;
                (slot as f64 * (1.0 + outstanding / self.cfg.workers.max(1) as f64)).floor() as u64
            }
        };
        Some((slot, announced))
    }

    fn rove(&mut self, c: usize) {
        let known = self.servers.len();
        let now = VTime(self.now);
        let mut best: Option<(u64, usize, u32)> = None;
        for _ in 0..self.cfg.probes.max(1) {
            let cl = &mut self.clients[c];
            let Some(server) = cl.rover.pick(known, now, &mut cl.rng) else {
                self.counters.no_server += 1;
                break;
            };
            let Some((slot, announced)) = self.connect(c, server) else {
                continue;
            };
            // Two probes: keep the lower announced slot, close the other.
            match best {
                Some((a, _, _)) if a <= announced => {
                    self.servers[server].slots.free(slot as u64);
                }
                other => {
                    if let Some((_, s, sl)) = other {
                        self.servers[s].slots.free(sl as u64);
                    }
                    best = Some((announced, server, slot));
                }
            }
        }
        let Some((announced, server, slot)) = best else {
            return;
        };
        let lease = !self.clients[c].waiting.is_empty();
        let offer = self.clients[c].pool.offer(announced, lease);
        match offer {
            Ok(Offer::Kept { handle, displaced }) => {
                self.counters.kept += 1;
                let cl = &mut self.clients[c];
                let h = handle as usize;
                if cl.conns.len() <= h {
                    cl.conns.resize(h + 1, Conn::default());
                }
                cl.conns[h] = Conn {
                    server: server as u32,
                    slot,
                };
                self.servers[server].pooled += 1;
                if let Some(d) = displaced {
                    self.counters.displaced += 1;
                    if !d.was_leased {
                        self.close(c, d.handle);
                    }
                }
                if lease {
                    let (start, work) = self.clients[c].waiting.pop_front().unwrap();
                    self.send(c, handle, start, work);
                    self.serve_waiting(c);
                }
            }
            Ok(Offer::Full { .. }) | Ok(Offer::Closed) => {
                self.counters.refused += 1;
                self.servers[server].slots.free(slot as u64);
            }
            Err(e) => unreachable!("slot out of range: {e:?}"),
        }
    }

    // --- the fleet ------------------------------------------------------

    /// Kills servers: they refuse connects from now on; every client drops
    /// its connections to them at once (the connection ends), failing the
    /// requests in flight on them.
    pub fn kill_many(&mut self, kill: &[usize]) {
        for &k in kill {
            let s = &mut self.servers[k];
            if !s.alive {
                continue;
            }
            s.alive = false;
            s.busy = 0;
            for r in s.queue.drain(..) {
                self.free_reqs.push(r);
            }
        }
        for c in 0..self.clients.len() {
            let cl = &mut self.clients[c];
            for h in 0..cl.conns.len() {
                let h = h as Handle;
                if cl.pool.state(h) == State::Free {
                    continue;
                }
                let conn = cl.conns[h as usize];
                if self.servers[conn.server as usize].alive {
                    continue;
                }
                match cl.pool.remove(h) {
                    Ok(State::Leased) | Ok(State::Displaced) => self.counters.failed += 1,
                    Ok(_) => {}
                    Err(e) => unreachable!("remove of a handle in use: {e:?}"),
                }
                self.servers[conn.server as usize].pooled -= 1;
            }
        }
    }

    /// Per-server pooled connections, answered requests, service time given.
    pub fn pooled(&self) -> Vec<i64> {
        self.servers.iter().map(|s| s.pooled).collect()
    }

    pub fn answered(&self) -> Vec<u64> {
        self.servers.iter().map(|s| s.answered).collect()
    }

    pub fn busy_ns(&self) -> Vec<u64> {
        self.servers.iter().map(|s| s.busy_ns).collect()
    }

    pub fn speeds(&self) -> Vec<f64> {
        self.servers.iter().map(|s| s.speed).collect()
    }

    pub fn clear_latency(&mut self) {
        self.log_latency.clear();
    }

    /// Checks every pool's invariants and that the servers' counts agree
    /// with the clients' connections (tests).
    pub fn check(&self) {
        let mut pooled = vec![0i64; self.servers.len()];
        for cl in &self.clients {
            cl.pool.check_invariants();
            for (h, conn) in cl.conns.iter().enumerate() {
                if cl.pool.state(h as Handle) != State::Free {
                    pooled[conn.server as usize] += 1;
                }
            }
        }
        assert_eq!(pooled, self.pooled(), "pooled connections per server");
        let in_service: u64 = self.servers.iter().map(|s| s.busy as u64).sum();
        assert!(in_service <= self.done.len() as u64);
    }
}

impl Driver for Sim {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: self.now(),
            pooled: self.pooled(),
            answered: self.answered(),
            alive: self.servers.iter().map(|s| s.alive).collect(),
            ok: self.counters.ok,
            failed: self.counters.failed,
            no_connection: self.counters.no_connection,
            connect_failures: self.counters.connect_failures,
            connects: self.counters.connects,
            displaced: self.counters.displaced,
            latency: self.latency.clone(),
        }
    }

    fn roving_interval(&self) -> Duration {
        self.cfg.roving_interval
    }

    fn max_slots(&self) -> usize {
        self.cfg.max_slots
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
        let end = self.now() + span;
        loop {
            let s = self.snapshot();
            if f(&s) || self.now() >= end {
                return s;
            }
            let next = self.now() + period;
            self.run_until(next);
        }
    }

    async fn add_servers(&mut self, n: usize) -> std::io::Result<Range<usize>> {
        Ok(self.add(n))
    }

    fn kill(&mut self, server: usize) {
        self.kill_many(&[server]);
    }

    fn kill_all(&mut self, servers: &[usize]) {
        self.kill_many(servers);
    }
}

/// Runs a future that never waits (virtual time's scenarios) to its end.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a virtual-time scenario waited on something"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet;

    fn small(balancer: Balancer) -> VtConfig {
        let mut c = VtConfig::like_sockets(
            3,
            Duration::from_millis(100),
            Duration::from_millis(10),
            0.0,
            7,
        );
        c.workers = 2;
        c.dist = Dist::Exponential;
        c.balancer = balancer;
        c.request_rate = 0.8 * c.capacity(10);
        c
    }

    #[test]
    fn log_hist_quantiles_are_within_two_percent() {
        let mut h = LogHist::default();
        for v in 1..=100_000u64 {
            h.record(v * 1_000);
        }
        for q in [0.5, 0.9, 0.99] {
            let got = h.quantile(q).unwrap().as_nanos() as f64;
            let want = q * 1e8;
            assert!((got / want - 1.0).abs() < 0.02, "q {q}: {got} vs {want}");
        }
        for i in [0usize, 63, 64, 65, 200, 1000, 3000] {
            let (lo, hi) = LogHist::bounds(i);
            assert_eq!(LogHist::index(lo), i);
            assert_eq!(LogHist::index(hi - 1), i);
        }
    }

    #[test]
    fn callosum_fills_every_pool_and_serves_every_request() {
        let mut sim = Sim::new(small(Balancer::Callosum), 10, 40);
        sim.run_until(Duration::from_secs(5));
        sim.check();
        let pooled: i64 = sim.pooled().iter().sum();
        assert_eq!(pooled, 120);
        // Balanced to within a connection or two of the mean (12).
        assert!(
            sim.pooled().iter().all(|&p| (10..=14).contains(&p)),
            "{:?}",
            sim.pooled()
        );
        let c = &sim.counters;
        let answered: u64 = sim.answered().iter().sum();
        assert_eq!(answered, c.ok);
        // 0.8 x 10 servers x 2 workers / 10 ms = 1,600 requests a second.
        assert!((7_000..9_000).contains(&c.ok), "{}", c.ok);
        assert_eq!(c.failed, 0);
    }

    #[test]
    fn every_balancer_sees_the_same_requests() {
        let mut counts = Vec::new();
        for b in Balancer::ALL {
            let mut sim = Sim::new(small(b), 10, 40);
            sim.run_until(Duration::from_secs(3));
            sim.check();
            // Requests made: answered + in flight + waiting; the arrivals
            // themselves come from one generator.
            counts.push(sim.counters.events - sim.counters.ok - sim.counters.connects);
        }
        assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
    }

    #[test]
    fn killed_servers_lose_their_connections_and_pools_refill() {
        let mut sim = Sim::new(small(Balancer::Callosum), 10, 40);
        sim.run_until(Duration::from_secs(3));
        sim.kill_many(&[0, 5]);
        sim.check();
        assert_eq!(sim.pooled()[0], 0);
        assert_eq!(sim.pooled()[5], 0);
        sim.run_until(Duration::from_secs(6));
        sim.check();
        assert_eq!(sim.pooled().iter().sum::<i64>(), 120);
        // Without back-off, the rovers keep trying the dead servers.
        assert!(sim.counters.connect_failures > 100);
    }

    #[test]
    fn scenarios_run_in_virtual_time() {
        let mut cfg = VtConfig::like_sockets(
            3,
            Duration::from_millis(100),
            Duration::from_millis(2),
            400.0,
            3,
        );
        cfg.back_off_unreachable = true;
        let mut sim = Sim::new(cfg, 20, 200);
        let ri = sim.cfg.roving_interval;
        let sc = block_on(fleet::scenarios(&mut sim, ri * 20, ri * 10, ri * 20)).unwrap();
        sim.check();
        assert!(sc.steady.conn_max_mean < 1.15, "{:?}", sc.steady);
        assert!(sc.scale.all_80_secs.is_some());
        assert!(sc.fail.refill_full_secs.is_some());
        assert_eq!(sc.steady.failed, 0);
    }

    #[test]
    fn weighted_slots_give_slow_servers_fewer_connections() {
        let mut counts = Vec::new();
        for policy in [
            SlotPolicy::Lowest,
            SlotPolicy::Weighted,
            SlotPolicy::LoadAware,
        ] {
            let mut c = small(Balancer::Callosum);
            c.slow_every = 2;
            c.slow_speed = 0.5;
            c.slot_policy = policy;
            c.probes = 2;
            c.fair_ties = true;
            c.request_rate = 0.5 * c.capacity(10);
            let mut sim = Sim::new(c, 10, 100);
            sim.run_until(Duration::from_secs(10));
            sim.check();
            let p = sim.pooled();
            let slow: i64 = p.iter().step_by(2).sum();
            let fast: i64 = p.iter().skip(1).step_by(2).sum();
            assert_eq!(slow + fast, 300);
            counts.push((slow, fast));
        }
        // Lowest: even; weighted: the half-speed servers hold about half as many.
        let (s, f) = counts[0];
        assert!((s - f).abs() <= 10, "{counts:?}");
        let (s, f) = counts[1];
        assert!(s * 2 >= f - 20 && s * 2 <= f + 20, "{counts:?}");
    }
}
