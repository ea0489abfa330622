//! Raw N-API entry points for the hot path, shared by every pool.
//!
//! A `#[napi]` class method costs 200-500 ns a call here (napi-rs tracks the
//! borrow of `self` on every call), several times a whole get+return. These
//! functions are plain N-API callbacks instead: no arguments, no `this`, no
//! return value.
//!
//! There is one set of them per thread, not one per pool: a call site in
//! JavaScript that meets a different function object for every pool turns
//! megamorphic, which measured 2.3 times slower with eight pools. So a pool
//! is named by a small id that JavaScript writes into a control word before
//! the call, and found here in a per-thread registry. An id that names no
//! live pool throws; it never reaches freed memory.
//!
//! One registry per thread means one per Node.js environment (the main
//! thread, or a worker).

use crate::core::{Core, Refused};
use crate::errors::{self, Class};
use crate::shared::{CONTROL_LEN, CONTROL_POOL};
use napi::{sys, Env};
use std::cell::{RefCell, UnsafeCell};
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

/// The live pools of one thread, by id, and the control word. The entry
/// points reach it through their data pointer (cheaper than a thread-local
/// lookup in a dynamically loaded library); pools register through the
/// thread-local `CURRENT`, off the hot path.
struct Registry {
    pools: RefCell<Vec<Option<Rc<Core>>>>,
    free: RefCell<Vec<u32>>,
    /// Written by JavaScript through an external ArrayBuffer, read here.
    control: UnsafeCell<[u32; CONTROL_LEN]>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Registry>>> = const { RefCell::new(None) };
}

fn current() -> Rc<Registry> {
    CURRENT.with(|c| {
        Rc::clone(c.borrow_mut().get_or_insert_with(|| {
            Rc::new(Registry {
                pools: RefCell::new(Vec::new()),
                free: RefCell::new(Vec::new()),
                control: UnsafeCell::new([0; CONTROL_LEN]),
            })
        }))
    })
}

/// Enters a pool in this thread's registry; returns its id.
pub fn register(core: Rc<Core>) -> u32 {
    let r = current();
    let mut pools = r.pools.borrow_mut();
    let reused = r.free.borrow_mut().pop();
    match reused {
        Some(id) => {
            pools[id as usize] = Some(core);
            id
        }
        None => {
            pools.push(Some(core));
            (pools.len() - 1) as u32
        }
    }
}

/// Forgets a pool (its `NativePool` was collected). Safe to call during
/// thread teardown, when the registry may be gone already.
pub fn unregister(id: u32) {
    let _ = CURRENT.try_with(|c| {
        let Ok(c) = c.try_borrow() else { return };
        let Some(r) = c.as_ref() else { return };
        let Ok(mut pools) = r.pools.try_borrow_mut() else {
            return;
        };
        if let Some(slot) = pools.get_mut(id as usize) {
            if slot.take().is_some() {
                r.free.borrow_mut().push(id);
            }
        }
    });
}

type Entry = fn(&Core) -> Result<(), Refused>;

