//! The module manifest: Mesos's `--modules` JSON, plus modhost's optional `symbol` key.
//!
//! ```json
//! {"libraries": [{"file": "/path/libfoo.so", "name": "foo",
//!                 "modules": [{"name": "org_x_bar", "symbol": "org_x_vm",
//!                              "parameters": [{"key": "X", "value": "Y"}]}]}]}
//! ```
//!
//! `manifest.schema.json` beside this crate documents the format. Unknown keys are ignored,
//! as in Mesos, but each one is reported in [`Manifest::warnings`] so a typo is seen.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use modhost_abi::Parameter;
use serde::Deserialize;
use serde_json::Value;

/// Where a manifest came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Inline JSON given to `--modules`.
    Inline,
    /// A file.
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Inline => f.write_str("the inline --modules JSON"),
            Origin::File(path) => write!(f, "manifest '{}'", path.display()),
        }
    }
}

/// A parsed, checked manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Where it came from.
    pub origin: Origin,
    /// Its libraries, in order.
    pub libraries: Vec<LibraryEntry>,
    /// Keys that were ignored, each with its location.
    pub warnings: Vec<String>,
}

/// One entry of `libraries`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryEntry {
    /// `file`: a path or file name, used verbatim.
    pub file: Option<String>,
    /// `name`: expanded to `lib<name>.so` (`.dylib` on macOS) when `file` is absent.
    pub name: Option<String>,
    /// The library's modules, in order.
    pub modules: Vec<ModuleEntry>,
}

impl LibraryEntry {
    /// The library string the loader uses: `file` verbatim if present (it wins over `name`),
    /// else the platform expansion of `name`. [`Manifest::check`] guarantees one of the two.
    pub fn library(&self) -> String {
        match (&self.file, &self.name) {
            (Some(file), _) => file.clone(),
            (None, Some(name)) => expand_name(name),
            (None, None) => String::new(),
        }
    }
}

/// One entry of a library's `modules`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleEntry {
    /// The module's name (unique in a host).
    pub name: String,
    /// The exported descriptor to use when it differs from `name`.
    pub symbol: Option<String>,
    /// Parameters, in manifest order.
    pub parameters: Vec<Parameter>,
}

impl ModuleEntry {
    /// The symbol to look up: `symbol` if given, else the name (as in Mesos).
    pub fn symbol(&self) -> &str {
        self.symbol.as_deref().unwrap_or(&self.name)
    }
}

/// `lib<name>.so`, or `lib<name>.dylib` on macOS (stout's `os::libraries::expandName`).
pub fn expand_name(name: &str) -> String {
    let extension = if cfg!(target_os = "macos") { "dylib" } else { "so" };
    format!("lib{name}.{extension}")
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// `--modules` and `--modules_dir` were both given.
    #[error("Only one of --modules or --modules_dir should be specified")]
    BothSources,
    /// A manifest file could not be read.
    #[error("Error reading module manifest file '{}': {cause}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The `--modules_dir` directory could not be listed.
    #[error("Error loading module manifests from '{}' directory: {cause}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// Not JSON, or JSON of the wrong shape.
    #[error("Error parsing {origin}: {message}{hint}")]
    Syntax {
        /// Which manifest.
        origin: Origin,
        /// What the parser said, with line and column.
        message: String,
        /// A suggestion, or empty.
        hint: &'static str,
    },
    /// The top level is not a JSON object.
    #[error("Error parsing {origin}: expecting a JSON object at the top level")]
    NotAnObject {
        /// Which manifest.
        origin: Origin,
    },
    /// A library with neither `file` nor `name`.
    #[error("Error in {origin}: libraries[{index}]: Library name or path not provided (give \"file\" or \"name\")")]
    MissingLibrary {
        /// Which manifest.
        origin: Origin,
        /// Index in `libraries`.
        index: usize,
    },
    /// A library whose `file` or `name` is the empty string.
    #[error("Error in {origin}: libraries[{index}]: \"{field}\" is empty")]
    EmptyLibrary {
        /// Which manifest.
        origin: Origin,
        /// Index in `libraries`.
        index: usize,
        /// `file` or `name`.
        field: &'static str,
    },
    /// A module entry without a name.
    #[error(
        "Error in {origin}: libraries[{library_index}].modules[{index}]: module name not provided with library '{library}'"
    )]
    MissingModuleName {
        /// Which manifest.
        origin: Origin,
        /// The library's string.
        library: String,
        /// Index in `libraries`.
        library_index: usize,
        /// Index in `modules`.
        index: usize,
    },
    /// A module name or symbol that is empty or holds a NUL byte.
    #[error(
        "Error in {origin}: module '{module}' of library '{library}': \"{field}\" must be a non-empty symbol name without NUL bytes"
    )]
    BadSymbol {
        /// Which manifest.
        origin: Origin,
        /// The library's string.
        library: String,
        /// The module's name (possibly empty).
        module: String,
        /// `name` or `symbol`.
        field: &'static str,
    },
    /// A parameter without `key` or `value`.
    #[error("Error in {origin}: module '{module}' of library '{library}': parameters[{index}] has no \"{field}\"")]
    IncompleteParameter {
        /// Which manifest.
        origin: Origin,
        /// The library's string.
        library: String,
        /// The module's name.
        module: String,
        /// Index in `parameters`.
        index: usize,
        /// `key` or `value`.
        field: &'static str,
    },
}

