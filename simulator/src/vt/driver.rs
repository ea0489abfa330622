//! The fleet's operations (servers killed, counts per server, invariants
//! checked) and the scenarios' [`Driver`] over virtual time.

use super::engine::Sim;
use crate::fleet::{Driver, Snapshot};
use callosum_pool::{Handle, State};
use std::ops::Range;
use std::time::Duration;

impl Sim {
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

    /// Requests sent to each server so far.
    pub fn sent(&self) -> Vec<u64> {
        self.servers.iter().map(|s| s.sent).collect()
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
