//! The module manager through its public API: TestModule semantics (Rust and C modules
//! alike), Anonymous creation, duplicates, all-or-nothing loads, creation failures and
//! panics, and concurrent use.

mod support;

use std::path::Path;
use std::sync::Arc;

use modhost::kinds::{AllocatorHandle, AnonymousHandle, HookHandle, TestModuleHandle, VmHandle};
use modhost::manifest::{self, Manifest, Origin};
use modhost::{CreateError, Kind, LoadError, ModuleManager};
use modhost_abi::{CallError, Parameter, Parameters, TestModule};

fn manifest(library: &Path, modules: &[(&str, &[(&str, &str)])]) -> Manifest {
    manifest::parse(&support::manifest_json(library, modules), Origin::Inline).unwrap()
}

fn loaded(library: &Path, modules: &[(&str, &[(&str, &str)])]) -> ModuleManager {
    let manager = ModuleManager::new();
    manager.load(&manifest(library, modules)).unwrap();
    manager
}

/// Checks Mesos's TestModule semantics on one module of one library.
fn check_test_module(library: &Path, name: &str) {
    let manager = loaded(library, &[(name, &[("operation", "sum")])]);
    let sum: TestModuleHandle = manager.create(name, None).unwrap();
    assert_eq!(sum.foo(10, 32).unwrap(), 42, "{name}: foo adds");
    assert_eq!(sum.foo(-3, 1).unwrap(), -2, "{name}: foo adds negatives");
    assert_eq!(sum.bar(2.5, 3.0).unwrap(), 7, "{name}: bar multiplies and truncates");
    assert_eq!(sum.bar(-1.5, 3.0).unwrap(), -4, "{name}: bar truncates toward zero");
    assert_eq!(sum.baz(4, 5).unwrap(), 9, "{name}: baz sums with operation=sum");
    assert_eq!(sum.parameters().unwrap(), Parameters(vec![Parameter::new("operation", "sum")]), "{name}");

    // Explicit parameters replace the manifest's; an empty list is a replacement too.
    let plain: TestModuleHandle = manager.create(name, Some(vec![])).unwrap();
    assert_eq!(plain.baz(4, 5).unwrap(), -1, "{name}: baz is -1 without operation=sum");
    assert!(plain.parameters().unwrap().is_empty(), "{name}");
    let other: TestModuleHandle = manager.create(name, Some(vec![Parameter::new("x", "y")])).unwrap();
    assert_eq!(other.parameters().unwrap(), Parameters(vec![Parameter::new("x", "y")]), "{name}");

    // Creation fails for any other operation.
    let error = manager.create::<TestModuleHandle>(name, Some(vec![Parameter::new("operation", "product")])).err();
    assert!(matches!(error, Some(CreateError::Failed { .. })), "{name}: {error:?}");
    assert!(error.unwrap().to_string().contains("unknown operation"), "{name}");
}

#[test]
fn test_module_semantics_hold_for_rust_and_c_modules() {
    check_test_module(&support::test_modules(), "org_modhost_TestModule");
    check_test_module(&support::test_modules(), "org_apache_mesos_TestModule");
    check_test_module(&support::c_module(), "org_modhost_c_TestModule");
}

/// ABI 1.1 appended `call_packed` to the Vm vtable: a Vm built for 1.0 (the C fixture's,
/// whose vtable ends before it) still loads, and a packed call reaches it as JSON.
#[test]
fn a_vm_built_for_abi_1_0_is_called_in_json() {
    let manager = loaded(&support::c_module(), &[("org_modhost_c_Vm_1_0", &[])]);
    assert_eq!(manager.get("org_modhost_c_Vm_1_0").unwrap().abi, "1.0");
    let mut vm: VmHandle = manager.create("org_modhost_c_Vm_1_0", None).unwrap();
    let message = r#"{"task":{"id":"t1","labels":[{"key":"k","value":"v"}]},"n":-2,"x":2.5,"ok":true,"none":null}"#;
    support::check_vm_answer(&mut vm, "echo", message, Ok(serde_json::from_str(message).unwrap()));
    support::check_vm_answer(&mut vm, "other", "{}", Err("the C Vm defines only 'echo'"));
}

