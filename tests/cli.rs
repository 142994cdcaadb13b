//! `modhost modules check`, run as a user runs it: the table, `--json`, and a clear error and
//! a clean exit (never a signal) for every bad fixture.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::Corrupt;

fn modhost(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_modhost"));
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run modhost")
}

/// Runs `modules check` on `manifest` and checks the exit code and what stderr says.
fn check(manifest: &str, expected_code: i32, stderr_fragments: &[&str]) -> Output {
    let output = modhost(&["modules", "check", &format!("--modules={manifest}")], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(expected_code),
        "exit status {:?} for {manifest}; stderr:\n{stderr}",
        output.status
    );
    for fragment in stderr_fragments {
        assert!(stderr.contains(fragment), "stderr lacks {fragment:?} for {manifest}:\n{stderr}");
    }
    support::assert_no_repeated_cause(&stderr);
    output
}

#[test]
fn a_good_manifest_prints_one_row_per_module_and_exits_zero() {
    let lib = support::test_modules();
    let manifest = support::manifest_json(
        &lib,
        &[
            ("org_modhost_TestModule", &[("operation", "sum")]),
            ("org_apache_mesos_TestModule", &[]),
            ("org_modhost_TestAnonymous", &[]),
        ],
    );
    let output = check(&manifest, 0, &[]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("VERDICT"), "{stdout}");
    for (line, (name, kind)) in lines[1..4].iter().zip([
        ("org_modhost_TestModule", "TestModule"),
        ("org_apache_mesos_TestModule", "TestModule"),
        ("org_modhost_TestAnonymous", "Anonymous"),
    ]) {
        assert!(line.starts_with(name) && line.contains(kind) && line.trim_end().ends_with("ok"), "{line}");
        assert!(line.contains(lib.to_str().unwrap()), "{line}");
    }
    assert!(stdout.contains("3 module(s), 3 ok, 0 failed"), "{stdout}");
}

