//! Helpers shared by the integration tests: where the fixture libraries are, manifests that
//! name them, and corrupt files made on the fly.

#![allow(dead_code)] // each test target uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// `target/<profile>`, found from the test binary's own path (`target/<profile>/deps/x`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_owned()
}

/// A fixture cdylib of this workspace. `cargo test` builds them first because the host lists
/// them as dev-dependencies; `.ci/run` also builds them explicitly.
pub fn fixture(lib: &str) -> PathBuf {
    let file = format!("lib{lib}.so");
    let profile = profile_dir();
    // `cargo build` puts it in target/<profile>, `cargo test` in deps/; take the newer one.
    [profile.join(&file), profile.join("deps").join(&file)]
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("fixture {file} not found in {}; run `cargo build --workspace`", profile.display()))
}

/// The Rust TestModule/Anonymous fixture library.
pub fn test_modules() -> PathBuf {
    fixture("modhost_test_modules")
}

/// The library of broken descriptors.
pub fn broken_modules() -> PathBuf {
    fixture("modhost_broken_modules")
}

/// The C fixture, compiled against `modhost.h` once per test process.
pub fn c_module() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace();
            let out = scratch().join("libmodhost_c_module.so");
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
            let status = Command::new(&cc)
                .args(["-shared", "-fPIC", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
                .arg(root.join("core/abi/include"))
                .arg(root.join("tests/c/c_module.c"))
                .arg("-o")
                .arg(&out)
                .status()
                .unwrap_or_else(|e| panic!("cannot run the C compiler '{cc}': {e}"));
            assert!(status.success(), "compiling tests/c/c_module.c failed");
            out
        })
        .clone()
}

/// A directory for the files this test process makes, under `target/` (so `cargo clean`
/// removes it), fresh for each process.
pub fn scratch() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let test = exe.file_name().expect("file name").to_string_lossy().into_owned();
        let dir = profile_dir().join("test-scratch").join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    })
    .clone()
}

/// A manifest with one library file and modules given as (name, [(key, value)]).
pub fn manifest_json(library: &Path, modules: &[(&str, &[(&str, &str)])]) -> String {
    let modules: Vec<serde_json::Value> = modules
        .iter()
        .map(|(name, parameters)| {
            let parameters: Vec<_> =
                parameters.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})).collect();
            serde_json::json!({"name": name, "parameters": parameters})
        })
        .collect();
    serde_json::json!({"libraries": [{"file": library, "modules": modules}]}).to_string()
}

/// Corrupt library files, made from the real fixture library.
#[derive(Clone, Copy, Debug)]
pub enum Corrupt {
    /// Zero bytes.
    Empty,
    /// Text, not ELF.
    Garbage,
    /// The first 40 bytes of the real library: less than an ELF header.
    Header,
    /// The real library with its class byte saying 32-bit (64-bit on a 32-bit host).
    OtherClass,
    /// The real library with its data byte saying big-endian.
    OtherEndian,
    /// The real library cut off in the middle of a loadable segment.
    Truncated,
    /// The real library cut off in its program header table.
    TruncatedHeaders,
    /// The real library with its program header entries' size changed.
    EntrySize,
    /// The real library with its e_machine changed to AArch64 (or x86-64 on AArch64).
    OtherArchitecture,
    /// The real library marked as an executable.
    Executable,
}

