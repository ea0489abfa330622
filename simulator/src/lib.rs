//! The Callosum fleet simulator, built on the same pool core as the Node.js
//! addon (`callosum-pool`): real sockets on tokio, or virtual time.
//!
//! - [`server::Server`]: a real Callosum server on loopback: lowest free slot
//!   per connection, the slot line, the slot freed on close, requests
//!   answered after a delay.
//! - [`client::Client`]: a pool, a rover with the JavaScript rover's rules
//!   ([`rover`]), requests on the lowest idle slot.
//! - [`fleet`]: many of both in one process, snapshots, and the scenarios
//!   (steady state, scale-out, failure), over either mode ([`fleet::Driver`]).
//! - [`vt`]: the virtual-time mode: a discrete-event simulation of the same
//!   pools and rover rules, servers with a capacity, other balancers.
//! - [`svg`]: the charts, written by hand.

pub mod client;
pub mod fleet;
pub mod rng;
pub mod rover;
pub mod server;
pub mod svg;
pub mod vt;

/// Peak resident memory of this process (VmHWM), in KiB, where Linux tells.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Raises the soft open-file limit to the hard one; returns the limit now.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain calls with a valid out-pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    let cur = lim.rlim_cur as u64;
    cur
}
