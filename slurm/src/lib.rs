//! `job_submit/modhost`: Slurm's job submit hooks run by modhost modules.
//!
//! slurmctld loads the C shim `job_submit_modhost.so` (built from `shim/` against the installed
//! Slurm headers), which opens this library from its own directory and calls it for each
//! submission and modification. The modules are named by `job_submit_modhost.json` beside
//! slurm.conf, a modhost manifest; a Lua or Python script among them defines job_submit/lua's
//! `slurm_job_submit(job_desc, part_list, submit_uid)` and
//! `slurm_job_modify(job_desc, job_rec, part_list, modify_uid)`, and finds the `slurm` table
//! (Lua) or module (Python) that job_submit/lua gives. What job_submit/lua lacks comes from
//! modhost: a deadline per call, the bridges' sandbox and memory limit, validated hot reload,
//! a script that is broken at start never stopping slurmctld, shadow modules that try a
//! candidate on every call without letting it decide, and counters.
//!
//! This crate depends on the module system (`modhost`), never on the engine or the command
//! line.

mod ffi;
pub mod plugin;
mod prelude;
mod shadow;
mod stats;

pub use plugin::{Field, FieldKind, Outcome, Plugin, Schema, Settings, Value};
