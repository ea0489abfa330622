//! The napi-rs binding of the Callosum pool: one `NativePool` class owning one
//! `callosum_pool::Pool` (through a `Core`, `core.rs`), numbers only across
//! the boundary. The hot operations (lease, offer, release, remove, and
//! applying queued returns) go through the raw entry points of `fast.rs`,
//! shared by all pools; the rare ones are ordinary methods here. The memory
//! both sides share, and every index and code in it, is defined once in
//! `shared.rs` and handed to JavaScript by `layout()`. Errors are thrown with
//! their `code` (`errors.rs` lists them).

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod core;
mod errors;
mod fast;
mod shared;

use crate::core::Core;
use errors::Class;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A snapshot of a pool's state, for `client.stats()`. The pool's cumulative
/// counts are the client's (`client.counters()`, lib/counters.js): it sees
/// every outcome, including the hand-offs and refusals that never reach Rust,
/// so they are kept in one place. (`callosum_pool::Pool::counters()` keeps the
/// core's own, for Rust users such as the simulator.)
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

/// One server of an adaptive pool, for `client.servers()`.
#[napi(object)]
pub struct NativeServer {
    /// The caller's index for it (the `io[IO_SERVER]` of its offers).
    pub server: u32,
    /// Connections kept (idle or lent) from it.
    pub held: u32,
    /// Leases of its connections while the pool remembered it.
    pub leases: f64,
    /// How long its connections stay lent, as estimated, in milliseconds;
    /// absent before the first sample.
    pub estimate_ms: Option<f64>,
    /// The weight its slots are scaled by (1: as the reference server).
    pub weight: f64,
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
    ts_return_type = "{ lease(): void; offer(): void; flush(): void; release(): void; remove(): void; control: ArrayBuffer; __panic?(): void }"
)]
pub fn entry_points(env: Env) -> Result<napi::sys::napi_value> {
    // SAFETY: the `Env` of a `#[napi]` function is the live environment of
    // this call, on this thread.
    unsafe { fast::entry_points(env.raw()) }
}

/// Every index, length, byte offset and result code of the memory a pool
/// shares with JavaScript, by name (`shared.rs`): `lib/native.js` takes its
/// layout from here.
#[napi(ts_return_type = "Record<string, number>")]
pub fn layout() -> BTreeMap<&'static str, u32> {
    shared::EXPORTED
        .iter()
        .map(|&(name, _, value)| (name, value))
        .collect()
}

/// For tests: a block laid out as a pool's, with a tag (a hash of the name,
/// `shared::probe_tag`) at every named index of `io` and `meta`.
#[napi]
pub fn layout_probe(env: &Env) -> Result<ArrayBuffer<'_>> {
    ArrayBuffer::from_data(env, shared::probe_bytes())
}

#[napi]
impl NativePool {
    /// A pool keeping at most `maxSlots` connections: a positive safe
    /// integer (TypeError `ERR_INVALID_ARG_TYPE` if not a number, RangeError
    /// `ERR_OUT_OF_RANGE` if out of range). `adaptive` (a boolean, default
    /// false) turns on the adaptive mode: offers carry `io[IO_SERVER]` and
    /// the return queue may carry lease samples (`shared.rs`).
    #[napi(constructor, ts_args_type = "maxSlots: number, adaptive?: boolean")]
    pub fn new(
        env: Env,
        max_slots: Either<f64, Unknown<'_>>,
        adaptive: Option<Either<bool, Unknown<'_>>>,
    ) -> Result<Self> {
        let adaptive = match adaptive {
            None => false,
            Some(Either::A(on)) => on,
            Some(Either::B(other)) => match other.get_type() {
                Ok(ValueType::Undefined) => false,
                kind => {
                    let kind = kind.map_or("unknown".to_owned(), |t| t.to_string());
                    return Err(errors::throw(
                        &env,
                        Class::TypeError,
                        errors::INVALID_ARG_TYPE,
                        &format!("adaptive must be a boolean, received a value of type {kind}"),
                    ));
                }
            },
        };
        let max_slots = match max_slots {
            Either::A(n) => n,
            Either::B(other) => {
                let kind = other
                    .get_type()
                    .map_or("unknown".to_owned(), |t| t.to_string());
                return Err(errors::throw(
                    &env,
                    Class::TypeError,
                    errors::INVALID_ARG_TYPE,
                    &format!("maxSlots must be a number, received a value of type {kind}"),
                ));
            }
        };
        if !(max_slots >= 1.0
            && max_slots.fract() == 0.0
            && max_slots <= callosum_pool::MAX_SLOT as f64)
        {
            return Err(errors::throw(
                &env,
                Class::RangeError,
                errors::OUT_OF_RANGE,
                &format!("maxSlots must be a positive safe integer, received {max_slots}"),
            ));
        }
        let core = Rc::new(Core::new(max_slots as usize, adaptive));
        let id = fast::register(Rc::clone(&core));
        Ok(Self { core, id })
    }

    /// Whether the pool is adaptive.
    #[napi(getter)]
    pub fn adaptive(&self) -> bool {
        self.core.is_adaptive()
    }

    /// Adaptive pools: per server remembered, the connections held, leases,
    /// estimate and weight, by server index; empty otherwise. Rare path
    /// (applies the queued returns first, as every call does).
    #[napi]
    pub fn servers(&self, env: Env) -> Result<Vec<NativeServer>> {
        self.call(&env, |pool| {
            pool.servers()
                .into_iter()
                .map(|s| NativeServer {
                    server: s.server,
                    held: s.held,
                    leases: s.leases as f64,
                    estimate_ms: s.estimate_us.map(|us| us / 1000.0),
                    weight: s.weight,
                })
                .collect()
        })
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
        if self.core.is_poisoned() {
            return Err(self.refused(&env, core::Refused::Poisoned));
        }
        // SAFETY: the `Env` of a `#[napi]` method is the live environment of
        // this call, on this thread.
        let raw = unsafe { fast::pool_buffer(env.raw(), &self.core)? };
        // SAFETY: `raw` is a value of this environment, and an ArrayBuffer.
        unsafe { ArrayBuffer::from_napi_value(env.raw(), raw) }
    }

    /// Closes the pool and returns the idle handles it freed.
    #[napi]
    pub fn close(&self, env: Env) -> Result<Vec<u32>> {
        self.call(&env, |pool| pool.close())
    }

    #[napi]
    pub fn stats(&self, env: Env) -> Result<NativeStats> {
        self.call(&env, |pool| {
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

    /// Runs `f` on the pool (after the queued returns), or throws why not.
    fn call<R>(&self, env: &Env, f: impl FnOnce(&mut callosum_pool::Pool) -> R) -> Result<R> {
        self.core
            .with_pool(|pool, _| f(pool))
            .map_err(|refused| self.refused(env, refused))
    }

    fn refused(&self, env: &Env, refused: core::Refused) -> Error {
        errors::throw(
            env,
            Class::Error,
            errors::refusal_code(refused),
            &errors::refusal_message(&self.core, refused),
        )
    }
}
