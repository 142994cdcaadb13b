//! A Python call stuck in C code. It holds the GIL for seconds, which would make every other
//! Python test running beside it overrun its own deadline, so it has a test binary (a process)
//! of its own.

mod support;

use modhost::kinds::VmHandle;
use modhost_abi::Vm;

/// A call stuck in C code, which no deadline reaches (CPython checks for it only between
/// bytecodes), is reported while it runs: to stderr at once, and in the call's output, which
/// the host logs, once it returns.
#[test]
fn a_call_stuck_in_c_code_is_reported_while_it_runs() {
    // A few seconds inside `sum`, without a bytecode in between.
    let code = "def stuck(message):\n    return sum(range(40_000_000)) > 0\n\ndef quick(message):\n    return 1\n";
    let path = support::script("stuck_in_c.py", code);
    let manager = support::python_manager(&[("stuck_in_c", &path, &[("timeout_ms", "100")])]);
    let mut vm: VmHandle = manager.create("stuck_in_c", None).unwrap();
    // The sum returns far past the deadline; the call may end in its timeout or, if the
    // function returns before the watchdog gets the GIL back, in its answer.
    let _ = support::within(std::time::Duration::from_secs(120), "a sum in C", || vm.call("stuck", b"{}"));
    let output = vm.take_output().unwrap();
    assert!(
        output.iter().any(|line| line.contains("stuck_in_c.py") && line.contains("past its timeout_ms=100")),
        "{output:?}"
    );
    assert_eq!(vm.call("quick", b"{}").unwrap(), b"1");
    assert_eq!(vm.take_output().unwrap(), Vec::<String>::new(), "reported once, for that call only");
}