/// ABI 1.2 appended `update_quota` to the Allocator vtable: an allocator built for 1.1 (the C
/// fixture's, whose vtable ends before it) still loads and works, and a quota is refused for
/// it rather than silently ignored.
#[test]
fn an_allocator_built_for_abi_1_1_refuses_quota() {
    use modhost_abi::messages::{AgentInfo, AllocatorOptions, Resources};
    use modhost_abi::{AddAgent, Allocate, Allocator, UpdateQuota};
    let manager = loaded(&support::c_module(), &[("org_modhost_c_Allocator_1_1", &[])]);
    assert_eq!(manager.get("org_modhost_c_Allocator_1_1").unwrap().abi, "1.1");
    let mut allocator: AllocatorHandle = manager.create("org_modhost_c_Allocator_1_1", None).unwrap();
    allocator.initialize(&AllocatorOptions::default()).unwrap();
    let agent = AgentInfo { id: "a0".into(), resources: Resources::new().with("cpus", 1.0), ..AgentInfo::default() };
    allocator.add_agent(&AddAgent { agent, used: vec![] }).unwrap();
    let quota =
        UpdateQuota { role: "eng".into(), limits: Resources::new().with("cpus", 1.0), ..UpdateQuota::default() };
    let error = allocator.update_quota(&quota).unwrap_err();
    assert!(error.to_string().contains("does not support quota"), "{error}");
    assert!(allocator.allocate(&Allocate { now: 0.0, dry_run: false }).unwrap().is_empty());
}

/// A module whose descriptor lacks FLAG_PACKED_MESSAGES (the C hook) is sent JSON, and its
/// JSON answers are read; Rust modules, which have the flag, are sent packed values (every
/// other hook test).
#[test]
fn a_module_without_the_packed_flag_is_sent_json() {
    use modhost_abi::messages::{AgentInfo, FrameworkInfo, Label, TaskInfo};
    use modhost_abi::{AgentEvent, Hook, LaunchTask};
    let manager = loaded(&support::c_module(), &[("org_modhost_c_JsonHook", &[])]);
    assert_eq!(manager.get("org_modhost_c_JsonHook").unwrap().flags & modhost_abi::FLAG_PACKED_MESSAGES, 0);
    let mut hook: HookHandle = manager.create("org_modhost_c_JsonHook", None).unwrap();
    let launch = LaunchTask {
        task: TaskInfo { id: "t1".into(), ..TaskInfo::default() },
        framework: FrameworkInfo::default(),
        agent: AgentInfo::default(),
    };
    let labels = hook.master_launch_task_label_decorator(&launch).unwrap();
    assert_eq!(labels, Some(vec![Label { key: "written_in".into(), value: "C".into() }]));
    hook.master_agent_lost_hook(&AgentEvent { agent: AgentInfo::default() }).unwrap();
}

#[test]
fn anonymous_modules_run_their_create() {
    let manager = loaded(&support::test_modules(), &[("org_modhost_TestAnonymous", &[])]);
    assert_eq!(manager.find(Kind::Anonymous), ["org_modhost_TestAnonymous"]);
    let _instance: AnonymousHandle = manager.create("org_modhost_TestAnonymous", None).unwrap();
    assert_eq!(std::env::var("MODHOST_TEST_ANONYMOUS").as_deref(), Ok("42"));
}

