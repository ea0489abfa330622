//! One pool and the block it shares with JavaScript, and the calls on it.
//!
//! Every call, hot entry point or method, goes through `with_queue`: it
//! applies the returns JavaScript queued, runs the call, publishes the slot
//! count, and stops a panic there. A panic leaves the pool on broken
//! invariants (a heap half updated), so it poisons the pool: no later call
//! reaches it.

use crate::shared::*;
use callosum_pool::{AdaptiveConfig, Handle, Offer, Pool};
use std::cell::{Cell, RefCell, UnsafeCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why a call did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The pool is in a call already (native code never calls back into
    /// JavaScript, so this would be a bug).
    Reentrant,
    /// This call panicked: the pool is poisoned from now on.
    Panicked,
    /// An earlier call panicked.
    Poisoned,
}

/// One pool and its shared block. Lives in an `Rc`, so the block's address is
/// stable for as long as JavaScript holds a view of it.
pub struct Core {
    /// Borrowed for the length of each call. A panic leaves it borrowed for
    /// good (see `with_queue`), so no call can reach a poisoned pool.
    pool: RefCell<Pool>,
    shared: UnsafeCell<Shared>,
    /// What the panic that poisoned the pool said; `None` while healthy.
    /// Read only on the error path.
    panic: RefCell<Option<String>>,
    poisoned: Cell<bool>,
    /// Adaptive mode: the queue may carry samples, offers carry a server.
    adaptive: bool,
}

impl Core {
    /// A pool of `max_slots`; adaptive (with the core's default
    /// configuration) if `adaptive`.
    pub fn new(max_slots: usize, adaptive: bool) -> Self {
        let pool = if adaptive {
            Pool::new_adaptive(max_slots, AdaptiveConfig::default())
        } else {
            Pool::new(max_slots)
        };
        Self {
            pool: RefCell::new(pool),
            shared: UnsafeCell::new(Shared::new()),
            panic: RefCell::new(None),
            poisoned: Cell::new(false),
            adaptive,
        }
    }

    pub fn is_adaptive(&self) -> bool {
        self.adaptive
    }

    pub fn shared_ptr(&self) -> *mut Shared {
        self.shared.get()
    }

    /// Borrows the shared block.
    ///
    /// # Safety
    /// No other reference to the block may be live while the returned one
    /// is. JavaScript's views do not count: JavaScript runs on this thread
    /// only between native calls, so it never touches the block while the
    /// borrow lives. Callers keep the borrow within one native call and never
    /// hold two at once.
    #[allow(clippy::mut_from_ref)]
    unsafe fn shared(&self) -> &mut Shared {
        // SAFETY: the caller guarantees this is the only live reference; the
        // pointer comes from an `UnsafeCell` that lives as long as `self`.
        unsafe { &mut *self.shared.get() }
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.get()
    }

    /// What the panic that poisoned this pool said.
    pub fn panic_message(&self) -> String {
        self.panic
            .borrow()
            .clone()
            .unwrap_or_else(|| "no message".to_owned())
    }

    /// Applies the returns JavaScript queued since the last crossing, then
    /// runs `f`, then publishes the slot count.
    pub fn with_pool<R>(
        &self,
        f: impl FnOnce(&mut Pool, &mut [f64; IO_LEN]) -> R,
    ) -> Result<R, Refused> {
        self.with_queue(|pool, queued, io| {
            for &h in queued {
                // JavaScript queues only handles it lent out and that were
                // neither displaced nor closed since; anything else is refused
                // by `release` rather than trusted.
                let _ = pool.release(h);
            }
            f(pool, io)
        })
    }

    /// Hands `f` the pool and the queued returns, then empties the queue and
    /// publishes the slot count. Every call goes through here.
    ///
    /// A panic in `f` is caught here and poisons the pool: the queue is
    /// emptied, and the pool's `RefCell` is left borrowed for good, so every
    /// later call is refused at its first step, at no cost to the calls of a
    /// healthy pool. The pool is never touched again after the panic, which
    /// is why `AssertUnwindSafe` holds.
    ///
    /// In an adaptive pool, a batch that JavaScript marked as carrying lease
    /// samples (`meta[META_SAMPLES]` not 0) is decoded first (`samples`);
    /// any other batch costs one more load and compare.
    fn with_queue<R>(
        &self,
        f: impl FnOnce(&mut Pool, &[Handle], &mut [f64; IO_LEN]) -> R,
    ) -> Result<R, Refused> {
        let Ok(mut pool) = self.pool.try_borrow_mut() else {
            return Err(self.refusal());
        };
        // SAFETY: the pool's borrow is ours, so no other call on this core
        // is running, and none holds the block; this is the only borrow of
        // it until this function returns.
        let Shared { io, meta } = unsafe { self.shared() };
        let queued = (meta[META_QUEUE_LEN] as usize).min(QUEUE_CAP);
        let sampled = self.adaptive && meta[META_SAMPLES] != 0;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let queue = &mut meta[META_QUEUE..META_QUEUE + queued];
            let queue = if sampled {
                samples(&mut pool, queue, io[IO_CLOCK_MS])
            } else {
                queue
            };
            f(&mut pool, queue, &mut *io)
        }));
        meta[META_QUEUE_LEN] = 0;
        if sampled {
            meta[META_SAMPLES] = 0;
        }
        match outcome {
            Ok(out) => {
                meta[META_SLOT_COUNT] = pool.slot_count() as u32;
                io[IO_REFUSE_FROM] = pool.refuse_from().map_or(f64::INFINITY, |slot| slot as f64);
                Ok(out)
            }
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_owned());
                *self.panic.borrow_mut() = Some(message);
                self.poisoned.set(true);
                std::mem::forget(pool);
                Err(Refused::Panicked)
            }
        }
    }

    /// Why the pool could not be borrowed (the error path only).
    fn refusal(&self) -> Refused {
        if !self.poisoned.get() {
            return Refused::Reentrant;
        }
        // JavaScript queues returns without a crossing and flushes when the
        // queue is full; empty it, so a poisoned pool's queue never overflows.
        // SAFETY: a poisoned pool has no call running (its borrow was leaked
        // by the call that panicked, which has returned), so nothing else
        // holds the block.
        unsafe { self.shared().meta[META_QUEUE_LEN] = 0 };
        Refused::Poisoned
    }

    /// `lease`: applies the queued returns and lends the lowest idle handle
    /// (or none: -1).
    pub fn lease(&self) -> Result<(), Refused> {
        let lent = self.with_queue(|pool, queued, _| pool.release_all_then_lease(queued))?;
        self.set_result(lent.unwrap_or(u32::MAX));
        Ok(())
    }

    /// `flush`: applies the queued returns.
    pub fn flush(&self) -> Result<(), Refused> {
        self.with_pool(|_, _| ())
    }

    /// `release`: takes back the handle in `io[IO_HANDLE]`. JavaScript knows
    /// the outcome already (displaced or closed: destroy), so nothing is
    /// written back.
    pub fn release(&self) -> Result<(), Refused> {
        self.with_pool(|pool, io| {
            if let Some(h) = handle_from(io[IO_HANDLE]) {
                let _ = pool.release(h);
            }
        })
    }

    /// `remove`: forgets the handle in `io[IO_HANDLE]`, whose socket died.
    /// JavaScript knows the state it was in, so nothing is written back.
    pub fn remove(&self) -> Result<(), Refused> {
        self.with_pool(|pool, io| {
            if let Some(h) = handle_from(io[IO_HANDLE]) {
                let _ = pool.remove(h);
            }
        })
    }

    /// `offer`: reads `io[IO_SLOT]` and `io[IO_LEASE]` (and, adaptive,
    /// `io[IO_SERVER]`), writes the decision.
    pub fn offer(&self) -> Result<(), Refused> {
        let code = self.with_pool(|pool, io| {
            let slot = io[IO_SLOT];
            if !(slot >= 0.0 && slot.fract() == 0.0 && slot <= callosum_pool::MAX_SLOT as f64) {
                return OFFER_BAD_SLOT;
            }
            let lease = io[IO_LEASE] != 0.0;
            let offered = if self.adaptive {
                let server = io[IO_SERVER];
                if !(server >= 0.0 && server.fract() == 0.0 && server <= f64::from(u32::MAX)) {
                    return OFFER_BAD_SERVER;
                }
                pool.offer_on(server as u32, slot as u64, lease)
            } else {
                pool.offer(slot as u64, lease)
            };
            match offered {
                Ok(Offer::Kept { handle, displaced }) => {
                    io[IO_HANDLE] = f64::from(handle);
                    match displaced {
                        Some(d) => {
                            io[IO_VICTIM] = f64::from(d.handle);
                            io[IO_VICTIM_SLOT] = d.slot as f64;
                            io[IO_VICTIM_LEASED] = f64::from(u8::from(d.was_leased));
                        }
                        None => io[IO_VICTIM] = -1.0,
                    }
                    OFFER_KEPT
                }
                Ok(Offer::Full { highest }) => {
                    io[IO_VICTIM_SLOT] = highest as f64;
                    OFFER_FULL
                }
                Ok(Offer::Closed) => OFFER_CLOSED,
                Err(_) => OFFER_BAD_SLOT,
            }
        })?;
        self.set_result(code);
        Ok(())
    }

    /// A panic in the middle of a call, after the queued returns were
    /// applied: the test-only entry point of `fast.rs` (`__panic`). It
    /// unwinds as a panic does, without the panic hook's report on stderr.
    pub fn panic_for_tests(&self) -> Result<(), Refused> {
        self.with_pool(|_, _| {
            std::panic::resume_unwind(Box::new("test panic (CALLOSUM_TEST_PANIC=1)"))
        })
    }

    fn set_result(&self, value: u32) {
        // SAFETY: called after `with_queue` returned, so its borrow of the
        // block has ended, and no other call is running.
        unsafe { self.shared().meta[META_RESULT] = value };
    }
}

