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

#[test]
fn each_broken_descriptor_gets_its_own_error() {
    use LoadError as E;
    let lib = support::broken_modules();
    let host = modhost::host_version().to_string();
    let cases: &[Case] = &[
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
            |e| matches!(e, E::AbiMinorTooNew { found: 2, .. }),
            &["host has 1.1, module was built for 1.2"],
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
    ];
    for (name, is_expected, fragments) in cases {
        check(&lib, name, *is_expected, fragments);
    }
    assert!(host.starts_with("0."), "fixture versions assume a 0.x host, not {host}");
}

/// A corrupt file, the pre-flight error it must give, and a fragment of the message.
type CorruptCase = (Corrupt, fn(&PreflightError) -> bool, &'static str);

#[test]
fn corrupt_and_foreign_files_are_refused_before_dlopen() {
    use PreflightError as P;
    let cases: &[CorruptCase] = &[
        (Corrupt::Empty, |e| matches!(e, P::Empty), "the file is empty"),
        (Corrupt::Garbage, |e| matches!(e, P::NotElf { .. }), "not an ELF file"),
        (
            Corrupt::Truncated,
            |e| matches!(e, P::SegmentBeyondEnd { .. } | P::HeadersBeyondEnd { .. }),
            "it is truncated",
        ),
        (Corrupt::OtherArchitecture, |e| matches!(e, P::WrongMachine { .. }), "it was built for"),
        (Corrupt::Executable, |e| matches!(e, P::NotSharedObject { kind: "executable" }), "not a shared library"),
    ];
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
