//! Loading and verification: one fixture per way a library or a descriptor can be wrong,
//! each rejected with its own error variant, a message naming the library and the module,
//! and the host still running.

mod support;

use std::path::Path;

use modhost::{LoadError, ModuleManager, PreflightError, manifest};
use support::Corrupt;

/// Loads module `name` from `library` into a fresh manager and checks the error.
fn check(library: &Path, name: &str, is_expected: fn(&LoadError) -> bool, fragments: &[&str]) {
    let manager = ModuleManager::new();
    let m = manifest::parse(&support::manifest_json(library, &[(name, &[])]), manifest::Origin::Inline).unwrap();
    let error = match manager.load(&m) {
        Ok(report) => panic!("{name} from {} loaded, but should fail: {report:?}", library.display()),
        Err(e) => e,
    };
    assert!(is_expected(&error), "{name}: unexpected variant {error:?}");
    let message = error.to_string();
    for fragment in fragments.iter().copied().chain([library.to_str().unwrap()]) {
        assert!(message.contains(fragment), "{name}: message {message:?} lacks {fragment:?}");
    }
    assert!(manager.modules().is_empty(), "{name}: a failed load registered something");
}

/// A module symbol, the error variant it must give, and fragments of the message.
type Case = (&'static str, fn(&LoadError) -> bool, &'static [&'static str]);

/// Every broken descriptor of the fixture library, with the error a load of it must give.
fn broken_cases() -> Vec<Case> {
    use LoadError as E;
    vec![
        ("no_such_module", |e| matches!(e, E::SymbolNotFound { .. }), &["symbol 'no_such_module' not found"]),
        (
            "broken_wrong_magic",
            |e| matches!(e, E::BadMagic { .. }),
            &["broken_wrong_magic", "not a modhost module descriptor"],
        ),
        (
            "broken_abi_major",
            |e| matches!(e, E::AbiMajorMismatch { host: 1, found: 2, .. }),
            &["broken_abi_major", "host has 1, module was built for 2"],
        ),
        (
            "broken_abi_minor_newer",
            |e| matches!(e, E::AbiMinorTooNew { host_minor: 2, found: 3, .. }),
            &["host has 1.2, module was built for 1.3"],
        ),
        (
            "broken_too_small",
            |e| matches!(e, E::DescriptorTooSmall { found: 40, minimum: 72, .. }),
            &["descriptor size 40 is below the minimum 72"],
        ),
        (
            "broken_missing_field",
            |e| matches!(e, E::MissingField { field: "author_email", .. }),
            &["missing field 'author_email'"],
        ),
        (
            "broken_non_utf8",
            |e| matches!(e, E::NonUtf8Field { field: "description", .. }),
            &["field 'description' is not valid UTF-8"],
        ),
        (
            "broken_missing_create",
            |e| matches!(e, E::MissingField { field: "create", .. }),
            &["missing field 'create'"],
        ),
        (
            "broken_unknown_kind",
            |e| matches!(e, E::UnknownKind { found: 99, .. }),
            &["unknown module kind 99", "5 (TestModule)"],
        ),
        (
            "broken_version_unparsable",
            |e| matches!(e, E::UnparsableVersion { .. }),
            &["cannot parse its host version 'one.two'"],
        ),
        (
            "broken_version_below_minimum",
            |e| matches!(e, E::VersionBelowKindMinimum { .. }),
            &["minimum supported version for 'TestModule' modules is 0.1.0, but module was built for version 0.0.1"],
        ),
        (
            "broken_version_newer",
            |e| matches!(e, E::VersionNewerThanHost { .. }),
            &["but module was built for version 99.0.0", "host has version"],
        ),
        (
            "broken_incompatible",
            |e| matches!(e, E::Incompatible { reason: Some(_), .. }),
            &["incompatible with this host: needs a frobnicator device"],
        ),
        (
            "broken_compatible_panics",
            |e| matches!(e, E::Incompatible { reason: Some(_), .. }),
            &["the fixture panicked in compatible()"],
        ),
    ]
}

#[test]
fn each_broken_descriptor_gets_its_own_error() {
    let lib = support::broken_modules();
    let host = modhost::host_version().to_string();
    for (name, is_expected, fragments) in broken_cases() {
        check(&lib, name, is_expected, fragments);
    }
    assert!(host.starts_with("0."), "fixture versions assume a 0.x host, not {host}");
}

/// `modhost::inspect` finds every descriptor a library exports without a manifest, each with
/// the verdict a load of it gives (the same error), and leaves out what is not a descriptor.
#[test]
fn inspect_finds_each_descriptor_with_the_verdict_a_load_gives() {
    let lib = support::broken_modules();
    let found = modhost::inspect(lib.to_str().unwrap()).unwrap();
    let symbols: Vec<&str> = found.iter().map(|f| f.symbol.as_str()).collect();
    for (name, is_expected, _) in broken_cases() {
        let Some(inspected) = found.iter().find(|f| f.symbol == name) else {
            // Only what is not a descriptor at all is left out.
            assert!(["no_such_module", "broken_wrong_magic"].contains(&name), "{name} missing from {symbols:?}");
            continue;
        };
        let error = inspected.verdict.as_ref().expect_err(name);
        assert!(is_expected(error), "{name}: {error:?}");
        let manager = ModuleManager::new();
        let m = manifest::parse(&support::manifest_json(&lib, &[(name, &[])]), manifest::Origin::Inline).unwrap();
        assert_eq!(error.to_string(), manager.load(&m).unwrap_err().to_string(), "{name}");
    }
    let accepted: Vec<_> = found.iter().filter_map(|f| f.verdict.as_ref().ok()).collect();
    assert_eq!(accepted.len(), 1, "{symbols:?}");
    assert_eq!((accepted[0].name.as_str(), accepted[0].kind), ("broken_misbehaving", modhost::Kind::TestModule));
    assert!(accepted[0].parameters.is_empty());
    // A library that exports data but no descriptor: nothing found; a corrupt one: its error.
    assert!(modhost::inspect("libc.so.6").unwrap().is_empty());
    let error = modhost::inspect(support::corrupt(Corrupt::Truncated).to_str().unwrap()).unwrap_err();
    assert!(matches!(error, LoadError::Preflight { reason: PreflightError::SegmentBeyondEnd { .. }, .. }), "{error:?}");
}

/// A corrupt file, the pre-flight error it must give, and a fragment of the message.
type CorruptCase = (Corrupt, fn(&PreflightError) -> bool, &'static str);

#[test]
fn corrupt_and_foreign_files_are_refused_before_dlopen() {
    use PreflightError as P;
    let len = |kind| std::fs::metadata(support::corrupt(kind)).unwrap().len();
    let truncated_at = len(Corrupt::Truncated);
    let cases: &[CorruptCase] = &[
        (Corrupt::Empty, |e| matches!(e, P::Empty), "the file is empty"),
        (
            Corrupt::Garbage,
            |e| matches!(e, P::NotElf { found: [0x74, 0x68, 0x69, 0x73] }),
            "not an ELF file (it starts with [74, 68, 69, 73], not 7f 45 4c 46)",
        ),
        (
            Corrupt::Header,
            |e| matches!(e, P::TooShort { len: 40 }),
            "the file is too short to be a shared library (40 bytes)",
        ),
        (
            Corrupt::OtherClass,
            |e| matches!(e, P::WrongClass { .. }),
            "it is a 32-bit ELF file; this host loads 64-bit ones",
        ),
        (
            Corrupt::OtherEndian,
            |e| matches!(e, P::WrongEndian { .. }),
            "it is a big-endian ELF file; this host is little-endian",
        ),
        (Corrupt::Truncated, |e| matches!(e, P::SegmentBeyondEnd { .. }), "it is truncated: loadable segment"),
        (
            Corrupt::TruncatedHeaders,
            |e| matches!(e, P::HeadersBeyondEnd { .. }),
            "it is truncated: its program headers end at byte",
        ),
        (
            Corrupt::EntrySize,
            |e| matches!(e, P::BadHeader { .. }),
            "its program header entries are not the size of an ELF program header",
        ),
        (
            Corrupt::OtherArchitecture,
            |e| matches!(e, P::WrongMachine { .. }),
            "it was built for AArch64 (e_machine 183); this host is x86-64 (e_machine 62)",
        ),
        (
            Corrupt::Executable,
            |e| matches!(e, P::NotSharedObject { kind: "executable" }),
            "it is an ELF executable, not a shared library (ET_DYN)",
        ),
    ];
    let segment_end = format!("but the file has {truncated_at} bytes");
    check(
        &support::corrupt(Corrupt::Truncated),
        "org_modhost_TestModule",
        |e| matches!(e, LoadError::Preflight { .. }),
        &[&segment_end],
    );
    for (kind, is_expected, fragment) in cases {
        let path = support::corrupt(*kind);
        check(&path, "org_modhost_TestModule", |e| matches!(e, LoadError::Preflight { .. }), &[fragment]);
        let manager = ModuleManager::new();
        let m = manifest::parse(&support::manifest_json(&path, &[]), manifest::Origin::Inline).unwrap();
        match manager.load(&m) {
            Err(LoadError::Preflight { reason, .. }) => assert!(is_expected(&reason), "{}: {reason:?}", path.display()),
            other => panic!("{}: expected a preflight error, got {other:?}", path.display()),
        }
    }
}

#[test]
fn missing_files_and_directories_are_refused() {
    let dir = support::scratch();
    check(
        &dir.join("libnothing.so"),
        "m",
        |e| matches!(e, LoadError::Preflight { reason: PreflightError::NotFound, .. }),
        &["no such file"],
    );
    check(
        &dir,
        "m",
        |e| matches!(e, LoadError::Preflight { reason: PreflightError::NotAFile, .. }),
        &["not a regular file"],
    );
}

#[test]
fn a_bare_name_not_on_the_search_path_names_the_directories_searched() {
    let manager = ModuleManager::new();
    let m =
        manifest::from_flag(r#"{"libraries":[{"name":"modhost_no_such_library","modules":[{"name":"m"}]}]}"#).unwrap();
    let error = manager.load(&m).unwrap_err();
    assert!(matches!(error, LoadError::LibraryNotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("'libmodhost_no_such_library.so'") && message.contains("/usr/lib"), "{message}");
}