/// Writes a corrupt library and returns its path.
pub fn corrupt(kind: Corrupt) -> PathBuf {
    let real = std::fs::read(test_modules()).expect("read fixture");
    let edited = |at: usize, bytes: &[u8]| {
        let mut copy = real.clone();
        copy[at..at + bytes.len()].copy_from_slice(bytes);
        copy
    };
    let (phoff, entsize, _) = program_headers(&real);
    let (name, bytes) = match kind {
        Corrupt::Empty => ("empty", Vec::new()),
        Corrupt::Garbage => ("garbage", b"this is not a shared library, just some text\n".repeat(20)),
        Corrupt::Header => ("header", real[..40].to_vec()),
        Corrupt::OtherClass => ("other-class", edited(4, &[if cfg!(target_pointer_width = "64") { 1 } else { 2 }])),
        Corrupt::OtherEndian => ("other-endian", edited(5, &[2])),
        Corrupt::Truncated => ("truncated", real[..middle_of_last_load_segment(&real)].to_vec()),
        Corrupt::TruncatedHeaders => ("truncated-headers", real[..phoff + entsize + entsize / 2].to_vec()),
        Corrupt::EntrySize => ("entry-size", edited(54, &(entsize as u16 + 8).to_le_bytes())),
        Corrupt::OtherArchitecture => {
            let other: u16 = if cfg!(target_arch = "aarch64") { 62 } else { 183 };
            ("other-arch", edited(18, &other.to_le_bytes()))
        }
        Corrupt::Executable => ("executable", edited(16, &2u16.to_le_bytes())),
    };
    let path = scratch().join(format!("lib{name}.so"));
    std::fs::write(&path, bytes).expect("write corrupt library");
    path
}

/// Where a 64-bit little-endian ELF file's program header table starts, its entries' size
/// and its loadable segments' file ranges (offset, size), read with `object`.
fn program_headers(elf: &[u8]) -> (usize, usize, Vec<(usize, usize)>) {
    use object::read::elf::{FileHeader, ProgramHeader};
    let header = object::elf::FileHeader64::<object::Endianness>::parse(elf).expect("an ELF header");
    let endian = header.endian().expect("a byte order");
    let loads = header
        .program_headers(endian, elf)
        .expect("program headers")
        .iter()
        .filter(|segment| segment.p_type(endian) == object::elf::PT_LOAD)
        .map(|segment| (segment.p_offset(endian) as usize, segment.p_filesz(endian) as usize))
        .collect();
    (header.e_phoff(endian) as usize, usize::from(header.e_phentsize(endian)), loads)
}

/// An offset halfway through the file image of the last PT_LOAD segment (cutting there is
/// what makes `dlopen` die of SIGBUS).
fn middle_of_last_load_segment(elf: &[u8]) -> usize {
    let (_, _, loads) = program_headers(elf);
    let (offset, size) = loads.into_iter().rfind(|&(_, size)| size > 0).expect("a loadable segment");
    offset + size / 2
}

/// The example module library (DRF allocator, hooks, isolator).
pub fn examples() -> PathBuf {
    fixture("modhost_examples")
}

/// The Lua bridge (the Vm module `org_modhost_lua`).
pub fn lua_bridge() -> PathBuf {
    fixture("modhost_lua")
}

/// Writes `code` to a script file of this test process and returns its path.
pub fn script(name: &str, code: &str) -> PathBuf {
    let dir = scratch().join("scripts");
    std::fs::create_dir_all(&dir).expect("scripts dir");
    let path = dir.join(name);
    std::fs::write(&path, code).expect("write script");
    path
}

/// A scripted module: its name, its script, and parameters besides `script`.
pub type ScriptedModule<'a> = (&'a str, &'a Path, &'a [(&'a str, &'a str)]);