/// Records the lease samples in a batch of queued words and compacts it, in
/// place, to the plain handles to take back (the encoding is described in
/// `shared.rs`). Kept out of line: only a batch marked as sampled comes here.
///
/// The samples' time is JavaScript's clock, `io[IO_CLOCK_MS]`: a clock read
/// costs 20-70 ns in Rust on this machine, and JavaScript has just read its
/// own to time the lease.
#[inline(never)]
fn samples<'q>(pool: &mut Pool, queue: &'q mut [Handle], clock_ms: f64) -> &'q mut [Handle] {
    let now = clock_us(clock_ms);
    let (mut read, mut write) = (0, 0);
    while read < queue.len() {
        let word = queue[read];
        read += 1;
        // A plain handle is below 2^31; a tag is !handle (negative as an
        // Int32).
        let handle = if word < 0x8000_0000 {
            word
        } else {
            let handle = !word;
            if let Some(&duration) = queue.get(read) {
                read += 1;
                if duration < 0x8000_0000 {
                    pool.record_sample(handle, u64::from(duration), now);
                } else {
                    // A hand-off to a waiter: sampled, and still lent.
                    pool.record_sample(handle, u64::from(!duration), now);
                    continue;
                }
            }
            handle
        };
        queue[write] = handle;
        write += 1;
    }
    &mut queue[..write]
}

