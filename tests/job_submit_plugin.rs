//! job_submit/modhost's plugin without a slurmctld: the chain over a small job description,
//! one fixture per behaviour and failure, each checked by its outcome (code, changes, message).

mod support;

use std::path::PathBuf;
use std::sync::{Mutex, Once};

use modhost_slurm::{Field, FieldKind, Outcome, Plugin, Schema, Settings, Value};

const NO_VAL: i64 = 0xffff_fffe;
const NO_VAL64: i64 = -2;

fn schema() -> Schema {
    let field = |name: &str, kind, writable| Field { name: name.into(), kind, writable };
    Schema {
        fields: vec![
            field("comment", FieldKind::Text, true),
            field("time_limit", FieldKind::Unsigned(4), true),
            field("pn_min_memory", FieldKind::Unsigned(8), true),
            field("user_id", FieldKind::Unsigned(4), false),
            field("name", FieldKind::Text, true),
        ],
        constants: vec![
            ("SUCCESS".into(), 0),
            ("ERROR".into(), -1),
            ("ESLURM_INVALID_TIME_LIMIT".into(), 2051),
            ("NO_VAL".into(), NO_VAL),
            ("NO_VAL64".into(), NO_VAL64),
            ("MEM_PER_CPU".into(), i64::MIN),
        ],
    }
}

/// A job: no comment, no time limit, no memory asked, uid 1000, named "job".
fn job() -> Vec<Option<Value>> {
    vec![
        None,
        Some(Value::Number(NO_VAL)),
        Some(Value::Number(NO_VAL64)),
        Some(Value::Number(1000)),
        Some(Value::Text("job".into())),
    ]
}

/// A configuration directory holding `scripts` and a manifest naming them in order, each with
/// the extra parameters given.
/// A script of a test: its file name, its code, and its module's extra parameters.
type Script<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

fn conf(name: &str, scripts: &[Script<'_>]) -> PathBuf {
    let dir = support::scratch().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut libraries = Vec::new();
    for (i, (file, code, extra)) in scripts.iter().enumerate() {
        std::fs::write(dir.join(file), code).unwrap();
        let (library, symbol) = if file.ends_with(".py") {
            (support::python_bridge(), "org_modhost_python")
        } else {
            (support::lua_bridge(), "org_modhost_lua")
        };
        let mut parameters = vec![serde_json::json!({"key": "script", "value": file})];
        parameters.extend(extra.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})));
        libraries.push(serde_json::json!({"file": library,
            "modules": [{"name": format!("m{i}"), "symbol": symbol, "parameters": parameters}]}));
    }
    let manifest = serde_json::json!({ "libraries": libraries });
    std::fs::write(dir.join("job_submit_modhost.json"), manifest.to_string()).unwrap();
    dir
}

/// What the plugin logged so far, in every test of this binary (the `log` crate has one
/// logger per process).
fn logged() -> Vec<String> {
    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    struct Capture;
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            LINES.lock().unwrap().push(record.args().to_string());
        }
        fn flush(&self) {}
    }
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Info);
    });
    LINES.lock().unwrap().clone()
}

fn check(dir: PathBuf) -> Outcome {
    let mut plugin = Plugin::open(schema(), &Settings { conf_dir: dir, state_dir: None });
    plugin.submit(&job(), 0)
}

fn refused_with(outcome: &Outcome, rc: i32, words: &[&str]) {
    assert_eq!(outcome.rc, rc, "{outcome:?}");
    assert!(outcome.changes.is_empty(), "a refusal changed {:?}", outcome.changes);
    let message = outcome.user_msg.as_deref().unwrap_or_default();
    for word in words {
        assert!(message.contains(word), "{word:?} not in {message:?}");
    }
}

#[test]
fn lua_sets_fields_and_the_next_module_sees_them() {
    let lua = "function slurm_job_submit(j, p, uid)\n  j.comment = 'uid ' .. uid .. ' of ' .. j.user_id\n  \
               if j.time_limit == slurm.NO_VAL then j.time_limit = 5 end\n  j.min_mem_per_cpu = 100\n  \
               j.name = nil\n  return slurm.SUCCESS\nend\n";
    let py = "import slurm\ndef slurm_job_submit(j, p, uid):\n    \
              j['comment'] = j['comment'] + ', py saw %d' % j['time_limit']\n    return slurm.SUCCESS\n";
    let outcome = check(conf("chain", &[("a.lua", lua, &[]), ("b.py", py, &[])]));
    assert_eq!(outcome.rc, 0, "{outcome:?}");
    assert_eq!(
        outcome.changes,
        vec![
            (0, Some(Value::Text("uid 0 of 1000, py saw 5".into()))),
            (1, Some(Value::Number(5))),
            (2, Some(Value::Number(100 | i64::MIN))),
            (4, None),
        ]
    );
}

