//! What a job submit hook costs slurmctld: the same site policy (scripts/slurm/job_submit.lua
//! and its Python twin job_submit.py) under Slurm's job_submit/lua and under job_submit/modhost
//! in Lua and in Python, beside no plugin at all, on one private cluster in one run.
//!
//! `modhost-submit-bench` (built by modhost-slurm's build.rs) submits held batch jobs through
//! libslurm, one RPC each, and cancels them afterwards. Every configuration lists the plugin
//! under test between `mhbench_begin` and `mhbench_end` (bench/stamp.c), which log how long
//! the plugins between them took for each submission. For each configuration, in interleaved
//! rounds, the bench records:
//! - the hook's time per call (p50, p99 and mean of those stamps, from the one-client run);
//! - submissions per second seen by one client, and by four clients at once;
//! - slurmctld's own mean time per submission RPC (`sdiag`, reset before each run), from the
//!   RPC's arrival to its answer.
//!
//! `cargo bench -p modhost-engine --bench job_submit [-- --jobs N --rounds R]`

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// One JobSubmitPlugins setting and, for job_submit/modhost, the policy's script.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    None,
    SlurmLua,
    ModhostLua,
    ModhostPython,
}

impl Mode {
    /// In each round's order: neighbours differ in JobSubmitPlugins, so each switch makes
    /// slurmctld unload the plugin and start the next one afresh.
    const ROUND: [Mode; 4] = [Mode::None, Mode::ModhostLua, Mode::SlurmLua, Mode::ModhostPython];

    fn label(self) -> &'static str {
        match self {
            Mode::None => "no plugin",
            Mode::SlurmLua => "job_submit/lua, Lua",
            Mode::ModhostLua => "job_submit/modhost, Lua",
            Mode::ModhostPython => "job_submit/modhost, Python",
        }
    }

    /// The plugin under test.
    fn plugin(self) -> Option<&'static str> {
        match self {
            Mode::None => None,
            Mode::SlurmLua => Some("lua"),
            Mode::ModhostLua | Mode::ModhostPython => Some("modhost"),
        }
    }

    /// JobSubmitPlugins: the plugin under test between the two stamps.
    fn setting(self) -> String {
        let under_test = self.plugin().map(|p| format!("{p},")).unwrap_or_default();
        format!("JobSubmitPlugins=mhbench_begin,{under_test}mhbench_end")
    }
}

/// What one client run measured.
#[derive(Default, Clone, Copy)]
struct Run {
    per_second: f64,
    server_us: f64,
    /// The plugins' time per submission, p50, p99 and mean, in microseconds.
    hook_us: [f64; 3],
}

/// Everything measured for one mode in one round.
#[derive(Default, Clone)]
struct Sample {
    single: Run,
    four: Run,
}

struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let output = Command::new(program)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Sets JobSubmitPlugins and has slurmctld reread slurm.conf.
    fn switch(&self, mode: Mode) {
        let conf = std::fs::read_to_string(self.conf()).unwrap();
        let mut lines: Vec<&str> = conf.lines().filter(|l| !l.starts_with("JobSubmitPlugins=")).collect();
        let setting = mode.setting();
        lines.push(&setting);
        std::fs::write(self.conf(), lines.join("\n") + "\n").unwrap();
        self.run("scontrol", &["reconfigure"]);
    }

    /// Submits one held job with sbatch and returns the comment slurmctld recorded: the
    /// policy sets one, so this tells whether the plugin in force is the one asked for.
    fn probe(&self) -> String {
        let output = self.run("sbatch", &["--parsable", "--hold", "-J", "probe", "-o", "/dev/null", "--wrap", "true"]);
        let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let comment = self.run("squeue", &["-h", "-j", &id, "-o", "%k"]);
        self.run("scancel", &[&id]);
        String::from_utf8_lossy(&comment.stdout).trim().to_owned()
    }

    /// Waits until cancelled jobs have left slurmctld's memory (MinJobAge), so that each run
    /// starts from the same, empty queue.
    fn drain(&self) {
        let start = Instant::now();
        loop {
            let output = self.run("squeue", &["-h", "-t", "all", "-o", "%i"]);
            if output.stdout.is_empty() {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "jobs stayed in slurmctld's memory for 2 minutes");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Submits `jobs` held jobs from `threads` clients: the rate the clients saw,
    /// slurmctld's own mean time per submission RPC from `sdiag` (reset first), and the
    /// stamps' time of the plugins under test from slurmctld's log.
    fn submit(&self, client: &Path, jobs: usize, threads: usize) -> Run {
        let log = self.dir.join("log/slurmctld.log");
        let before = std::fs::metadata(&log).map_or(0, |m| m.len()) as usize;
        self.run("sdiag", &["-r"]);
        let output = self.run(client.to_str().unwrap(), &[&jobs.to_string(), &threads.to_string()]);
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the client's JSON line");
        assert_eq!(answer["submitted"], jobs, "{answer}");
        let sdiag = String::from_utf8_lossy(&self.run("sdiag", &[]).stdout).into_owned();
        let line = sdiag.lines().find(|l| l.contains("REQUEST_SUBMIT_BATCH_JOB")).expect("sdiag's submit line");
        let number = |key: &str| -> f64 {
            let at = line.find(key).unwrap_or_else(|| panic!("no {key} in {line}")) + key.len();
            line[at..].split_whitespace().next().unwrap().parse().unwrap()
        };
        assert_eq!(number("count:") as usize, jobs, "{line}");
        let text = std::fs::read(&log).unwrap();
        let mut stamps: Vec<f64> = String::from_utf8_lossy(&text[before..])
            .lines()
            .filter_map(|l| l.split_once("mhbench: submit_ns=")?.1.trim().parse::<f64>().ok())
            .map(|ns| ns / 1e3)
            .collect();
        assert_eq!(stamps.len(), jobs, "slurmctld's log has {} stamps for {jobs} submissions", stamps.len());
        stamps.sort_by(f64::total_cmp);
        let mean = stamps.iter().sum::<f64>() / jobs as f64;
        Run {
            per_second: jobs as f64 / answer["seconds"].as_f64().unwrap(),
            server_us: number("total_time:") / number("count:"),
            hook_us: [stamps[jobs / 2], stamps[(jobs * 99 / 100).min(jobs - 1)], mean],
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = support::workspace().join("scripts/slurm/cluster.sh");
        let _ = Command::new(script).args(["stop", self.dir.to_str().unwrap()]).status();
    }
}

fn option(args: &[String], name: &str, default: usize) -> usize {
    args.iter().position(|a| a == name).map_or(default, |i| {
        args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} takes a number"))
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let jobs = option(&args, "--jobs", 500);
    let rounds = option(&args, "--rounds", 3);
    let profile = support::profile_dir();
    let client = profile.join("modhost-submit-bench");
    let shim = profile.join("job_submit_modhost.so");
    let stamps = ["job_submit_mhbench_begin.so", "job_submit_mhbench_end.so"].map(|s| profile.join(s));
    for built in [&client, &shim].into_iter().chain(&stamps) {
        assert!(built.exists(), "{} was not built: install libslurm-dev and build again", built.display());
    }

    // On tmpfs if there is one: slurmctld writes each batch job's script and environment to
    // StateSaveLocation with fsync, and on a disk those fsyncs would dwarf and blur any hook.
    let shm = Path::new("/dev/shm");
    let scratch = if shm.is_dir() {
        shm.join(format!("modhost-bench-job_submit-{}", std::process::id()))
    } else {
        eprintln!("no /dev/shm: the cluster's state goes to disk, and its fsyncs will blur the figures");
        profile.join("bench-scratch/job_submit")
    };
    let _ = std::fs::remove_dir_all(&scratch);
    let plugins = scratch.join("plugins");
    let dir = scratch.join("cluster");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    for plugin in [&shim].into_iter().chain(&stamps) {
        std::fs::copy(plugin, plugins.join(plugin.file_name().unwrap())).unwrap();
    }
    std::fs::copy(support::library("libmodhost_slurm.so"), plugins.join("libmodhost_slurm.so")).unwrap();
    for script in ["job_submit.lua", "job_submit.py"] {
        std::fs::copy(support::workspace().join("scripts/slurm").join(script), dir.join(script)).unwrap();
    }
    let manifest = |library: &str, symbol: &str, script: &str| {
        serde_json::json!({"libraries": [{"file": support::library(library), "modules": [{"name": "site_policy",
            "symbol": symbol, "parameters": [{"key": "script", "value": script}]}]}]})
        .to_string()
    };
    let lua_manifest = manifest("libmodhost_lua.so", "org_modhost_lua", "job_submit.lua");
    let python_manifest = manifest("libmodhost_python.so", "org_modhost_python", "job_submit.py");

    let started = Command::new(support::workspace().join("scripts/slurm/cluster.sh"))
        .args(["start", dir.to_str().unwrap(), "2"])
        .env("MODHOST_SLURM_PLUGIN_DIR", &plugins)
        // Cancelled jobs leave memory soon (MinJobAge), and slurmctld does not try to
        // schedule each job as it arrives (defer): the held jobs could not run anyway, and a
        // scheduling pass holding the job lock would add its time to the RPCs it delays.
        .env(
            "MODHOST_SLURM_CONF_EXTRA",
            format!("MinJobAge=2\nSchedulerParameters=defer,batch_sched_delay=0\n{}", Mode::None.setting()),
        )
        .status()
        .unwrap();
    let cluster = Cluster { dir: dir.clone() };
    assert!(started.success(), "the private cluster did not start");

    // Warm-up: slurmctld's state directories and caches, untimed.
    cluster.submit(&client, jobs, 1);
    cluster.drain();

    let mut samples: Vec<(Mode, Sample)> = Vec::new();
    for round in 0..rounds {
        for mode in Mode::ROUND {
            match mode {
                Mode::ModhostLua => std::fs::write(dir.join("job_submit_modhost.json"), &lua_manifest).unwrap(),
                Mode::ModhostPython => std::fs::write(dir.join("job_submit_modhost.json"), &python_manifest).unwrap(),
                _ => {}
            }
            cluster.switch(mode);
            let comment = cluster.probe();
            let expected = if mode == Mode::None { "(null)" } else { "checked by the site policy" };
            assert_eq!(comment, expected, "{}: the plugin in force is not the one asked for", mode.label());
            let single = cluster.submit(&client, jobs, 1);
            cluster.drain();
            let four = cluster.submit(&client, jobs, 4);
            cluster.drain();
            eprintln!(
                "round {}: {:<28} hook {:>6.1} us (p50) {:>7.0}/s {:>7.0}/s (4 clients) {:>6.0} us/RPC",
                round + 1,
                mode.label(),
                single.hook_us[0],
                single.per_second,
                four.per_second,
                single.server_us
            );
            samples.push((mode, Sample { single, four }));
        }
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&scratch);

    println!("\njob submission, {jobs} held jobs per run, median of {rounds} interleaved rounds, one cluster");
    println!(
        "{:<28} {:>9} {:>9} {:>10} {:>9} {:>12} {:>8}",
        "plugin", "hook p50", "hook p99", "hook mean", "subs/s", "subs/s (x4)", "us/RPC"
    );
    let mut lua_hook = [0.0; 3];
    for mode in [Mode::None, Mode::SlurmLua, Mode::ModhostLua, Mode::ModhostPython] {
        let of_mode: Vec<&Sample> = samples.iter().filter(|(m, _)| *m == mode).map(|(_, s)| s).collect();
        let hook = [0, 1, 2].map(|i| median(of_mode.iter().map(|s| s.single.hook_us[i]).collect()));
        if mode == Mode::SlurmLua {
            lua_hook = hook;
        }
        println!(
            "{:<28} {:>9.1} {:>9.1} {:>10.1} {:>9.0} {:>12.0} {:>8.0}",
            mode.label(),
            hook[0],
            hook[1],
            hook[2],
            median(of_mode.iter().map(|s| s.single.per_second).collect()),
            median(of_mode.iter().map(|s| s.four.per_second).collect()),
            median(of_mode.iter().map(|s| s.single.server_us).collect()),
        );
        if matches!(mode, Mode::ModhostLua | Mode::ModhostPython) {
            println!(
                "{:<28} {:>8.2}x {:>8.2}x {:>9.2}x   of job_submit/lua's",
                "",
                hook[0] / lua_hook[0],
                hook[1] / lua_hook[1],
                hook[2] / lua_hook[2]
            );
        }
    }
}