/// JavaScript's clock in milliseconds as the pool's in microseconds (0 if
/// not a non-negative number; the pool never lets its clock go back).
fn clock_us(ms: f64) -> u64 {
    if ms >= 0.0 && ms.is_finite() {
        (ms * 1000.0) as u64
    } else {
        0
    }
}

/// A handle as JavaScript passes it: a non-negative integer number.
fn handle_from(value: f64) -> Option<Handle> {
    (value >= 0.0 && value <= f64::from(Handle::MAX) && value.fract() == 0.0)
        .then_some(value as Handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Writes `io[i]` of `core`'s block between calls, as JavaScript does.
    fn set_io(core: &Core, i: usize, v: f64) {
        // SAFETY: no call on `core` is running (tests are single-threaded
        // here), so nothing else borrows the block.
        unsafe { core.shared().io[i] = v }
    }

    /// Queues `words` as JavaScript does.
    fn queue(core: &Core, words: &[u32]) {
        // SAFETY: as in `set_io`.
        let meta = unsafe { &mut core.shared().meta };
        meta[META_QUEUE..META_QUEUE + words.len()].copy_from_slice(words);
        meta[META_QUEUE_LEN] = words.len() as u32;
    }

    fn mark_sampled(core: &Core) {
        // SAFETY: as in `set_io`.
        unsafe { core.shared().meta[META_SAMPLES] = 1 }
    }

    fn result(core: &Core) -> u32 {
        // SAFETY: as in `set_io`.
        unsafe { core.shared().meta[META_RESULT] }
    }

    fn adaptive_core() -> Core {
        let core = Core::new(100, true);
        for i in 0..100u32 {
            set_io(&core, IO_SLOT, f64::from(i / 2));
            set_io(&core, IO_LEASE, 0.0);
            set_io(&core, IO_SERVER, f64::from(i % 10));
            core.offer().unwrap();
            assert_eq!(result(&core), OFFER_KEPT);
        }
        core
    }

    #[test]
    fn sampled_returns_are_decoded_and_recorded() {
        let core = adaptive_core();
        let lent: Vec<u32> = (0..3)
            .map(|_| {
                core.lease().unwrap();
                result(&core)
            })
            .collect();
        // A plain return, a sampled one, and a tag cut off at the end.
        set_io(&core, IO_CLOCK_MS, 5.0);
        queue(&core, &[lent[0], !lent[1], 2_500, !lent[2]]);
        mark_sampled(&core);
        core.flush().unwrap();
        let pool = core.pool.borrow();
        for &h in &lent {
            assert_eq!(pool.state(h), callosum_pool::State::Idle, "{h} returned");
        }
        let sampled: Vec<_> = pool
            .servers()
            .into_iter()
            .filter(|s| s.estimate_us.is_some())
            .collect();
        assert_eq!(sampled.len(), 1, "{sampled:?}");
        assert_eq!(sampled[0].server, lent[1] % 10);
        assert_eq!(sampled[0].estimate_us, Some(2_500.0));
        drop(pool);
        // A bad server index is refused.
        set_io(&core, IO_SERVER, -1.0);
        core.offer().unwrap();
        assert_eq!(result(&core), OFFER_BAD_SERVER);
    }

    #[test]
    fn a_hand_off_sample_leaves_the_handle_lent() {
        let core = adaptive_core();
        core.lease().unwrap();
        let h = result(&core);
        set_io(&core, IO_CLOCK_MS, 7.0);
        // Sampled, complemented duration: a hand-off to a waiter.
        queue(&core, &[!h, !4_000]);
        mark_sampled(&core);
        core.flush().unwrap();
        let pool = core.pool.borrow();
        assert_eq!(pool.state(h), callosum_pool::State::Leased, "still lent");
        let sampled: Vec<_> = pool
            .servers()
            .into_iter()
            .filter(|s| s.estimate_us.is_some())
            .collect();
        assert_eq!(sampled.len(), 1, "{sampled:?}");
        assert_eq!(sampled[0].estimate_us, Some(4_000.0));
    }

    /// Runs `ops` return+lease crossings on a 100-entry pool of 10 servers
    /// with 8 leases out, as `lib/` drives them (one queued return a
    /// crossing; with `sampled`, one return in 8 carries a sample, server 0
    /// three times slower). Returns ns per crossing.
    fn crossings(adaptive: bool, sampled: bool, ops: u32) -> f64 {
        let core = if adaptive {
            adaptive_core()
        } else {
            let core = Core::new(100, false);
            for i in 0..100u32 {
                set_io(&core, IO_SLOT, f64::from(i / 2));
                core.offer().unwrap();
            }
            core
        };
        let mut out: Vec<u32> = (0..8)
            .map(|_| {
                core.lease().unwrap();
                result(&core)
            })
            .collect();
        let t = Instant::now();
        for i in 0..ops {
            let k = (i & 7) as usize;
            let h = out[k];
            if sampled && k == 0 {
                let us = if h.is_multiple_of(10) { 3_000 } else { 1_000 };
                set_io(&core, IO_CLOCK_MS, f64::from(i) / 1000.0);
                queue(&core, &[!h, us]);
                mark_sampled(&core);
            } else {
                queue(&core, &[h]);
            }
            core.lease().unwrap();
            out[k] = std::hint::black_box(result(&core));
        }
        t.elapsed().as_nanos() as f64 / f64::from(ops)
    }

    /// `cargo test --release --lib -- --ignored --nocapture crossing_cost`:
    /// the Rust side of a return+lease crossing, adaptive off and on.
    #[test]
    #[ignore]
    fn crossing_cost() {
        let mut rows = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..9 {
            rows[0].push(crossings(false, false, 2_000_000));
            rows[1].push(crossings(true, false, 2_000_000));
            rows[2].push(crossings(true, true, 2_000_000));
        }
        let [off, on, sampled] = rows.map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        });
        println!("off {off:.1} ns, adaptive {on:.1} ns, adaptive sampled 1/8 {sampled:.1} ns");
    }
}
