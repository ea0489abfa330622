//! Every error the native side throws, with its `code` (the JavaScript
//! registry, `lib/errors.js`, lists the same codes).
//!
//! | code                     | class      | when                                              |
//! |--------------------------|------------|---------------------------------------------------|
//! | `ERR_INVALID_ARG_TYPE`   | TypeError  | `new NativePool(maxSlots)`: not a number          |
//! | `ERR_OUT_OF_RANGE`       | RangeError | `new NativePool(maxSlots)`: not a positive safe integer |
//! | `ERR_CALLOSUM_POISONED`  | Error      | a call panicked in this pool, or did earlier      |
//! | `ERR_CALLOSUM_REENTRANT` | Error      | a call on a pool already in a call (a bug)        |
//! | `ERR_CALLOSUM_NATIVE`    | Error      | anything else that should not happen: an entry point without its registry, a pool id naming no live pool, a panic outside a pool, N-API failing to make a value |

use crate::core::{Core, Refused};
use napi::{sys, Env, Error, Status};
use std::ffi::{CStr, CString};

pub const INVALID_ARG_TYPE: &CStr = c"ERR_INVALID_ARG_TYPE";
pub const OUT_OF_RANGE: &CStr = c"ERR_OUT_OF_RANGE";
pub const POISONED: &CStr = c"ERR_CALLOSUM_POISONED";
pub const REENTRANT: &CStr = c"ERR_CALLOSUM_REENTRANT";
pub const NATIVE: &CStr = c"ERR_CALLOSUM_NATIVE";

/// The JavaScript class of an error.
#[derive(Clone, Copy)]
pub enum Class {
    Error,
    TypeError,
    RangeError,
}

/// Throws a coded error in `env`. Safe to call with an exception pending:
/// N-API then keeps the pending one.
///
/// # Safety
/// `env` must be the live environment of the current native call, on its
/// thread.
pub unsafe fn throw_raw(env: sys::napi_env, class: Class, code: &CStr, message: &str) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: `env` is live (the caller's contract); both strings are
    // NUL-terminated and outlive the call, which copies them.
    unsafe {
        match class {
            Class::Error => sys::napi_throw_error(env, code.as_ptr(), message.as_ptr()),
            Class::TypeError => sys::napi_throw_type_error(env, code.as_ptr(), message.as_ptr()),
            Class::RangeError => sys::napi_throw_range_error(env, code.as_ptr(), message.as_ptr()),
        };
    }
}

/// Throws a coded error and returns the `Error` that tells napi-rs an
/// exception is pending (it then throws nothing more), for `#[napi]`
/// functions to return. `env` must be live: the one napi-rs hands a
/// `#[napi]` function, or one made from the raw `env` of a call in progress.
pub fn throw(env: &Env, class: Class, code: &CStr, message: &str) -> Error {
    // SAFETY: every `Env` this crate holds is the live environment of the
    // call in progress, on this thread (see above).
    unsafe { throw_raw(env.raw(), class, code, message) };
    Error::from_status(Status::PendingException)
}

/// The message of a refused call.
pub fn refusal_message(core: &Core, refused: Refused) -> String {
    match refused {
        Refused::Reentrant => "native pool called while already in a call".to_owned(),
        Refused::Panicked => format!(
            "native pool panicked (a bug in callosum-client-tcp: {}); \
             the pool is poisoned and refuses every later call",
            core.panic_message()
        ),
        Refused::Poisoned => format!(
            "native pool is poisoned: an earlier call panicked ({}); \
             it refuses every call, make a new pool",
            core.panic_message()
        ),
    }
}

/// The code of a refused call.
pub fn refusal_code(refused: Refused) -> &'static CStr {
    match refused {
        Refused::Reentrant => REENTRANT,
        Refused::Panicked | Refused::Poisoned => POISONED,
    }
}