/// A manager with one Lua-scripted module per entry.
pub fn lua_manager(modules: &[ScriptedModule<'_>]) -> modhost::ModuleManager {
    scripted_manager(&lua_bridge(), "org_modhost_lua", modules)
}

/// The Python bridge (the Vm module `org_modhost_python`).
pub fn python_bridge() -> PathBuf {
    fixture("modhost_python")
}

/// A manager with one Python-scripted module per entry.
pub fn python_manager(modules: &[ScriptedModule<'_>]) -> modhost::ModuleManager {
    scripted_manager(&python_bridge(), "org_modhost_python", modules)
}

/// A manager with one module per entry, each backed by the Vm descriptor `symbol` of `bridge`.
fn scripted_manager(bridge: &Path, symbol: &str, modules: &[ScriptedModule<'_>]) -> modhost::ModuleManager {
    let modules: Vec<serde_json::Value> = modules
        .iter()
        .map(|(name, script, extra)| {
            let mut parameters = vec![serde_json::json!({"key": "script", "value": script})];
            parameters.extend(extra.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})));
            serde_json::json!({"name": name, "symbol": symbol, "parameters": parameters})
        })
        .collect();
    let json = serde_json::json!({"libraries": [{"file": bridge, "modules": modules}]});
    let manager = modhost::ModuleManager::new();
    manager.load(&modhost::manifest::parse(&json.to_string(), modhost::manifest::Origin::Inline).unwrap()).unwrap();
    manager
}

/// Checks that no line of `stderr` says the same thing twice in a row ("X: cause: cause"), as
/// happens when an error both prints its cause and returns it as its `source()` and the binary
/// prints the whole chain.
pub fn assert_no_repeated_cause(stderr: &str) {
    for line in stderr.lines() {
        let parts: Vec<&str> = line.split(": ").collect();
        assert!(!parts.windows(2).any(|pair| pair[0] == pair[1]), "a cause is printed twice: {line}");
    }
}

/// One call of a scripted Vm's function (either language): the JSON the host sends, and the
/// JSON that comes back, or a fragment of the `CallError::Failed` it must fail with. A message
/// that is JSON is sent twice, as JSON (`call`) and as packed values (`call_packed`, what the
/// script adapter sends), and both must give the same.
pub fn check_vm_answer(
    vm: &mut modhost::kinds::VmHandle,
    function: &str,
    message: &str,
    expected: Result<serde_json::Value, &str>,
) {
    use modhost_abi::{CallError, Vm, packed};
    let packed_message = serde_json::from_str::<serde_json::Value>(message).ok().map(|m| packed::to_vec(&m).unwrap());
    let as_json = vm.call(function, message.as_bytes()).map(|answer| {
        serde_json::from_slice::<serde_json::Value>(&answer)
            .unwrap_or_else(|e| panic!("{function}: {e}: {}", String::from_utf8_lossy(&answer)))
    });
    let as_packed = packed_message.map(|m| {
        vm.call_packed(function, &m).map(|answer| {
            packed::from_slice::<serde_json::Value>(&answer).unwrap_or_else(|e| panic!("{function}: {e}: {answer:?}"))
        })
    });
    for (format, answer) in [("JSON", Some(as_json)), ("packed", as_packed)] {
        let Some(answer) = answer else { continue };
        match (answer, &expected) {
            (Ok(got), Ok(value)) => assert_eq!(&got, value, "{function}({message}) in {format}"),
            (Err(error), Err(fragment)) => {
                assert!(matches!(error, CallError::Failed { .. }), "{error:?}");
                assert!(error.to_string().contains(fragment), "{function} in {format}: {error}");
            }
            (answer, expected) => panic!("{function}({message}) in {format}: got {answer:?}, expected {expected:?}"),
        }
    }
}

/// A packed message `{"k": "\xff"}`, or `{"\xff": 1}` with `in_key`: a string that is not
/// UTF-8, which no encoder of valid text makes, so it is written byte by byte (object tag 8,
/// string tag 6, integer tag 3; counts and lengths are little-endian u32s).
pub fn packed_not_utf8(in_key: bool) -> Vec<u8> {
    let mut bytes = vec![8, 1, 0, 0, 0, 1, 0, 0, 0];
    if in_key {
        bytes.push(0xff);
        bytes.extend([3, 1, 0, 0, 0, 0, 0, 0, 0]);
    } else {
        bytes.push(b'k');
        bytes.extend([6, 1, 0, 0, 0, 0xff]);
    }
    bytes
}

