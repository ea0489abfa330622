//! The memory a pool shares with JavaScript, and the pool that owns it.
//!
//! A call into native code costs about as much as a whole get+return on a
//! plain JavaScript heap, and every number argument costs more again. So the
//! hot entry points take no arguments: JavaScript writes operands into this
//! block, reads results from it, and queues returned handles here for the next
//! crossing to apply. `index.js` mirrors the layout below; change both together.

use callosum_pool::{Handle, Offer, Pool, Release, State};
use std::cell::{RefCell, UnsafeCell};

/// Returned handles JavaScript may queue before it must flush.
pub const QUEUE_CAP: usize = 1024;

/// `io` (a `Float64Array` over bytes 0..64): operands and results.
pub const IO_SLOT: usize = 0; // offer: the slot offered
pub const IO_LEASE: usize = 1; // offer: 1 = lend at once (a waiter takes it)
pub const IO_HANDLE: usize = 2; // offer: the kept handle; release, remove: the handle
pub const IO_VICTIM: usize = 3; // offer: the displaced handle, or -1
pub const IO_VICTIM_SLOT: usize = 4; // offer: displaced slot, or the highest slot when full
pub const IO_VICTIM_LEASED: usize = 5; // offer: 1 if the displaced entry is lent out
pub const IO_LEN: usize = 8;

/// `meta` (a `Uint32Array` from byte 64): counters, then the return queue.
pub const META_QUEUE_LEN: usize = 0; // written by JavaScript, reset by Rust
pub const META_SLOT_COUNT: usize = 1; // written by Rust after every call
pub const META_RESULT: usize = 2; // lease: the handle lent, or u32::MAX (-1 in an Int32Array); offer: its code
pub const META_QUEUE: usize = 4; // first queued handle
pub const META_LEN: usize = META_QUEUE + QUEUE_CAP;

/// Result codes of `offer`.
pub const OFFER_KEPT: u32 = 0;
pub const OFFER_FULL: u32 = 1;
pub const OFFER_CLOSED: u32 = 2;
pub const OFFER_BAD_SLOT: u32 = 3;

#[repr(C)]
pub struct Shared {
    pub io: [f64; IO_LEN],
    pub meta: [u32; META_LEN],
}

/// One pool and its shared block. Lives in an `Rc`, so the block's address is
/// stable for as long as JavaScript holds a view of it.
pub struct Core {
    pool: RefCell<Pool>,
    shared: UnsafeCell<Shared>,
}

impl Core {
    pub fn new(max_slots: usize) -> Self {
        Self {
            pool: RefCell::new(Pool::new(max_slots)),
            shared: UnsafeCell::new(Shared {
                io: [0.0; IO_LEN],
                meta: [0; META_LEN],
            }),
        }
    }

    pub fn shared_ptr(&self) -> *mut Shared {
        self.shared.get()
    }

    /// Borrows the shared block.
    ///
    /// # Safety
    /// JavaScript runs on this thread only between native calls, so nothing
    /// else touches the block while the returned borrow lives; callers keep
    /// it within one native call and never hold two at once.
    #[allow(clippy::mut_from_ref)]
    unsafe fn shared(&self) -> &mut Shared {
        &mut *self.shared.get()
    }

    /// Applies the returns JavaScript queued since the last crossing, then
    /// runs `f`, then publishes the slot count. Every entry point goes through
    /// here, so the pool is always up to date before it decides anything.
    pub fn with_pool<R>(&self, f: impl FnOnce(&mut Pool, &mut [f64; IO_LEN]) -> R) -> Option<R> {
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
    /// publishes the slot count. `None` on a reentrant call.
    fn with_queue<R>(
        &self,
        f: impl FnOnce(&mut Pool, &[Handle], &mut [f64; IO_LEN]) -> R,
    ) -> Option<R> {
        let mut pool = self.pool.try_borrow_mut().ok()?;
        // SAFETY: see `shared`; this is the only borrow during this call.
        let Shared { io, meta } = unsafe { self.shared() };
        let queued = (meta[META_QUEUE_LEN] as usize).min(QUEUE_CAP);
        let out = f(&mut pool, &meta[META_QUEUE..META_QUEUE + queued], io);
        meta[META_QUEUE_LEN] = 0;
        meta[META_SLOT_COUNT] = pool.slot_count() as u32;
        Some(out)
    }

    /// `lease`: applies the queued returns and lends the lowest idle handle
    /// (or none: -1).
    pub fn lease(&self) -> Option<()> {
        let lent = self.with_queue(|pool, queued, _| pool.release_all_then_lease(queued))?;
        self.set_result(lent.unwrap_or(u32::MAX));
        Some(())
    }

    /// `flush`: applies the queued returns.
    pub fn flush(&self) -> Option<()> {
        self.with_pool(|_, _| ())
    }

    /// `release`: takes back the handle in `io[IO_HANDLE]`: 0 idle again,
    /// 1 destroy its socket (displaced, or the pool is closed), -1 not lent.
    pub fn release(&self) -> Option<()> {
        self.decide(
            |pool, io| match handle_from(io[IO_HANDLE]).map(|h| pool.release(h)) {
                Some(Ok(Release::Idle)) => 0,
                Some(Ok(Release::Destroy)) => 1,
                _ => u32::MAX,
            },
        )
    }

    /// `remove`: forgets the handle in `io[IO_HANDLE]`, whose socket died.
    /// Returns the state it was in, or 0 (free) if it was not in use.
    pub fn remove(&self) -> Option<()> {
        self.decide(
            |pool, io| match handle_from(io[IO_HANDLE]).map(|h| pool.remove(h)) {
                Some(Ok(state)) => state_code(state),
                _ => 0,
            },
        )
    }

    /// Runs `f` as `with_pool` does and leaves its code in `META_RESULT`.
    fn decide(&self, f: impl FnOnce(&mut Pool, &mut [f64; IO_LEN]) -> u32) -> Option<()> {
        let code = self.with_pool(f)?;
        self.set_result(code);
        Some(())
    }

    fn set_result(&self, value: u32) {
        // SAFETY: see `shared`; called after the call's borrow ended.
        unsafe { self.shared().meta[META_RESULT] = value };
    }

    /// `offer`: reads `io[IO_SLOT]` and `io[IO_LEASE]`, writes the decision.
    pub fn offer(&self) -> Option<()> {
        self.decide(|pool, io| {
            let slot = io[IO_SLOT];
            if !(slot >= 0.0 && slot.fract() == 0.0 && slot <= callosum_pool::MAX_SLOT as f64) {
                return OFFER_BAD_SLOT;
            }
            match pool.offer(slot as u64, io[IO_LEASE] != 0.0) {
                Ok(Offer::Kept { handle, displaced }) => {
                    io[IO_HANDLE] = handle as f64;
                    match displaced {
                        Some(d) => {
                            io[IO_VICTIM] = d.handle as f64;
                            io[IO_VICTIM_SLOT] = d.slot as f64;
                            io[IO_VICTIM_LEASED] = d.was_leased as u8 as f64;
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
        })
    }
}

/// A handle as JavaScript passes it: a non-negative integer number.
fn handle_from(value: f64) -> Option<Handle> {
    (value >= 0.0 && value <= Handle::MAX as f64 && value.fract() == 0.0).then_some(value as Handle)
}

/// Handle states as JavaScript sees them (lib/native.js).
fn state_code(state: State) -> u32 {
    match state {
        State::Free => 0,
        State::Idle => 1,
        State::Leased => 2,
        State::Displaced => 3,
    }
}
