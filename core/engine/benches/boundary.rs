//! The cost of the module boundary: the same TestModule calls on a plain Rust trait object
//! and on a module loaded from a shared library, measured in one run.
//!
//! `cargo bench -p modhost --bench boundary` prints criterion's figures, then the ratio of
//! each boundary call to its direct baseline.

mod support;

use std::hint::black_box;

use criterion::Criterion;
use modhost::kinds::TestModuleHandle;
use modhost::{ModuleManager, manifest};
use modhost_abi::{CallError, Parameter, Parameters, TestModule};

/// The same module as the fixture, compiled into the benchmark: the direct-call baseline.
struct Direct {
    parameters: Parameters,
}

impl TestModule for Direct {
    fn foo(&self, a: i8, b: i64) -> Result<i32, CallError> {
        Ok((i64::from(a) + b) as i32)
    }
    fn bar(&self, a: f32, b: f64) -> Result<i32, CallError> {
        Ok((f64::from(a) * b) as i32)
    }
    fn baz(&self, a: i32, b: i32) -> Result<i32, CallError> {
        Ok(if self.parameters.get("operation") == Some("sum") { a.wrapping_add(b) } else { -1 })
    }
    fn parameters(&self) -> Result<Parameters, CallError> {
        Ok(self.parameters.clone())
    }
}

fn main() {
    let parameters = vec![Parameter::new("operation", "sum"), Parameter::new("label", "benchmark")];
    let direct: Box<dyn TestModule> = Box::new(Direct { parameters: parameters.clone().into() });
    let json = serde_json::json!({"libraries": [{"file": support::library("libmodhost_test_modules.so"), "modules": [
        {"name": "org_modhost_TestModule", "parameters": parameters}]}]});
    let manager = ModuleManager::new();
    manager.load(&manifest::parse(&json.to_string(), manifest::Origin::Inline).unwrap()).unwrap();
    let module: TestModuleHandle = manager.create("org_modhost_TestModule", None).unwrap();
    let boundary: Box<dyn TestModule> = Box::new(module);

    let mut criterion = Criterion::default().configure_from_args();
    for (method, call) in [
        ("foo", (|m: &dyn TestModule| m.foo(black_box(20), black_box(22)).unwrap()) as fn(&dyn TestModule) -> i32),
        ("baz", |m: &dyn TestModule| m.baz(black_box(20), black_box(22)).unwrap()),
        ("parameters", |m: &dyn TestModule| m.parameters().unwrap().len() as i32),
    ] {
        let mut group = criterion.benchmark_group(format!("testmodule_{method}"));
        group.bench_function("direct", |b| b.iter(|| call(black_box(direct.as_ref()))));
        group.bench_function("boundary", |b| b.iter(|| call(black_box(boundary.as_ref()))));
        group.finish();
    }
    criterion.final_summary();
    report_ratios(&["testmodule_foo", "testmodule_baz", "testmodule_parameters"]);
}

/// Prints boundary/direct for each group, from criterion's estimates of this run.
fn report_ratios(groups: &[&str]) {
    println!("\nmedian per call (ns): direct, boundary, difference, ratio");
    for group in groups {
        if let (Some(direct), Some(boundary)) =
            (support::median_ns(group, "direct"), support::median_ns(group, "boundary"))
        {
            println!("{group:24} {direct:9.2} {boundary:9.2} {:+9.2} {:6.2}x", boundary - direct, boundary / direct);
        }
    }
}
