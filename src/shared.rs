//! The memory a pool shares with JavaScript: its layout and result codes.
//!
//! A call into native code costs about as much as a whole get+return on a
//! plain JavaScript heap, and every number argument costs more again. So the
//! hot entry points take no arguments: JavaScript writes operands into this
//! block, reads results from it, and queues returned handles here for the next
//! crossing to apply.
//!
//! Every index, length and code JavaScript uses is defined once, below, and
//! exported by name through `layout()`: `lib/native.js` reads them from there
//! and hard-codes none (`__test__/native-layout.test.js` checks both sides
//! agree, operation by operation).
//!
//! ## The return queue, and lease samples (adaptive pools)
//!
//! `meta[META_QUEUE..META_QUEUE + meta[META_QUEUE_LEN]]` holds the handles
//! JavaScript returned since the last crossing, one word each, applied in
//! order by the next crossing. An *adaptive* pool (`new NativePool(maxSlots,
//! true)`) also takes *sampled* returns: JavaScript times some leases (about
//! 1 in 8 or 16: a clock read costs ~40 ns there) and queues such a return
//! as two words:
//!
//! ```text
//!   -(handle + 1)     (as Int32: i.e. !handle, always negative)
//!   duration_us       (Int32, the lease's length in microseconds, clamped
//!                      by JavaScript to 0..=SAMPLE_MAX_US)
//! ```
//!
//! and adds 1 to `meta[META_SAMPLES]` (any non-zero value marks the batch).
//! A plain handle is never negative, so in a marked batch Rust tells the two
//! apart by the sign while it applies the batch: it records the sample, then
//! takes the handle back as any other. A lease that ends in a hand-off to a
//! waiter of `acquire()` (the socket goes straight to its next user, still
//! lent) is sampled without a return: its duration word is written
//! complemented (`!duration_us`, negative as an Int32), and Rust records the
//! sample and leaves the handle lent. So the crossing count does not
//! change, and a batch with no sample (7 in 8 or more) costs the adaptive
//! pool one load and compare more, not a decoding pass. Rust resets
//! `META_SAMPLES` with `META_QUEUE_LEN`. The time of
//! the samples (for the estimator's decay) is `io[IO_CLOCK_MS]`: JavaScript
//! writes there the clock reading it took to time the lease (e.g.
//! `performance.now()`, milliseconds, any origin, never going back) whenever
//! it queues a sampled return; Rust reads it once per batch that carries a
//! sample. (Reading a clock in Rust costs 20-70 ns on this machine; the store
//! costs JavaScript nothing.) Left at 0, every sample counts with the
//! estimator's least weight instead of by time. JavaScript keeps one rule
//! for both kinds of word: write only while `n + 2 <= QUEUE_CAP`, i.e. flush
//! as soon as fewer than `QUEUE_SAMPLE_WORDS` words are left. A tag in the
//! last word with no duration after it is taken back without a sample. A batch not marked in `META_SAMPLES`, and
//! every batch of a pool that is not adaptive, is read as plain handles (a
//! tag would be refused as an unknown handle and its duration word taken
//! for a handle): JavaScript must mark every batch that has a sample, and
//! queue samples only to an adaptive pool.

use std::mem::{offset_of, size_of};

/// What a named constant is, for the layout probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An index into `Shared::io`.
    Io,
    /// An index into `Shared::meta`.
    Meta,
    /// An index into the control word (`fast.rs`).
    Control,
    /// A length, a byte offset or a result code.
    Value,
}

