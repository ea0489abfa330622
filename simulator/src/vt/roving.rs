//! The rovers: each Callosum client's tick connects to a server (or
//! `probes` of them), and offers the pool the slot it announced.

use super::engine::{Conn, Sim};
use super::VTime;
use callosum_pool::Offer;

impl Sim {
    /// Connects to `server`: the slot the server allocates and the one it
    /// announces, or `None` if it is dead.
    pub(super) fn connect(&mut self, c: usize, server: usize) -> Option<(u32, u64)> {
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
        let outstanding = s.busy as f64 + s.queue.len() as f64;
        let announced = self
            .cfg
            .slot_policy
            .announce(slot, s.speed, outstanding, self.cfg.workers);
        Some((slot, announced))
    }

    pub(super) fn rove(&mut self, c: usize) {
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
}
