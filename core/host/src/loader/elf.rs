//! The pre-flight check of a library file, before `dlopen` sees it, and the list of what
//! it exports.
//!
//! `dlopen` maps a library's loadable segments straight from the file. If the file was
//! truncated inside a segment, touching the missing pages kills the process with SIGBUS,
//! which no error handling can catch. A file for another architecture gets glibc's misleading
//! "No such file or directory". So before opening, this module reads the ELF header and the
//! program headers and checks that the file is a shared object for this machine whose
//! segments all lie inside it.
//!
//! The file is untrusted, so its structures are read by the `object` crate (fuzzed as part of
//! gimli-rs), a part at a time through a [`ReadCache`]: this module only decides what each
//! finding means and says so precisely.

// An ELF word is u64 on this host and u32 on a 32-bit one; `.into()` serves both.
#![allow(clippy::useless_conversion)]

use std::fs::File;
use std::io;
use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Sym};
use object::{Endianness, ReadCache, ReadRef};

/// Why a file is not a loadable library for this host.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// No file at that path.
    #[error("no such file")]
    NotFound,
    /// The path is a directory or another non-regular file.
    #[error("not a regular file")]
    NotAFile,
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    Unreadable(io::Error),
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// Shorter than an ELF header.
    #[error("the file is too short to be a shared library ({len} bytes)")]
    TooShort {
        /// File length.
        len: u64,
    },
    /// The first bytes are not the ELF magic.
    #[error("not an ELF file (it starts with {found:02x?}, not 7f 45 4c 46)")]
    NotElf {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// 32-bit file on a 64-bit host or the reverse.
    #[error("it is a {file}-bit ELF file; this host loads {host}-bit ones")]
    WrongClass {
        /// The file's word size.
        file: u8,
        /// The host's word size.
        host: u8,
    },
    /// Big-endian file on a little-endian host or the reverse.
    #[error("it is a {file}-endian ELF file; this host is {host}-endian")]
    WrongEndian {
        /// The file's byte order.
        file: &'static str,
        /// The host's byte order.
        host: &'static str,
    },
    /// An executable, object file or core dump rather than a shared object.
    #[error("it is an ELF {kind}, not a shared library (ET_DYN)")]
    NotSharedObject {
        /// What it is.
        kind: &'static str,
    },
    /// Built for another processor.
    #[error("it was built for {file} (e_machine {file_code}); this host is {host} (e_machine {host_code})")]
    WrongMachine {
        /// The file's architecture.
        file: &'static str,
        /// The file's `e_machine`.
        file_code: u16,
        /// The host's architecture.
        host: &'static str,
        /// The host's `e_machine`.
        host_code: u16,
    },
    /// The ELF header is not one `dlopen` accepts (its version, or its program header
    /// entries' size).
    #[error("its ELF header is malformed: {what}")]
    BadHeader {
        /// What is wrong.
        what: &'static str,
    },
    /// The program header table runs past the end of the file.
    #[error("it is truncated: its program headers end at byte {end}, but the file has {len} bytes")]
    HeadersBeyondEnd {
        /// Where the table ends.
        end: u64,
        /// File length.
        len: u64,
    },
    /// A loadable segment runs past the end of the file: loading it would crash with SIGBUS.
    #[error("it is truncated: loadable segment {index} ends at byte {end}, but the file has {len} bytes")]
    SegmentBeyondEnd {
        /// Index of the program header.
        index: usize,
        /// Where the segment's file image ends.
        end: u64,
        /// File length.
        len: u64,
    },
}

const HOST_CLASS: u8 = if cfg!(target_pointer_width = "64") { 64 } else { 32 };
const HOST_ENDIAN: &str = if cfg!(target_endian = "little") { "little" } else { "big" };

/// The ELF header of this host's word size.
#[cfg(target_pointer_width = "64")]
type HostHeader = elf::FileHeader64<Endianness>;
#[cfg(target_pointer_width = "32")]
type HostHeader = elf::FileHeader32<Endianness>;

/// This host's `e_machine`.
const HOST_MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    elf::EM_X86_64.0
} else if cfg!(target_arch = "aarch64") {
    elf::EM_AARCH64.0
} else if cfg!(target_arch = "riscv64") {
    elf::EM_RISCV.0
} else if cfg!(target_arch = "x86") {
    elf::EM_386.0
} else if cfg!(target_arch = "arm") {
    elf::EM_ARM.0
} else if cfg!(target_arch = "powerpc64") {
    elf::EM_PPC64.0
} else if cfg!(target_arch = "s390x") {
    elf::EM_S390.0
} else {
    0 // unknown: the machine check is skipped
};

fn machine_name(code: u16) -> &'static str {
    match elf::Machine(code) {
        elf::EM_386 => "x86 (i386)",
        elf::EM_MIPS => "MIPS",
        elf::EM_PPC => "PowerPC",
        elf::EM_PPC64 => "PowerPC64",
        elf::EM_S390 => "s390x",
        elf::EM_ARM => "ARM (32-bit)",
        elf::EM_X86_64 => "x86-64",
        elf::EM_AARCH64 => "AArch64",
        elf::EM_RISCV => "RISC-V",
        elf::EM_LOONGARCH => "LoongArch",
        _ => "an unknown architecture",
    }
}