/// Runs `entry` on the pool named by the control word. Results go to the
/// pool's shared block, not to a return value: creating a JavaScript number
/// costs a third of the whole crossing. An unknown pool, a reentrant call, a
/// poisoned pool or a panic throws (coded) instead of corrupting anything or
/// unwinding into V8.
///
/// # Safety
/// `env` and `info` must be those N-API passed to the callback being run,
/// during that call, and the callback's data pointer must be null or a
/// pointer made by `Rc::into_raw` of this thread's `Registry` that is still
/// owned by the function being called (as `entry_points` sets up).
unsafe fn dispatch(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    entry: Entry,
) -> sys::napi_value {
    let mut data: *mut c_void = ptr::null_mut();
    let mut argc = 0usize;
    // SAFETY: `env` and `info` are this callback's (the caller's contract);
    // with `argc` 0 N-API writes no argument, and the other out-pointers are
    // null (not wanted) or point to a local.
    let got = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut data,
        )
    };
    if got != sys::Status::napi_ok || data.is_null() {
        // SAFETY: `env` is live for this call.
        return unsafe {
            throw(
                env,
                errors::NATIVE,
                "native entry point called without its registry",
            )
        };
    }
    // SAFETY: a non-null `data` is the `Rc<Registry>` pointer this function
    // owns a strong reference to until its finalizer runs (the caller's
    // contract), so the registry is alive for this call; it is only read
    // through shared references.
    let registry = unsafe { &*(data as *const Registry) };
    // SAFETY: the control word is written by JavaScript only, and JavaScript
    // does not run during this call: no write races with this read.
    let id = unsafe { (*registry.control.get())[CONTROL_POOL] } as usize;
    // The borrow of the registry's table lasts the call (no pool can be
    // registered meanwhile: that takes JavaScript), and ends before any
    // throw (which allocates, and may let a finalizer unregister a pool).
    let (code, message) = {
        let pools = registry.pools.try_borrow();
        match pools.as_ref().ok().and_then(|p| p.get(id)?.as_ref()) {
            // A panic in a pool is caught by `Core::with_queue`, which
            // poisons it; this catch is the backstop that keeps any other
            // unwind out of V8.
            Some(core) => match catch_unwind(AssertUnwindSafe(|| entry(core))) {
                Ok(Ok(())) => return ptr::null_mut(), // undefined
                Ok(Err(refused)) => (
                    errors::refusal_code(refused),
                    errors::refusal_message(core, refused),
                ),
                Err(_) => (
                    errors::NATIVE,
                    "native entry point panicked outside a pool; this is a bug".to_owned(),
                ),
            },
            None => (
                errors::NATIVE,
                "native pool id names no live pool".to_owned(),
            ),
        }
    };
    // SAFETY: `env` is live for this call.
    unsafe { throw(env, code, &message) }
}

/// Throws a coded `Error`; returns what a callback returns after a throw.
///
/// # Safety
/// `env` must be the live environment of the current native call.
unsafe fn throw(env: sys::napi_env, code: &CStr, message: &str) -> sys::napi_value {
    // SAFETY: the caller's contract.
    unsafe { errors::throw_raw(env, Class::Error, code, message) };
    ptr::null_mut()
}

macro_rules! entry_point {
    ($name:ident, $entry:expr) => {
        /// # Safety
        /// Called by N-API only, as a function made by `entry_points`.
        unsafe extern "C" fn $name(
            env: sys::napi_env,
            info: sys::napi_callback_info,
        ) -> sys::napi_value {
            // SAFETY: N-API passes this callback's own `env` and `info`, and
            // `entry_points` gave the function a registry as its data.
            unsafe { dispatch(env, info, $entry) }
        }
    };
}

entry_point!(lease_cb, |core| core.lease());
entry_point!(offer_cb, |core| core.offer());
entry_point!(flush_cb, |core| core.flush());
entry_point!(release_cb, |core| core.release());
entry_point!(remove_cb, |core| core.remove());
entry_point!(panic_cb, |core| core.panic_for_tests());

/// Drops one strong reference to a registry: the finalizer of each function
/// and of the control buffer that `entry_points` made.
///
/// # Safety
/// `hint` must come from `Rc::into_raw` of an `Rc<Registry>`, and this must
/// be the one call that consumes it: each `Rc::into_raw` in `entry_points` is
/// matched by exactly one call, either by N-API as the finalizer of the value
/// that took ownership, or directly when making that value failed (then
/// N-API never registered the finalizer). A second call with the same
/// pointer would free the registry while others use it.
unsafe extern "C" fn drop_registry(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: the caller's contract: `hint` is an owned, not yet consumed
    // `Rc<Registry>` pointer.
    drop(unsafe { Rc::from_raw(hint as *const Registry) });
}

/// Turns a failed N-API status into a thrown `ERR_CALLOSUM_NATIVE`.
fn check(env: &Env, status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    let message = format!("could not create {what} (napi status {status})");
    Err(errors::throw(env, Class::Error, errors::NATIVE, &message))
}

