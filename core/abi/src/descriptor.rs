//! The module descriptor: the exported static a host finds with `dlsym`.

use std::ffi::{CStr, c_char, c_void};

use crate::guard::guard;
use crate::{Buffer, RawParameter, Status};

/// The first eight bytes of every descriptor: "this symbol is a modhost module".
pub const MAGIC: &[u8; 8] = b"MODHOST\x01";

/// ABI major version. A host loads only modules with the same major.
pub const ABI_MAJOR: u16 = 1;

/// ABI minor version. Fields and vtable entries are only ever appended within a major; a host
/// loads modules whose minor is not newer than its own. 1.1 appended `call_packed` to the Vm
/// vtable and added [`FLAG_PACKED_MESSAGES`]; 1.2 appended `update_quota` to the Allocator
/// vtable.
pub const ABI_MINOR: u16 = 2;

/// The size of the descriptor as first published in ABI 1.0. A descriptor is never smaller.
pub const DESCRIPTOR_SIZE_V1_0: u32 = 72;

/// The version of `modhost-abi` this module (or host) was built against, NUL-terminated.
pub const HOST_VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(version) => version,
    Err(_) => panic!("the crate version contains a NUL byte"),
};

/// Flag: the host may call one instance from several threads at once.
pub const FLAG_THREAD_SAFE: u32 = 1 << 0;

/// Flag: at most one instance of the module may exist at a time (MESOS-4960 asked for a way
/// to say this). The host refuses a second `create` while the first instance lives.
pub const FLAG_SINGLETON: u32 = 1 << 1;

/// Flag (ABI 1.1): the module's message methods (Allocator, Hook, Isolator) read their
/// requests and write their responses as [packed values](crate::packed), not JSON. Every
/// descriptor made by [`ModuleDescriptor::new`] (so by `declare_module!`) has it, because the
/// shims of this crate speak packed values; a C module that leaves it clear is sent JSON.
pub const FLAG_PACKED_MESSAGES: u32 = 1 << 2;

/// The kinds a module can be. The numbers are part of the ABI and never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// A resource allocator (Mesos `mesos::allocator::Allocator`).
    Allocator = 1,
    /// A module with no callbacks, created at host start (Mesos `Anonymous`).
    Anonymous = 2,
    /// Task and agent decorators and hooks (Mesos `mesos::Hook`).
    Hook = 3,
    /// Container isolation (Mesos `mesos::slave::Isolator`).
    Isolator = 4,
    /// Mesos's test kind, used to test the module system itself.
    TestModule = 5,
    /// An interpreter with a loaded script.
    Vm = 6,
}

impl Kind {
    /// Every kind, in ABI number order.
    pub const ALL: [Kind; 6] =
        [Kind::Allocator, Kind::Anonymous, Kind::Hook, Kind::Isolator, Kind::TestModule, Kind::Vm];

    /// The kind with ABI number `raw`, if there is one.
    pub fn from_raw(raw: u32) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u32 == raw)
    }

    /// The kind's name, as Mesos spells its kind strings.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Allocator => "Allocator",
            Kind::Anonymous => "Anonymous",
            Kind::Hook => "Hook",
            Kind::Isolator => "Isolator",
            Kind::TestModule => "TestModule",
            Kind::Vm => "Vm",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Asks a module whether it can run in this process. Returns `true` if it can. When it
/// returns `false` it may fill `reason` (a [`Buffer`] the module owns) with why not.
pub type CompatibleFn = unsafe extern "C" fn(reason: *mut Buffer) -> bool;

/// Creates an instance from `n` parameters (borrowed for the call). On [`Status::OK`] it has
/// written `out`; otherwise it has filled `error` with a module-owned text.
pub type CreateFn =
    unsafe extern "C" fn(parameters: *const RawParameter, n: usize, out: *mut Instance, error: *mut Buffer) -> Status;

