//! Builds the C shim `job_submit_modhost.so` (the file Slurm loads) against the installed
//! Slurm headers, next to the libraries of this build (`target/<profile>/`). Without
//! libslurm-dev the shim is skipped and the build says so in one line; the Rust library, which
//! needs no Slurm header, is built either way.
//!
//! Beside it go what `cargo bench -p modhost-engine --bench job_submit` uses:
//! `modhost-submit-bench` (from `bench/submit.c`, linked to libslurm), the client that submits
//! the jobs, and `job_submit_mhbench_begin.so` and `job_submit_mhbench_end.so` (from
//! `bench/stamp.c`), which time the job submit plugins listed between them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let shim = Path::new("shim/job_submit_modhost.c");
    let client = Path::new("bench/submit.c");
    let stamp = Path::new("bench/stamp.c");
    println!("cargo:rerun-if-changed={}", shim.display());
    println!("cargo:rerun-if-changed={}", client.display());
    println!("cargo:rerun-if-changed={}", stamp.display());
    println!("cargo:rerun-if-env-changed=SLURM_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=CC");
    let include = std::env::var_os("SLURM_INCLUDE_DIR").map_or_else(|| PathBuf::from("/usr/include"), PathBuf::from);
    println!("cargo:rerun-if-changed={}", include.join("slurm/slurm_version.h").display());
    if !include.join("slurm/slurm.h").is_file() {
        println!(
            "cargo:warning=job_submit_modhost.so not built: no Slurm headers in {} (install libslurm-dev)",
            include.display()
        );
        return;
    }
    // OUT_DIR is target/<profile>/build/<package>-<hash>/out: the shim goes in target/<profile>/.
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let profile_dir = out_dir.ancestors().nth(3).expect("OUT_DIR is three levels under the profile directory");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let flags = ["-O2", "-g", "-Wall", "-Wextra", "-Werror", "-std=gnu11"];
    let include = format!("-I{}", include.display());
    compile(
        &compiler,
        &["-shared", "-fPIC"],
        &flags,
        &include,
        shim,
        &["-ldl"],
        &out_dir.join("job_submit_modhost.so"),
    );
    place(&out_dir.join("job_submit_modhost.so"), &profile_dir.join("job_submit_modhost.so"));
    compile(&compiler, &[], &flags, &include, client, &["-lslurm", "-lpthread"], &out_dir.join("modhost-submit-bench"));
    place(&out_dir.join("modhost-submit-bench"), &profile_dir.join("modhost-submit-bench"));
    for (end, define) in [("begin", "-DSTAMP_BEGIN"), ("end", "-DSTAMP_END")] {
        let name = format!("job_submit_mhbench_{end}.so");
        let soname = format!("-Wl,-soname,{name}");
        compile(
            &compiler,
            &["-shared", "-fPIC", define, &soname],
            &flags,
            &include,
            stamp,
            &["-ldl"],
            &out_dir.join(&name),
        );
        place(&out_dir.join(&name), &profile_dir.join(&name));
    }
}

fn compile(compiler: &str, kind: &[&str], flags: &[&str], include: &str, source: &Path, libs: &[&str], output: &Path) {
    let status = Command::new(compiler)
        .args(kind)
        .args(flags)
        .arg(include)
        .arg("-o")
        .arg(output)
        .arg(source)
        .args(libs)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler '{compiler}' for {}: {e}", source.display()));
    assert!(status.success(), "compiling {} failed ({status})", source.display());
}

/// Copies `staged` to `target` through a rename: a slurmctld that has the old file open keeps
/// its copy.
fn place(staged: &Path, target: &Path) {
    let name = target.file_name().expect("a file name").to_string_lossy();
    let temporary = target.with_file_name(format!(".{name}.new"));
    std::fs::copy(staged, &temporary)
        .and_then(|_| std::fs::rename(&temporary, target))
        .unwrap_or_else(|e| panic!("cannot place {}: {e}", target.display()));
}
