//! The event engine: the servers' queues and workers, requests from their
//! arrival to their answer, and the loop that runs events in time order.

use super::balancers::Peer;
use super::VTime;
use super::{nanos, Balancer, Dist, LogHist, VtConfig};
use crate::client::{LATENCY_BUCKET, LATENCY_BUCKETS};
use crate::rng::Rng;
use crate::rover::Rover;
use crate::server::SlotAllocator;
use callosum_pool::{Handle, Pool, Release};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::ops::Range;
use std::time::Duration;

pub(super) struct Server {
    pub(super) speed: f64,
    pub(super) alive: bool,
    /// Requests in service.
    pub(super) busy: u32,
    pub(super) queue: VecDeque<u32>,
    pub(super) slots: SlotAllocator,
    /// Pooled connections (kept, or displaced but still lent).
    pub(super) pooled: i64,
    pub(super) answered: u64,
    /// Service time given, summed (utilisation = busy_ns / workers / time).
    pub(super) busy_ns: u64,
    /// Requests sent to it (the balancer's choice, whether answered yet).
    pub(super) sent: u64,
    /// When it joined the fleet.
    pub(super) joined: u64,
}

/// A pooled connection: its server and the slot the server allocated
/// (which the announced slot may differ from, see [`SlotPolicy`]).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Conn {
    pub(super) server: u32,
    pub(super) slot: u32,
    /// Adaptive: when this lease began if it is timed, else [`NOT_TIMED`].
    pub(super) lent_at: u64,
}

/// A lease not timed.
pub(super) const NOT_TIMED: u64 = u64::MAX;

pub(super) struct Client {
    pub(super) pool: Pool,
    /// Indexed by pool handle.
    pub(super) conns: Vec<Conn>,
    /// Requests waiting for a connection: (made at, work).
    pub(super) waiting: VecDeque<(u64, f32)>,
    pub(super) rover: Rover<VTime>,
    pub(super) rng: Rng,
    /// Round-robin position.
    pub(super) next: u32,
    /// Client-side balancers: what this client knows of each server, from
    /// its own requests alone (indexed by server; grown on first use).
    pub(super) peers: Vec<Peer>,
    /// Adaptive: leases until the next timed one.
    pub(super) until_sample: u32,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Req {
    pub(super) start: u64,
    pub(super) client: u32,
    pub(super) handle: Handle,
    pub(super) server: u32,
    pub(super) work: f32,
    /// Service time, set when service starts.
    pub(super) service: u64,
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
    /// Adaptive: lease times the pools took as samples.
    pub samples: u64,
    /// Events processed (arrivals, completions, rover ticks).
    pub events: u64,
}

const NO_ARRIVAL: u64 = u64::MAX;

pub struct Sim {
    pub cfg: VtConfig,
    pub(super) now: u64,
    pub(super) servers: Vec<Server>,
    pub(super) clients: Vec<Client>,
    /// Completions: (time, request index).
    pub(super) done: BinaryHeap<Reverse<(u64, u32)>>,
    /// Rover ticks in time order: (time, client).
    pub(super) ticks: VecDeque<(u64, u32)>,
    pub(super) next_arrival: u64,
    /// Arrival times, clients and works: the same for every balancer.
    pub(super) arrivals: Rng,
    pub(super) reqs: Vec<Req>,
    pub(super) free_reqs: Vec<u32>,
    pub counters: Counters,
    /// Latency of every answered request (100 µs buckets, as on sockets).
    pub(super) latency: Vec<u64>,
    /// The same, finer and unbounded; cleared by [`Sim::clear_latency`].
    pub log_latency: LogHist,
    pub(super) ties: Vec<Handle>,
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
                pool: match sim.cfg.adaptive {
                    Some(a) => Pool::new_adaptive(sim.cfg.max_slots, a),
                    None => Pool::new(sim.cfg.max_slots),
                },
                conns: Vec::new(),
                waiting: VecDeque::new(),
                rover: Rover::new(
                    sim.cfg.roving_interval,
                    sim.cfg.back_off_unreachable.then_some(sim.cfg.max_backoff),
                ),
                rng,
                next,
                peers: Vec::new(),
                // Clients time different leases: spread their phases.
                until_sample: c as u32 % sim.cfg.sample_every.max(1),
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