/// The file at `path`, open for reading a part at a time, and its length.
fn open(path: &Path) -> Result<(ReadCache<File>, u64), PreflightError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => PreflightError::NotFound,
        _ => PreflightError::Unreadable(e),
    })?;
    if !meta.is_file() {
        return Err(PreflightError::NotAFile);
    }
    if meta.len() == 0 {
        return Err(PreflightError::Empty);
    }
    let file = File::open(path).map_err(PreflightError::Unreadable)?;
    Ok((ReadCache::new(file), meta.len()))
}

/// The file's ELF header, once its identification says it is an ELF file of this host's word
/// size and byte order.
fn header(data: &ReadCache<File>, len: u64) -> Result<(&HostHeader, Endianness), PreflightError> {
    let unreadable = || PreflightError::Unreadable(io::Error::other("a read of the file failed"));
    let head = data.read_bytes_at(0, len.min(16)).map_err(|()| unreadable())?;
    if head.len() < 4 || head[..4] != elf::ELFMAG {
        let mut found = [0; 4];
        found[..head.len().min(4)].copy_from_slice(&head[..head.len().min(4)]);
        return Err(PreflightError::NotElf { found });
    }
    let class = match head.get(4).copied().map(elf::FileClass) {
        Some(elf::ELFCLASS32) => 32,
        Some(elf::ELFCLASS64) => 64,
        _ => return Err(PreflightError::TooShort { len }),
    };
    if len < if class == 64 { 64 } else { 52 } {
        return Err(PreflightError::TooShort { len });
    }
    if class != HOST_CLASS {
        return Err(PreflightError::WrongClass { file: class, host: HOST_CLASS });
    }
    let endian = match head.get(5).copied().map(elf::DataEncoding) {
        Some(elf::ELFDATA2LSB) => "little",
        Some(elf::ELFDATA2MSB) => "big",
        _ => return Err(PreflightError::TooShort { len }),
    };
    if endian != HOST_ENDIAN {
        return Err(PreflightError::WrongEndian { file: endian, host: HOST_ENDIAN });
    }
    let header = HostHeader::parse(data).map_err(|_| PreflightError::BadHeader { what: "an unknown ELF version" })?;
    let endian = header.endian().map_err(|_| PreflightError::BadHeader { what: "an unknown byte order" })?;
    Ok((header, endian))
}

/// Checks that `path` is an ELF shared object for this machine that `dlopen` can map safely.
pub fn preflight(path: &Path) -> Result<(), PreflightError> {
    let (data, len) = open(path)?;
    let (header, endian) = header(&data, len)?;
    let kind = match header.e_type(endian) {
        elf::ET_DYN => None,
        elf::ET_REL => Some("relocatable object"),
        elf::ET_EXEC => Some("executable"),
        elf::ET_CORE => Some("core dump"),
        _ => Some("file of unknown type"),
    };
    if let Some(kind) = kind {
        return Err(PreflightError::NotSharedObject { kind });
    }
    let machine = header.e_machine(endian).0;
    if HOST_MACHINE != 0 && machine != HOST_MACHINE {
        return Err(PreflightError::WrongMachine {
            file: machine_name(machine),
            file_code: machine,
            host: machine_name(HOST_MACHINE),
            host_code: HOST_MACHINE,
        });
    }

    // The table's extent first, to say where it ends; `object` then reads it (and checks its
    // entries' size, as glibc's dlopen does).
    let phoff: u64 = header.e_phoff(endian).into();
    let entsize = header.e_phentsize(endian);
    let count = header.phnum(endian, &data).map_err(|_| PreflightError::BadHeader {
        what: "it counts its program headers in a section header that is not there",
    })?;
    let table_end = phoff.saturating_add(u64::from(entsize) * u64::from(count));
    if table_end > len {
        return Err(PreflightError::HeadersBeyondEnd { end: table_end, len });
    }
    let table = header.program_headers(endian, &data).map_err(|_| PreflightError::BadHeader {
        what: "its program header entries are not the size of an ELF program header",
    })?;
    for (index, segment) in table.iter().enumerate() {
        if segment.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let offset: u64 = segment.p_offset(endian).into();
        let end = offset.saturating_add(segment.p_filesz(endian).into());
        if end > len {
            return Err(PreflightError::SegmentBeyondEnd { index, end, len });
        }
    }
    Ok(())
}

/// The data objects a library exports (defined, global or weak, not thread-local), with their
/// sizes, in the order of its dynamic symbol table: where module descriptors may be. The file
/// must have passed [`preflight`].
pub(crate) fn exported_objects(path: &Path) -> Result<Vec<(String, u64)>, PreflightError> {
    let malformed = |what| PreflightError::BadHeader { what };
    let (data, len) = open(path)?;
    let (header, endian) = header(&data, len)?;
    let sections = header.sections(endian, &data).map_err(|_| malformed("its section headers cannot be read"))?;
    let symbols = sections
        .symbols(endian, &data, elf::SHT_DYNSYM)
        .map_err(|_| malformed("its dynamic symbol table cannot be read"))?;
    let mut objects = Vec::new();
    for symbol in symbols.iter() {
        if symbol.st_type() != elf::STT_OBJECT || symbol.st_bind() == elf::STB_LOCAL || symbol.is_undefined(endian) {
            continue;
        }
        let name = symbols.symbol_name(endian, symbol).map_err(|_| malformed("a symbol's name cannot be read"))?;
        if let Ok(name) = std::str::from_utf8(name) {
            objects.push((name.to_owned(), symbol.st_size(endian).into()));
        }
    }
    Ok(objects)
}
