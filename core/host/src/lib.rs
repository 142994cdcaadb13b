//! modhost: the Apache Mesos module system, rebuilt in Rust.
//!
//! A host reads a manifest ([`manifest`]), opens the libraries it names and verifies each
//! module's descriptor ([`ModuleManager::load`]), then creates instances by kind
//! ([`ModuleManager::create`]). The handles it returns ([`kinds`]) implement the kind traits
//! of `modhost-abi`, so host code calls a module as it would call any Rust type.
//!
//! ```no_run
//! use modhost::kinds::TestModuleHandle;
//! use modhost::{ModuleManager, manifest};
//! use modhost_abi::TestModule;
//!
//! let manifest = manifest::from_flag(
//!     r#"{"libraries":[{"file":"/opt/modules/libmodhost_test_modules.so",
//!         "modules":[{"name":"org_modhost_TestModule"}]}]}"#,
//! )?;
//! let manager = ModuleManager::new();
//! manager.load(&manifest)?;
//! let module: TestModuleHandle = manager.create("org_modhost_TestModule", None)?;
//! assert_eq!(module.foo(1, 2)?, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod hooks;
pub mod isolators;
pub mod kinds;
mod loader;
mod manager;
pub mod manifest;
pub mod script;
pub mod version;

pub use error::{CreateError, LoadError, UnloadError};
pub use loader::PreflightError;
pub use manager::{Inspected, LoadReport, ModuleFactory, ModuleInfo, ModuleManager, inspect};
pub use modhost_abi::Kind;

/// The version of this host, which modules' `host_version` is checked against.
pub fn host_version() -> version::Version {
    loader::host_version()
}

/// The oldest module version the host accepts for `kind`.
pub fn kind_minimum(kind: Kind) -> version::Version {
    loader::kind_minimum(kind)
}
