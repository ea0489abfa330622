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

use crate::shared::Core;
use napi::sys;
use std::cell::{RefCell, UnsafeCell};
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

/// `control[CONTROL_POOL]`: the id of the pool the next call is for.
pub const CONTROL_POOL: usize = 0;
const CONTROL_LEN: usize = 4;

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

type Entry = fn(&Core) -> Option<()>;

/// Runs `entry` on the pool named by the control word. Results go to the
/// pool's shared block, not to a return value: creating a JavaScript number
/// costs a third of the whole crossing. An unknown pool, a reentrant call or
/// a panic throws instead of corrupting anything or unwinding into V8.
unsafe fn dispatch(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    entry: Entry,
) -> sys::napi_value {
    let mut data: *mut c_void = ptr::null_mut();
    let mut argc = 0usize;
    let got = sys::napi_get_cb_info(
        env,
        info,
        &mut argc,
        ptr::null_mut(),
        ptr::null_mut(),
        &mut data,
    );
    if got != sys::Status::napi_ok || data.is_null() {
        return throw(
            env,
            c"ERR_CALLOSUM_NATIVE",
            c"native entry point called without its registry",
        );
    }
    // SAFETY: `data` is the registry this function holds a strong reference
    // to (released by its finalizer); JavaScript does not run during this call.
    let registry = &*(data as *const Registry);
    let id = (*registry.control.get())[CONTROL_POOL] as usize;
    let outcome = (|| {
        let pools = registry.pools.try_borrow().ok()?;
        let core = pools.get(id)?.as_ref()?;
        Some(catch_unwind(AssertUnwindSafe(|| entry(core))))
    })();
    match outcome {
        Some(Ok(Some(()))) => ptr::null_mut(), // undefined
        None => throw(
            env,
            c"ERR_CALLOSUM_NATIVE",
            c"native pool id names no live pool",
        ),
        Some(Ok(None)) => throw(
            env,
            c"ERR_CALLOSUM_REENTRANT",
            c"native pool called while already in a call",
        ),
        Some(Err(_)) => throw(
            env,
            c"ERR_CALLOSUM_NATIVE",
            c"native pool panicked; this is a bug",
        ),
    }
}

unsafe fn throw(env: sys::napi_env, code: &CStr, msg: &CStr) -> sys::napi_value {
    sys::napi_throw_error(env, code.as_ptr(), msg.as_ptr());
    ptr::null_mut()
}

macro_rules! entry_point {
    ($name:ident, $entry:expr) => {
        unsafe extern "C" fn $name(
            env: sys::napi_env,
            info: sys::napi_callback_info,
        ) -> sys::napi_value {
            dispatch(env, info, $entry)
        }
    };
}

entry_point!(lease_cb, |core| core.lease());
entry_point!(offer_cb, |core| core.offer());
entry_point!(flush_cb, |core| core.flush());
entry_point!(release_cb, |core| core.release());
entry_point!(remove_cb, |core| core.remove());

unsafe extern "C" fn drop_registry(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    drop(Rc::from_raw(hint as *const Registry));
}

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::from_reason(format!(
            "could not create {what} (napi status {status})"
        )))
    }
}

/// Builds `{ lease, offer, flush, release, remove, control }` for this
/// thread: JavaScript makes it once per environment.
pub unsafe fn entry_points(env: sys::napi_env) -> napi::Result<sys::napi_value> {
    let mut object = ptr::null_mut();
    check(sys::napi_create_object(env, &mut object), "object")?;
    let entries: [(&CStr, sys::napi_callback); 5] = [
        (c"lease", Some(lease_cb)),
        (c"offer", Some(offer_cb)),
        (c"flush", Some(flush_cb)),
        (c"release", Some(release_cb)),
        (c"remove", Some(remove_cb)),
    ];
    let registry = current();
    // Each function and the control buffer own a strong reference to the
    // registry, dropped by their finalizers.
    let share = || Rc::into_raw(Rc::clone(&registry)) as *mut c_void;
    for (name, cb) in entries {
        let data = share();
        let mut func = ptr::null_mut();
        let made = sys::napi_create_function(env, name.as_ptr(), -1, cb, data, &mut func);
        if made != sys::Status::napi_ok {
            drop_registry(env, ptr::null_mut(), data);
            check(made, "function")?;
        }
        check(
            sys::napi_add_finalizer(env, func, data, Some(drop_registry), data, ptr::null_mut()),
            "finalizer",
        )?;
        check(
            sys::napi_set_named_property(env, object, name.as_ptr(), func),
            "property",
        )?;
    }
    let hint = share();
    let mut buffer = ptr::null_mut();
    let made = sys::napi_create_external_arraybuffer(
        env,
        registry.control.get() as *mut c_void,
        std::mem::size_of::<[u32; CONTROL_LEN]>(),
        Some(drop_registry),
        hint,
        &mut buffer,
    );
    if made != sys::Status::napi_ok {
        drop_registry(env, ptr::null_mut(), hint);
        check(made, "control buffer")?;
    }
    check(
        sys::napi_set_named_property(env, object, c"control".as_ptr(), buffer),
        "property",
    )?;
    Ok(object)
}

/// The pool's own shared block as an external ArrayBuffer. The buffer holds
/// a strong reference to the pool, dropped by its finalizer, so the memory
/// outlives every view of it.
pub unsafe fn pool_buffer(env: sys::napi_env, core: &Rc<Core>) -> napi::Result<sys::napi_value> {
    unsafe extern "C" fn release_core(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
        drop(Rc::from_raw(hint as *const Core));
    }
    let hint = Rc::into_raw(Rc::clone(core)) as *mut c_void;
    let mut buffer = ptr::null_mut();
    let made = sys::napi_create_external_arraybuffer(
        env,
        core.shared_ptr() as *mut c_void,
        std::mem::size_of::<crate::shared::Shared>(),
        Some(release_core),
        hint,
        &mut buffer,
    );
    if made != sys::Status::napi_ok {
        drop(Rc::from_raw(hint as *const Core));
        check(made, "shared buffer")?;
    }
    Ok(buffer)
}
