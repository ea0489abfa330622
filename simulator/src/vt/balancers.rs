//! How a request picks its server: random, round-robin and P2C choose a
//! server for each request; Callosum lends the idle connection with the
//! lowest slot from the client's pool.

use super::engine::{Server, Sim};
use super::Balancer;
use callosum_pool::Handle;

impl Sim {
    /// The server of a request of client `c` under `b` (not Callosum, which
    /// leases a connection instead: [`Sim::lease`]).
    pub(super) fn pick_server(&mut self, c: usize, b: Balancer) -> usize {
        let n = self.servers.len();
        let cl = &mut self.clients[c];
        match b {
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
        }
    }

    /// The pool's `lease`, or with `fair_ties` a uniform pick among the idle
    /// connections that share the lowest slot (the others go back idle).
    pub(super) fn lease(&mut self, c: usize) -> Option<Handle> {
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
}
