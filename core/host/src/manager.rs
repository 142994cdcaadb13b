//! The module manager: what is loaded, under which name, and how to create it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use modhost_abi::{Buffer, FLAG_SINGLETON, Instance, Kind, Parameter, RawParameter, Status};
use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{CreateError, LoadError, UnloadError};
use crate::kinds::{KindHandle, RawInstance};
use crate::loader::{self, Descriptor, Library};
use crate::manifest::{self, Manifest};

/// What the host knows about a loaded module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModuleInfo {
    /// The module's name in the manifest.
    pub name: String,
    /// The descriptor symbol it was loaded from.
    pub symbol: String,
    /// The library string of the manifest (`file`, or the expansion of `name`).
    pub library: String,
    /// The file that was opened.
    pub path: PathBuf,
    /// Its kind.
    pub kind: Kind,
    /// The descriptor's ABI, as `major.minor`.
    pub abi: String,
    /// The `modhost-abi` version it was built against.
    pub built_for: String,
    /// Author name.
    pub author_name: String,
    /// Author email.
    pub author_email: String,
    /// Description.
    pub description: String,
    /// Descriptor flags (`FLAG_*` of `modhost-abi`).
    pub flags: u32,
    /// The manifest's parameters.
    pub parameters: Vec<Parameter>,
}

impl ModuleInfo {
    /// What a verified descriptor says, registered as `name` (without parameters).
    fn new(name: &str, symbol: &str, library_string: &str, library: &Library, descriptor: &Descriptor) -> Self {
        ModuleInfo {
            name: name.to_owned(),
            symbol: symbol.to_owned(),
            library: library_string.to_owned(),
            path: library.path.clone(),
            kind: descriptor.kind,
            abi: format!("{}.{}", descriptor.abi_major, descriptor.abi_minor),
            built_for: descriptor.host_version.clone(),
            author_name: descriptor.author_name.clone(),
            author_email: descriptor.author_email.clone(),
            description: descriptor.description.clone(),
            flags: descriptor.flags,
            parameters: Vec::new(),
        }
    }
}

/// A module descriptor found in a library by [`inspect`].
#[derive(Debug)]
pub struct Inspected {
    /// The symbol it is exported as.
    pub symbol: String,
    /// What it says, as a manifest entry naming it would register it (named after its symbol,
    /// without parameters), or why this host would refuse it.
    pub verdict: Result<ModuleInfo, LoadError>,
}

/// The module descriptors `library` exports (a path, or a bare file name searched as a
/// manifest's `file` is), found from the library alone, in the order of its symbol table:
/// it is pre-flighted and opened as a load opens it, and each descriptor verified as a load
/// verifies it, `compatible()` included. Nothing is registered or created. An error is
/// returned only when the library itself cannot be opened or read.
pub fn inspect(library: &str) -> Result<Vec<Inspected>, LoadError> {
    let (opened, found) = loader::descriptors(library)?;
    Ok(found
        .into_iter()
        .map(|(symbol, verdict)| {
            let verdict = verdict.map(|descriptor| ModuleInfo::new(&symbol, &symbol, library, opened, &descriptor));
            Inspected { symbol, verdict }
        })
        .collect())
}

/// What a successful load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Modules newly registered, in manifest order (identical duplicates are not listed).
    pub registered: Vec<String>,
    /// Unknown manifest keys that were ignored.
    pub warnings: Vec<String>,
}

#[derive(Clone)]
struct Registration {
    info: ModuleInfo,
    descriptor: Descriptor,
    /// Set while a singleton's instance lives.
    live: Arc<AtomicBool>,
}

#[derive(Clone, Default)]
struct State {
    modules: BTreeMap<String, Registration>,
    /// Opened libraries by library string, as Mesos keyed them.
    libraries: HashMap<String, &'static Library>,
}

/// Loads module libraries, keeps the registry of modules, and creates instances.
///
/// Thread-safe. Every load is all-or-nothing: when it fails, the registry is exactly as it
/// was before (Mesos kept whatever had loaded before the failure).
#[derive(Default)]
pub struct ModuleManager {
    state: Mutex<State>,
}

