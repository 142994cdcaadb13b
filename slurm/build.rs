//! Builds the C shim `job_submit_modhost.so` (the file Slurm loads) against the installed
//! Slurm headers, next to the libraries of this build (`target/<profile>/`). Without
//! libslurm-dev the shim is skipped and the build says so in one line; the Rust library, which
//! needs no Slurm header, is built either way.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let shim = Path::new("shim/job_submit_modhost.c");
    println!("cargo:rerun-if-changed={}", shim.display());
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
    let target = profile_dir.join("job_submit_modhost.so");
    // Written beside, then renamed over: a slurmctld that has the old file open keeps its copy.
    let staged = out_dir.join("job_submit_modhost.so");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-std=gnu11"])
        .arg(format!("-I{}", include.display()))
        .arg("-o")
        .arg(&staged)
        .arg(shim)
        .arg("-ldl")
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler '{compiler}' for {}: {e}", shim.display()));
    assert!(status.success(), "compiling {} failed ({status})", shim.display());
    std::fs::copy(&staged, profile_dir.join(".job_submit_modhost.so.new"))
        .and_then(|_| std::fs::rename(profile_dir.join(".job_submit_modhost.so.new"), &target))
        .unwrap_or_else(|e| panic!("cannot place {}: {e}", target.display()));
}