#[test]
fn listing_contains_find_and_unload() {
    let lib = support::test_modules();
    let manager = loaded(
        &lib,
        &[
            ("org_modhost_TestModule", &[("operation", "sum")]),
            ("org_apache_mesos_TestModule", &[]),
            ("org_modhost_TestAnonymous", &[]),
        ],
    );
    assert_eq!(manager.find(Kind::TestModule), ["org_apache_mesos_TestModule", "org_modhost_TestModule"]);
    assert!(manager.contains("org_modhost_TestModule", Kind::TestModule));
    assert!(!manager.contains("org_modhost_TestModule", Kind::Anonymous));
    assert!(!manager.contains("nope", Kind::TestModule));

    let info = manager.get("org_apache_mesos_TestModule").unwrap();
    assert_eq!(info.kind, Kind::TestModule);
    assert_eq!((info.author_name.as_str(), info.author_email.as_str()), ("Apache Mesos", "modules@mesos.apache.org"));
    assert_eq!(info.description, "This is a test module.");
    assert_eq!(info.abi, "1.2");
    assert_eq!(info.built_for, modhost::host_version().to_string());
    assert_eq!(info.path, lib);
    assert_eq!(manager.modules().len(), 3);

    manager.unload("org_modhost_TestModule").unwrap();
    assert!(!manager.contains("org_modhost_TestModule", Kind::TestModule));
    let error = manager.unload("org_modhost_TestModule").unwrap_err();
    assert_eq!(error.to_string(), "Error unloading module 'org_modhost_TestModule': module not loaded");
    // A later load registers it again.
    manager.load(&manifest(&lib, &[("org_modhost_TestModule", &[])])).unwrap();
    assert!(manager.contains("org_modhost_TestModule", Kind::TestModule));
}

#[test]
fn duplicates_are_accepted_only_when_identical() {
    let lib = support::test_modules();
    let name = "org_modhost_TestModule";
    let manager = loaded(&lib, &[(name, &[("operation", "sum")])]);

    // The same manifest again: accepted, nothing new.
    let report = manager.load(&manifest(&lib, &[(name, &[("operation", "sum")])])).unwrap();
    assert!(report.registered.is_empty());

    // Same name, other parameters (order counts, as in Mesos).
    let error = manager.load(&manifest(&lib, &[(name, &[("operation", "sum"), ("x", "y")])])).unwrap_err();
    assert!(matches!(error, LoadError::DuplicateParameters { .. }), "{error:?}");
    assert!(error.to_string().contains("same name but different parameters"));

    // Same name, another library string for the very same file.
    let via_dots = lib.parent().unwrap().join(".").join(lib.file_name().unwrap());
    let error = manager.load(&manifest(&via_dots, &[(name, &[("operation", "sum")])])).unwrap_err();
    assert!(matches!(error, LoadError::DuplicateLibrary { .. }), "{error:?}");
    assert!(error.to_string().contains("two different module libraries"));

    // Same name, another descriptor (through `symbol`).
    let json = format!(
        r#"{{"libraries":[{{"file":"{}","modules":[{{"name":"{name}","symbol":"org_apache_mesos_TestModule",
            "parameters":[{{"key":"operation","value":"sum"}}]}}]}}]}}"#,
        lib.display()
    );
    let error = manager.load(&manifest::parse(&json, Origin::Inline).unwrap()).unwrap_err();
    assert!(matches!(error, LoadError::DuplicateDescriptor { .. }), "{error:?}");
    assert!(error.to_string().contains("symbol 'org_modhost_TestModule'"));
}

#[test]
fn one_descriptor_can_back_several_named_modules_through_symbol() {
    let lib = support::test_modules();
    let json = format!(
        r#"{{"libraries":[{{"file":"{}","modules":[
            {{"name":"adder","symbol":"org_modhost_TestModule","parameters":[{{"key":"operation","value":"sum"}}]}},
            {{"name":"plain","symbol":"org_modhost_TestModule"}}]}}]}}"#,
        lib.display()
    );
    let manager = ModuleManager::new();
    manager.load(&manifest::parse(&json, Origin::Inline).unwrap()).unwrap();
    let adder: TestModuleHandle = manager.create("adder", None).unwrap();
    let plain: TestModuleHandle = manager.create("plain", None).unwrap();
    assert_eq!((adder.baz(1, 2).unwrap(), plain.baz(1, 2).unwrap()), (3, -1));
    assert_eq!(manager.get("adder").unwrap().symbol, "org_modhost_TestModule");
}

