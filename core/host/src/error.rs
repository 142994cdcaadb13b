//! The errors of loading, creating and unloading modules: one variant per failure, each
//! naming the library, the module and both sides of any mismatch.

use std::path::PathBuf;

use modhost_abi::Kind;

use crate::loader::PreflightError;
use crate::manifest::ManifestError;
use crate::version::VersionError;

/// Why modules could not be loaded. A failed load changes nothing in the manager.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest itself is wrong.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A bare library name was not found where the dynamic loader looks.
    #[error("Error opening library '{library}': not found in {}", searched_list(searched))]
    LibraryNotFound {
        /// The library string (a file name without a slash).
        library: String,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// The file is not a library this host can load.
    #[error("Error opening library '{}': {reason}", path.display())]
    Preflight {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: PreflightError,
    },
    /// `dlopen` failed.
    #[error("Error opening library '{}': {message}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What `dlerror` said.
        message: String,
    },
    /// The module's symbol is not exported by the library.
    #[error("Error loading module '{module}': symbol '{symbol}' not found in '{}'", path.display())]
    SymbolNotFound {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The symbol looked up.
        symbol: String,
    },
    /// The symbol is not a modhost descriptor.
    #[error("Error verifying module '{module}' in '{}': symbol '{symbol}' is not a modhost module descriptor (its first bytes are {found:02x?})", path.display())]
    BadMagic {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The symbol.
        symbol: String,
        /// What the symbol starts with.
        found: [u8; 8],
    },
    /// Different ABI major.
    #[error("Error verifying module '{module}' in '{}': module ABI major version mismatch: host has {host}, module was built for {found}", path.display())]
    AbiMajorMismatch {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The host's ABI major.
        host: u16,
        /// The module's ABI major.
        found: u16,
    },
    /// Newer ABI minor than the host knows.
    #[error("Error verifying module '{module}' in '{}': module ABI is newer than the host's: host has {host_major}.{host_minor}, module was built for {host_major}.{found}", path.display())]
    AbiMinorTooNew {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The host's ABI major (equal to the module's).
        host_major: u16,
        /// The host's ABI minor.
        host_minor: u16,
        /// The module's ABI minor.
        found: u16,
    },
    /// The descriptor claims to be smaller than the first published one.
    #[error("Error verifying module '{module}' in '{}': descriptor size {found} is below the minimum {minimum}", path.display())]
    DescriptorTooSmall {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The size the descriptor claims.
        found: u32,
        /// The smallest valid size.
        minimum: u32,
    },
    /// A required descriptor field is null.
    #[error("Error verifying module '{module}' in '{}': missing field '{field}'", path.display())]
    MissingField {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The field.
        field: &'static str,
    },
    /// A descriptor string is not UTF-8.
    #[error("Error verifying module '{module}' in '{}': field '{field}' is not valid UTF-8", path.display())]
    NonUtf8Field {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The field.
        field: &'static str,
    },
    /// A kind number the host does not know.
    #[error("Error verifying module '{module}' in '{}': unknown module kind {found}; this host knows {}", path.display(), known_kinds())]
    UnknownKind {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The kind number.
        found: u32,
    },
    /// The module's version string does not parse.
    #[error("Error verifying module '{module}' in '{}': cannot parse its host version '{found}': {reason}", path.display())]
    UnparsableVersion {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The string.
        found: String,
        /// Why.
        reason: VersionError,
    },
    /// Built for a newer host.
    #[error("Error verifying module '{module}' in '{}': host has version {host}, but module was built for version {found}", path.display())]
    VersionNewerThanHost {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The host's version.
        host: String,
        /// The module's version.
        found: String,
    },
    /// Built for a version before the kind's interface last changed incompatibly.
    #[error("Error verifying module '{module}' in '{}': minimum supported version for '{kind}' modules is {minimum}, but module was built for version {found}", path.display())]
    VersionBelowKindMinimum {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The module's kind.
        kind: Kind,
        /// The kind's minimum.
        minimum: String,
        /// The module's version.
        found: String,
    },
    /// `compatible()` returned false.
    #[error("Error verifying module '{module}' in '{}': the module says it is incompatible with this host: {}", path.display(), reason.as_deref().unwrap_or("(it gave no reason)"))]
    Incompatible {
        /// The library file.
        path: PathBuf,
        /// The module.
        module: String,
        /// The module's reason, if it gave one.
        reason: Option<String>,
    },
    /// The same module name from another library string.
    #[error(
        "Error loading module '{module}'; this is potentially due to duplicate module names; the same module appears in two different module libraries - '{new}' and '{existing}'"
    )]
    DuplicateLibrary {
        /// The module.
        module: String,
        /// The library string already registered.
        existing: String,
        /// The library string of the new entry.
        new: String,
    },
    /// The same module name with other parameters.
    #[error(
        "Error loading module '{module}'; this is potentially due to duplicate module names; a module with the same name but different parameters is already loaded from '{library}'"
    )]
    DuplicateParameters {
        /// The module.
        module: String,
        /// The library string.
        library: String,
    },
    /// The same module name backed by another descriptor.
    #[error(
        "Error loading module '{module}'; this is potentially due to duplicate module names; it is already loaded from symbol '{existing}' of '{library}', not '{new}'"
    )]
    DuplicateDescriptor {
        /// The module.
        module: String,
        /// The library string.
        library: String,
        /// The symbol already registered.
        existing: String,
        /// The symbol of the new entry.
        new: String,
    },
}

fn searched_list(dirs: &[PathBuf]) -> String {
    let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    format!("LD_LIBRARY_PATH or the default directories ({})", list.join(", "))
}

fn known_kinds() -> String {
    let kinds: Vec<String> = Kind::ALL.iter().map(|k| format!("{} ({})", *k as u32, k.name())).collect();
    kinds.join(", ")
}

/// Why an instance could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// No module of that name is loaded.
    #[error("Module '{name}' unknown")]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The module is of another kind.
    #[error(
        "Error creating module instance for '{name}': module is of kind '{actual}', but the requested kind is '{requested}'"
    )]
    WrongKind {
        /// The module.
        name: String,
        /// Its kind.
        actual: Kind,
        /// The kind asked for.
        requested: Kind,
    },
    /// The module's `create` reported an error.
    #[error("Error creating module instance for '{name}': {message}")]
    Failed {
        /// The module.
        name: String,
        /// The module's explanation.
        message: String,
    },
    /// The module's `create` panicked (caught at the boundary).
    #[error("Error creating module instance for '{name}': create panicked: {message}")]
    Panicked {
        /// The module.
        name: String,
        /// The panic message.
        message: String,
    },
    /// `create` claimed success but returned something unusable.
    #[error("Error creating module instance for '{name}': {reason}")]
    BadInstance {
        /// The module.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// A scripted module's script lacks functions its kind requires.
    #[error("Error creating module instance for '{name}': the script '{script}' does not define {}", missing.join(", "))]
    MissingFunctions {
        /// The module.
        name: String,
        /// The script's path.
        script: String,
        /// The required functions it lacks.
        missing: Vec<String>,
    },
    /// A singleton module already has a live instance.
    #[error("Error creating module instance for '{name}': the module allows one instance at a time and one exists")]
    SingletonInUse {
        /// The module.
        name: String,
    },
}

/// Why a module could not be unloaded.
#[derive(Debug, thiserror::Error)]
pub enum UnloadError {
    /// No module of that name is loaded.
    #[error("Error unloading module '{name}': module not loaded")]
    NotLoaded {
        /// The name given.
        name: String,
    },
}
