//! `job_submit/modhost` inside a real slurmctld, on a private cluster of its own: a Lua hook
//! sets a job's comment, time limit and partition; a Python hook after it refuses a job with a
//! message sbatch prints; job_modify refuses a time limit past a maximum; a script that loops
//! is cut at its deadline while slurmctld keeps serving; a broken save keeps the running
//! version and a fixed one comes in; a script broken when slurmctld starts neither stops
//! slurmctld nor decides until it is fixed; and a shadow of the Lua hook sees each job and
//! its differences reach slurmctld's log. And the same job_submit.lua gives the same jobs
//! under Slurm's job_submit/lua and under job_submit/modhost, as does its Python twin.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The plugin's two files in a directory of their own, as an admin installs them.
fn plugin_dir() -> PathBuf {
    let dir = support::scratch().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let library = support::fixture("modhost_slurm");
    let shim = library.parent().unwrap().join("job_submit_modhost.so");
    let shim =
        if shim.exists() { shim } else { library.parent().unwrap().parent().unwrap().join("job_submit_modhost.so") };
    assert!(shim.exists(), "job_submit_modhost.so not built (is libslurm-dev installed?)");
    std::fs::copy(&shim, dir.join("job_submit_modhost.so")).unwrap();
    std::fs::copy(&library, dir.join("libmodhost_slurm.so")).unwrap();
    dir
}

struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    /// Starts a cluster whose slurm.conf enables job_submit/modhost; `setup` writes the
    /// manifest and scripts into its directory first.
    fn start(name: &str, setup: impl FnOnce(&Path)) -> Cluster {
        Cluster::start_with(name, "modhost", setup)
    }

    /// Like [`Cluster::start`], with `JobSubmitPlugins` set to `plugin`.
    fn start_with(name: &str, plugin: &str, setup: impl FnOnce(&Path)) -> Cluster {
        let dir = support::scratch().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        setup(&dir);
        let output = Command::new(support::workspace().join("scripts/slurm/cluster.sh"))
            .args(["start", dir.to_str().unwrap(), "2"])
            .env("MODHOST_SLURM_PLUGIN_DIR", plugin_dir())
            .env("MODHOST_SLURM_CONF_EXTRA", format!("JobSubmitPlugins={plugin}"))
            .output()
            .unwrap();
        let cluster = Cluster { dir };
        assert!(output.status.success(), "start failed:\n{}{}", text(&output.stdout), text(&output.stderr));
        cluster
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program).args(args).env("SLURM_CONF", self.dir.join("slurm.conf")).output().unwrap()
    }

    /// sbatch of a one-second job with this name: (exit success, stdout + stderr).
    fn sbatch(&self, name: &str) -> (bool, String) {
        let output = self.run("sbatch", &["-J", name, "--wrap", "sleep 1"]);
        (output.status.success(), text(&output.stdout) + &text(&output.stderr))
    }

    /// `field` of the job of this id, as squeue shows it (`%k` comment, `%l` time limit,
    /// `%P` partition, `%j` name).
    fn job(&self, id: &str, field: &str) -> String {
        let output = self.run("squeue", &["-h", "-j", id, "-o", field]);
        text(&output.stdout).trim().to_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/slurmctld.log")).unwrap_or_default()
    }

    /// Submits jobs until slurmctld's log says `what` (a reload is prepared by a watcher and
    /// installed at the next call), checking that each is accepted, with this comment if given.
    fn submit_until_log(&self, what: &str, comment: Option<&str>) {
        let start = Instant::now();
        while !self.log().contains(what) {
            assert!(start.elapsed() < Duration::from_secs(15), "the log never said {what:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(300));
            let (ok, said) = self.sbatch("waiting");
            assert!(ok, "{said}");
            if let Some(comment) = comment {
                assert_eq!(self.job(&id_of(&said), "%k"), comment);
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let output = Command::new(support::workspace().join("scripts/slurm/cluster.sh"))
            .args(["stop", self.dir.to_str().unwrap()])
            .output()
            .unwrap();
        if !output.status.success() {
            eprintln!("stop failed: {}", text(&output.stderr));
        }
    }
}

/// Waits up to 10 s for `done`, failing with `why`.
fn wait_for(done: impl Fn() -> bool, why: impl Fn() -> String) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", why());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn id_of(answer: &str) -> String {
    answer.trim().rsplit(' ').next().unwrap().to_owned()
}

const LUA: &str = r#"
function slurm_job_submit(job_desc, part_list, submit_uid)
    slurm.log_info("submit from uid %d, name %s", submit_uid, tostring(job_desc.name))
    job_desc.comment = "lua saw uid " .. submit_uid
    if job_desc.time_limit == slurm.NO_VAL then job_desc.time_limit = 7 end
    if job_desc.name == "to-short" then job_desc.partition = "short" end
    if job_desc.name == "spin" then
        while true do end
    end
    return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
    if job_desc.time_limit ~= slurm.NO_VAL and job_desc.time_limit > 60 then
        slurm.log_info("job %d: time limit %d refused", job_rec.job_id, job_desc.time_limit)
        return slurm.ESLURM_INVALID_TIME_LIMIT
    end
    return slurm.SUCCESS
end
"#;

const PYTHON: &str = r#"
import slurm

def slurm_job_submit(job_desc, part_list, submit_uid):
    if job_desc["name"] == "forbidden":
        slurm.log_user("jobs named %s are not allowed here", job_desc["name"])
        return slurm.ERROR
    if job_desc["comment"] is not None:
        job_desc["comment"] = job_desc["comment"] + ", python too"
    return slurm.SUCCESS
"#;

#[test]
fn hooks_in_lua_and_python_decide_real_submissions() {
    let lua_bridge = support::lua_bridge();
    let python_bridge = support::python_bridge();
    let cluster = Cluster::start("hooks", |dir| {
        std::fs::write(dir.join("job_submit.lua"), LUA).unwrap();
        // A candidate for the Lua policy, which would word the comment otherwise.
        std::fs::write(dir.join("candidate.lua"), LUA.replace("lua saw uid", "candidate saw uid")).unwrap();
        // The Python hook is broken when slurmctld starts.
        std::fs::write(dir.join("job_submit.py"), "def slurm_job_submit(job_desc,\n").unwrap();
        let manifest = serde_json::json!({"libraries": [
            {"file": lua_bridge, "modules": [{"name": "lua_policy", "symbol": "org_modhost_lua",
                "parameters": [{"key": "script", "value": "job_submit.lua"}, {"key": "timeout_ms", "value": "300"}]},
                {"name": "lua_candidate", "symbol": "org_modhost_lua", "parameters": [
                    {"key": "script", "value": "candidate.lua"}, {"key": "timeout_ms", "value": "300"},
                    {"key": "shadow_of", "value": "lua_policy"}]}]},
            {"file": python_bridge, "modules": [{"name": "py_policy", "symbol": "org_modhost_python",
                "parameters": [{"key": "script", "value": "job_submit.py"}]}]}
        ]});
        std::fs::write(dir.join("job_submit_modhost.json"), manifest.to_string()).unwrap();
    });

    // slurmctld started and serves with a broken script: the submission is refused, with why.
    let (ok, said) = cluster.sbatch("early");
    assert!(!ok, "a job got past a module that cannot start: {said}");
    assert!(said.contains("module 'py_policy' cannot start"), "{said}");
    assert!(cluster.log().contains("job_submit.py"), "{}", cluster.log());

    // Fixing the file brings it in at the next submission.
    std::fs::write(cluster.dir.join("job_submit.py"), PYTHON).unwrap();
    let (ok, said) = cluster.sbatch("plain");
    assert!(ok, "{said}");
    let plain = id_of(&said);
    assert_eq!(cluster.job(&plain, "%k"), "lua saw uid 0, python too");
    assert_eq!(cluster.job(&plain, "%l"), "7:00");
    assert_eq!(cluster.job(&plain, "%P"), "main");
    assert!(cluster.log().contains("[lua_policy] submit from uid 0, name plain"), "{}", cluster.log());
    // The shadow saw the same job; only the active policy's comment was applied, and the log
    // says where the candidate differs.
    let shadowed = "[lua_candidate (shadow)] decides otherwise on job 'plain' from uid 0: \
                    comment \"lua saw uid 0\" vs \"candidate saw uid 0\"";
    wait_for(|| cluster.log().contains(shadowed), || format!("no {shadowed:?} in\n{}", cluster.log()));

    let (ok, said) = cluster.sbatch("to-short");
    assert!(ok, "{said}");
    assert_eq!(cluster.job(&id_of(&said), "%P"), "short");

    // Python refuses with a message sbatch prints; the job does not exist.
    let (ok, said) = cluster.sbatch("forbidden");
    assert!(!ok, "{said}");
    assert!(said.contains("jobs named forbidden are not allowed here"), "{said}");
    let listed = text(&cluster.run("squeue", &["-h", "-o", "%j"]).stdout);
    assert!(!listed.contains("forbidden"), "{listed}");

    // job_modify refuses a time limit past 60 minutes, and lets one under it through.
    let (_, said) = cluster.sbatch("long");
    let long = id_of(&said);
    let refused = cluster.run("scontrol", &["update", &format!("JobId={long}"), "TimeLimit=100"]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("time limit"), "{}", text(&refused.stderr));
    let allowed = cluster.run("scontrol", &["update", &format!("JobId={long}"), "TimeLimit=50"]);
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));

    // A script that loops: sbatch answers within the deadline and a margin, the log names the
    // line, and slurmctld keeps serving.
    let started = Instant::now();
    let (ok, said) = cluster.sbatch("spin");
    let took = started.elapsed();
    assert!(!ok, "{said}");
    assert!(took < Duration::from_secs(3), "sbatch took {took:?}");
    assert!(said.contains("timeout"), "{said}");
    assert!(cluster.log().contains("job_submit.lua:8: timeout"), "{}", cluster.log());
    let (ok, said) = cluster.sbatch("after-spin");
    assert!(ok, "{said}");

    // A syntax error saved over the running script: the old version keeps deciding, and the
    // log says why, with the line.
    // (The shadow's script, in the same folder, is reloaded too: its own messages name it.)
    let script = cluster.dir.join("job_submit.lua");
    std::fs::write(&script, "function slurm_job_submit(\n").unwrap();
    cluster.submit_until_log(&format!("reload of '{}' refused", script.display()), Some("lua saw uid 0, python too"));
    assert!(cluster.log().contains("job_submit.lua:2:"), "{}", cluster.log());

    // Fixed: the new version decides from the next submission on.
    std::fs::write(cluster.dir.join("job_submit.lua"), LUA.replace("lua saw uid", "lua v2 saw uid")).unwrap();
    cluster.submit_until_log(&format!("reloaded '{}'", script.display()), None);
    let (ok, said) = cluster.sbatch("fixed");
    assert!(ok, "{said}");
    assert_eq!(cluster.job(&id_of(&said), "%k"), "lua v2 saw uid 0, python too");
}