    pub(super) fn add(&mut self, n: usize) -> Range<usize> {
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
                sent: 0,
                joined: self.now,
            });
        }
        from..self.servers.len()
    }

    /// Sets a server's speed from now on (requests in service keep the
    /// time they were given).
    pub fn set_speed(&mut self, server: usize, speed: f64) {
        self.servers[server].speed = speed;
    }

    /// Adds `n` servers now (speeds as the configuration gives).
    pub fn add_servers_now(&mut self, n: usize) -> Range<usize> {
        self.add(n)
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

    pub(super) fn arrival_gap(&mut self) -> u64 {
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

    fn arrive(&mut self) {
        let c = self.arrivals.below(self.clients.len());
        let work = match self.cfg.dist {
            Dist::Exponential => self.arrivals.exp(1.0) as f32,
            Dist::Fixed => 1.0,
            Dist::HeavyTail => {
                if self.arrivals.unit() < 0.9 {
                    0.5
                } else {
                    10.0
                }
            }
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
                let s = self.pick_server(c, b);
                self.submit(Req {
                    start: now,
                    client: c as u32,
                    handle: 0,
                    server: s as u32,
                    work,
                    service: 0,
                });
            }
        }
    }

    pub(super) fn send(&mut self, c: usize, h: Handle, start: u64, work: f32) {
        if self.cfg.adaptive.is_some() {
            let every = self.cfg.sample_every.max(1);
            let cl = &mut self.clients[c];
            cl.conns[h as usize].lent_at = if cl.until_sample == 0 {
                cl.until_sample = every - 1;
                self.now
            } else {
                cl.until_sample -= 1;
                NOT_TIMED
            };
        }
        let server = self.clients[c].conns[h as usize].server;
        self.submit(Req {
            start,
            client: c as u32,
            handle: h,
            server,
            work,
            service: 0,
        });
    }

    pub(super) fn submit(&mut self, req: Req) {
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
        s.sent += 1;
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
        let service = self.service_ns(r);
        self.reqs[r as usize].service = service;
        let t = self.now + service;
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
        let service = q.service;
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
        if self.cfg.balancer.client_side() {
            self.answered_to_client(q.client as usize, si, lat);
        }
        if self.cfg.balancer == Balancer::Callosum {
            let c = q.client as usize;
            let lent_at = self.clients[c].conns[q.handle as usize].lent_at;
            if self.cfg.adaptive.is_some() && lent_at != NOT_TIMED {
                let (now_us, dur_us) = (self.now / 1000, (self.now - lent_at) / 1000);
                if self.clients[c].pool.record_sample(q.handle, dur_us, now_us) {
                    self.counters.samples += 1;
                }
            }
            match self.clients[c].pool.release(q.handle) {
                Ok(Release::Idle) => {}
                Ok(Release::Destroy) => self.close(c, q.handle),
                Err(e) => unreachable!("release of a lent handle: {e:?}"),
            }
            self.serve_waiting(c);
        }
    }

    /// Lends idle connections to the requests waiting, oldest first.
    pub(super) fn serve_waiting(&mut self, c: usize) {
        while !self.clients[c].waiting.is_empty() {
            let Some(h) = self.lease(c) else { break };
            let (start, work) = self.clients[c].waiting.pop_front().unwrap();
            self.send(c, h, start, work);
        }
    }

    /// Closes a connection the pool let go of (freed, or displaced and
    /// returned): the server frees its slot.
    pub(super) fn close(&mut self, c: usize, h: Handle) {
        let conn = self.clients[c].conns[h as usize];
        let s = &mut self.servers[conn.server as usize];
        s.pooled -= 1;
        if s.alive {
            s.slots.free(conn.slot as u64);
        }
    }
}
