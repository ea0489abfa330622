//! How a request picks its server: random, round-robin and the P2C family
//! choose a server for each request; Callosum lends the idle connection with
//! the lowest slot from the client's pool.
//!
//! The P2C family: the idealised one reads every server's queue (the best
//! case, a reference line); the two client-side ones see only the client's
//! own requests, as a real client does: least-outstanding counts them, Peak
//! EWMA also times them (the linkerd2-proxy / tower rule, [`Peer`]).

use super::engine::{Server, Sim};
use super::{nanos, Balancer};
use callosum_pool::Handle;

/// What one client knows of one server from its own requests.
#[derive(Clone, Copy, Debug)]
pub(super) struct Peer {
    /// Its requests sent there and not yet answered.
    pub(super) pending: u32,
    /// Peak EWMA's estimate of the response time, ns.
    pub(super) estimate: f64,
    /// When the estimate was last updated (or decayed), ns.
    pub(super) updated: u64,
}

impl Peer {
    /// tower's `RttEstimate::update`: a sample above the estimate replaces
    /// it; otherwise an EWMA with weight `1 - exp(-elapsed / decay)`.
    fn update(&mut self, rtt: f64, now: u64, decay_ns: f64) -> f64 {
        if self.estimate < rtt {
            self.estimate = rtt;
        } else {
            let elapsed = now.saturating_sub(self.updated) as f64;
            let decay = (-elapsed / decay_ns).exp();
            self.estimate = self.estimate * decay + rtt * (1.0 - decay);
        }
        self.updated = now;
        self.estimate
    }

    /// tower's `PeakEwma::load`: the estimate decayed toward 0 since its last
    /// update (a sample of 0 now), times the requests pending plus one.
    fn cost(&mut self, now: u64, decay_ns: f64) -> f64 {
        self.update(0.0, now, decay_ns) * (self.pending as f64 + 1.0)
    }
}

impl Sim {
    /// The server of a request of client `c` under `b` (not Callosum, which
    /// leases a connection instead: [`Sim::lease`]).
    pub(super) fn pick_server(&mut self, c: usize, b: Balancer) -> usize {
        let n = self.servers.len();
        if b.client_side() {
            self.grow_peers(c);
        }
        let now = self.now;
        let decay = nanos(self.cfg.ewma_decay) as f64;
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
                let mut b2 = cl.rng.below(n - 1);
                if b2 >= a {
                    b2 += 1;
                }
                let second = match b {
                    Balancer::P2cLocal => cl.peers[b2].pending < cl.peers[a].pending,
                    Balancer::PeakEwma => {
                        let ca = cl.peers[a].cost(now, decay);
                        let cb = cl.peers[b2].cost(now, decay);
                        cb < ca
                    }
                    _ => {
                        let load = |s: &Server| s.busy as usize + s.queue.len();
                        load(&self.servers[b2]) < load(&self.servers[a])
                    }
                };
                if second {
                    b2
                } else {
                    a
                }
            }
        };
        if b.client_side() {
            self.clients[c].peers[s].pending += 1;
        }
        s
    }

    /// Client `c` knows every server there is: a server that joined since
    /// starts from the default estimate, as of when it joined.
    fn grow_peers(&mut self, c: usize) {
        let have = self.clients[c].peers.len();
        if have == self.servers.len() {
            return;
        }
        let default = nanos(self.cfg.ewma_default) as f64;
        for s in have..self.servers.len() {
            let joined = self.servers[s].joined;
            self.clients[c].peers.push(Peer {
                pending: 0,
                estimate: default,
                updated: joined,
            });
        }
    }

    /// A client-side balancer's answer from server `s` after `rtt` ns.
    pub(super) fn answered_to_client(&mut self, c: usize, s: usize, rtt: u64) {
        let now = self.now;
        let decay = nanos(self.cfg.ewma_decay) as f64;
        let p = &mut self.clients[c].peers[s];
        p.pending -= 1;
        if self.cfg.balancer == Balancer::PeakEwma {
            p.update(rtt as f64, now, decay);
        }
    }

    /// The pool's `lease`, or with `fair_ties` a uniform pick among the idle
    /// connections that share the lowest slot (the others go back idle).
    pub(super) fn lease(&mut self, c: usize) -> Option<Handle> {
        let cl = &mut self.clients[c];
        if self.cfg.adaptive.is_some() {
            cl.pool.set_clock(self.now / 1000);
        }
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
}

#[cfg(test)]
mod tests {
    use super::Peer;

    #[test]
    fn peak_ewma_takes_a_peak_at_once_and_decays_with_its_time_constant() {
        let tau = 10e9;
        let mut p = Peer {
            pending: 0,
            estimate: 30e6,
            updated: 0,
        };
        // A larger sample replaces the estimate at once.
        assert_eq!(p.update(50e6, 1_000, tau), 50e6);
        // A smaller one, one time constant later, moves it 1 - 1/e of the way.
        let e = p.update(10e6, 1_000 + 10_000_000_000, tau);
        let want = 50e6 / std::f64::consts::E + 10e6 * (1.0 - 1.0 / std::f64::consts::E);
        assert!((e - want).abs() < 1.0, "{e} vs {want}");
        // Looked at with 3 pending: decayed toward 0 since, times 4.
        p.pending = 3;
        let c = p.cost(1_000 + 20_000_000_000, tau);
        assert!((c - want / std::f64::consts::E * 4.0).abs() < 4.0, "{c}");
    }
}
