//! Calls into a script: a [`MessageTransport`] over a Vm, so that `Remote<VmTransport>` is a
//! Hook or an Isolator whose methods are script functions of the same names.

use std::collections::BTreeSet;

use modhost_abi::{CallError, MessageFn, MessageTransport, Vm};

use crate::kinds::VmHandle;
use crate::{CreateError, ModuleManager};

/// A Vm module seen as the implementation of one kind.
pub struct VmTransport {
    /// The module's name, for log lines.
    module: String,
    /// The script's path, for errors.
    script: String,
    vm: Box<dyn Vm>,
    /// The kind's methods the script defines.
    implemented: BTreeSet<&'static str>,
}

impl VmTransport {
    /// Creates the Vm module `name` and learns which of `methods` its script defines.
    pub fn new(manager: &ModuleManager, name: &str, methods: &[&'static str]) -> Result<Self, CreateError> {
        let vm: VmHandle = manager.create(name, None)?;
        Self::over(name, Box::new(vm), methods)
            .map_err(|message| CreateError::Failed { name: name.to_owned(), message })
    }

    /// Wraps a Vm made elsewhere.
    pub fn over(name: &str, mut vm: Box<dyn Vm>, methods: &[&'static str]) -> Result<Self, String> {
        let info = vm.describe().map_err(|e| format!("cannot describe the script: {e}"))?;
        let implemented = methods.iter().copied().filter(|m| info.functions.iter().any(|f| f == m)).collect();
        let mut transport = VmTransport { module: name.to_owned(), script: info.script, vm, implemented };
        transport.forward_output();
        Ok(transport)
    }

    /// The script's path.
    pub fn script(&self) -> &str {
        &self.script
    }

    /// What the Vm says about itself now (language, version, functions, heap size).
    pub fn describe(&mut self) -> Result<modhost_abi::VmInfo, CallError> {
        self.vm.describe()
    }

    /// Whether the script defines `method`.
    pub fn defines(&self, method: &str) -> bool {
        self.implemented.contains(method)
    }

    /// Calls a script function with a JSON message and returns its JSON answer.
    pub fn call_json(&mut self, method: &str, request: &[u8]) -> Result<Vec<u8>, CallError> {
        let answer = self.vm.call(method, request);
        self.forward_output();
        answer
    }

    /// Sends what the script printed to the host's log, tagged with the module.
    fn forward_output(&mut self) {
        match self.vm.take_output() {
            Ok(lines) => {
                for line in lines {
                    log::info!("[{}] {line}", self.module);
                }
            }
            Err(e) => log::warn!("[{}] cannot collect the script's output: {e}", self.module),
        }
    }
}

impl<V> MessageTransport<V> for VmTransport {
    fn call(
        &mut self,
        method: &'static str,
        _entry: fn(&V) -> MessageFn,
        request: &[u8],
        response: &mut dyn FnMut(&[u8]) -> Result<(), CallError>,
    ) -> Result<(), CallError> {
        let answer = self.call_json(method, request)?;
        response(&answer)
    }

    fn implements(&self, method: &'static str) -> bool {
        self.implemented.contains(method)
    }
}
