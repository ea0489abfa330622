//! The rover's rules, free of I/O so they can be tested exactly. They are the
//! JavaScript rover's: every roving interval pick uniformly at random one
//! server among those not backing off; a connect failure marks the server
//! unreachable and it is not chosen again until `now + min(interval *
//! 2^(failures-1), max_backoff)`; a successful handshake resets its failures.
//! The slot line is ASCII digits then `\r\n`, at most 20 digits (as lib/rover.js).

use crate::rng::Rng;
use std::time::{Duration, Instant};

/// The most digits a slot line may have before its `\r\n` (as lib/rover.js).
pub const MAX_SLOT_DIGITS: usize = 20;
/// The longest slot line accepted, `\r\n` included.
pub const MAX_SLOT_LINE: usize = MAX_SLOT_DIGITS + 2;

/// The default ceiling of the back-off.
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

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    failures: u32,
    until: Option<Instant>,
}

/// One client's view of the known servers: which are backing off, and until
/// when. Servers are numbered `0..n` in the order they became known.
#[derive(Clone, Debug)]
pub struct Rover {
    interval: Duration,
    max_backoff: Duration,
    entries: Vec<Entry>,
    scratch: Vec<u32>,
}

impl Rover {
    pub fn new(interval: Duration, max_backoff: Duration) -> Self {
        Rover {
            interval,
            max_backoff,
            entries: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Picks uniformly one of the `known` servers that is not backing off at
    /// `now`; `None` when every one is.
    pub fn pick(&mut self, known: usize, now: Instant, rng: &mut Rng) -> Option<usize> {
        if self.entries.len() < known {
            self.entries.resize(known, Entry::default());
        }
        self.scratch.clear();
        for (i, e) in self.entries[..known].iter().enumerate() {
            if e.until.is_none_or(|u| u <= now) {
                self.scratch.push(i as u32);
            }
        }
        if self.scratch.is_empty() {
            return None;
        }
        Some(self.scratch[rng.below(self.scratch.len())] as usize)
    }

    /// A connect to `server` failed at `now`: it backs off. Returns the delay.
    pub fn connect_failed(&mut self, server: usize, now: Instant) -> Duration {
        if self.entries.len() <= server {
            self.entries.resize(server + 1, Entry::default());
        }
        let e = &mut self.entries[server];
        e.failures = e.failures.saturating_add(1);
        let delay = backoff_delay(self.interval, self.max_backoff, e.failures);
        e.until = Some(now + delay);
        delay
    }

    /// A handshake with `server` succeeded: its failures are forgotten.
    pub fn handshake_ok(&mut self, server: usize) {
        if let Some(e) = self.entries.get_mut(server) {
            *e = Entry::default();
        }
    }

    pub fn failures(&self, server: usize) -> u32 {
        self.entries.get(server).map_or(0, |e| e.failures)
    }

    /// Whether `server` is backing off at `now`.
    pub fn backing_off(&self, server: usize, now: Instant) -> bool {
        self.entries
            .get(server)
            .and_then(|e| e.until)
            .is_some_and(|u| u > now)
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
        let mut r = Rover::new(ms(100), ms(30_000));
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
        let mut r = Rover::new(ms(10), ms(1000));
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
        let mut r = Rover::new(Duration::from_millis(10), MAX_BACKOFF);
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
}
