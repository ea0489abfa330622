//! The Callosum connection pool, in plain Rust with no I/O.
//!
//! A Callosum server numbers its connections with the lowest free slot. A
//! client pool keeps at most `max_slots` connections, keeps the lowest slots it
//! is offered, and always lends the idle connection with the lowest slot: busy
//! servers hand out high slots, lose against quieter servers, and the fleet
//! balances itself.
//!
//! The pool deals in *handles*: small integers, reused through a free list,
//! that the caller maps to its sockets. Two indexed heaps hold them: a
//! min-heap of idle entries (which one to lend) and a max-heap of every kept
//! entry, idle or leased (which one to displace). Both remove any entry in
//! O(log n), so nothing stale is ever left behind.
//!
//! An opt-in adaptive mode (`Pool::new_adaptive`, `adaptive.rs`) ranks
//! entries by an *effective slot* instead: the slot scaled by how long the
//! entry's server keeps its connections lent, compared with the other
//! servers. With it off, nothing on the hot paths changes but one
//! never-taken branch.

mod adaptive;
mod heap;

use adaptive::Adaptive;
pub use adaptive::{AdaptiveConfig, Reference, ServerInfo};
use heap::IndexedHeap;

/// A pool entry's name, valid from keep to free.
pub type Handle = u32;

/// Where a handle stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not in use (on the free list, or never allocated).
    Free,
    /// Kept and ready to lend.
    Idle,
    /// Kept and lent out.
    Leased,
    /// Lent out when a lower slot took its place: no longer kept, to be
    /// destroyed when returned.
    Displaced,
}

/// The entry that a newly kept one pushed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Displacement {
    pub handle: Handle,
    pub slot: u64,
    /// `false`: it was idle and is now freed (destroy its socket now).
    /// `true`: it is lent out and now `Displaced` (destroy it when returned).
    pub was_leased: bool,
}

/// What `offer` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Kept under `handle`, possibly at the cost of `displaced`.
    Kept {
        handle: Handle,
        displaced: Option<Displacement>,
    },
    /// Not kept: the pool is full and its highest slot, `highest`, is lower
    /// than or equal to the offered one. (Adaptive: its highest *effective*
    /// slot is; `highest` is that entry's plain slot.)
    Full { highest: u64 },
    /// Not kept: the pool is closed.
    Closed,
}

/// What became of a returned handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Idle again, ready to lend.
    Idle,
    /// Freed: it was displaced or the pool is closed; destroy its socket.
    Destroy,
}

/// A call that does not fit the handle's state. The pool is left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misuse {
    /// `release` of a handle that is not lent out.
    NotLeased(Handle, State),
    /// `remove` of a handle that is not in use.
    NotInUse(Handle),
    /// A slot beyond what a JavaScript number holds exactly.
    SlotTooLarge(u64),
}

/// Counts a user can log or export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub max_slots: usize,
    /// Kept entries, idle or leased: the slots held.
    pub slot_count: usize,
    pub idle: usize,
    pub leased: usize,
    pub displaced: usize,
    pub lowest: Option<u64>,
    pub highest: Option<u64>,
    pub closed: bool,
}

/// What the pool decided since it was made: cumulative, never reset, counted
/// where each decision is taken (one add, no extra call). Every count is
/// monotonic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Idle entries lent out by `lease` or `release_all_then_lease` (a
    /// returned entry lent straight back counts as a return and a lease).
    /// An offer kept and lent at once is counted in `offers_kept` only.
    pub leases: u64,
    /// Lent entries taken back idle (`release`, or a batch applied by
    /// `release_all_then_lease`).
    pub returns: u64,
    /// Lent entries taken back to be destroyed: displaced while lent, or
    /// returned after `close`.
    pub returns_destroyed: u64,
    /// Offers kept, displacing or not, idle or lent at once.
    pub offers_kept: u64,
    /// The part of `offers_kept` that displaced a kept entry (idle or lent).
    pub offers_displacing: u64,
    /// Offers not kept: the pool was full of lower or equal slots, or closed.
    /// (A slot beyond `MAX_SLOT` is a misuse, not an offer: not counted.)
    pub offers_refused: u64,
    /// Entries removed by `remove` (their connection died) while idle.
    pub dropped_idle: u64,
    /// Entries removed by `remove` while lent out, displaced ones included.
    pub dropped_leased: u64,
}

/// The largest slot accepted: `Number.MAX_SAFE_INTEGER`.
pub const MAX_SLOT: u64 = (1 << 53) - 1;

