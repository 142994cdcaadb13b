//! Finding, checking and opening module libraries, and verifying their descriptors.
//!
//! Invariant: this module (and only this module) calls `dlopen`/`dlsym` and reads descriptor
//! memory. Libraries are never unloaded.

mod dl;
mod elf;
mod verify;

use std::path::{Path, PathBuf};

use modhost_abi::DESCRIPTOR_SIZE_V1_0;

pub use elf::PreflightError;
pub(crate) use verify::{Descriptor, host_version, kind_minimum, verify};

use crate::error::LoadError;

/// An open library, kept for the life of the process.
pub(crate) struct Library {
    /// The file that was opened.
    pub(crate) path: PathBuf,
    handle: dl::Handle,
}

/// Finds, pre-flights and opens the library named by a manifest's library string.
///
/// The returned library is leaked on purpose: modhost never unloads code.
pub(crate) fn open(library: &str) -> Result<&'static Library, LoadError> {
    let path = resolve(library)?;
    elf_preflight(&path)?;
    let handle = dl::open(&path).map_err(|message| LoadError::Open { path: path.clone(), message })?;
    Ok(Box::leak(Box::new(Library { path, handle })))
}

/// A descriptor's symbol, and what verifying it gave.
pub(crate) type Found = (String, Result<Descriptor, LoadError>);

/// Every module descriptor `library` exports, found from the file alone: each data object
/// it exports that is large enough to be a descriptor and starts with the magic, verified as
/// a load verifies it (a name is the symbol). Objects without the magic are not descriptors
/// and are left out. Nothing is created.
pub(crate) fn descriptors(library: &str) -> Result<(&'static Library, Vec<Found>), LoadError> {
    let opened = open(library)?;
    let objects = elf::exported_objects(&opened.path)
        .map_err(|reason| LoadError::Preflight { path: opened.path.clone(), reason })?;
    let mut seen = std::collections::HashSet::new();
    let found = objects
        .into_iter()
        // A smaller object is not a descriptor, and verify must not read past it. A name
        // listed twice (symbol versions) is one symbol to dlsym.
        .filter(|(symbol, size)| *size >= u64::from(DESCRIPTOR_SIZE_V1_0) && seen.insert(symbol.clone()))
        .map(|(symbol, _)| {
            let verdict = verify(opened, &symbol, &symbol);
            (symbol, verdict)
        })
        // Not a descriptor, or not one a manifest could name (a symbol only an older version
        // of the library's interface exports, which dlsym does not find by name).
        .filter(|(_, verdict)| !matches!(verdict, Err(LoadError::BadMagic { .. } | LoadError::SymbolNotFound { .. })))
        .collect();
    Ok((opened, found))
}

#[cfg(not(target_os = "macos"))]
fn elf_preflight(path: &Path) -> Result<(), LoadError> {
    elf::preflight(path).map_err(|reason| LoadError::Preflight { path: path.to_owned(), reason })
}

#[cfg(target_os = "macos")]
fn elf_preflight(_: &Path) -> Result<(), LoadError> {
    Ok(()) // Mach-O files are not checked; modhost targets Linux.
}

/// The file a library string refers to.
///
/// A string with a slash is a path (relative to the working directory), as for `dlopen`. A
/// bare file name (every expanded `name`) is searched the way the dynamic loader searches:
/// the directories of `LD_LIBRARY_PATH` (`DYLD_LIBRARY_PATH` on macOS), then the default
/// library directories. modhost resolves the name itself so that it can pre-flight the very
/// file it then opens. Unlike `ld.so`, it does not consult `ld.so.cache`.
fn resolve(library: &str) -> Result<PathBuf, LoadError> {
    if library.contains('/') {
        return Ok(PathBuf::from(library));
    }
    let variable = if cfg!(target_os = "macos") { "DYLD_LIBRARY_PATH" } else { "LD_LIBRARY_PATH" };
    let mut searched: Vec<PathBuf> = std::env::var_os(variable)
        .map(|paths| {
            // An empty entry means the working directory, as for ld.so.
            std::env::split_paths(&paths)
                .map(|dir| if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir })
                .collect()
        })
        .unwrap_or_default();
    let arch = std::env::consts::ARCH;
    for dir in [
        format!("/lib/{arch}-linux-gnu"),
        format!("/usr/lib/{arch}-linux-gnu"),
        "/lib64".into(),
        "/usr/lib64".into(),
        "/lib".into(),
        "/usr/lib".into(),
        "/usr/local/lib".into(),
    ] {
        searched.push(PathBuf::from(dir));
    }
    searched
        .iter()
        .map(|dir| dir.join(library))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| LoadError::LibraryNotFound { library: library.to_owned(), searched })
}