impl ModuleManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every module of `manifest`.
    ///
    /// Loading the same entries again is accepted; the same module name with other
    /// parameters, another library string or another descriptor is an error.
    pub fn load(&self, manifest: &Manifest) -> Result<LoadReport, LoadError> {
        self.load_all(std::slice::from_ref(manifest))
    }

    /// Loads several manifests as one all-or-nothing step.
    pub fn load_all(&self, manifests: &[Manifest]) -> Result<LoadReport, LoadError> {
        let mut state = self.state.lock();
        let mut staged = state.clone();
        let mut report = LoadReport::default();
        for manifest in manifests {
            manifest.check()?;
            load_into(&mut staged, manifest, &mut report)?;
        }
        *state = staged;
        Ok(report)
    }

    /// Loads every manifest file of `dir`, in byte order of the names (Mesos's `--modules_dir`).
    pub fn load_dir(&self, dir: &Path) -> Result<LoadReport, LoadError> {
        self.load_all(&manifest::from_dir(dir)?)
    }

    /// Whether a module named `name` of kind `kind` is loaded.
    pub fn contains(&self, name: &str, kind: Kind) -> bool {
        self.state.lock().modules.get(name).is_some_and(|r| r.info.kind == kind)
    }

    /// The names of all loaded modules of `kind`, sorted.
    pub fn find(&self, kind: Kind) -> Vec<String> {
        self.state.lock().modules.values().filter(|r| r.info.kind == kind).map(|r| r.info.name.clone()).collect()
    }

    /// Every loaded module, sorted by name.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        self.state.lock().modules.values().map(|r| r.info.clone()).collect()
    }

    /// One loaded module.
    pub fn get(&self, name: &str) -> Option<ModuleInfo> {
        self.state.lock().modules.get(name).map(|r| r.info.clone())
    }

    /// Forgets a module's registration. Its library stays loaded: modhost never unloads code.
    pub fn unload(&self, name: &str) -> Result<(), UnloadError> {
        match self.state.lock().modules.remove(name) {
            Some(_) => Ok(()),
            None => Err(UnloadError::NotLoaded { name: name.to_owned() }),
        }
    }

    /// Creates an instance of the module `name`, which must be of `H`'s kind.
    ///
    /// `parameters`, when given, replace the manifest's (they are not merged), as in Mesos.
    /// Every call makes a new instance, unless the module is a singleton whose instance is
    /// alive. The manager is not locked while the module's `create` runs.
    pub fn create<H: KindHandle>(&self, name: &str, parameters: Option<Vec<Parameter>>) -> Result<H, CreateError> {
        self.factory(name)?.create(parameters)
    }

    /// What it takes to create instances of module `name` later, without the manager (the
    /// script adapter's reloader holds one). Unloading the module does not affect it.
    pub fn factory(&self, name: &str) -> Result<ModuleFactory, CreateError> {
        let registration = self
            .state
            .lock()
            .modules
            .get(name)
            .cloned()
            .ok_or_else(|| CreateError::Unknown { name: name.to_owned() })?;
        Ok(ModuleFactory { registration })
    }
}

/// Creates instances of one loaded module (see [`ModuleManager::factory`]).
#[derive(Clone)]
pub struct ModuleFactory {
    registration: Registration,
}

impl ModuleFactory {
    /// The module's metadata.
    pub fn info(&self) -> &ModuleInfo {
        &self.registration.info
    }

    /// Creates an instance, as [`ModuleManager::create`] does.
    pub fn create<H: KindHandle>(&self, parameters: Option<Vec<Parameter>>) -> Result<H, CreateError> {
        let registration = &self.registration;
        let name = registration.info.name.as_str();
        if registration.info.kind != H::KIND {
            return Err(CreateError::WrongKind {
                name: name.to_owned(),
                actual: registration.info.kind,
                requested: H::KIND,
            });
        }
        let live = if registration.info.flags & FLAG_SINGLETON != 0 {
            if registration.live.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
                return Err(CreateError::SingletonInUse { name: name.to_owned() });
            }
            Some(registration.live.clone())
        } else {
            None
        };
        let release_singleton = || {
            if let Some(live) = &live {
                live.store(false, Ordering::Release);
            }
        };

