//! The pre-flight check of a library file, before `dlopen` sees it.
//!
//! `dlopen` maps a library's loadable segments straight from the file. If the file was
//! truncated inside a segment, touching the missing pages kills the process with SIGBUS,
//! which no error handling can catch. A file for another architecture gets glibc's misleading
//! "No such file or directory". So before opening, this module reads the ELF header and the
//! program headers and checks that the file is a shared object for this machine whose
//! segments all lie inside it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

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

/// This host's `e_machine`.
const HOST_MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    62
} else if cfg!(target_arch = "aarch64") {
    183
} else if cfg!(target_arch = "riscv64") {
    243
} else if cfg!(target_arch = "x86") {
    3
} else if cfg!(target_arch = "arm") {
    40
} else if cfg!(target_arch = "powerpc64") {
    21
} else if cfg!(target_arch = "s390x") {
    22
} else {
    0 // unknown: the machine check is skipped
};

fn machine_name(code: u16) -> &'static str {
    match code {
        3 => "x86 (i386)",
        8 => "MIPS",
        20 => "PowerPC",
        21 => "PowerPC64",
        22 => "s390x",
        40 => "ARM (32-bit)",
        62 => "x86-64",
        183 => "AArch64",
        243 => "RISC-V",
        258 => "LoongArch",
        _ => "an unknown architecture",
    }
}

/// Reads little- or big-endian integers out of a header.
struct Reader<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn u16(&self, at: usize) -> u16 {
        let b = [self.bytes[at], self.bytes[at + 1]];
        if self.little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) }
    }

    fn u32(&self, at: usize) -> u32 {
        let b: [u8; 4] = self.bytes[at..at + 4].try_into().expect("4 bytes");
        if self.little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }
    }

    fn u64(&self, at: usize) -> u64 {
        let b: [u8; 8] = self.bytes[at..at + 8].try_into().expect("8 bytes");
        if self.little { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) }
    }
}

/// Checks that `path` is an ELF shared object for this machine that `dlopen` can map safely.
pub fn preflight(path: &Path) -> Result<(), PreflightError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => PreflightError::NotFound,
        _ => PreflightError::Unreadable(e),
    })?;
    if !meta.is_file() {
        return Err(PreflightError::NotAFile);
    }
    let len = meta.len();
    if len == 0 {
        return Err(PreflightError::Empty);
    }
    let file = File::open(path).map_err(PreflightError::Unreadable)?;
    let read = |offset: u64, size: usize| -> Result<Vec<u8>, PreflightError> {
        let mut buf = vec![0; size];
        file.read_exact_at(&mut buf, offset).map_err(PreflightError::Unreadable)?;
        Ok(buf)
    };

    let head = read(0, len.min(64) as usize)?;
    if head.len() < 4 || head[..4] != *b"\x7fELF" {
        let mut found = [0; 4];
        found[..head.len().min(4)].copy_from_slice(&head[..head.len().min(4)]);
        return Err(PreflightError::NotElf { found });
    }
    let wide = match head.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err(PreflightError::TooShort { len }),
    };
    let header_len = if wide { 64 } else { 52 };
    if head.len() < header_len {
        return Err(PreflightError::TooShort { len });
    }
    let class = if wide { 64 } else { 32 };
    if class != HOST_CLASS {
        return Err(PreflightError::WrongClass { file: class, host: HOST_CLASS });
    }
    let little = match head[5] {
        1 => true,
        2 => false,
        _ => return Err(PreflightError::TooShort { len }),
    };
    let endian = if little { "little" } else { "big" };
    if endian != HOST_ENDIAN {
        return Err(PreflightError::WrongEndian { file: endian, host: HOST_ENDIAN });
    }
    let header = Reader { bytes: &head, little };
    let kind = match header.u16(16) {
        3 => None,
        1 => Some("relocatable object"),
        2 => Some("executable"),
        4 => Some("core dump"),
        _ => Some("file of unknown type"),
    };
    if let Some(kind) = kind {
        return Err(PreflightError::NotSharedObject { kind });
    }
    let machine = header.u16(18);
    if HOST_MACHINE != 0 && machine != HOST_MACHINE {
        return Err(PreflightError::WrongMachine {
            file: machine_name(machine),
            file_code: machine,
            host: machine_name(HOST_MACHINE),
            host_code: HOST_MACHINE,
        });
    }

    let (phoff, entsize, count) = if wide {
        (header.u64(32), header.u16(54), header.u16(56))
    } else {
        (u64::from(header.u32(28)), header.u16(42), header.u16(44))
    };
    let min_entsize = if wide { 56 } else { 32 };
    let table_len = u64::from(entsize) * u64::from(count);
    let table_end = phoff.saturating_add(table_len);
    if table_end > len || (count > 0 && usize::from(entsize) < min_entsize) {
        return Err(PreflightError::HeadersBeyondEnd { end: table_end, len });
    }
    let table = read(phoff, table_len as usize)?;
    const PT_LOAD: u32 = 1;
    for index in 0..usize::from(count) {
        let at = index * usize::from(entsize);
        let entry = Reader { bytes: &table[at..at + min_entsize], little };
        if entry.u32(0) != PT_LOAD {
            continue;
        }
        let (offset, filesz) =
            if wide { (entry.u64(8), entry.u64(32)) } else { (u64::from(entry.u32(4)), u64::from(entry.u32(16))) };
        let end = offset.saturating_add(filesz);
        if end > len {
            return Err(PreflightError::SegmentBeyondEnd { index, end, len });
        }
    }
    Ok(())
}