/// Defines each constant once, and `EXPORTED`: every one of them by name, as
/// `layout()` hands them to JavaScript.
macro_rules! exported {
    ($( $(#[$attr:meta])* $kind:ident $name:ident : $ty:ty = $value:expr; )*) => {
        $( $(#[$attr])* pub const $name: $ty = $value; )*

        /// Every constant of this module: (name, kind, value).
        pub const EXPORTED: &[(&str, Kind, u32)] = &[
            $( (stringify!($name), Kind::$kind, $name as u32), )*
        ];
    };
}

exported! {
    /// Returned handles JavaScript may queue before it must flush.
    Value QUEUE_CAP: usize = 1024;
    /// Words a sampled return takes in the queue (see the module's doc).
    Value QUEUE_SAMPLE_WORDS: usize = 2;
    /// The largest duration a sample carries, in microseconds (i32::MAX).
    Value SAMPLE_MAX_US: u32 = i32::MAX as u32;

    // `io`, a `Float64Array` at the start of the block: operands and results.
    /// offer: the slot offered.
    Io IO_SLOT: usize = 0;
    /// offer: 1 = lend at once (a waiter takes it).
    Io IO_LEASE: usize = 1;
    /// offer: the kept handle; release, remove: the handle.
    Io IO_HANDLE: usize = 2;
    /// offer: the displaced handle, or -1.
    Io IO_VICTIM: usize = 3;
    /// offer: the displaced slot, or the highest slot when refused as full.
    Io IO_VICTIM_SLOT: usize = 4;
    /// offer: 1 if the displaced entry is lent out.
    Io IO_VICTIM_LEASED: usize = 5;
    /// Written by Rust after every call: the lowest slot a full pool refuses
    /// (its highest kept slot), or +Infinity while it has room. JavaScript
    /// refuses such offers without a crossing. Adaptive: the lowest slot
    /// refused whatever the server (Rust may still refuse lower ones, as
    /// `OFFER_FULL`).
    Io IO_REFUSE_FROM: usize = 6;
    /// offer, adaptive pools only: the server the connection is to (the
    /// caller's small integer for a rover server id or an address:port),
    /// an integer in 0..=2^32-1. Not read when the pool is not adaptive.
    Io IO_SERVER: usize = 7;
    /// Adaptive pools: JavaScript's clock in milliseconds (a double, any
    /// origin, non-decreasing) as of the samples queued since the last
    /// crossing. See the module's doc.
    Io IO_CLOCK_MS: usize = 8;
    Value IO_LEN: usize = 10;

    // `meta`, an `Int32Array` after `io`: counters, then the return queue.
    /// Written by JavaScript, reset by Rust.
    Meta META_QUEUE_LEN: usize = 0;
    /// Written by Rust after every call.
    Meta META_SLOT_COUNT: usize = 1;
    /// lease: the handle lent, or u32::MAX (-1 in an Int32Array) if none;
    /// offer: its code (`OFFER_*`). release and remove leave nothing here.
    Meta META_RESULT: usize = 2;
    /// Adaptive pools: non-zero if the queued returns include sampled ones
    /// (JavaScript adds 1 per sampled return; reset by Rust).
    Meta META_SAMPLES: usize = 3;
    /// The first queued handle.
    Meta META_QUEUE: usize = 4;
    Value META_LEN: usize = META_QUEUE + QUEUE_CAP;

    /// Byte offsets and size of the block, for the views over it.
    Value IO_BYTE_OFFSET: usize = offset_of!(Shared, io);
    Value META_BYTE_OFFSET: usize = offset_of!(Shared, meta);
    Value SHARED_BYTES: usize = size_of::<Shared>();

    // Result codes of `offer`.
    Value OFFER_KEPT: u32 = 0;
    Value OFFER_FULL: u32 = 1;
    Value OFFER_CLOSED: u32 = 2;
    /// `io[IO_SLOT]` is not a non-negative safe integer.
    Value OFFER_BAD_SLOT: u32 = 3;
    /// Adaptive pools: `io[IO_SERVER]` is not an integer in 0..=2^32-1.
    Value OFFER_BAD_SERVER: u32 = 4;

    /// `control[CONTROL_POOL]`: the id of the pool the next call is for.
    Control CONTROL_POOL: usize = 0;
    Value CONTROL_LEN: usize = 4;
}

/// The block itself. `repr(C)`: JavaScript's views depend on the field order.
#[repr(C)]
pub struct Shared {
    pub io: [f64; IO_LEN],
    pub meta: [u32; META_LEN],
}

impl Shared {
    pub fn new() -> Self {
        let mut io = [0.0; IO_LEN];
        // A new pool has room: nothing is refused before the first call.
        io[IO_REFUSE_FROM] = f64::INFINITY;
        Self {
            io,
            meta: [0; META_LEN],
        }
    }
}

/// The tag the layout probe writes at a named index: a hash of the name, so
/// JavaScript can compute it too and check that its index for a name is the
/// one Rust writes at (`__test__/native-layout.test.js` mirrors it).
pub fn probe_tag(name: &str) -> u32 {
    let h = name
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    h % 1_000_000 + 1
}

/// A block with `probe_tag(name)` at every named `io` and `meta` index and
/// zero elsewhere, as bytes (for tests: see `layoutProbe` in lib.rs).
pub fn probe_bytes() -> Vec<u8> {
    let mut block = Shared::new();
    for &(name, kind, index) in EXPORTED {
        match kind {
            Kind::Io => block.io[index as usize] = f64::from(probe_tag(name)),
            Kind::Meta => block.meta[index as usize] = probe_tag(name),
            Kind::Control | Kind::Value => {}
        }
    }
    let mut bytes = vec![0u8; SHARED_BYTES];
    for (i, v) in block.io.iter().enumerate() {
        let at = IO_BYTE_OFFSET + i * size_of::<f64>();
        bytes[at..at + size_of::<f64>()].copy_from_slice(&v.to_ne_bytes());
    }
    for (i, v) in block.meta.iter().enumerate() {
        let at = META_BYTE_OFFSET + i * size_of::<u32>();
        bytes[at..at + size_of::<u32>()].copy_from_slice(&v.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_indices_are_distinct_and_in_bounds() {
        for kind in [Kind::Io, Kind::Meta, Kind::Control] {
            let len = match kind {
                Kind::Io => IO_LEN,
                Kind::Meta => META_QUEUE + 1,
                _ => CONTROL_LEN,
            };
            let mut seen = Vec::new();
            for &(name, k, index) in EXPORTED {
                if k == kind {
                    assert!((index as usize) < len, "{name} out of bounds");
                    assert!(!seen.contains(&index), "{name} shares its index");
                    seen.push(index);
                }
            }
        }
    }

    #[test]
    fn probe_tags_differ() {
        let mut tags: Vec<u32> = EXPORTED.iter().map(|e| probe_tag(e.0)).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), EXPORTED.len());
    }
}
