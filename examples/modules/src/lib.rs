//! Example native modules, loaded by `scripts/examples.json`:
//!
//! - `org_modhost_HierarchicalDRF` (Allocator): the built-in `hierarchical` allocator,
//!   shipped as a module (as Mesos shipped its DRF allocator as a test module), so that the
//!   cost of the module boundary can be measured on real work;
//! - `org_modhost_LabelHook` (Hook): adds its parameters as labels to every launched task,
//!   and stamps status updates;
//! - `org_modhost_EnvironmentHook` (Hook): adds its parameters to every executor's
//!   environment;
//! - `org_modhost_ResourceAccountingIsolator` (Isolator): keeps the resources of each live
//!   container and reports them as usage.

mod hooks;
mod isolator;

use modhost_abi::declare_module;
use modhost_drf::HierarchicalDrf;

pub use hooks::{EnvironmentHook, LabelHook};
pub use isolator::ResourceAccountingIsolator;

declare_module! {
    /// Mesos's hierarchical DRF allocator, through the module boundary.
    static org_modhost_HierarchicalDRF: Allocator = HierarchicalDrf {
        author_name: "modhost",
        author_email: "modhost@example.invalid",
        description: "Hierarchical DRF allocator (the built-in 'hierarchical', as a module).",
    }
}

declare_module! {
    /// Adds its parameters as task labels.
    static org_modhost_LabelHook: Hook = LabelHook {
        author_name: "modhost",
        author_email: "modhost@example.invalid",
        description: "Adds its parameters as labels to launched tasks and stamps status updates.",
    }
}

declare_module! {
    /// Adds its parameters to executor environments.
    static org_modhost_EnvironmentHook: Hook = EnvironmentHook {
        author_name: "modhost",
        author_email: "modhost@example.invalid",
        description: "Adds its parameters to every executor's environment.",
    }
}

declare_module! {
    /// Accounts for the resources of live containers.
    static org_modhost_ResourceAccountingIsolator: Isolator = ResourceAccountingIsolator {
        author_name: "modhost",
        author_email: "modhost@example.invalid",
        description: "Keeps each container's resources and reports them as usage.",
    }
}
