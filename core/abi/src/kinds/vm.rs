//! Vm: an interpreter with a script loaded from its parameters.
//!
//! A Vm module knows nothing of allocators or hooks: it calls a named function of its script
//! with a message and returns the answer, both JSON or both [packed values](crate::packed). The host's script adapter turns a Vm into
//! an Allocator, Hook, Isolator or Anonymous module by calling the script function named after
//! each trait method, with the message a native module would get.

use std::ffi::c_void;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{Construct, KindGlue, destroy_shim, write_out};
use crate::guard::guard;
use crate::{Buffer, Bytes, CallError, Kind, Status};

/// What a Vm says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmInfo {
    /// The language, such as `lua`.
    pub language: String,
    /// The interpreter's version, such as `Lua 5.4`.
    pub version: String,
    /// The script's path.
    pub script: String,
    /// The functions the script defines, sorted.
    #[serde(default)]
    pub functions: Vec<String>,
    /// Bytes the interpreter's heap holds now (0 if it cannot tell).
    #[serde(default)]
    pub memory_bytes: u64,
}

/// The Vm kind.
pub trait Vm: Send {
    /// Calls the script's function `function` with the JSON `message`; returns its JSON
    /// answer (`null` when it returns nothing). An error carries the script's file:line.
    fn call(&mut self, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError>;
    /// Like [`Vm::call`], with the message and the answer in the [packed value
    /// format](crate::packed) (ABI 1.1): the host's script adapter calls this. The default
    /// goes through JSON and [`Vm::call`], so a Vm that only speaks JSON still answers; a
    /// bridge overrides it to read and write its interpreter's values directly.
    fn call_packed(&mut self, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError> {
        call_through_json(self, function, message)
    }
    /// Whether the script defines a function of that name.
    fn has_function(&mut self, function: &str) -> Result<bool, CallError>;
    /// Language, version, script and functions.
    fn describe(&mut self) -> Result<VmInfo, CallError>;
    /// Lines the script printed since the last call of this method, for the host's log.
    fn take_output(&mut self) -> Result<Vec<String>, CallError> {
        Ok(Vec::new())
    }
}

/// [`Vm::call_packed`] over [`Vm::call`]: the packed message is turned into JSON and the JSON
/// answer back into packed values.
pub fn call_through_json<V: Vm + ?Sized>(vm: &mut V, function: &str, message: &[u8]) -> Result<Vec<u8>, CallError> {
    let malformed = |e: String| CallError::Malformed { message: e };
    let value: serde_json::Value = crate::packed::from_slice(message).map_err(|e| malformed(e.to_string()))?;
    let json = serde_json::to_vec(&value).map_err(|e| malformed(e.to_string()))?;
    let answer = vm.call(function, &json)?;
    let value: serde_json::Value =
        serde_json::from_slice(&answer).map_err(|e| malformed(format!("the answer of {function} is not JSON: {e}")))?;
    crate::packed::to_vec(&value).map_err(|e| malformed(e.to_string()))
}

/// The size of the Vm vtable in ABI 1.0, before `call_packed` was appended.
pub const VM_VTABLE_SIZE_V1_0: usize = std::mem::offset_of!(VmVtable, call_packed);

/// The Vm vtable.
#[repr(C)]
#[derive(Debug)]
pub struct VmVtable {
    /// `size_of::<VmVtable>()` as the module was compiled.
    pub size: usize,
    /// Releases the instance.
    pub destroy: unsafe extern "C" fn(this: *mut c_void),
    /// See [`Vm::call`]: `function` is UTF-8; `output` receives the JSON answer.
    pub call: unsafe extern "C" fn(
        this: *mut c_void,
        function: Bytes,
        input: Bytes,
        output: *mut Buffer,
        error: *mut Buffer,
    ) -> Status,
    /// See [`Vm::has_function`].
    pub has_function:
        unsafe extern "C" fn(this: *mut c_void, function: Bytes, out: *mut bool, error: *mut Buffer) -> Status,
    /// See [`Vm::describe`]: `output` receives a JSON [`VmInfo`].
    pub describe: unsafe extern "C" fn(this: *mut c_void, output: *mut Buffer, error: *mut Buffer) -> Status,
    /// See [`Vm::take_output`]: `output` receives a JSON list of lines, or (since ABI 1.1)
    /// nothing when there are none.
    pub take_output: unsafe extern "C" fn(this: *mut c_void, output: *mut Buffer, error: *mut Buffer) -> Status,
    /// See [`Vm::call_packed`] (ABI 1.1; a host reads it only when `size` shows it):
    /// `input` and the answer in `output` are packed values.
    pub call_packed: unsafe extern "C" fn(
        this: *mut c_void,
        function: Bytes,
        input: Bytes,
        output: *mut Buffer,
        error: *mut Buffer,
    ) -> Status,
}

/// Glue between a Rust [`Vm`] type and the Vm vtable.
pub struct VmGlue<T>(PhantomData<T>);

impl<T: Vm + Construct> VmGlue<T> {
    const TABLE: VmVtable = VmVtable {
        size: size_of::<VmVtable>(),
        destroy: destroy_shim::<T>,
        call: call::<T>,
        has_function: has_function::<T>,
        describe: describe::<T>,
        take_output: take_output::<T>,
        call_packed: call_packed::<T>,
    };
}

// SAFETY: TABLE is the Vm vtable and every entry casts `this` to `T`.
unsafe impl<T: Vm + Construct> KindGlue for VmGlue<T> {
    type Module = T;
    const KIND: Kind = Kind::Vm;
    const VTABLE: *const c_void = (&Self::TABLE as *const VmVtable).cast();
}

/// The function name of a call, as text.
///
/// # Safety
///
/// `name` must describe bytes that live for the call.
unsafe fn name<'a>(name: Bytes) -> Result<&'a str, CallError> {
    // SAFETY: forwarded from the caller.
    std::str::from_utf8(unsafe { name.as_slice() }).map_err(|_| CallError::failed("the function name is not UTF-8"))
}

/// The module object behind `this`, exclusively.
///
/// # Safety
///
/// `this` must be a live `T` made by `create_shim`, not in use elsewhere.
unsafe fn module<'a, T>(this: *mut c_void) -> &'a mut T {
    // SAFETY: forwarded from the caller.
    unsafe { &mut *this.cast::<T>() }
}

/// [`Vm::call`] or [`Vm::call_packed`], as a function of the module.
type CallMethod<T> = fn(&mut T, &str, &[u8]) -> Result<Vec<u8>, CallError>;

/// The body of `call` and `call_packed`: the same arguments, the answer of `method`.
///
/// # Safety
///
/// As for the vtable entries: a live instance, spans that live for the call, buffers valid
/// for writes.
#[inline(always)]
unsafe fn call_with<T: Vm>(
    this: *mut c_void,
    function: Bytes,
    input: Bytes,
    output: *mut Buffer,
    error: *mut Buffer,
    method: CallMethod<T>,
) -> Status {
    guard(error, || {
        // SAFETY: the host passes a live instance and spans that live for the call.
        let (module, function, input) = unsafe { (module::<T>(this), name(function)?, input.as_slice()) };
        let answer = method(module, function, input)?;
        // SAFETY: `output` is valid for writes (vtable contract).
        unsafe { write_out(output, Buffer::from_vec(answer)) }
    })
}

unsafe extern "C" fn call<T: Vm>(
    this: *mut c_void,
    function: Bytes,
    input: Bytes,
    output: *mut Buffer,
    error: *mut Buffer,
) -> Status {
    // SAFETY: forwarded from the host (vtable contract).
    unsafe { call_with::<T>(this, function, input, output, error, T::call) }
}

unsafe extern "C" fn call_packed<T: Vm>(
    this: *mut c_void,
    function: Bytes,
    input: Bytes,
    output: *mut Buffer,
    error: *mut Buffer,
) -> Status {
    // SAFETY: forwarded from the host (vtable contract).
    unsafe { call_with::<T>(this, function, input, output, error, T::call_packed) }
}

unsafe extern "C" fn has_function<T: Vm>(
    this: *mut c_void,
    function: Bytes,
    out: *mut bool,
    error: *mut Buffer,
) -> Status {
    guard(error, || {
        // SAFETY: as for `call`.
        let (module, function) = unsafe { (module::<T>(this), name(function)?) };
        let found = module.has_function(function)?;
        // SAFETY: `out` is valid for writes (vtable contract).
        unsafe { write_out(out, found) }
    })
}

unsafe extern "C" fn describe<T: Vm>(this: *mut c_void, output: *mut Buffer, error: *mut Buffer) -> Status {
    guard(error, || {
        // SAFETY: as for `call`.
        let info = unsafe { module::<T>(this) }.describe()?;
        let json = serde_json::to_vec(&info).map_err(|e| CallError::failed(e.to_string()))?;
        // SAFETY: `output` is valid for writes (vtable contract).
        unsafe { write_out(output, Buffer::from_vec(json)) }
    })
}

unsafe extern "C" fn take_output<T: Vm>(this: *mut c_void, output: *mut Buffer, error: *mut Buffer) -> Status {
    guard(error, || {
        // SAFETY: as for `call`.
        let lines = unsafe { module::<T>(this) }.take_output()?;
        // Nothing printed (the common case, asked after every call): an empty buffer.
        let json = if lines.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&lines).map_err(|e| CallError::failed(e.to_string()))?
        };
        // SAFETY: `output` is valid for writes (vtable contract).
        unsafe { write_out(output, Buffer::from_vec(json)) }
    })
}
