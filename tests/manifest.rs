//! The manifest: Mesos's format, modhost's `symbol` key, and one error per malformed input.

mod support;

use std::path::Path;

use modhost::manifest::{self, ManifestError, Origin};
use modhost_abi::Parameter;

/// Parses `input` as a `--modules` value and checks the error's variant and message.
fn check(input: &str, is_expected: fn(&ManifestError) -> bool, fragments: &[&str]) {
    let error = match manifest::from_flag(input) {
        Ok(m) => panic!("{input:?} parsed, but should fail: {m:?}"),
        Err(e) => e,
    };
    assert!(is_expected(&error), "{input:?}: unexpected variant {error:?}");
    let message = error.to_string();
    for fragment in fragments {
        assert!(message.contains(fragment), "{input:?}: message {message:?} lacks {fragment:?}");
    }
}

/// An input, the error variant it must give, and fragments of the message.
type Case = (&'static str, fn(&ManifestError) -> bool, &'static [&'static str]);

#[test]
fn malformed_manifests_are_rejected_with_the_place_at_fault() {
    use ManifestError as E;
    let cases: &[Case] = &[
        (
            r#"{"libraries":[{"modules":[{"name":"m"}]}]}"#,
            |e| matches!(e, E::MissingLibrary { index: 0, .. }),
            &["libraries[0]", "Library name or path not provided"],
        ),
        (
            r#"{"libraries":[{"file":"/a.so"},{"name":null,"modules":[]}]}"#,
            |e| matches!(e, E::MissingLibrary { index: 1, .. }),
            &["libraries[1]"],
        ),
        (
            r#"{"libraries":[{"file":""}]}"#,
            |e| matches!(e, E::EmptyLibrary { field: "file", .. }),
            &["libraries[0]", "\"file\" is empty"],
        ),
        (
            r#"{"libraries":[{"name":"x","modules":[{"parameters":[]}]}]}"#,
            |e| matches!(e, E::MissingModuleName { .. }),
            &["libraries[0].modules[0]", "module name not provided with library 'libx.so'"],
        ),
        (
            r#"{"libraries":[{"file":"/l.so","modules":[{"name":""}]}]}"#,
            |e| matches!(e, E::BadSymbol { field: "name", .. }),
            &["'/l.so'", "\"name\""],
        ),
        (
            r#"{"libraries":[{"file":"/l.so","modules":[{"name":"m","symbol":""}]}]}"#,
            |e| matches!(e, E::BadSymbol { field: "symbol", .. }),
            &["module 'm'", "\"symbol\""],
        ),
        (
            r#"{"libraries":[{"file":"/l.so","modules":[{"name":"m","parameters":[{"value":"v"}]}]}]}"#,
            |e| matches!(e, E::IncompleteParameter { field: "key", index: 0, .. }),
            &["module 'm' of library '/l.so'", "parameters[0] has no \"key\""],
        ),
        (
            r#"{"libraries":[{"file":"/l.so","modules":[{"name":"m","parameters":[{"key":"a","value":"b"},{"key":"k"}]}]}]}"#,
            |e| matches!(e, E::IncompleteParameter { field: "value", index: 1, .. }),
            &["parameters[1] has no \"value\""],
        ),
        (r#"[1, 2]"#, |e| matches!(e, E::NotAnObject { origin: Origin::Inline }), &["expecting a JSON object"]),
        (
            "{\"libraries\": [\n  {\"file\": 3}]}",
            |e| matches!(e, E::Syntax { .. }),
            &["inline --modules JSON", "line 2"],
        ),
        (r#"{"libraries": [}"#, |e| matches!(e, E::Syntax { .. }), &["line 1 column"]),
        ("scripts/modules.json", |e| matches!(e, E::Syntax { .. }), &["give an absolute path or a file:// URI"]),
        (
            "file:///nonexistent/modhost/manifest.json",
            |e| matches!(e, E::ReadFile { .. }),
            &["Error reading module manifest file '/nonexistent/modhost/manifest.json'"],
        ),
        (
            "/nonexistent/modhost/manifest.json",
            |e| matches!(e, E::ReadFile { .. }),
            &["/nonexistent/modhost/manifest.json"],
        ),
    ];
    for (input, is_expected, fragments) in cases {
        check(input, *is_expected, fragments);
    }
}

#[test]
fn a_full_manifest_parses_with_file_winning_over_name() {
    let m = manifest::from_flag(
        r#"{"libraries":[
            {"file":"/p/libfoo.so","name":"foo","modules":[
                {"name":"org_x_bar","symbol":"org_x_vm","parameters":[{"key":"X","value":"Y"},{"key":"X","value":"Z"}]},
                {"name":"org_x_baz"}]},
            {"name":"bar","modules":null}]}"#,
    )
    .unwrap();
    assert_eq!(m.origin, Origin::Inline);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(m.libraries[0].library(), "/p/libfoo.so");
    assert_eq!(m.libraries[1].library(), manifest::expand_name("bar"));
    assert_eq!(manifest::expand_name("bar"), if cfg!(target_os = "macos") { "libbar.dylib" } else { "libbar.so" });
    let bar = &m.libraries[0].modules[0];
    assert_eq!(bar.symbol(), "org_x_vm");
    assert_eq!(bar.parameters, vec![Parameter::new("X", "Y"), Parameter::new("X", "Z")]);
    assert_eq!(m.libraries[0].modules[1].symbol(), "org_x_baz");
    assert!(m.libraries[1].modules.is_empty());
}

#[test]
fn unknown_keys_are_ignored_with_a_warning_naming_the_place() {
    let m = manifest::from_flag(
        r#"{"version":2,"libraries":[{"file":"/l.so","enabled":true,
            "modules":[{"name":"m","paramters":[],"parameters":[{"key":"k","value":"v","comment":"x"}]}]}]}"#,
    )
    .unwrap();
    let expected = [
        "top level: unknown key \"version\"",
        "libraries[0]: unknown key \"enabled\"",
        "libraries[0].modules[0]: unknown key \"paramters\"",
        "libraries[0].modules[0].parameters[0]: unknown key \"comment\"",
    ];
    assert_eq!(m.warnings.len(), expected.len(), "{:?}", m.warnings);
    for (warning, fragment) in m.warnings.iter().zip(expected) {
        assert!(warning.contains(fragment), "{warning:?} lacks {fragment:?}");
    }
    assert_eq!(m.libraries[0].modules[0].parameters, vec![Parameter::new("k", "v")]);
}