/// The jobs of the equivalence test: each one's sbatch arguments.
const SAME_JOBS: [&[&str]; 4] = [
    &["-J", "plain"],
    &["-J", "commented", "--comment", "mine"],
    &["-J", "short-ok", "-p", "short", "-t", "20"],
    &["-J", "short-long", "-p", "short", "-t", "60"],
];

/// What sbatch said (accepted or the refusal's text) and what Slurm recorded of each job, with
/// the site policy `script` (scripts/slurm/job_submit.lua or its Python twin job_submit.py).
fn same_jobs_under(plugin: &str, name: &str, script: &str) -> Vec<String> {
    let policy = std::fs::read_to_string(support::workspace().join("scripts/slurm").join(script)).unwrap();
    let (bridge, symbol) = if script.ends_with(".py") {
        (support::python_bridge(), "org_modhost_python")
    } else {
        (support::lua_bridge(), "org_modhost_lua")
    };
    let cluster = Cluster::start_with(name, plugin, |dir| {
        std::fs::write(dir.join(script), &policy).unwrap();
        let manifest = serde_json::json!({"libraries": [{"file": bridge, "modules": [{"name": "site_policy",
            "symbol": symbol, "parameters": [{"key": "script", "value": script}]}]}]});
        std::fs::write(dir.join("job_submit_modhost.json"), manifest.to_string()).unwrap();
    });
    SAME_JOBS
        .iter()
        .map(|args| {
            let mut all = args.to_vec();
            all.extend(["--wrap", "sleep 1"]);
            let output = cluster.run("sbatch", &all);
            if output.status.success() {
                let id = id_of(&text(&output.stdout));
                format!("accepted: {}", cluster.job(&id, "%j|%P|%l|%k"))
            } else {
                format!("refused: {}", text(&output.stderr).trim())
            }
        })
        .collect()
}

#[test]
fn a_job_submit_lua_decides_the_same_under_slurms_plugin_and_ours_and_in_python() {
    let slurm = same_jobs_under("lua", "same-under-lua", "job_submit.lua");
    let ours = same_jobs_under("modhost", "same-under-modhost", "job_submit.lua");
    assert_eq!(ours, slurm);
    // The policy's Python twin decides the same under ours.
    let python = same_jobs_under("modhost", "same-under-modhost-python", "job_submit.py");
    assert_eq!(python, slurm);
    // The policy did something to each: a default time limit, a comment, a refusal.
    assert!(slurm[0].starts_with("accepted: plain|main|10:00|checked by the site policy"), "{slurm:?}");
    assert!(slurm[1].ends_with("|mine"), "{slurm:?}");
    assert!(slurm[3].contains("partition short takes jobs of at most 30 minutes"), "{slurm:?}");
}
