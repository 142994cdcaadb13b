//! The private Slurm cluster of `scripts/slurm/cluster.sh`, as tests and users run it: it
//! installs Slurm if missing, starts a munged, a slurmctld and several slurmd nodes in a
//! directory of its own, runs jobs on the nodes asked for, and stops exactly what it started;
//! a daemon that does not come up fails the start with the logs, leaving nothing running.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn script() -> PathBuf {
    support::workspace().join("scripts/slurm/cluster.sh")
}

fn run(args: &[&str], path: Option<&str>) -> Output {
    let mut command = Command::new(script());
    command.args(args);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command.output().expect("run cluster.sh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running private cluster, stopped when dropped (a failing test included).
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn start(name: &str, nodes: usize) -> Cluster {
        let dir = support::scratch().join(name);
        let output = run(&["start", dir.to_str().unwrap(), &nodes.to_string()], None);
        let cluster = Cluster { dir };
        assert!(output.status.success(), "start failed:\n{}{}", text(&output.stdout), text(&output.stderr));
        cluster
    }

    /// A Slurm command against this cluster.
    fn slurm(&self, program: &str, args: &[&str]) -> String {
        let output = Command::new(program)
            .args(args)
            .env("SLURM_CONF", self.dir.join("slurm.conf"))
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(output.status.success(), "{program} {args:?}: {}", text(&output.stderr));
        text(&output.stdout)
    }

    fn pids(&self) -> Vec<(PathBuf, u32)> {
        pid_files(&self.dir)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let output = run(&["stop", self.dir.to_str().unwrap()], None);
        if !output.status.success() {
            eprintln!("stop failed: {}", text(&output.stderr));
        }
    }
}

fn pid_files(dir: &Path) -> Vec<(PathBuf, u32)> {
    let Ok(entries) = std::fs::read_dir(dir.join("run")) else { return Vec::new() };
    entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            let pid = std::fs::read_to_string(&path).ok()?.trim().parse().ok()?;
            Some((path, pid))
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_private_cluster_runs_jobs_on_the_nodes_asked_for_and_stops_what_it_started() {
    // In a directory deep enough that a socket inside it would pass the 108 bytes a Unix
    // socket's path may have (a job step's, in a node's spool): the script keeps them apart.
    let deep = format!("{}/cluster", "a-directory-deep-enough-for-sockets".repeat(2));
    assert!(support::scratch().join(&deep).join("spool/node1/node1_1.4294967291").as_os_str().len() > 108);
    let cluster = Cluster::start(&deep, 3);
    let nodes = cluster.slurm("sinfo", &["-h", "-N", "-p", "main", "-o", "%N %T"]);
    assert_eq!(nodes.lines().collect::<Vec<_>>(), ["node1 idle", "node2 idle", "node3 idle"], "{nodes}");
    let pids = cluster.pids();
    // munged, slurmctld and one slurmd a node, each alive.
    assert_eq!(pids.len(), 5, "{pids:?}");
    assert!(pids.iter().all(|(_, pid)| alive(*pid)), "{pids:?}");

    let out = cluster.dir.join("jobs");
    std::fs::create_dir_all(&out).unwrap();
    let mut jobs = Vec::new();
    for node in ["node1", "node2", "node3"] {
        let output = format!("--output={}/%j.out", out.display());
        let id = cluster.slurm("sbatch", &["--parsable", "-w", node, &output, "--wrap", "echo $SLURMD_NODENAME"]);
        jobs.push((id.trim().to_owned(), node));
    }
    let started = Instant::now();
    while !cluster.slurm("squeue", &["-h", "-o", "%i"]).trim().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "jobs still queued after 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    for (id, node) in &jobs {
        let ran_on = std::fs::read_to_string(out.join(format!("{id}.out"))).unwrap_or_default();
        assert_eq!(ran_on.trim(), *node, "job {id}");
    }

    // A second start in the same directory is refused, and the cluster is left as it was.
    let again = run(&["start", cluster.dir.to_str().unwrap()], None);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("a cluster already runs"), "{}", text(&again.stderr));
    assert!(pids.iter().all(|(_, pid)| alive(*pid)));

    // Stop ends exactly the processes of the pid files.
    drop(cluster);
    assert!(pids.iter().all(|(_, pid)| !alive(*pid)), "left running: {pids:?}");
    assert!(pids.iter().all(|(path, _)| !path.exists()));
}

#[test]
fn a_daemon_that_does_not_start_fails_the_start_with_its_logs_and_leaves_nothing_running() {
    // A slurmd that cannot start, ahead of the real one on PATH.
    let bin = support::scratch().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("slurmd");
    std::fs::write(&fake, "#!/bin/sh\necho 'fake slurmd: cannot start' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // Slurm installed first, so that the fake is what fails.
    drop(Cluster::start("warm-up", 1));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let dir = support::scratch().join("broken");
    let output = run(&["start", dir.to_str().unwrap(), "2"], Some(&path));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("'slurmd -N node1' failed"), "{stderr}");
    assert!(stderr.contains("last lines of") && stderr.contains("slurmctld.log"), "{stderr}");
    assert!(pid_files(&dir).is_empty(), "pid files left: {:?}", pid_files(&dir));

    let output = run(&["start", dir.to_str().unwrap(), "none"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("NODES must be a positive number"));
}