#[derive(Debug)]
pub struct Pool {
    max_slots: usize,
    /// Idle entries, lowest slot on top.
    idle: IndexedHeap<false>,
    /// Every kept entry (idle or leased), highest slot on top.
    kept: IndexedHeap<true>,
    /// Each handle's heap key: its slot, or in adaptive mode its effective
    /// slot in fixed point (the plain slot is then kept in `adaptive`). The
    /// hot paths only ever deal in keys, so they are the same in both modes.
    slot: Vec<u64>,
    state: Vec<State>,
    free: Vec<Handle>,
    displaced: usize,
    closed: bool,
    counters: Counters,
    /// The adaptive mode's state; `None` when off.
    adaptive: Option<Box<Adaptive>>,
}

impl Pool {
    /// A pool that keeps at most `max_slots` (at least 1) connections.
    pub fn new(max_slots: usize) -> Self {
        Self {
            max_slots: max_slots.max(1),
            idle: IndexedHeap::new(),
            kept: IndexedHeap::new(),
            slot: Vec::new(),
            state: Vec::new(),
            free: Vec::new(),
            displaced: 0,
            closed: false,
            counters: Counters::default(),
            adaptive: None,
        }
    }

    pub fn max_slots(&self) -> usize {
        self.max_slots
    }

    /// Slots held: kept entries, idle or leased, not displaced.
    #[inline]
    pub fn slot_count(&self) -> usize {
        self.kept.len()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The lowest slot an offer is refused at for want of room: the highest
    /// kept slot when the pool is full, `None` while it has room (or is
    /// closed, which refuses everything). An offer below it displaces.
    pub fn refuse_from(&self) -> Option<u64> {
        if self.closed || self.kept.len() < self.max_slots {
            return None;
        }
        let (key, _) = self.kept.peek()?;
        match &self.adaptive {
            None => Some(key),
            Some(a) => Some(a.refuse_from(key)),
        }
    }

    pub fn state(&self, handle: Handle) -> State {
        self.state
            .get(handle as usize)
            .copied()
            .unwrap_or(State::Free)
    }

    /// The slot of a handle in use.
    pub fn slot(&self, handle: Handle) -> Option<u64> {
        (self.state(handle) != State::Free).then(|| self.plain_slot(handle))
    }

    /// A handle's plain slot (its key when not adaptive).
    #[inline]
    fn plain_slot(&self, handle: Handle) -> u64 {
        match &self.adaptive {
            None => self.slot[handle as usize],
            Some(a) => a.raw_slot(handle),
        }
    }

    /// Offers a new connection on `slot`. With `lease`, a kept entry is lent
    /// at once instead of going idle (a waiter takes it). In adaptive mode
    /// the entry belongs to no server (weight 1, no samples): use
    /// `offer_on`.
    pub fn offer(&mut self, slot: u64, lease: bool) -> Result<Offer, Misuse> {
        self.offer_from(None, slot, lease)
    }

    /// `offer` of a connection to `server` (the caller's small integer name
    /// for it). Without adaptive mode the server is ignored.
    pub fn offer_on(&mut self, server: u32, slot: u64, lease: bool) -> Result<Offer, Misuse> {
        self.offer_from(Some(server), slot, lease)
    }

    fn offer_from(&mut self, server: Option<u32>, slot: u64, lease: bool) -> Result<Offer, Misuse> {
        if slot > MAX_SLOT {
            return Err(Misuse::SlotTooLarge(slot));
        }
        if self.closed {
            self.counters.offers_refused += 1;
            return Ok(Offer::Closed);
        }
        // The heap key: the slot, or adaptive, the effective slot.
        let key = match &self.adaptive {
            None => slot,
            Some(a) => a.key_for(server, slot),
        };
        let state = if lease { State::Leased } else { State::Idle };
        if self.kept.len() < self.max_slots {
            let handle = self.allocate(key);
            self.state[handle as usize] = state;
            self.kept.push(key, handle);
            if !lease {
                self.idle.push(key, handle);
            }
            self.attach(handle, server, slot, lease);
            self.counters.offers_kept += 1;
            return Ok(Offer::Kept {
                handle,
                displaced: None,
            });
        }
        let (highest, victim) = self.kept.peek().expect("a full pool has a highest slot");
        if highest <= key {
            self.counters.offers_refused += 1;
            let highest = self.plain_slot(victim);
            return Ok(Offer::Full { highest });
        }
        self.counters.offers_kept += 1;
        self.counters.offers_displacing += 1;
        let highest = self.plain_slot(victim);
        // Allocate before freeing the victim, so the two handles differ. The
        // new entry takes the victim's place in each heap in one sift.
        let handle = self.allocate(key);
        self.state[handle as usize] = state;
        self.kept.replace(victim, key, handle);
        self.unkept(victim);
        self.attach(handle, server, slot, lease);
        let was_leased = match self.state[victim as usize] {
            State::Idle if lease => {
                self.idle.remove(victim);
                false
            }
            State::Idle => {
                self.idle.replace(victim, key, handle);
                false
            }
            State::Leased => {
                if !lease {
                    self.idle.push(key, handle);
                }
                true
            }
            s => unreachable!("kept heap held a {s:?} entry"),
        };
        if was_leased {
            self.state[victim as usize] = State::Displaced;
            self.displaced += 1;
        } else {
            self.release_handle(victim);
        }
        let displaced = Some(Displacement {
            handle: victim,
            slot: highest,
            was_leased,
        });
        Ok(Offer::Kept { handle, displaced })
    }

    /// Lends the idle entry with the lowest slot.
    #[inline]
    pub fn lease(&mut self) -> Option<Handle> {
        let (_, handle) = self.idle.pop()?;
        self.state[handle as usize] = State::Leased;
        self.counters.leases += 1;
        self.note_lease(handle);
        Some(handle)
    }

    /// Adaptive mode: counts the lease for its server and notes when it
    /// was lent. Off: one never-taken branch.
    #[inline(always)]
    fn note_lease(&mut self, handle: Handle) {
        if let Some(a) = self.adaptive.as_deref_mut() {
            a.leased(handle);
        }
    }

    /// Takes back the lent entries in `returned`, then lends the idle entry
    /// with the lowest slot: the same as `release` of each then `lease`, but a
    /// returned entry that would be lent straight away never goes through the
    /// heap (a get+return+get loop costs no heap work at all). Handles that
    /// are not lent out are skipped, as `release` would refuse them.
    pub fn release_all_then_lease(&mut self, returned: &[Handle]) -> Option<Handle> {
        // The best returned candidate, held aside from the heap.
        let mut best: Option<(u64, Handle)> = None;
        for &h in returned {
            if best.is_some_and(|(_, b)| b == h) {
                continue; // returned twice in one batch: the second is refused
            }
            if self.state(h) != State::Leased || self.closed {
                // Displaced, closed or bogus: `release` decides (it frees or
                // refuses), nothing to lend.
                let _ = self.release(h);
                continue;
            }
            self.counters.returns += 1;
            let key = (self.slot[h as usize], h);
            match best {
                Some(b) if b <= key => self.push_idle(key),
                Some(b) => {
                    self.push_idle(b);
                    best = Some(key);
                }
                None => best = Some(key),
            }
        }
        match (best, self.idle.peek()) {
            (Some(b), Some(top)) if top < b => {
                self.push_idle(b);
                self.lease()
            }
            // The held-aside entry is still `Leased`: lending it is a no-op.
            (Some((_, h)), _) => {
                self.counters.leases += 1;
                self.note_lease(h);
                Some(h)
            }
            (None, _) => self.lease(),
        }
    }

    #[inline]
    fn push_idle(&mut self, (slot, handle): (u64, Handle)) {
        self.state[handle as usize] = State::Idle;
        self.idle.push(slot, handle);
    }

    /// Takes back a lent entry.
    #[inline]
    pub fn release(&mut self, handle: Handle) -> Result<Release, Misuse> {
        match self.state(handle) {
            State::Leased if !self.closed => {
                self.push_idle((self.slot[handle as usize], handle));
                self.counters.returns += 1;
                Ok(Release::Idle)
            }
            State::Leased => {
                self.kept.remove(handle);
                self.unkept(handle);
                self.release_handle(handle);
                self.counters.returns_destroyed += 1;
                Ok(Release::Destroy)
            }
            State::Displaced => {
                self.displaced -= 1;
                self.release_handle(handle);
                self.counters.returns_destroyed += 1;
                Ok(Release::Destroy)
            }
            s => Err(Misuse::NotLeased(handle, s)),
        }
    }

    /// Forgets an entry whose connection died, freeing its slot (unless it was
    /// displaced, which had already given its slot away). Returns the state it
    /// was in.
    pub fn remove(&mut self, handle: Handle) -> Result<State, Misuse> {
        let state = self.state(handle);
        match state {
            State::Free => return Err(Misuse::NotInUse(handle)),
            State::Idle => {
                self.idle.remove(handle);
                self.kept.remove(handle);
                self.unkept(handle);
                self.counters.dropped_idle += 1;
            }
            State::Leased => {
                self.kept.remove(handle);
                self.unkept(handle);
                self.counters.dropped_leased += 1;
            }
            State::Displaced => {
                self.displaced -= 1;
                self.counters.dropped_leased += 1;
            }
        }
        self.release_handle(handle);
        Ok(state)
    }

    /// Closes the pool: nothing is kept or lent from now on. Frees and returns
    /// the idle entries (destroy them now); leased ones are destroyed when
    /// returned. Closing twice returns nothing the second time.
    pub fn close(&mut self) -> Vec<Handle> {
        self.closed = true;
        let idle: Vec<Handle> = self.idle.iter().map(|(_, h)| h).collect();
        self.idle.clear();
        for &h in &idle {
            self.kept.remove(h);
            self.unkept(h);
            self.release_handle(h);
        }
        idle
    }

    pub fn stats(&self) -> Stats {
        let slot_count = self.kept.len();
        let idle = self.idle.len();
        if self.adaptive.is_some() {
            // Keys are effective slots here: report plain ones.
            let plain = || self.kept.iter().map(|(_, h)| self.plain_slot(h));
            return Stats {
                max_slots: self.max_slots,
                slot_count,
                idle,
                leased: slot_count - idle,
                displaced: self.displaced,
                lowest: plain().min(),
                highest: plain().max(),
                closed: self.closed,
            };
        }
        Stats {
            max_slots: self.max_slots,
            slot_count,
            idle,
            leased: slot_count - idle,
            displaced: self.displaced,
            lowest: self.kept.iter().map(|(s, _)| s).min(),
            highest: self.kept.peek().map(|(s, _)| s),
            closed: self.closed,
        }
    }

    /// The cumulative counts of this pool's decisions.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Handles in use, i.e. a bound on the caller's handle table.
    pub fn handles_in_use(&self) -> usize {
        self.state.len() - self.free.len()
    }

    fn allocate(&mut self, slot: u64) -> Handle {
        match self.free.pop() {
            Some(h) => {
                self.slot[h as usize] = slot;
                h
            }
            None => {
                let h = Handle::try_from(self.state.len()).expect("more than 2^32 handles");
                self.slot.push(slot);
                self.state.push(State::Free);
                h
            }
        }
    }

    fn release_handle(&mut self, handle: Handle) {
        self.state[handle as usize] = State::Free;
        self.free.push(handle);
        if let Some(a) = self.adaptive.as_deref_mut() {
            a.freed(handle);
        }
    }

    /// Adaptive mode: an entry was kept under `handle`, on `server`.
    #[inline]
    fn attach(&mut self, handle: Handle, server: Option<u32>, slot: u64, lease: bool) {
        if let Some(a) = self.adaptive.as_deref_mut() {
            a.attach(handle, server, slot);
            if lease {
                a.leased(handle);
            }
        }
    }

    /// Adaptive mode: `handle` left the kept heap (freed or displaced).
    #[inline]
    fn unkept(&mut self, handle: Handle) {
        if let Some(a) = self.adaptive.as_deref_mut() {
            a.unkept(handle);
        }
    }

    /// Checks every invariant (tests only): heaps hold exactly the idle and
    /// kept entries, nothing exceeds `max_slots`, handles are accounted for.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let count = |s: State| self.state.iter().filter(|&&x| x == s).count();
        let (idle, leased, displaced) = (
            count(State::Idle),
            count(State::Leased),
            count(State::Displaced),
        );
        assert_eq!(self.idle.len(), idle, "idle heap size");
        assert_eq!(self.kept.len(), idle + leased, "kept heap size");
        assert_eq!(self.displaced, displaced, "displaced count");
        assert!(self.kept.len() <= self.max_slots, "over max_slots");
        assert_eq!(self.free.len(), count(State::Free), "free list");
        for (h, &s) in self.state.iter().enumerate() {
            let h = h as Handle;
            assert_eq!(
                self.idle.contains(h),
                s == State::Idle,
                "idle membership of {h}"
            );
            assert_eq!(
                self.kept.contains(h),
                matches!(s, State::Idle | State::Leased),
                "kept membership of {h}"
            );
        }
        if self.closed {
            assert_eq!(idle, 0, "idle entries in a closed pool");
        }
        if let Some(a) = &self.adaptive {
            a.check(&self.state, &self.slot);
        }
    }
}

#[cfg(test)]
mod adaptive_tests;
#[cfg(test)]
mod tests;