#[test]
fn python_reads_64_bit_fields_unsigned_as_slurm_has_them() {
    let py = "import slurm\ndef slurm_job_submit(j, p, uid):\n    \
              assert j['pn_min_memory'] == slurm.NO_VAL64 == 2**64 - 2, j['pn_min_memory']\n    \
              assert j['comment'] is None\n    j['pn_min_memory'] = slurm.NO_VAL64 - 1\n    return 0\n";
    let outcome = check(conf("unsigned", &[("u.py", py, &[])]));
    assert_eq!(outcome.rc, 0, "{outcome:?}");
    assert_eq!(outcome.changes, vec![(2, Some(Value::Number(-3)))]);
}

#[test]
fn a_refusal_carries_its_code_and_log_user_message_and_changes_nothing() {
    let lua = "function slurm_job_submit(j)\n  j.comment = 'x'\n  slurm.log_user('no %s here', j.name)\n  \
               return slurm.ESLURM_INVALID_TIME_LIMIT\nend\n";
    let after = "function slurm_job_submit(j) error('never called') end\n";
    let outcome = check(conf("refusal", &[("r.lua", lua, &[]), ("after.lua", after, &[])]));
    refused_with(&outcome, 2051, &["no job here"]);
}

#[test]
fn a_bad_assignment_fails_at_the_scripts_line() {
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "typo",
            "function slurm_job_submit(j)\n  j.commnet = 'x'\nend\n",
            &["job_desc has no field 'commnet'", "typo.lua:2"],
        ),
        (
            "readonly",
            "function slurm_job_submit(j)\n  j.user_id = 0\nend\n",
            &["job_desc.user_id cannot be set", "readonly.lua:2"],
        ),
        (
            "kind",
            "function slurm_job_submit(j)\n  j.time_limit = {}\nend\n",
            &["job_desc.time_limit: expected a number", "kind.lua:2"],
        ),
        (
            "range",
            "function slurm_job_submit(j)\n  j.time_limit = -5\n  return 0\nend\n",
            &["time_limit = -5: out of range for a 32-bit field"],
        ),
    ];
    for (name, code, words) in cases {
        let outcome = check(conf(name, &[(&format!("{name}.lua"), code, &[])]));
        let mut all = vec!["module 'm0' failed"];
        all.extend_from_slice(words);
        refused_with(&outcome, -1, &all);
    }
}

#[test]
fn on_error_accept_skips_a_failing_module_and_the_chain_goes_on() {
    let failing = "function slurm_job_submit(j) error('broken policy') end\n";
    let next = "function slurm_job_submit(j) j.comment = 'second' return 0 end\n";
    let dir = conf("accept", &[("f.lua", failing, &[("on_error", "accept")]), ("n.lua", next, &[])]);
    let outcome = check(dir);
    assert_eq!(outcome.rc, 0, "{outcome:?}");
    assert_eq!(outcome.changes, vec![(0, Some(Value::Text("second".into())))]);
}

#[test]
fn a_manifest_that_cannot_be_used_refuses_every_submission_with_why() {
    let missing = support::scratch().join("no-manifest");
    std::fs::create_dir_all(&missing).unwrap();
    refused_with(&check(missing), -1, &["job_submit/modhost is not working", "job_submit_modhost.json"]);

    let dir = conf("extension", &[("policy.txt", "x", &[])]);
    refused_with(&check(dir), -1, &["module 'm0'", "policy.txt", "name the script .lua or .py"]);

    let dir = conf("on-error", &[("p.lua", "", &[("on_error", "sometimes")])]);
    refused_with(&check(dir), -1, &["module 'm0'", "on_error=sometimes", "expected refuse or accept"]);

    let dir = conf("shadow-of-nothing", &[("p.lua", "", &[]), ("s.lua", "", &[("shadow_of", "p")])]);
    refused_with(&check(dir), -1, &["module 'm1'", "shadow_of=p", "no module of the chain has that name", "m0"]);

    let dir = conf(
        "shadow-of-shadow",
        &[("p.lua", "", &[]), ("s.lua", "", &[("shadow_of", "m2")]), ("t.lua", "", &[("shadow_of", "m0")])],
    );
    refused_with(&check(dir), -1, &["module 'm1'", "shadow_of=m2", "no module of the chain"]);

    let dir =
        conf("shadow-on-error", &[("p.lua", "", &[]), ("s.lua", "", &[("shadow_of", "m0"), ("on_error", "accept")])]);
    refused_with(&check(dir), -1, &["module 'm1'", "on_error=accept", "a shadow decides nothing"]);
}