#[test]
fn a_failed_load_leaves_the_manager_exactly_as_it_was() {
    let lib = support::test_modules();
    let manager = loaded(&lib, &[("org_modhost_TestModule", &[])]);
    let before = manager.modules();
    let json = format!(
        r#"{{"libraries":[
            {{"file":"{}","modules":[{{"name":"org_apache_mesos_TestModule"}}]}},
            {{"file":"{}","modules":[{{"name":"broken_abi_major"}}]}}]}}"#,
        lib.display(),
        support::broken_modules().display()
    );
    let error = manager.load(&manifest::parse(&json, Origin::Inline).unwrap()).unwrap_err();
    assert!(matches!(error, LoadError::AbiMajorMismatch { .. }), "{error:?}");
    assert_eq!(manager.modules(), before, "the good module of the failed manifest must not stay registered");
    assert!(!manager.contains("org_apache_mesos_TestModule", Kind::TestModule));
}

/// The same manifest as JSON, for `manifest::parse`.
fn as_json(manifest: &Manifest) -> String {
    let libraries: Vec<serde_json::Value> = manifest
        .libraries
        .iter()
        .map(|library| {
            let modules: Vec<serde_json::Value> = library
                .modules
                .iter()
                .map(|m| {
                    let parameters: Vec<_> =
                        m.parameters.iter().map(|p| serde_json::json!({"key": p.key, "value": p.value})).collect();
                    let mut module = serde_json::json!({"name": m.name, "parameters": parameters});
                    if let Some(symbol) = &m.symbol {
                        module["symbol"] = symbol.as_str().into();
                    }
                    module
                })
                .collect();
            let mut entry = serde_json::json!({"modules": modules});
            for (field, value) in [("file", &library.file), ("name", &library.name)] {
                if let Some(value) = value {
                    entry[field] = value.as_str().into();
                }
            }
            entry
        })
        .collect();
    serde_json::json!({ "libraries": libraries }).to_string()
}

/// A manifest built in code is held to the rules `manifest::parse` checks: `load` refuses
/// it with the error parse gives the same entries as JSON, and registers nothing. (It had
/// reached `dlsym` with an empty name, and registered a module named "" through `symbol`.)
#[test]
fn a_manifest_built_in_code_is_held_to_the_rules_of_a_parsed_one() {
    use manifest::{LibraryEntry, ManifestError as E, ModuleEntry};
    let file = support::test_modules().display().to_string();
    let module = |name: &str, symbol: Option<&str>| ModuleEntry {
        name: name.into(),
        symbol: symbol.map(str::to_owned),
        parameters: vec![Parameter::new("operation", "sum")],
    };
    let library = |file: Option<&str>, name: Option<&str>, modules: Vec<ModuleEntry>| LibraryEntry {
        file: file.map(str::to_owned),
        name: name.map(str::to_owned),
        modules,
    };
    let good = || module("org_modhost_TestModule", None);
    type Case = (LibraryEntry, fn(&E) -> bool);
    let cases: Vec<Case> = vec![
        (library(None, None, vec![good()]), |e| matches!(e, E::MissingLibrary { index: 1, .. })),
        (library(Some(""), None, vec![good()]), |e| matches!(e, E::EmptyLibrary { field: "file", .. })),
        (library(None, Some(""), vec![good()]), |e| matches!(e, E::EmptyLibrary { field: "name", .. })),
        (library(Some(&file), None, vec![module("", None)]), |e| matches!(e, E::BadSymbol { field: "name", .. })),
        (library(Some(&file), None, vec![good(), module("", Some("org_modhost_TestModule"))]), |e| {
            matches!(e, E::BadSymbol { field: "name", .. })
        }),
        (library(Some(&file), None, vec![module("org_modhost_TestModule\0x", None)]), |e| {
            matches!(e, E::BadSymbol { field: "name", .. })
        }),
        (library(Some(&file), None, vec![module("m", Some(""))]), |e| {
            matches!(e, E::BadSymbol { field: "symbol", .. })
        }),
    ];
    for (bad, is_expected) in cases {
        // A good library first: nothing of it may stay registered.
        let libraries = vec![library(Some(&file), None, vec![module("org_apache_mesos_TestModule", None)]), bad];
        let built = Manifest { origin: Origin::Inline, libraries, warnings: vec![] };
        let manager = ModuleManager::new();
        let error = manager.load(&built).unwrap_err();
        let LoadError::Manifest(inner) = &error else { panic!("{built:?}: not a manifest error: {error:?}") };
        assert!(is_expected(inner), "{built:?}: {inner:?}");
        let parsed = manifest::parse(&as_json(&built), Origin::Inline).unwrap_err();
        assert_eq!(inner.to_string(), parsed.to_string(), "the same rule, the same error");
        assert!(manager.modules().is_empty(), "{built:?}: registered {:?}", manager.modules());
    }
}

