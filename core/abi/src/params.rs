//! Module parameters: the manifest's key/value pairs.

use serde::{Deserialize, Serialize};

use crate::Bytes;

/// One key/value parameter, as in a manifest's `parameters` list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Parameter {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

impl Parameter {
    /// A parameter from a key and a value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Parameter { key: key.into(), value: value.into() }
    }
}

/// The parameters a module instance was created with, in manifest order.
///
/// Keys may repeat (Mesos allowed it); [`Parameters::get`] returns the first match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Parameters(pub Vec<Parameter>);

impl Parameters {
    /// The value of the first parameter named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|p| p.key == key).map(|p| p.value.as_str())
    }

    /// The parameters in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Parameter> {
        self.0.iter()
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<Parameter>> for Parameters {
    fn from(list: Vec<Parameter>) -> Self {
        Parameters(list)
    }
}

/// A parameter as it crosses the boundary: two borrowed UTF-8 spans.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawParameter {
    /// The key, UTF-8.
    pub key: Bytes,
    /// The value, UTF-8.
    pub value: Bytes,
}

impl RawParameter {
    /// Borrows a parameter for a call.
    pub fn new(parameter: &Parameter) -> Self {
        RawParameter { key: Bytes::new(parameter.key.as_bytes()), value: Bytes::new(parameter.value.as_bytes()) }
    }
}

/// Copies `n` raw parameters into owned ones, refusing text that is not UTF-8.
///
/// # Safety
///
/// `list` must point to `n` valid `RawParameter`s (or `n` must be 0), each describing live bytes.
pub(crate) unsafe fn read_parameters(list: *const RawParameter, n: usize) -> Result<Parameters, String> {
    if n == 0 {
        return Ok(Parameters::default());
    }
    // SAFETY: the caller guarantees `list` holds `n` parameters.
    let raw = unsafe { std::slice::from_raw_parts(list, n) };
    let mut out = Vec::with_capacity(n);
    for (index, p) in raw.iter().enumerate() {
        let text = |b: Bytes, field: &str| {
            // SAFETY: each span describes live bytes for this call (caller's guarantee).
            let bytes = unsafe { b.as_slice() };
            String::from_utf8(bytes.to_vec()).map_err(|_| format!("parameter {index}: {field} is not UTF-8"))
        };
        out.push(Parameter { key: text(p.key, "key")?, value: text(p.value, "value")? });
    }
    Ok(Parameters(out))
}
