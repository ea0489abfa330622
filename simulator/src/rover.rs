//! The rover's rules, free of I/O so they can be tested exactly. They are the
//! JavaScript rover's (`lib/rover/`; its rules are written out in
//! `docs/rover.md`):
//!
//! - every roving interval, pick uniformly at random one of the known servers
//!   (with back-off on: one of those not backing off), connect, read the slot
//!   line and offer the connection to the pool;
//! - by default (`new Rover()` in JavaScript) a connect failure changes
//!   nothing: the unreachable server stays eligible and is retried whenever it
//!   is picked, every interval, as the original rover did;
//! - with back-off on (`backOffUnreachable: true`, ceiling `maxBackoff`, 30 s
//!   unless set) a connect failure makes the server back off: it is not
//!   chosen again until `now + min(interval * 2^(failures-1), max_backoff)`,
//!   and a successful handshake resets its failures;
//! - the slot line is ASCII digits then `\r\n`, at most 20 digits.
//!
//! One difference, in the socket mode only: a JavaScript timer starts an
//! attempt every interval even if the last one has not finished; the
//! simulator's rover makes one attempt at a time (an attempt that outlasts the
//! interval delays the next one), so that a busy machine does not pile up
//! sockets. On loopback an attempt takes well under a millisecond, so this
//! changes nothing measurable; in virtual time an attempt takes no time at all.
//!
//! The rover is generic over its clock (`Instant` on sockets, virtual time in
//! [`crate::vt`]) and keeps an entry only for servers that have failed, so a
//! client that knows 10,000 servers costs nothing per server.

use crate::rng::Rng;
use std::time::{Duration, Instant};

/// The most digits a slot line may have before its `\r\n` (as lib/rover/).
pub const MAX_SLOT_DIGITS: usize = 20;
/// The longest slot line accepted, `\r\n` included.
pub const MAX_SLOT_LINE: usize = MAX_SLOT_DIGITS + 2;

/// The default ceiling of the back-off, when it is on (as lib/rover/).
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// No `\r\n` within `MAX_SLOT_LINE` bytes.
    TooLong,
    /// A byte other than a digit before `\r\n`, or `\r` not followed by `\n`.
    NotDigits,
    /// `\r\n` with no digit before it.
    Empty,
    /// A slot beyond `callosum_pool::MAX_SLOT`.
    SlotTooLarge,
    /// The server closed (or reset) the connection before the line was whole.
    Closed,
    /// The line did not come within the handshake time-out.
    TimedOut,
}