#[test]
fn creation_failures_and_panics_are_errors_and_the_host_goes_on() {
    let broken = support::broken_modules();
    let manager = loaded(&broken, &[("broken_misbehaving", &[])]);
    let create = |value: &str| {
        manager.create::<TestModuleHandle>("broken_misbehaving", Some(vec![Parameter::new("create", value)]))
    };

    let error = create("fail").err().unwrap();
    assert!(matches!(error, CreateError::Failed { .. }), "{error:?}");
    assert!(error.to_string().contains("the fixture was told to fail"), "{error}");

    let error = create("panic").err().unwrap();
    assert!(matches!(error, CreateError::Panicked { .. }), "{error:?}");
    assert!(error.to_string().contains("the fixture panicked in create"), "{error}");

    // A method that panics returns an error; the instance and the host stay usable.
    let module: TestModuleHandle =
        manager.create("broken_misbehaving", Some(vec![Parameter::new("foo", "panic")])).unwrap();
    let error = module.foo(1, 2).unwrap_err();
    assert!(
        matches!(error, CallError::Panicked { ref message } if message.contains("panicked in foo(1, 2)")),
        "{error:?}"
    );
    assert!(matches!(module.bar(1.0, 2.0), Err(CallError::Failed { .. })));
    assert_eq!(module.baz(1, 2).unwrap(), -1);
    assert!(module.foo(3, 4).is_err(), "it panics every time, and every time it is caught");

    let error = manager.create::<TestModuleHandle>("nope", None).err().unwrap();
    assert!(matches!(error, CreateError::Unknown { .. }));
    assert_eq!(error.to_string(), "Module 'nope' unknown");

    let lib = support::test_modules();
    manager.load(&manifest(&lib, &[("org_modhost_TestAnonymous", &[])])).unwrap();
    let error = manager.create::<TestModuleHandle>("org_modhost_TestAnonymous", None).err().unwrap();
    assert!(matches!(error, CreateError::WrongKind { actual: Kind::Anonymous, requested: Kind::TestModule, .. }));
    assert!(error.to_string().contains("module is of kind 'Anonymous', but the requested kind is 'TestModule'"));
}

#[test]
fn a_singleton_has_one_live_instance_at_a_time() {
    let manager = loaded(&support::test_modules(), &[("org_modhost_TestModuleSingleton", &[])]);
    let first: TestModuleHandle = manager.create("org_modhost_TestModuleSingleton", None).unwrap();
    let error = manager.create::<TestModuleHandle>("org_modhost_TestModuleSingleton", None).err().unwrap();
    assert!(matches!(error, CreateError::SingletonInUse { .. }), "{error:?}");
    drop(first);
    let _second: TestModuleHandle = manager.create("org_modhost_TestModuleSingleton", None).unwrap();
}

#[test]
fn the_manager_is_safe_to_share_between_threads() {
    let lib = support::test_modules();
    let manager = Arc::new(ModuleManager::new());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (manager, lib) = (manager.clone(), lib.clone());
            std::thread::spawn(move || {
                let name = if i % 2 == 0 { "org_modhost_TestModule" } else { "org_apache_mesos_TestModule" };
                for _ in 0..50 {
                    manager.load(&manifest(&lib, &[(name, &[("operation", "sum")])])).unwrap();
                    let module: TestModuleHandle = manager.create(name, None).unwrap();
                    assert_eq!(module.baz(i, 1).unwrap(), i + 1);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(manager.find(Kind::TestModule).len(), 2);
}