/// Sends 300 random messages (seeded by `seed`; Lua-safe ones with `lua`, see [`Rng::value`])
/// to the Vm's `function`, which must give its message back (as it is, or remade), and
/// checks each comes back as it went, in JSON and in packed values.
pub fn check_random_echoes(vm: &mut modhost::kinds::VmHandle, function: &str, seed: u64, lua: bool) {
    let mut rng = Rng(seed);
    for _ in 0..300 {
        let message = rng.value(0, lua);
        check_vm_answer(vm, function, &message.to_string(), Ok(message.clone()));
    }
}

/// Sends 1,000 corrupted packed messages (random ones with bytes changed, or cut short;
/// seeded by `seed`) to each of the Vm's `functions`, and checks that every call answers or
/// fails with `CallError::Failed`, never anything else (and that the process lives on).
/// Returns how many answered and how many failed, so that a test can check the corruptions
/// reached the script and were not all refused at the door.
pub fn check_corrupted_messages(vm: &mut modhost::kinds::VmHandle, functions: &[&str], seed: u64) -> (usize, usize) {
    use modhost_abi::{CallError, Vm};
    let mut rng = Rng(seed);
    let (mut answered, mut failed) = (0, 0);
    for _ in 0..1000 {
        let mut message = modhost_abi::packed::to_vec(&rng.value(0, false)).unwrap();
        if rng.below(4) == 0 {
            message.truncate(rng.below(message.len() as u64 + 1) as usize);
        } else {
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(message.len() as u64) as usize;
                message[at] = rng.next() as u8;
            }
        }
        for function in functions {
            match vm.call_packed(function, &message) {
                Ok(_) => answered += 1,
                Err(CallError::Failed { .. }) => failed += 1,
                Err(other) => panic!("{function}: {other:?}"),
            }
        }
    }
    (answered, failed)
}

/// A small xorshift generator, so that the property tests need no dependency and are the
/// same on every run.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A short string mixing ASCII, characters JSON escapes, and multi-byte UTF-8.
    pub fn text(&mut self) -> String {
        let alphabet = ["a", "Z", "0", " ", "\"", "\\", "é", "✓", "\n", "\u{1F600}"];
        (0..self.below(12)).map(|_| alphabet[self.below(alphabet.len() as u64) as usize]).collect()
    }

    /// A random message of JSON's data model. With `lua`, only values a Lua table gives back
    /// as they came: no null inside a list or object (a nil is no entry) and no empty object
    /// (an empty table is an empty list), as scripts/README.md says.
    pub fn value(&mut self, depth: u32, lua: bool) -> serde_json::Value {
        use serde_json::Value;
        loop {
            let value = match self.below(if depth > 4 { 6 } else { 8 }) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 1),
                2 => Value::from(self.next() as i64),
                3 if !lua => Value::from(self.next()),
                3 => Value::from(self.next() >> 1),
                4 => Value::from((self.next() as i64 as f64) / 1024.0),
                5 => Value::String(self.text()),
                6 => Value::Array((0..self.below(5)).map(|_| self.value(depth + 1, lua)).collect()),
                _ => Value::Object((0..self.below(5)).map(|_| (self.text(), self.value(depth + 1, lua))).collect()),
            };
            let lua_keeps = match &value {
                Value::Null => depth == 0,
                Value::Object(entries) => !entries.is_empty(),
                _ => true,
            };
            if !lua || lua_keeps {
                return value;
            }
        }
    }
}

/// Runs `work`, failing the test run (not hanging it) if it takes longer than `limit`.
pub fn within<R>(limit: std::time::Duration, what: &str, work: impl FnOnce() -> R) -> R {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let what = what.to_owned();
    std::thread::spawn(move || {
        if finished.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            // Straight to the process's stderr: the test harness captures `eprintln!`, and
            // what it captured is lost when the process exits.
            let message = format!("{what} did not end within {limit:?}: the deadline did not stop it\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
            std::process::exit(101);
        }
    });
    let result = work();
    let _ = done.send(());
    result
}
