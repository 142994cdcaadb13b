//! Reading and checking a module descriptor, in the order DESIGN.md gives:
//! magic, ABI major and minor, size, fields, kind, version range, `compatible()`.

use std::ffi::{CStr, c_char};

use modhost_abi::{
    ABI_MAJOR, ABI_MINOR, Buffer, CreateFn, DESCRIPTOR_SIZE_V1_0, HOST_VERSION, Kind, MAGIC, ModuleDescriptor,
};

use super::Library;
use crate::error::LoadError;
use crate::version::Version;

/// What the host keeps of a verified descriptor. The strings are copied at load, so a module
/// cannot change what the host believes about it later (MESOS-4918).
#[derive(Clone, Debug)]
pub(crate) struct Descriptor {
    /// Where the descriptor lives; two entries are the same module only if this is equal.
    pub(crate) address: usize,
    pub(crate) kind: Kind,
    pub(crate) flags: u32,
    pub(crate) abi_major: u16,
    pub(crate) abi_minor: u16,
    pub(crate) host_version: String,
    pub(crate) author_name: String,
    pub(crate) author_email: String,
    pub(crate) description: String,
    pub(crate) create: CreateFn,
}

/// The host's own version: the `modhost-abi` it was built with.
pub(crate) fn host_version() -> Version {
    Version::parse(HOST_VERSION.to_str().expect("the crate version is ASCII")).expect("the crate version parses")
}

/// The oldest module version each kind accepts: the version in which the kind's interface
/// last changed incompatibly. Raise a kind's entry only when its vtable or messages change
/// in a way old modules cannot follow; never raise them all in step with releases (that was
/// Mesos's exact-version trap).
pub(crate) fn kind_minimum(kind: Kind) -> Version {
    let text = match kind {
        Kind::Allocator | Kind::Anonymous | Kind::Hook | Kind::Isolator | Kind::TestModule | Kind::Vm => "0.1.0",
    };
    Version::parse(text).expect("kind minimums are valid versions")
}

/// Looks `symbol` up in `library` and verifies the descriptor found there.
pub(crate) fn verify(library: &Library, module: &str, symbol: &str) -> Result<Descriptor, LoadError> {
    let path = &library.path;
    let address = library.handle.symbol(symbol).ok_or_else(|| LoadError::SymbolNotFound {
        path: path.clone(),
        module: module.to_owned(),
        symbol: symbol.to_owned(),
    })?;

    // Only the 8 magic bytes are read before we know this symbol is a descriptor at all.
    // SAFETY: dlsym returned the address of an exported symbol; every exported data or code
    // symbol of a mapped library has at least 8 readable bytes within its mapping.
    let magic: [u8; 8] = unsafe { address.cast::<[u8; 8]>().read_unaligned() };
    if magic != *MAGIC {
        return Err(LoadError::BadMagic {
            path: path.clone(),
            module: module.to_owned(),
            symbol: symbol.to_owned(),
            found: magic,
        });
    }
    // SAFETY: the magic says this symbol is a ModuleDescriptor; every ABI 1.x descriptor is at
    // least DESCRIPTOR_SIZE_V1_0 bytes, the size of the struct read here.
    let descriptor: &'static ModuleDescriptor = unsafe { &*address.cast::<ModuleDescriptor>() };
    if descriptor.abi_major != ABI_MAJOR {
        return Err(LoadError::AbiMajorMismatch {
            path: path.clone(),
            module: module.to_owned(),
            host: ABI_MAJOR,
            found: descriptor.abi_major,
        });
    }
    if descriptor.abi_minor > ABI_MINOR {
        return Err(LoadError::AbiMinorTooNew {
            path: path.clone(),
            module: module.to_owned(),
            host_major: ABI_MAJOR,
            host_minor: ABI_MINOR,
            found: descriptor.abi_minor,
        });
    }
    if descriptor.size < DESCRIPTOR_SIZE_V1_0 {
        return Err(LoadError::DescriptorTooSmall {
            path: path.clone(),
            module: module.to_owned(),
            found: descriptor.size,
            minimum: DESCRIPTOR_SIZE_V1_0,
        });
    }

    let text = |field: &'static str, pointer: *const c_char| -> Result<String, LoadError> {
        if pointer.is_null() {
            return Err(LoadError::MissingField { path: path.clone(), module: module.to_owned(), field });
        }
        // SAFETY: descriptor strings are NUL-terminated and static (ABI contract).
        let c_text = unsafe { CStr::from_ptr(pointer) };
        c_text.to_str().map(str::to_owned).map_err(|_| LoadError::NonUtf8Field {
            path: path.clone(),
            module: module.to_owned(),
            field,
        })
    };
    let host_version_text = text("host_version", descriptor.host_version)?;
    let author_name = text("author_name", descriptor.author_name)?;
    let author_email = text("author_email", descriptor.author_email)?;
    let description = text("description", descriptor.description)?;
    let create = descriptor.create.ok_or_else(|| LoadError::MissingField {
        path: path.clone(),
        module: module.to_owned(),
        field: "create",
    })?;

    let kind = Kind::from_raw(descriptor.kind).ok_or_else(|| LoadError::UnknownKind {
        path: path.clone(),
        module: module.to_owned(),
        found: descriptor.kind,
    })?;

    let found = Version::parse(&host_version_text).map_err(|reason| LoadError::UnparsableVersion {
        path: path.clone(),
        module: module.to_owned(),
        found: host_version_text.clone(),
        reason,
    })?;
    let minimum = kind_minimum(kind);
    if found < minimum {
        return Err(LoadError::VersionBelowKindMinimum {
            path: path.clone(),
            module: module.to_owned(),
            kind,
            minimum: minimum.to_string(),
            found: host_version_text,
        });
    }
    let host = host_version();
    if found > host {
        return Err(LoadError::VersionNewerThanHost {
            path: path.clone(),
            module: module.to_owned(),
            host: host.to_string(),
            found: host_version_text,
        });
    }

    if let Some(compatible) = descriptor.compatible {
        let mut reason = Buffer::empty();
        // SAFETY: `compatible` is the module's function of the documented signature; `reason`
        // is a valid, empty buffer it may fill.
        let ok = unsafe { compatible(&mut reason) };
        // SAFETY: the module filled `reason` by the buffer contract, or left it empty.
        let reason = unsafe { reason.into_string_lossy() };
        if !ok {
            return Err(LoadError::Incompatible {
                path: path.clone(),
                module: module.to_owned(),
                reason: (!reason.is_empty()).then_some(reason),
            });
        }
    }

    Ok(Descriptor {
        address: address as usize,
        kind,
        flags: descriptor.flags,
        abi_major: descriptor.abi_major,
        abi_minor: descriptor.abi_minor,
        host_version: host_version_text,
        author_name,
        author_email,
        description,
        create,
    })
}
