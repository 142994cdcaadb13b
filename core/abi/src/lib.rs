//! The contract between the modhost host and its modules.
//!
//! A module library is a shared object that exports one [`ModuleDescriptor`] per module, under
//! the module's name, unmangled (exactly as Mesos modules exported a `Module<T>` object). The
//! host finds a descriptor with `dlsym`, checks it (magic, ABI, size, fields, kind, version,
//! `compatible`) and calls its `create` function to obtain an [`Instance`]: an opaque pointer
//! and a kind-specific vtable of `extern "C"` functions.
//!
//! This crate is everything a Rust module author needs. Implement the trait of a kind (for
//! example [`TestModule`]) and [`Construct`] on an ordinary type, then export it with
//! [`declare_module!`]. The generated glue catches every panic at the boundary and turns it
//! into an error, so a module that panics never aborts the host.
//!
//! # Ownership of memory
//!
//! Each side frees what it allocated, because a module carries its own copy of the Rust
//! standard library and its own allocator:
//!
//! * Data the host passes in ([`Bytes`], [`RawParameter`]) is borrowed for the duration of the
//!   call only; a module copies what it keeps.
//! * Data a module hands back (results, error texts) travels in a [`Buffer`], which carries the
//!   module's own `release` function. The host copies the bytes out and calls `release`
//!   exactly once.
//! * An instance is released with the `destroy` entry at the start of its vtable.
//!
//! # Example
//!
//! ```
//! use modhost_abi::{CallError, Construct, Parameters, TestModule, declare_module};
//!
//! struct Adder {
//!     parameters: Parameters,
//! }
//!
//! impl Construct for Adder {
//!     fn create(parameters: Parameters) -> Result<Self, CallError> {
//!         Ok(Adder { parameters })
//!     }
//! }
//!
//! impl TestModule for Adder {
//!     fn foo(&self, a: i8, b: i64) -> Result<i32, CallError> {
//!         Ok((i64::from(a) + b) as i32)
//!     }
//!     fn bar(&self, a: f32, b: f64) -> Result<i32, CallError> {
//!         Ok((f64::from(a) * b) as i32)
//!     }
//!     fn baz(&self, a: i32, b: i32) -> Result<i32, CallError> {
//!         Ok(a + b)
//!     }
//!     fn parameters(&self) -> Result<Parameters, CallError> {
//!         Ok(self.parameters.clone())
//!     }
//! }
//!
//! declare_module! {
//!     static com_example_Adder: TestModule = Adder {
//!         author_name: "Example",
//!         author_email: "example@example.com",
//!         description: "Adds numbers.",
//!     }
//! }
//!
//! assert_eq!(&com_example_Adder.magic, modhost_abi::MAGIC);
//! ```

mod buffer;
mod declare;
mod descriptor;
mod error;
mod guard;
mod kinds;
pub mod messages;
mod offers;
pub mod packed;
mod params;

pub use buffer::{Buffer, Bytes, Status};
pub use descriptor::{
    ABI_MAJOR, ABI_MINOR, CompatibleFn, CreateFn, DESCRIPTOR_SIZE_V1_0, FLAG_PACKED_MESSAGES, FLAG_SINGLETON,
    FLAG_THREAD_SAFE, HOST_VERSION, Instance, Kind, MAGIC, ModuleDescriptor, VtableHeader,
};
pub use error::CallError;
pub use kinds::allocator::{
    ALLOCATOR_METHODS, AddAgent, AddFramework, AgentRequest, Allocate, Allocation, Allocator, AllocatorGlue,
    AllocatorVtable, Empty, FrameworkRequest, OffersMade, Operation, RecoverResources, RolesRequest, UpdateAgent,
    UpdateAvailable, UpdateFramework, UpdateQuota, UpdateWeights,
};
pub use kinds::anonymous::{Anonymous, AnonymousGlue, AnonymousVtable};
pub use kinds::codec::{Codec, Values};
pub use kinds::hook::{
    AgentEvent, ExecutorEnvironment, HOOK_METHODS, Hook, HookGlue, HookVtable, LaunchTask, LaunchTaskResources,
    PostFetch, RemoveExecutor, RunTask, TaskStatusUpdate,
};
pub use kinds::isolator::{
    ContainerRequest, ISOLATOR_METHODS, Isolate, Isolator, IsolatorGlue, IsolatorVtable, Prepare, Recover, Update,
};
pub use kinds::message::{Answer, MessageFn, MessageTransport, Remote};
pub use kinds::test_module::{TestModule, TestModuleGlue, TestModuleVtable};
pub use kinds::vm::{VM_VTABLE_SIZE_V1_0, Vm, VmGlue, VmInfo, VmVtable, call_through_json};
pub use kinds::{Construct, Defaults, KindGlue};
pub use params::{Parameter, Parameters, RawParameter};

/// Items the [`declare_module!`] macro expands to. Not part of the stable interface.
#[doc(hidden)]
pub mod __private {
    pub use crate::descriptor::compatible_entry;
    pub use crate::kinds::create_shim;
}