/// Reads the slot line from the bytes received so far. `Ok(None)`: not whole
/// yet, read more. `Ok(Some((slot, used)))`: the line took `used` bytes; any
/// bytes after them belong to what follows.
pub fn parse_slot_line(buf: &[u8]) -> Result<Option<(u64, usize)>, HandshakeError> {
    for (i, &b) in buf.iter().enumerate().take(MAX_SLOT_LINE) {
        match b {
            b'0'..=b'9' if i >= MAX_SLOT_DIGITS => return Err(HandshakeError::TooLong),
            b'0'..=b'9' => {}
            b'\r' => {
                if i + 1 >= MAX_SLOT_LINE {
                    return Err(HandshakeError::TooLong);
                }
                match buf.get(i + 1) {
                    None => return Ok(None),
                    Some(b'\n') => {}
                    Some(_) => return Err(HandshakeError::NotDigits),
                }
                if i == 0 {
                    return Err(HandshakeError::Empty);
                }
                // Up to 20 digits: saturate rather than overflow; anything
                // past MAX_SLOT is refused below.
                let slot = buf[..i].iter().fold(0u64, |n, &d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                if slot > callosum_pool::MAX_SLOT {
                    return Err(HandshakeError::SlotTooLarge);
                }
                return Ok(Some((slot, i + 2)));
            }
            _ => return Err(HandshakeError::NotDigits),
        }
    }
    if buf.len() >= MAX_SLOT_LINE {
        Err(HandshakeError::TooLong)
    } else {
        Ok(None)
    }
}

/// How long a server is skipped after its `failures`-th connect failure in a
/// row: `min(interval * 2^(failures-1), max)`.
pub fn backoff_delay(interval: Duration, max: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
    interval.checked_mul(factor).map_or(max, |d| d.min(max))
}

/// A failed server: how many connects failed in a row, and (with back-off
/// on) until when it is skipped.
#[derive(Clone, Copy, Debug)]
struct Entry<T> {
    server: u32,
    failures: u32,
    until: Option<T>,
}

/// One client's view of the known servers: which have failed and, with
/// back-off on, which are backing off and until when. Servers are numbered
/// `0..n` in the order they became known. `T` is the clock: anything that can
/// be compared and moved forward by a `Duration`.
#[derive(Clone, Debug)]
pub struct Rover<T = Instant> {
    interval: Duration,
    /// `Some(ceiling)`: back-off on (`backOffUnreachable: true`).
    backoff: Option<Duration>,
    /// Servers with failures, sorted by server.
    entries: Vec<Entry<T>>,
    scratch: Vec<u32>,
}

impl<T: Copy + Ord + std::ops::Add<Duration, Output = T>> Rover<T> {
    /// `backoff`: `None` for the JavaScript default (an unreachable server is
    /// retried whenever picked), `Some(max_backoff)` for `backOffUnreachable`.
    pub fn new(interval: Duration, backoff: Option<Duration>) -> Self {
        Rover {
            interval,
            backoff,
            entries: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    fn find(&self, server: usize) -> Result<usize, usize> {
        self.entries
            .binary_search_by_key(&(server as u32), |e| e.server)
    }

    /// Picks uniformly one of the `known` servers that is not backing off at
    /// `now`; `None` when every one is.
    pub fn pick(&mut self, known: usize, now: T, rng: &mut Rng) -> Option<usize> {
        self.pick_other(known, now, rng, &[])
    }

    /// [`Rover::pick`] among the servers not in `taken` (a tick that probes
    /// several servers takes distinct ones); `None` when no server is left.
    pub fn pick_other(
        &mut self,
        known: usize,
        now: T,
        rng: &mut Rng,
        taken: &[usize],
    ) -> Option<usize> {
        // The servers backing off or taken, in order; the pick is the k-th
        // of the others.
        self.scratch.clear();
        for e in &self.entries {
            if (e.server as usize) < known && e.until.is_some_and(|u| u > now) {
                self.scratch.push(e.server);
            }
        }
        for &t in taken {
            if t < known && !self.scratch.contains(&(t as u32)) {
                self.scratch.push(t as u32);
            }
        }
        if !taken.is_empty() {
            self.scratch.sort_unstable();
        }
        let eligible = known - self.scratch.len();
        if eligible == 0 {
            return None;
        }
        let mut k = rng.below(eligible);
        for &b in &self.scratch {
            if b as usize <= k {
                k += 1;
            } else {
                break;
            }
        }
        Some(k)
    }

    /// A connect to `server` failed at `now`. With back-off on it backs off;
    /// returns the delay (zero with back-off off).
    pub fn connect_failed(&mut self, server: usize, now: T) -> Duration {
        let at = match self.find(server) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(
                    i,
                    Entry {
                        server: server as u32,
                        failures: 0,
                        until: None,
                    },
                );
                i
            }
        };
        let e = &mut self.entries[at];
        e.failures = e.failures.saturating_add(1);
        let Some(max) = self.backoff else {
            return Duration::ZERO;
        };
        let delay = backoff_delay(self.interval, max, e.failures);
        e.until = Some(now + delay);
        delay
    }

    /// A handshake with `server` succeeded: its failures are forgotten.
    pub fn handshake_ok(&mut self, server: usize) {
        if let Ok(i) = self.find(server) {
            self.entries.remove(i);
        }
    }

    pub fn failures(&self, server: usize) -> u32 {
        self.find(server).map_or(0, |i| self.entries[i].failures)
    }

    /// Whether `server` is backing off at `now`.
    pub fn backing_off(&self, server: usize, now: T) -> bool {
        self.find(server)
            .is_ok_and(|i| self.entries[i].until.is_some_and(|u| u > now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HandshakeError::*;

    #[test]
    fn slot_line_whole() {
        assert_eq!(parse_slot_line(b"0\r\n"), Ok(Some((0, 3))));
        assert_eq!(parse_slot_line(b"13\r\n"), Ok(Some((13, 4))));
        // Bytes after the line are left for what follows.
        assert_eq!(parse_slot_line(b"7\r\nok\n"), Ok(Some((7, 3))));
    }

    #[test]
    fn slot_line_in_pieces() {
        let line = b"4096\r\n";
        for cut in 0..line.len() {
            assert_eq!(parse_slot_line(&line[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse_slot_line(line), Ok(Some((4096, 6))));
    }

    #[test]
    fn slot_line_bad() {
        assert_eq!(parse_slot_line(b"\r\n"), Err(Empty));
        assert_eq!(parse_slot_line(b"1x\r\n"), Err(NotDigits));
        assert_eq!(parse_slot_line(b"-1\r\n"), Err(NotDigits));
        assert_eq!(parse_slot_line(b" 1\r\n"), Err(NotDigits));
        assert_eq!(parse_slot_line(b"12\n"), Err(NotDigits));
        assert_eq!(parse_slot_line(b"12\rx"), Err(NotDigits));
        // 20 digits + CRLF = 22 bytes: the longest line; 21 digits is too long.
        assert_eq!(
            parse_slot_line(b"00000000000000000042\r\n"),
            Ok(Some((42, 22)))
        );
        assert_eq!(parse_slot_line(b"000000000000000000042\r\n"), Err(TooLong));
        assert_eq!(parse_slot_line(b"000000000000000000042"), Err(TooLong));
        assert_eq!(parse_slot_line(b"00000000000000000042"), Ok(None));
        assert_eq!(parse_slot_line(b"0000000000000000000042"), Err(TooLong));
        assert_eq!(
            parse_slot_line(b"99999999999999999999\r\n"),
            Err(SlotTooLarge)
        );
        assert_eq!(
            parse_slot_line(b"9007199254740991\r\n"),
            Ok(Some((callosum_pool::MAX_SLOT, 18)))
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let i = Duration::from_millis(1000);
        let max = Duration::from_secs(30);
        let got: Vec<u64> = (1..=8)
            .map(|f| backoff_delay(i, max, f).as_millis() as u64)
            .collect();
        assert_eq!(got, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        assert_eq!(backoff_delay(i, max, 0), Duration::ZERO);
        assert_eq!(backoff_delay(i, max, 200), max);
    }

    #[test]
    fn a_failed_server_is_skipped_until_its_backoff_ends() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = Rover::new(ms(100), Some(ms(30_000)));
        let mut rng = Rng::new(3);
        assert_eq!(r.connect_failed(1, t0), ms(100));
        for _ in 0..200 {
            assert_eq!(r.pick(2, t0, &mut rng), Some(0));
            assert_eq!(r.pick(2, t0 + ms(99), &mut rng), Some(0));
        }
        assert!(!r.backing_off(1, t0 + ms(100)));
        let picks: Vec<usize> = (0..200)
            .map(|_| r.pick(2, t0 + ms(100), &mut rng).unwrap())
            .collect();
        assert!(picks.contains(&1) && picks.contains(&0));
        // Second and third failures in a row: 200 ms, then 400 ms.
        assert_eq!(r.connect_failed(1, t0 + ms(100)), ms(200));
        assert!(r.backing_off(1, t0 + ms(299)));
        assert!(!r.backing_off(1, t0 + ms(300)));
        assert_eq!(r.connect_failed(1, t0 + ms(300)), ms(400));
        assert_eq!(r.failures(1), 3);
        // A good handshake forgets it all: the next failure backs off 100 ms.
        r.handshake_ok(1);
        assert_eq!(r.failures(1), 0);
        assert!(!r.backing_off(1, t0 + ms(300)));
        assert_eq!(r.connect_failed(1, t0 + ms(300)), ms(100));
    }

    #[test]
    fn all_backing_off_means_no_pick_and_new_servers_are_eligible() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = Rover::new(ms(10), Some(ms(1000)));
        let mut rng = Rng::new(9);
        assert_eq!(r.pick(0, t0, &mut rng), None);
        r.connect_failed(0, t0);
        assert_eq!(r.pick(1, t0, &mut rng), None);
        // A server learned later is eligible at once.
        assert_eq!(r.pick(2, t0, &mut rng), Some(1));
    }

    #[test]
    fn picks_are_uniform_over_eligible_servers() {
        let t0 = Instant::now();
        let mut r = Rover::new(Duration::from_millis(10), Some(MAX_BACKOFF));
        let mut rng = Rng::new(11);
        r.connect_failed(2, t0);
        let mut count = [0u32; 5];
        for _ in 0..40_000 {
            count[r.pick(5, t0, &mut rng).unwrap()] += 1;
        }
        assert_eq!(count[2], 0);
        for (i, &c) in count.iter().enumerate().filter(|&(i, _)| i != 2) {
            assert!((9_000..11_000).contains(&c), "server {i}: {c}");
        }
    }

    #[test]
    fn without_backoff_an_unreachable_server_stays_eligible() {
        let t0 = Instant::now();
        let mut r = Rover::new(Duration::from_millis(10), None);
        let mut rng = Rng::new(5);
        assert_eq!(r.connect_failed(1, t0), Duration::ZERO);
        assert_eq!(r.connect_failed(1, t0), Duration::ZERO);
        assert_eq!(r.failures(1), 2);
        assert!(!r.backing_off(1, t0));
        let mut count = [0u32; 3];
        for _ in 0..30_000 {
            count[r.pick(3, t0, &mut rng).unwrap()] += 1;
        }
        assert!(
            count.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{count:?}"
        );
        r.handshake_ok(1);
        assert_eq!(r.failures(1), 0);
    }

    #[test]
    fn picks_skip_exactly_the_servers_backing_off() {
        // The k-th eligible server, for servers failed in any order.
        let t0 = Instant::now();
        let mut r = Rover::new(Duration::from_millis(10), Some(MAX_BACKOFF));
        for s in [7, 2, 3, 0] {
            r.connect_failed(s, t0);
        }
        let mut rng = Rng::new(2);
        let mut seen = [0u32; 9];
        for _ in 0..9_000 {
            seen[r.pick(9, t0, &mut rng).unwrap()] += 1;
        }
        for s in [0, 2, 3, 7] {
            assert_eq!(seen[s], 0, "server {s}");
        }
        for s in [1, 4, 5, 6, 8] {
            assert!(seen[s] > 1_500, "server {s}: {seen:?}");
        }
    }

    #[test]
    fn picks_of_one_tick_are_distinct_and_skip_backing_off_servers() {
        let t0 = Instant::now();
        let mut r = Rover::new(Duration::from_millis(10), Some(MAX_BACKOFF));
        let mut rng = Rng::new(5);
        r.connect_failed(2, t0);
        for _ in 0..200 {
            let a = r.pick_other(5, t0, &mut rng, &[]).unwrap();
            let b = r.pick_other(5, t0, &mut rng, &[a]).unwrap();
            let c = r.pick_other(5, t0, &mut rng, &[a, b]).unwrap();
            let mut got = vec![a, b, c];
            got.sort_unstable();
            got.dedup();
            assert_eq!(got.len(), 3);
            assert!(!got.contains(&2), "{got:?}");
            // Four eligible of five, three taken: one left, then none.
            let d = r.pick_other(5, t0, &mut rng, &[a, b, c]).unwrap();
            assert!(![a, b, c, 2].contains(&d));
            assert_eq!(r.pick_other(5, t0, &mut rng, &[a, b, c, d]), None);
        }
    }
}