#[test]
fn a_script_broken_at_start_refuses_until_fixed() {
    let dir = conf("broken-start", &[("b.lua", "function slurm_job_submit(\n", &[])]);
    let mut plugin = Plugin::open(schema(), &Settings { conf_dir: dir.clone(), state_dir: None });
    refused_with(&plugin.submit(&job(), 0), -1, &["module 'm0' cannot start", "b.lua:2"]);
    std::fs::write(dir.join("b.lua"), "function slurm_job_submit(j) j.comment = 'fixed' return 0 end\n").unwrap();
    let outcome = plugin.submit(&job(), 0);
    assert_eq!(outcome.changes, vec![(0, Some(Value::Text("fixed".into())))], "{outcome:?}");
}

#[test]
fn shadows_see_every_call_and_their_differences_are_logged_and_counted_never_applied() {
    logged();
    let active = "function slurm_job_submit(j) j.comment = 'active' j.time_limit = 5 return 0 end\n";
    let other = "function slurm_job_submit(j) j.comment = 'candidate' j.time_limit = 5 return 0 end\n\
                 function slurm_job_modify(j, rec) return slurm.ESLURM_INVALID_TIME_LIMIT end\n";
    let failing = "function slurm_job_submit(j) error('the candidate broke') end\n";
    let dir = conf(
        "shadows",
        &[
            ("active.lua", active, &[]),
            ("same.lua", active, &[("shadow_of", "m0")]),
            ("other.lua", other, &[("shadow_of", "m0")]),
            ("failing.lua", failing, &[("shadow_of", "m0")]),
        ],
    );
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut plugin = Plugin::open(schema(), &Settings { conf_dir: dir, state_dir: Some(state.clone()) });
    let applied = vec![(0, Some(Value::Text("active".into()))), (1, Some(Value::Number(5)))];
    for _ in 0..3 {
        assert_eq!(plugin.submit(&job(), 0), Outcome { rc: 0, changes: applied.clone(), user_msg: None });
    }
    assert_eq!(plugin.modify(&job(), 42, 7), Outcome::default());
    // Stopping the plugin waits for the shadows, then writes the counters.
    drop(plugin);

    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("job_submit_modhost.stats.json")).unwrap()).unwrap();
    assert_eq!((stats["calls"].as_u64(), stats["errors"].as_u64()), (Some(4), Some(0)), "{stats}");
    // Three shadows of four calls; 'other' differs on the three submissions and the update,
    // 'failing' fails the three submissions; 'same' agrees throughout.
    assert_eq!(
        stats["shadow"],
        serde_json::json!({"calls": 12, "differences": 7, "errors": 3, "dropped": 0}),
        "{:#?}",
        logged()
    );
    let lines = logged();
    let said = |words: &[&str]| lines.iter().any(|l| words.iter().all(|w| l.contains(w)));
    assert!(
        said(&["[m2 (shadow)] decides otherwise on job 'job' from uid 0", "comment \"active\" vs \"candidate\""]),
        "{lines:#?}"
    );
    assert!(
        said(&[
            "[m2 (shadow)] decides otherwise on the update of job 42 by uid 7",
            "returns SUCCESS vs ESLURM_INVALID_TIME_LIMIT"
        ]),
        "{lines:#?}"
    );
    assert!(
        said(&["[m3 (shadow)]", "the module returns SUCCESS, the shadow failed", "the candidate broke"]),
        "{lines:#?}"
    );
    assert!(!said(&["[m1 (shadow)] decides otherwise"]), "{lines:#?}");
}
