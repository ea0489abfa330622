//! Raw N-API entry points for the hot path.
//!
//! A `#[napi]` class method costs 200-500 ns a call here (napi-rs tracks the
//! borrow of `self` on every call), several times a whole get+return. These
//! functions are plain N-API callbacks instead: no arguments, no `this`, the
//! pool reached through the function's own data pointer. Each function owns a
//! strong reference to its pool, dropped by a finalizer when the function is
//! garbage collected, so no pointer outlives what it points to.

use crate::shared::{Core, Shared};
use napi::sys;
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

type Entry = fn(&Core) -> Option<()>;

/// Reads the pool behind a call and runs `entry` on it. Results go to the
/// shared block, not to a return value: creating a JavaScript number costs a
/// third of the whole crossing. A reentrant call or a panic throws instead of
/// corrupting anything or unwinding into V8.
unsafe fn dispatch(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    entry: Entry,
) -> sys::napi_value {
    let mut data: *mut c_void = ptr::null_mut();
    let mut argc = 0usize;
    if sys::napi_get_cb_info(
        env,
        info,
        &mut argc,
        ptr::null_mut(),
        ptr::null_mut(),
        &mut data,
    ) != sys::Status::napi_ok
        || data.is_null()
    {
        return throw(
            env,
            c"ERR_CALLOSUM_NATIVE",
            c"native pool entry point called without its pool",
        );
    }
    let core = &*(data as *const Core);
    match catch_unwind(AssertUnwindSafe(|| entry(core))) {
        Ok(Some(())) => ptr::null_mut(), // undefined
        Ok(None) => throw(
            env,
            c"ERR_CALLOSUM_REENTRANT",
            c"native pool called while already in a call",
        ),
        Err(_) => throw(
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

/// Drops the `Rc<Core>` a function or buffer held.
unsafe extern "C" fn release_core(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    drop(Rc::from_raw(hint as *const Core));
}

/// Builds `{ lease, offer, flush, release, remove, buffer }` for one pool. Each function
/// returns `undefined` and leaves its result in the buffer.
pub unsafe fn fast_path(env: sys::napi_env, core: &Rc<Core>) -> napi::Result<sys::napi_value> {
    let check = |status: sys::napi_status, what: &str| {
        if status == sys::Status::napi_ok {
            Ok(())
        } else {
            Err(napi::Error::from_reason(format!(
                "could not create {what} (napi status {status})"
            )))
        }
    };
    let mut object = ptr::null_mut();
    check(sys::napi_create_object(env, &mut object), "object")?;

    let entries: [(&CStr, sys::napi_callback); 5] = [
        (c"lease", Some(lease_cb)),
        (c"offer", Some(offer_cb)),
        (c"flush", Some(flush_cb)),
        (c"release", Some(release_cb)),
        (c"remove", Some(remove_cb)),
    ];
    for (name, cb) in entries {
        let data = Rc::into_raw(Rc::clone(core)) as *mut c_void;
        let mut func = ptr::null_mut();
        let made = sys::napi_create_function(env, name.as_ptr(), -1, cb, data, &mut func);
        if made != sys::Status::napi_ok {
            drop(Rc::from_raw(data as *const Core));
            check(made, "function")?;
        }
        check(
            sys::napi_add_finalizer(env, func, data, Some(release_core), data, ptr::null_mut()),
            "finalizer",
        )?;
        check(
            sys::napi_set_named_property(env, object, name.as_ptr(), func),
            "property",
        )?;
    }

    let hint = Rc::into_raw(Rc::clone(core)) as *mut c_void;
    let mut buffer = ptr::null_mut();
    let made = sys::napi_create_external_arraybuffer(
        env,
        core.shared_ptr() as *mut c_void,
        std::mem::size_of::<Shared>(),
        Some(release_core),
        hint,
        &mut buffer,
    );
    if made != sys::Status::napi_ok {
        drop(Rc::from_raw(hint as *const Core));
        check(made, "shared buffer")?;
    }
    check(
        sys::napi_set_named_property(env, object, c"buffer".as_ptr(), buffer),
        "property",
    )?;
    Ok(object)
}
