//! The napi-rs binding of the Callosum pool: one `NativePool` class owning one
//! `callosum_pool::Pool`, numbers only across the boundary. The hot operations
//! (lease, offer, release, remove, and applying queued returns) go through the
//! raw entry points of `fast.rs`, shared by all pools; the rare ones are
//! ordinary methods here.

mod fast;
mod shared;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use shared::Core;
use std::rc::Rc;

/// Counts of a pool, for logging and metrics.
#[napi(object)]
pub struct NativeStats {
    pub max_slots: f64,
    pub slot_count: u32,
    pub idle: u32,
    pub leased: u32,
    pub displaced: u32,
    pub lowest: Option<f64>,
    pub highest: Option<f64>,
    pub closed: bool,
}

#[napi]
pub struct NativePool {
    core: Rc<Core>,
    id: u32,
}

impl Drop for NativePool {
    fn drop(&mut self) {
        fast::unregister(self.id);
    }
}

/// `{ lease, offer, flush, release, remove, control }`: the argument-free hot
/// entry points shared by every pool of this thread, and the control word
/// that names the pool a call is for (see `fast.rs`). Made once per
/// environment.
#[napi(
    ts_return_type = "{ lease(): void; offer(): void; flush(): void; release(): void; remove(): void; control: ArrayBuffer }"
)]
pub fn entry_points(env: Env) -> Result<napi::sys::napi_value> {
    // SAFETY: `env` is the live environment of this call.
    unsafe { fast::entry_points(env.raw()) }
}

#[napi]
impl NativePool {
    /// A pool keeping at most `maxSlots` connections (a positive safe integer;
    /// `index.js` validates it with the user-facing error codes).
    #[napi(constructor)]
    pub fn new(max_slots: f64) -> Result<Self> {
        if !(max_slots >= 1.0
            && max_slots.fract() == 0.0
            && max_slots <= callosum_pool::MAX_SLOT as f64)
        {
            return Err(Error::new(
                Status::InvalidArg,
                format!("maxSlots must be a positive safe integer, got {max_slots}"),
            ));
        }
        let core = Rc::new(Core::new(max_slots as usize));
        let id = fast::register(Rc::clone(&core));
        Ok(Self { core, id })
    }

    /// The id that names this pool in the control word of the entry points.
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The memory this pool shares with JavaScript: operands, results and the
    /// queue of returned handles (layout in `shared.rs`).
    #[napi]
    pub fn buffer(&self, env: Env) -> Result<ArrayBuffer<'_>> {
        // SAFETY: `env` is the live environment of this call; the value made
        // is an ArrayBuffer.
        unsafe {
            let raw = fast::pool_buffer(env.raw(), &self.core)?;
            ArrayBuffer::from_napi_value(env.raw(), raw)
        }
    }

    /// Closes the pool and returns the idle handles it freed.
    #[napi]
    pub fn close(&self) -> Result<Vec<u32>> {
        self.call(|pool| pool.close())
    }

    #[napi]
    pub fn stats(&self) -> Result<NativeStats> {
        self.call(|pool| {
            let s = pool.stats();
            NativeStats {
                max_slots: s.max_slots as f64,
                slot_count: s.slot_count as u32,
                idle: s.idle as u32,
                leased: s.leased as u32,
                displaced: s.displaced as u32,
                lowest: s.lowest.map(|v| v as f64),
                highest: s.highest.map(|v| v as f64),
                closed: s.closed,
            }
        })
    }

    fn call<R>(&self, f: impl FnOnce(&mut callosum_pool::Pool) -> R) -> Result<R> {
        self.core.with_pool(|pool, _| f(pool)).ok_or_else(|| {
            Error::new(
                Status::GenericFailure,
                "ERR_CALLOSUM_REENTRANT: native pool already in a call",
            )
        })
    }
}
