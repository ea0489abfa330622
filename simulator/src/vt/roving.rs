//! The rovers: each Callosum client's tick connects to a server (or
//! `probes` of them), and offers the pool the slot it announced.

use super::engine::{Conn, Sim, NOT_TIMED};
use super::VTime;
use callosum_pool::Offer;

/// The most servers one tick probes.
pub const MAX_PROBES: usize = 8;

impl Sim {
    /// How client `c`'s pool would rank a connection to `server` on
    /// `announced`: the slot, or adaptive, the slot times the weight the pool
    /// gives that server now.
    fn rank(&self, c: usize, server: usize, announced: u64) -> f64 {
        let pool = &self.clients[c].pool;
        if self.cfg.adaptive.is_none() {
            return announced as f64;
        }
        let cfg = pool.adaptive_config().unwrap_or_default();
        let weight = pool
            .servers()
            .iter()
            .find(|s| s.server == server as u32)
            .map_or(cfg.no_history_weight, |s| s.weight);
        // As the core ranks: (slot + 1) x weight.
        (announced as f64 + 1.0) * weight
    }

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
        let probes = self.cfg.probes.max(1) as usize;
        // (rank, announced, server, allocated slot) of the best probe so far.
        let mut best: Option<(f64, u64, usize, u32)> = None;
        let mut taken = [0usize; MAX_PROBES];
        for k in 0..probes.min(MAX_PROBES) {
            let cl = &mut self.clients[c];
            let Some(server) = cl.rover.pick_other(known, now, &mut cl.rng, &taken[..k]) else {
                self.counters.no_server += 1;
                break;
            };
            taken[k] = server;
            let Some((slot, announced)) = self.connect(c, server) else {
                continue;
            };
            if self.cfg.offer_every_probe {
                // The JavaScript rover: every connection is offered as it
                // comes; the pool keeps what it would keep.
                self.offer(c, server, slot, announced);
                continue;
            }
            // Otherwise keep the probe the pool ranks lowest (its announced
            // slot, or adaptive, its effective slot), close the rest.
            let rank = self.rank(c, server, announced);
            match best {
                Some((r, _, _, _)) if r <= rank => {
                    self.servers[server].slots.free(slot as u64);
                }
                other => {
                    if let Some((_, _, s, sl)) = other {
                        self.servers[s].slots.free(sl as u64);
                    }
                    best = Some((rank, announced, server, slot));
                }
            }
        }
        if let Some((_, announced, server, slot)) = best {
            self.offer(c, server, slot, announced);
        }
    }

    /// Offers client `c`'s pool a new connection to `server` (allocated
    /// `slot`, `announced`): kept (a waiting request takes it at once),
    /// displacing perhaps, or refused and closed.
    fn offer(&mut self, c: usize, server: usize, slot: u32, announced: u64) {
        let lease = !self.clients[c].waiting.is_empty();
        let pool = &mut self.clients[c].pool;
        let offer = if self.cfg.adaptive.is_some() {
            pool.offer_on(server as u32, announced, lease)
        } else {
            pool.offer(announced, lease)
        };
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
                    lent_at: NOT_TIMED,
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
