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
//!
//! The files: [`config`] (what a run is: [`VtConfig`], the [`Balancer`]s and
//! the service-time [`Dist`]), [`engine`] (the event loop, the servers'
//! queues, requests from arrival to answer), [`balancers`] (how a request
//! picks its server, Callosum's lease included), [`slot_policy`] (what slot a
//! server announces), [`roving`] (the rovers' ticks and offers), [`driver`]
//! (the fleet's operations and the scenarios' [`Driver`](crate::fleet::Driver)),
//! [`hist`] (the latency histogram).

mod balancers;
mod config;
mod driver;
mod engine;
mod hist;
mod roving;
mod slot_policy;
#[cfg(test)]
mod tests;

pub use config::{Balancer, Dist, VtConfig};
pub use driver::block_on;
pub use engine::{Counters, Sim};
pub use hist::LogHist;
pub use slot_policy::SlotPolicy;

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