// The serde shapes of the JSON. Every field is optional here so that a missing one gets our
// own error saying where, rather than serde's; `extra` collects unknown keys for warnings.

#[derive(Deserialize)]
struct RawManifest {
    libraries: Option<Vec<RawLibrary>>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawLibrary {
    file: Option<String>,
    name: Option<String>,
    modules: Option<Vec<RawModule>>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawModule {
    name: Option<String>,
    symbol: Option<String>,
    parameters: Option<Vec<RawParameter>>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawParameter {
    key: Option<String>,
    value: Option<String>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

/// Parses manifest text that came from `origin`.
pub fn parse(text: &str, origin: Origin) -> Result<Manifest, ManifestError> {
    let raw: RawManifest = serde_json::from_str(text).map_err(|e| {
        if e.is_data() && !text.trim_start().starts_with('{') {
            return ManifestError::NotAnObject { origin: origin.clone() };
        }
        let hint = if origin == Origin::Inline && !text.trim_start().starts_with('{') {
            " (to name a manifest file, give an absolute path or a file:// URI)"
        } else {
            ""
        };
        ManifestError::Syntax { origin: origin.clone(), message: e.to_string(), hint }
    })?;

    let mut warnings = Vec::new();
    let mut warn_unknown = |extra: &BTreeMap<String, Value>, place: &str| {
        for key in extra.keys() {
            warnings.push(format!("{origin}: {place}: unknown key \"{key}\" ignored"));
        }
    };
    warn_unknown(&raw.extra, "top level");

    let mut libraries = Vec::new();
    for (index, library) in raw.libraries.unwrap_or_default().into_iter().enumerate() {
        let place = format!("libraries[{index}]");
        warn_unknown(&library.extra, &place);
        let mut entry = LibraryEntry { file: library.file, name: library.name, modules: Vec::new() };
        check_library(&origin, index, &entry)?;
        let library_string = entry.library();
        for (module_index, module) in library.modules.unwrap_or_default().into_iter().enumerate() {
            let place = format!("{place}.modules[{module_index}]");
            warn_unknown(&module.extra, &place);
            let Some(name) = module.name else {
                return Err(ManifestError::MissingModuleName {
                    origin,
                    library: library_string,
                    library_index: index,
                    index: module_index,
                });
            };
            check_symbols(&origin, &library_string, &name, module.symbol.as_deref())?;
            let mut parameters = Vec::new();
            for (parameter_index, parameter) in module.parameters.unwrap_or_default().into_iter().enumerate() {
                warn_unknown(&parameter.extra, &format!("{place}.parameters[{parameter_index}]"));
                let missing = |field| ManifestError::IncompleteParameter {
                    origin: origin.clone(),
                    library: library_string.clone(),
                    module: name.clone(),
                    index: parameter_index,
                    field,
                };
                let key = parameter.key.ok_or_else(|| missing("key"))?;
                let value = parameter.value.ok_or_else(|| missing("value"))?;
                parameters.push(Parameter { key, value });
            }
            entry.modules.push(ModuleEntry { name, symbol: module.symbol, parameters });
        }
        libraries.push(entry);
    }
    Ok(Manifest { origin, libraries, warnings })
}

impl Manifest {
    /// Checks the rules [`parse`] checks, for a manifest built in code: every library has a
    /// non-empty `file` or `name`, and every module a non-empty name and symbol without NUL
    /// bytes. (What the types already guarantee, such as a parameter's key, needs no check.)
    /// `ModuleManager::load` checks every manifest it is given, so a name that is not a
    /// symbol never reaches `dlsym` and no module is registered under an empty name.
    ///
    /// ```
    /// use modhost::manifest::{LibraryEntry, Manifest, ManifestError, ModuleEntry, Origin};
    ///
    /// let module = ModuleEntry { name: String::new(), symbol: Some("org_x_vm".into()), parameters: vec![] };
    /// let library = LibraryEntry { file: Some("/lib/libx.so".into()), name: None, modules: vec![module] };
    /// let manifest = Manifest { origin: Origin::Inline, libraries: vec![library], warnings: vec![] };
    /// assert!(matches!(manifest.check(), Err(ManifestError::BadSymbol { field: "name", .. })));
    /// ```
    pub fn check(&self) -> Result<(), ManifestError> {
        for (index, library) in self.libraries.iter().enumerate() {
            check_library(&self.origin, index, library)?;
            let library_string = library.library();
            for module in &library.modules {
                check_symbols(&self.origin, &library_string, &module.name, module.symbol.as_deref())?;
            }
        }
        Ok(())
    }
}

/// A library names its file: `file` or `name`, neither of them empty.
fn check_library(origin: &Origin, index: usize, library: &LibraryEntry) -> Result<(), ManifestError> {
    for (field, value) in [("file", &library.file), ("name", &library.name)] {
        if value.as_deref() == Some("") {
            return Err(ManifestError::EmptyLibrary { origin: origin.clone(), index, field });
        }
    }
    if library.file.is_none() && library.name.is_none() {
        return Err(ManifestError::MissingLibrary { origin: origin.clone(), index });
    }
    Ok(())
}

/// A module's name, and its symbol if it has one, can be looked up: not empty, no NUL byte.
fn check_symbols(origin: &Origin, library: &str, name: &str, symbol: Option<&str>) -> Result<(), ManifestError> {
    for (field, value) in [("name", Some(name)), ("symbol", symbol)] {
        if value.is_some_and(|v| v.is_empty() || v.contains('\0')) {
            return Err(ManifestError::BadSymbol {
                origin: origin.clone(),
                library: library.to_owned(),
                module: name.to_owned(),
                field,
            });
        }
    }
    Ok(())
}

/// Reads and parses a manifest file.
pub fn from_file(path: &Path) -> Result<Manifest, ManifestError> {
    let text =
        std::fs::read_to_string(path).map_err(|cause| ManifestError::ReadFile { path: path.to_owned(), cause })?;
    parse(&text, Origin::File(path.to_owned()))
}

/// Interprets a `--modules` value: a `file://` URI (the rest is a path, absolute or relative
/// to the working directory), an absolute path, or inline JSON.
pub fn from_flag(value: &str) -> Result<Manifest, ManifestError> {
    if let Some(path) = value.strip_prefix("file://") {
        from_file(Path::new(path))
    } else if value.starts_with('/') {
        from_file(Path::new(value))
    } else {
        parse(value, Origin::Inline)
    }
}

/// Reads every entry of a `--modules_dir` directory, in byte order of the names, as Mesos
/// does (there is no extension filter; a subdirectory is a read error).
pub fn from_dir(dir: &Path) -> Result<Vec<Manifest>, ManifestError> {
    let read_dir = |cause| ManifestError::ReadDir { dir: dir.to_owned(), cause };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        paths.push(entry.map_err(read_dir)?.path());
    }
    paths.sort_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
    paths.iter().map(|path| from_file(path)).collect()
}

/// The manifests named by `--modules` and `--modules_dir`; giving both is an error.
pub fn from_flags(modules: Option<&str>, modules_dir: Option<&Path>) -> Result<Vec<Manifest>, ManifestError> {
    match (modules, modules_dir) {
        (Some(_), Some(_)) => Err(ManifestError::BothSources),
        (Some(value), None) => Ok(vec![from_flag(value)?]),
        (None, Some(dir)) => from_dir(dir),
        (None, None) => Ok(Vec::new()),
    }
}