#[test]
fn json_output_carries_metadata_and_verdicts() {
    let manifest = serde_json::json!({"libraries": [
        {"file": support::test_modules(), "modules": [{"name": "org_apache_mesos_TestModule"}]},
        {"file": support::broken_modules(), "modules": [{"name": "broken_missing_field"}]},
    ]})
    .to_string();
    let output = modhost(&["modules", "check", &format!("--modules={manifest}"), "--json"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let modules = report["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 2, "{report}");
    assert_eq!(modules[0]["verdict"], "ok");
    assert_eq!(modules[0]["module"]["kind"], "TestModule");
    assert_eq!(modules[0]["module"]["author_email"], "modules@mesos.apache.org");
    assert_eq!(modules[0]["module"]["abi"], "1.2");
    assert_eq!(modules[1]["verdict"], "error");
    assert!(modules[1]["error"].as_str().unwrap().contains("missing field 'author_email'"));
    assert_eq!(report["host_version"], modhost::host_version().to_string());
}

#[test]
fn every_bad_fixture_gets_a_clear_error_and_a_clean_exit() {
    let broken = support::broken_modules();
    let cases: &[(&str, &str)] = &[
        ("broken_wrong_magic", "not a modhost module descriptor"),
        ("broken_abi_major", "host has 1, module was built for 2"),
        ("broken_abi_minor_newer", "module was built for 1.3"),
        ("broken_too_small", "descriptor size 40"),
        ("broken_unknown_kind", "unknown module kind 99"),
        ("broken_version_newer", "module was built for version 99.0.0"),
        ("broken_version_below_minimum", "minimum supported version for 'TestModule'"),
        ("broken_version_unparsable", "cannot parse its host version 'one.two'"),
        ("broken_missing_field", "missing field 'author_email'"),
        ("broken_non_utf8", "not valid UTF-8"),
        ("broken_missing_create", "missing field 'create'"),
        ("broken_incompatible", "needs a frobnicator device"),
        ("broken_compatible_panics", "panicked in compatible()"),
        ("no_such_symbol", "symbol 'no_such_symbol' not found"),
    ];
    for (name, fragment) in cases {
        let manifest = support::manifest_json(&broken, &[(name, &[])]);
        let output = check(&manifest, 1, &[&format!("'{name}'"), fragment, broken.to_str().unwrap()]);
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(stdout.contains(name) && stdout.contains("error"), "{stdout}");
    }
    for kind in [Corrupt::Empty, Corrupt::Garbage, Corrupt::Truncated, Corrupt::OtherArchitecture, Corrupt::Executable]
    {
        let path = support::corrupt(kind);
        let manifest = support::manifest_json(&path, &[("org_modhost_TestModule", &[])]);
        check(&manifest, 1, &[&format!("Error opening library '{}'", path.display())]);
    }
}

#[test]
fn a_failing_anonymous_module_fails_the_check() {
    let manifest =
        support::manifest_json(&support::test_modules(), &[("org_modhost_TestAnonymous", &[("fail", "on purpose")])]);
    check(
        &manifest,
        1,
        &["Failed to create anonymous module named 'org_modhost_TestAnonymous'", "told to fail: on purpose"],
    );
}

#[test]
fn flags_follow_mesos() {
    // Both sources at once.
    let output = modhost(&["modules", "check", "--modules={}", "--modules_dir=/tmp"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Only one of --modules or --modules_dir should be specified")
    );
    // Neither.
    let output = modhost(&["modules", "check"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("give --modules"));
    // Malformed manifest: the parser's location is passed on.
    check("{\"libraries\": [", 1, &["Error parsing the inline --modules JSON", "line 1"]);
    // Unknown keys: a warning, not an error.
    let manifest = support::manifest_json(&support::test_modules(), &[("org_modhost_TestModule", &[])])
        .replace("\"modules\"", "\"modulez\":1,\"modules\"");
    check(&manifest, 0, &["warning:", "unknown key \"modulez\" ignored"]);
}

#[test]
fn modules_dir_and_file_uris_load() {
    let dir = support::scratch().join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let lib = support::test_modules();
    std::fs::write(dir.join("10-test.json"), support::manifest_json(&lib, &[("org_modhost_TestModule", &[])])).unwrap();
    std::fs::write(dir.join("20-mesos.json"), support::manifest_json(&lib, &[("org_apache_mesos_TestModule", &[])]))
        .unwrap();
    let output = modhost(&["modules", "check", &format!("--modules_dir={}", dir.display())], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 module(s), 2 ok"));

    check(&format!("file://{}", dir.join("10-test.json").display()), 0, &[]);
}

#[test]
fn a_library_name_is_found_through_ld_library_path() {
    let lib = support::test_modules();
    let manifest = r#"{"libraries":[{"name":"modhost_test_modules","modules":[{"name":"org_modhost_TestModule"}]}]}"#;
    let output =
        modhost(&["modules", "check", &format!("--modules={manifest}")], &[("LD_LIBRARY_PATH", lib.parent().unwrap())]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("libmodhost_test_modules.so"));

    let output = modhost(
        &["modules", "check", &format!("--modules={manifest}")],
        &[("LD_LIBRARY_PATH", Path::new("/nonexistent"))],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("'libmodhost_test_modules.so': not found in LD_LIBRARY_PATH")
    );
}

/// `modhost modules inspect LIB`: a library's descriptors without a manifest, as a table or
/// JSON; exit 0 only when there is at least one and this host accepts each.
#[test]
fn inspect_lists_a_librarys_descriptors_without_a_manifest() {
    let examples = support::examples();
    let output = modhost(&["modules", "inspect", examples.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    for (name, kind) in [
        ("org_modhost_EnvironmentHook", "Hook"),
        ("org_modhost_HierarchicalDRF", "Allocator"),
        ("org_modhost_LabelHook", "Hook"),
        ("org_modhost_ResourceAccountingIsolator", "Isolator"),
    ] {
        let line = stdout.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}:\n{stdout}"));
        assert!(line.contains(kind) && line.contains("1.2") && line.trim_end().ends_with("ok"), "{line}");
    }
    assert!(stdout.contains("4 descriptor(s): 4 accepted, 0 refused"), "{stdout}");

    // Refused descriptors are listed with the reason; what is not a descriptor is not.
    let broken = support::broken_modules();
    let output = modhost(&["modules", "inspect", "--json", broken.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = report["modules"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["name"] == name);
    assert_eq!(row("broken_misbehaving").unwrap()["module"]["kind"], "TestModule");
    let incompatible = row("broken_incompatible").unwrap();
    assert_eq!(incompatible["verdict"], "refused");
    assert!(incompatible["error"].as_str().unwrap().contains("needs a frobnicator device"), "{incompatible}");
    assert!(row("broken_wrong_magic").is_none(), "not a descriptor");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refused: Error verifying module 'broken_abi_major'"), "{stderr}");

    // No descriptor at all, and a file that is no library: a clear line, exit 1.
    let output = modhost(&["modules", "inspect", "libc.so.6"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("'libc.so.6' exports no modhost module descriptor"));
    let corrupt = support::corrupt(Corrupt::Truncated);
    let output = modhost(&["modules", "inspect", corrupt.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("it is truncated: loadable segment"));
}
