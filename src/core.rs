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
use std::time::Instant;

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
    /// The clock of the samples: microseconds since this instant.
    origin: Instant,
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
            origin: Instant::now(),
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
            let queued = self.samples(pool, queued);
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
    fn with_queue<R>(
        &self,
        f: impl FnOnce(&mut Pool, &mut [Handle], &mut [f64; IO_LEN]) -> R,
    ) -> Result<R, Refused> {
        let Ok(mut pool) = self.pool.try_borrow_mut() else {
            return Err(self.refusal());
        };
        // SAFETY: the pool's borrow is ours, so no other call on this core
        // is running, and none holds the block; this is the only borrow of
        // it until this function returns.
        let Shared { io, meta } = unsafe { self.shared() };
        let queued = (meta[META_QUEUE_LEN] as usize).min(QUEUE_CAP);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            f(
                &mut pool,
                &mut meta[META_QUEUE..META_QUEUE + queued],
                &mut *io,
            )
        }));
        meta[META_QUEUE_LEN] = 0;
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
    /// Adaptive pools: records the lease samples in the queued words and
    /// compacts the queue, in place, to the plain handles to take back (the
    /// encoding is described in `shared.rs`). Other pools: the queue as is.
    #[inline]
    fn samples<'q>(&self, pool: &mut Pool, queue: &'q mut [Handle]) -> &'q [Handle] {
        if !self.adaptive {
            return queue;
        }
        let mut now = None;
        let (mut read, mut write) = (0, 0);
        while read < queue.len() {
            let word = queue[read];
            read += 1;
            // A plain handle is below 2^31; a tag is !handle (negative as
            // an Int32).
            let handle = if word < 0x8000_0000 {
                word
            } else {
                let handle = !word;
                if let Some(&duration) = queue.get(read) {
                    read += 1;
                    let duration = u64::try_from(duration as i32).unwrap_or(0);
                    let now = *now.get_or_insert_with(|| self.origin.elapsed().as_micros() as u64);
                    pool.record_sample(handle, duration, now);
                }
                handle
            };
            queue[write] = handle;
            write += 1;
        }
        &queue[..write]
    }

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
        let lent = self.with_queue(|pool, queued, _| {
            let queued = self.samples(pool, queued);
            pool.release_all_then_lease(queued)
        })?;
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

/// A handle as JavaScript passes it: a non-negative integer number.
fn handle_from(value: f64) -> Option<Handle> {
    (value >= 0.0 && value <= f64::from(Handle::MAX) && value.fract() == 0.0)
        .then_some(value as Handle)
}