/// Builds `{ lease, offer, flush, release, remove, control }` for this
/// thread: JavaScript makes it once per environment. With
/// `CALLOSUM_TEST_PANIC=1` in the environment, it also holds `__panic`, an
/// entry point that panics inside the pool (for the poisoning test only;
/// absent otherwise, so nothing else can reach it).
///
/// # Safety
/// `env` must be the live environment of the current native call, on its
/// thread.
pub unsafe fn entry_points(env: sys::napi_env) -> napi::Result<sys::napi_value> {
    // Live for this call: the caller's contract.
    let live = Env::from_raw(env);
    // In every N-API call below, `env` is live (the caller's contract),
    // names are NUL-terminated literals and out-pointers point to locals.
    let mut object = ptr::null_mut();
    // SAFETY: see above.
    let made = unsafe { sys::napi_create_object(env, &mut object) };
    check(&live, made, "object")?;
    let mut entries: Vec<(&CStr, sys::napi_callback)> = vec![
        (c"lease", Some(lease_cb)),
        (c"offer", Some(offer_cb)),
        (c"flush", Some(flush_cb)),
        (c"release", Some(release_cb)),
        (c"remove", Some(remove_cb)),
    ];
    if std::env::var_os("CALLOSUM_TEST_PANIC").is_some_and(|v| v == "1") {
        entries.push((c"__panic", Some(panic_cb)));
    }
    let registry = current();
    // Each function and the control buffer own a strong reference to the
    // registry, dropped by their finalizers.
    let share = || Rc::into_raw(Rc::clone(&registry)) as *mut c_void;
    for (name, cb) in entries {
        let data = share();
        let mut func = ptr::null_mut();
        // SAFETY: see above; `data` outlives the function (its finalizer
        // drops it).
        let made =
            unsafe { sys::napi_create_function(env, name.as_ptr(), -1, cb, data, &mut func) };
        if made != sys::Status::napi_ok {
            // SAFETY: no function took `data`; this is its one consumer.
            unsafe { drop_registry(env, ptr::null_mut(), data) };
            check(&live, made, "function")?;
        }
        // SAFETY: see above. From here the finalizer is the one consumer of
        // `data`.
        let finalizer = unsafe {
            sys::napi_add_finalizer(env, func, data, Some(drop_registry), data, ptr::null_mut())
        };
        check(&live, finalizer, "finalizer")?;
        // SAFETY: see above.
        let set = unsafe { sys::napi_set_named_property(env, object, name.as_ptr(), func) };
        check(&live, set, "property")?;
    }
    let hint = share();
    let mut buffer = ptr::null_mut();
    // SAFETY: see above. The memory is the registry's control word, which
    // lives as long as the registry; the buffer owns `hint`, a strong
    // reference to it, dropped by the finalizer.
    let made = unsafe {
        sys::napi_create_external_arraybuffer(
            env,
            registry.control.get() as *mut c_void,
            std::mem::size_of::<[u32; CONTROL_LEN]>(),
            Some(drop_registry),
            hint,
            &mut buffer,
        )
    };
    if made != sys::Status::napi_ok {
        // SAFETY: no buffer took `hint`; this is its one consumer.
        unsafe { drop_registry(env, ptr::null_mut(), hint) };
        check(&live, made, "control buffer")?;
    }
    // SAFETY: see above.
    let set = unsafe { sys::napi_set_named_property(env, object, c"control".as_ptr(), buffer) };
    check(&live, set, "property")?;
    Ok(object)
}

/// The pool's own shared block as an external ArrayBuffer. The buffer holds
/// a strong reference to the pool, dropped by its finalizer, so the memory
/// outlives every view of it.
///
/// # Safety
/// `env` must be the live environment of the current native call, on its
/// thread.
pub unsafe fn pool_buffer(env: sys::napi_env, core: &Rc<Core>) -> napi::Result<sys::napi_value> {
    // Live for this call: the caller's contract.
    let live = Env::from_raw(env);
    /// # Safety
    /// `hint` must be an `Rc<Core>` pointer from `Rc::into_raw`, consumed by
    /// this call only (N-API calls a finalizer once).
    unsafe extern "C" fn release_core(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
        // SAFETY: the contract above.
        drop(unsafe { Rc::from_raw(hint as *const Core) });
    }
    let hint = Rc::into_raw(Rc::clone(core)) as *mut c_void;
    let mut buffer = ptr::null_mut();
    // SAFETY: `env` is live (the caller's contract); the memory is the
    // core's block, which lives as long as the core, and the buffer owns
    // `hint`, a strong reference to the core, until its finalizer runs.
    let made = unsafe {
        sys::napi_create_external_arraybuffer(
            env,
            core.shared_ptr() as *mut c_void,
            std::mem::size_of::<crate::shared::Shared>(),
            Some(release_core),
            hint,
            &mut buffer,
        )
    };
    if made != sys::Status::napi_ok {
        // SAFETY: no buffer took `hint`; this is its one consumer.
        drop(unsafe { Rc::from_raw(hint as *const Core) });
        check(&live, made, "shared buffer")?;
    }
    Ok(buffer)
}