/// The exported description of one module.
///
/// Strings are NUL-terminated UTF-8 with static lifetime. Fields are only ever appended
/// (`size` tells the host how much of the struct the module has), so the layout of ABI 1.0
/// stays valid for every 1.x.
#[repr(C)]
#[derive(Debug)]
pub struct ModuleDescriptor {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_MAJOR`] as the module was compiled.
    pub abi_major: u16,
    /// [`ABI_MINOR`] as the module was compiled.
    pub abi_minor: u16,
    /// `size_of::<ModuleDescriptor>()` as the module was compiled.
    pub size: u32,
    /// [`FLAG_THREAD_SAFE`], [`FLAG_SINGLETON`], [`FLAG_PACKED_MESSAGES`].
    pub flags: u32,
    /// A [`Kind`] number.
    pub kind: u32,
    /// The `modhost-abi` version the module was built against (see [`HOST_VERSION`]).
    pub host_version: *const c_char,
    /// Who wrote the module.
    pub author_name: *const c_char,
    /// How to reach them.
    pub author_email: *const c_char,
    /// What the module does.
    pub description: *const c_char,
    /// Optional run-time compatibility check.
    pub compatible: Option<CompatibleFn>,
    /// Makes an instance.
    pub create: Option<CreateFn>,
}

// SAFETY: a descriptor is immutable after compilation and its pointers refer to static,
// read-only strings and functions, so sharing it between threads is sound.
unsafe impl Sync for ModuleDescriptor {}

impl ModuleDescriptor {
    /// A complete descriptor for the current ABI. [`crate::declare_module!`] calls this; C
    /// authors fill the same fields by hand (see `include/modhost.h`).
    pub const fn new(
        kind: Kind,
        flags: u32,
        author_name: &'static CStr,
        author_email: &'static CStr,
        description: &'static CStr,
        compatible: Option<CompatibleFn>,
        create: CreateFn,
    ) -> Self {
        ModuleDescriptor {
            magic: *MAGIC,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            size: size_of::<ModuleDescriptor>() as u32,
            flags: flags | FLAG_PACKED_MESSAGES,
            kind: kind as u32,
            host_version: HOST_VERSION.as_ptr(),
            author_name: author_name.as_ptr(),
            author_email: author_email.as_ptr(),
            description: description.as_ptr(),
            compatible,
            create: Some(create),
        }
    }
}

const _: () = assert!(size_of::<ModuleDescriptor>() as u32 == DESCRIPTOR_SIZE_V1_0);

/// An instance of a module: the module's own object and the vtable of its kind.
#[repr(C)]
#[derive(Debug)]
pub struct Instance {
    /// The module's object, passed back as the first argument of every vtable function.
    pub this: *mut c_void,
    /// The kind's vtable; it begins with a [`VtableHeader`].
    pub vtable: *const c_void,
}

/// The fields every kind's vtable begins with.
#[repr(C)]
#[derive(Debug)]
pub struct VtableHeader {
    /// `size_of` the kind's vtable as the module was compiled; entries are only appended.
    pub size: usize,
    /// Releases the instance. Called exactly once; the instance is not used afterwards.
    pub destroy: unsafe extern "C" fn(this: *mut c_void),
}

/// The descriptor's `compatible` entry for a Rust author's check: the C signature around
/// `check`, which names a function or is a closure that captures nothing.
///
/// The entry is a function of its own for each `F`, which calls `F` without needing a value
/// of it: so `declare_module!` defines no item (no name of its own) beside the author's, and
/// an author's check may have any name, `compatible` included.
pub const fn compatible_entry<F: Fn() -> Result<(), String> + Copy + 'static>(check: F) -> CompatibleFn {
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "`compatible` must name a function, or be a closure that captures nothing"
        )
    };
    let _ = check;
    compatible_shim::<F>
}

/// Runs a Rust author's compatibility check `F` behind the C signature.
///
/// `F` returns `Err(reason)` when the module cannot run here; a panic counts as incompatible
/// and its message is the reason.
///
/// # Safety
///
/// `F` must be zero-sized and inhabited, as [`compatible_entry`] ensures (it needs a value of
/// `F` to make the entry); `reason` is the host's buffer, as for any `compatible`.
unsafe extern "C" fn compatible_shim<F: Fn() -> Result<(), String> + Copy + 'static>(reason: *mut Buffer) -> bool {
    use crate::CallError;
    // SAFETY: F is zero-sized (asserted when the entry was made), and a value of it existed
    // (handed to `compatible_entry`), so it is inhabited: reading a zero-sized value needs
    // only a non-null, aligned pointer, which `dangling` is. A function item or a closure that
    // captures nothing has no state, so this copy is the author's check itself.
    let check: F = unsafe { std::ptr::NonNull::<F>::dangling().as_ptr().read() };
    guard(reason, || check().map_err(CallError::failed)) == Status::OK
}