        let parameters = parameters.unwrap_or_else(|| registration.info.parameters.clone());
        let raw: Vec<RawParameter> = parameters.iter().map(RawParameter::new).collect();
        let mut instance = Instance { this: std::ptr::null_mut(), vtable: std::ptr::null() };
        let mut error = Buffer::empty();
        // SAFETY: `create` comes from a verified descriptor; the parameters live until it
        // returns; `instance` and `error` are valid for writes.
        let status = unsafe { (registration.descriptor.create)(raw.as_ptr(), raw.len(), &mut instance, &mut error) };
        // SAFETY: the module filled `error` by the buffer contract, or left it empty.
        let message = unsafe { error.into_string_lossy() };
        let name = name.to_owned();
        match status {
            Status::OK => {}
            Status::PANIC => {
                release_singleton();
                return Err(CreateError::Panicked { name, message });
            }
            Status::ERROR => {
                release_singleton();
                return Err(CreateError::Failed { name, message });
            }
            Status(other) => {
                release_singleton();
                let reason = format!("create() returned the unknown status {other}: {message}");
                return Err(CreateError::BadInstance { name, reason });
            }
        }
        // SAFETY: `instance` is what a successful create returned, used for the first time.
        let raw = unsafe { RawInstance::new(instance, registration.info.flags, live) }
            .map_err(|reason| CreateError::BadInstance { name: name.clone(), reason })?;
        H::from_raw(raw).map_err(|reason| CreateError::BadInstance { name, reason })
    }
}

/// Opens, verifies and registers the entries of one manifest into `state`.
fn load_into(state: &mut State, manifest: &Manifest, report: &mut LoadReport) -> Result<(), LoadError> {
    report.warnings.extend(manifest.warnings.iter().cloned());
    for entry in &manifest.libraries {
        let library_string = entry.library();
        let library = match state.libraries.get(&library_string) {
            Some(library) => *library,
            None => {
                let library = loader::open(&library_string)?;
                state.libraries.insert(library_string.clone(), library);
                library
            }
        };
        for module in &entry.modules {
            let descriptor = loader::verify(library, &module.name, module.symbol())?;
            if let Some(existing) = state.modules.get(&module.name) {
                check_identical(
                    existing,
                    &module.name,
                    &library_string,
                    module.symbol(),
                    &module.parameters,
                    &descriptor,
                )?;
                continue;
            }
            let info = ModuleInfo::new(&module.name, module.symbol(), &library_string, library, &descriptor);
            let info = ModuleInfo { parameters: module.parameters.clone(), ..info };
            report.registered.push(module.name.clone());
            state
                .modules
                .insert(module.name.clone(), Registration { info, descriptor, live: Arc::new(AtomicBool::new(false)) });
        }
    }
    Ok(())
}

/// Mesos's rule for a name seen twice: accepted only if it is the very same module.
fn check_identical(
    existing: &Registration,
    name: &str,
    library: &str,
    symbol: &str,
    parameters: &[Parameter],
    descriptor: &Descriptor,
) -> Result<(), LoadError> {
    if existing.info.library != library {
        return Err(LoadError::DuplicateLibrary {
            module: name.to_owned(),
            existing: existing.info.library.clone(),
            new: library.to_owned(),
        });
    }
    if existing.descriptor.address != descriptor.address {
        return Err(LoadError::DuplicateDescriptor {
            module: name.to_owned(),
            library: library.to_owned(),
            existing: existing.info.symbol.clone(),
            new: symbol.to_owned(),
        });
    }
    if existing.info.parameters != parameters {
        return Err(LoadError::DuplicateParameters { module: name.to_owned(), library: library.to_owned() });
    }
    Ok(())
}