#[test]
fn files_are_read_from_file_uris_relative_paths_and_absolute_paths() {
    let dir = support::scratch().join("uri");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.json");
    std::fs::write(&path, r#"{"libraries":[{"name":"foo"}]}"#).unwrap();
    for value in [format!("file://{}", path.display()), path.display().to_string()] {
        let m = manifest::from_flag(&value).unwrap();
        assert_eq!(m.origin, Origin::File(path.clone()));
        assert_eq!(m.libraries.len(), 1);
    }
    // file:// followed by a relative path is relative to the working directory, as in Mesos.
    let relative = pathdiff(&path);
    assert!(manifest::from_flag(&format!("file://{}", relative.display())).is_ok());
}

/// `path` relative to the working directory.
fn pathdiff(path: &Path) -> std::path::PathBuf {
    let cwd = std::env::current_dir().unwrap();
    let ups = cwd.components().count() - 1;
    let mut relative = std::path::PathBuf::new();
    for _ in 0..ups {
        relative.push("..");
    }
    relative.join(path.strip_prefix("/").unwrap())
}

#[test]
fn modules_dir_reads_every_entry_in_byte_order_and_rejects_both_flags() {
    let dir = support::scratch().join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    for (file, lib) in [("b.json", "b"), ("B.json", "upper"), ("a.conf", "a")] {
        std::fs::write(dir.join(file), format!(r#"{{"libraries":[{{"name":"{lib}"}}]}}"#)).unwrap();
    }
    let manifests = manifest::from_dir(&dir).unwrap();
    let order: Vec<String> = manifests.iter().map(|m| m.libraries[0].library()).collect();
    assert_eq!(order, [manifest::expand_name("upper"), manifest::expand_name("a"), manifest::expand_name("b")]);

    std::fs::create_dir(dir.join("c-subdir")).unwrap();
    let error = manifest::from_dir(&dir).unwrap_err();
    assert!(matches!(error, ManifestError::ReadFile { ref path, .. } if path.ends_with("c-subdir")), "{error:?}");

    let error = manifest::from_dir(&dir.join("missing")).unwrap_err();
    assert!(matches!(error, ManifestError::ReadDir { .. }), "{error:?}");
    assert!(error.to_string().contains("Error loading module manifests from"));

    let error = manifest::from_flags(Some("{}"), Some(&dir)).unwrap_err();
    assert!(matches!(error, ManifestError::BothSources));
    assert_eq!(error.to_string(), "Only one of --modules or --modules_dir should be specified");
}

#[test]
fn the_bundled_manifest_and_the_schema_are_well_formed() {
    let root = support::workspace();
    let bundled = manifest::from_file(&root.join("scripts/modules.json")).unwrap();
    assert!(bundled.warnings.is_empty(), "{:?}", bundled.warnings);
    assert_eq!(bundled.libraries[0].modules.len(), 3);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("core/host/manifest.schema.json")).unwrap()).unwrap();
    // The schema documents every key the parser knows.
    for key in ["libraries", "file", "name", "modules", "symbol", "parameters", "key", "value"] {
        assert!(schema.to_string().contains(&format!("\"{key}\"")), "the schema does not document {key:?}");
    }
}
