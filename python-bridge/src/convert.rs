//! Messages to Python objects and back, in Rust.
//!
//! The `json` module costs a task-sized hook call more than everything else together: about
//! 6 us to load the message and 3 us to dump the answer on this machine, most of it in the
//! Python-level layers around its C scanner and encoder. Here the host's message is read
//! (packed values, or JSON with serde_json) and each value is made straight into its Python
//! object, and the answer is written as packed values by walking the objects the function
//! returned. The mapping is `json`'s: objects
//! are dicts, arrays lists, integers ints, other numbers floats; tuples go back as arrays;
//! NaN and infinities are refused, as with `allow_nan=False`.

use std::fmt;
use std::sync::Mutex;

use modhost_abi::packed;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deepest nesting accepted either way.
const MAX_DEPTH: usize = 100;

/// How a call's message and answer are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// JSON (`Vm::call`).
    Json,
    /// Packed values (`Vm::call_packed`).
    Packed,
}

/// The Python object of a message.
pub(crate) fn to_python<'py>(py: Python<'py>, message: &[u8], format: Format) -> Result<Bound<'py, PyAny>, String> {
    // Waits detached from the interpreter, so a thread holding the lock can always get back in.
    let mut strings = STRINGS.lock_py_attached(py).unwrap_or_else(|poisoned| poisoned.into_inner());
    let make = Make { py, depth: 0, strings: &mut strings };
    match format {
        Format::Json => {
            let mut parser = serde_json::Deserializer::from_slice(message);
            let value = make.deserialize(&mut parser).map_err(|e| e.to_string())?;
            parser.end().map_err(|e| e.to_string())?;
            Ok(value)
        }
        Format::Packed => {
            // UTF-8 is checked by the string cache, for the strings it has not seen.
            let mut reader = packed::Deserializer::new(message).strings_as_bytes();
            let value = make.deserialize(&mut reader).map_err(|e| e.to_string())?;
            reader.end().map_err(|e| e.to_string())?;
            Ok(value)
        }
    }
}

/// Short strings kept as Python objects: messages repeat the same few dozen field names, and
/// many values (framework, role, agent, label names), on every call; a kept string is neither
/// made nor hashed again (a str caches its hash). The cache is direct-mapped: each string has
/// one slot, picked from its length and its first and last eight bytes, and a string that
/// meets another in its slot replaces it. Strings are immutable, so sharing one is invisible
/// to scripts.
static STRINGS: Mutex<StringCache> = Mutex::new(StringCache { slots: Vec::new() });

/// Slots of the cache (a power of two).
const SLOTS: usize = 1024;

/// Longest string kept: longer ones are rarely repeated names.
const KEPT_LEN: usize = 48;

struct StringCache {
    slots: Vec<Option<Kept>>,
}

/// A kept string: its length and the words of its first and last eight bytes (which are all
/// of it up to 16 bytes, so that a short string is compared without a memcmp), its text when
/// it is longer, and the Python object.
struct Kept {
    len: usize,
    head: u64,
    tail: u64,
    longer: Option<Box<str>>,
    string: Py<PyString>,
}

/// Up to eight bytes as one word: with the length, it tells the bytes apart exactly (the two
/// overlapping halves of a short string cover all of it).
fn word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let u32_at = |at: usize| u64::from(u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")));
    let u16_at = |at: usize| u64::from(u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2 bytes")));
    match n {
        8.. => u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
        4..=7 => u32_at(0) | (u32_at(n - 4) << 32),
        2..=3 => u16_at(0) | (u16_at(n - 2) << 16),
        1 => u64::from(bytes[0]),
        0 => 0,
    }
}

/// The words of the first and last eight bytes of a string.
fn words(bytes: &[u8]) -> (u64, u64) {
    let len = bytes.len();
    (word(&bytes[..len.min(8)]), word(&bytes[len.saturating_sub(8)..]))
}

impl StringCache {
    fn string<'py>(&mut self, py: Python<'py>, text: &str) -> Bound<'py, PyString> {
        self.text_of(py, text.as_bytes()).expect("a str is UTF-8")
    }

    /// The string of UTF-8 `bytes`, which are checked only when the cache does not hold them
    /// (a kept string's bytes were checked when it was made).
    fn text_of<'py>(&mut self, py: Python<'py>, bytes: &[u8]) -> Result<Bound<'py, PyString>, std::str::Utf8Error> {
        let len = bytes.len();
        if len > KEPT_LEN {
            return Ok(PyString::new(py, std::str::from_utf8(bytes)?));
        }
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || None);
        }
        let (head, tail) = words(bytes);
        // A multiplicative hash of the length and the two words picks the slot.
        let mixed = (head ^ tail.rotate_left(29) ^ len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let entry = &mut self.slots[(mixed >> (64 - SLOTS.trailing_zeros())) as usize];
        if let Some(kept) = entry
            && kept.len == len
            && kept.head == head
            && kept.tail == tail
            && kept.longer.as_deref().is_none_or(|longer| longer.as_bytes() == bytes)
        {
            return Ok(kept.string.bind(py).clone());
        }
        let text = std::str::from_utf8(bytes)?;
        let made = PyString::new(py, text);
        let longer = (len > 16).then(|| text.into());
        *entry = Some(Kept { len, head, tail, longer, string: made.clone().unbind() });
        Ok(made)
    }
}

/// `text` as a Python string, from the cache when it is there (a function's name, say).
pub(crate) fn string<'py>(py: Python<'py>, text: &str) -> Bound<'py, PyString> {
    STRINGS.lock_py_attached(py).unwrap_or_else(|poisoned| poisoned.into_inner()).string(py, text)
}

/// What a script function returned, encoded in `format`. JSON is made from the packed form:
/// the JSON path serves export_state and ABI 1.0 callers, not the hot calls.
///
/// An answer longer than `limit` bytes packed is refused: it is written after the call, out
/// of its memory limit and its timeout, and a list held in it many times (a few kilobytes of
/// Python standing for terabytes) would otherwise hold the host.
pub(crate) fn to_answer(value: &Bound<'_, PyAny>, format: Format, limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(256);
    write(value, &mut packed::Writer::new(&mut out), 0, limit)?;
    if format == Format::Json {
        let value: serde_json::Value = packed::from_slice(&out).map_err(|e| e.to_string())?;
        out = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Makes one JSON value into a Python object.
struct Make<'py, 'k> {
    py: Python<'py>,
    depth: usize,
    strings: &'k mut StringCache,
}

impl<'py> Make<'py, '_> {
    fn nested<E: serde::de::Error>(&mut self) -> Result<Make<'py, '_>, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("the message nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(Make { py: self.py, depth: self.depth + 1, strings: self.strings })
    }
}

impl<'de, 'py> DeserializeSeed<'de> for Make<'py, '_> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn python_error<E: serde::de::Error>(error: PyErr) -> E {
    E::custom(error.to_string())
}

impl<'de, 'py> Visitor<'de> for Make<'py, '_> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.py.None().into_bound(self.py))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.py, value).to_owned().into_any())
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        let Ok(number) = value.into_pyobject(self.py);
        Ok(number.into_any())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        let Ok(number) = value.into_pyobject(self.py);
        Ok(number.into_any())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.py, value).into_any())
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(self.strings.string(self.py, value).into_any())
    }

    fn visit_bytes<E: serde::de::Error>(self, value: &[u8]) -> Result<Self::Value, E> {
        let text = self.strings.text_of(self.py, value).map_err(|_| E::custom("a string is not UTF-8"))?;
        Ok(text.into_any())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut items: A) -> Result<Self::Value, A::Error> {
        let list = PyList::empty(self.py);
        while let Some(item) = items.next_element_seed(self.nested()?)? {
            list.append(item).map_err(python_error)?;
        }
        Ok(list.into_any())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut entries: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.py);
        while let Some(key) = entries.next_key_seed(Key { py: self.py, strings: self.strings })? {
            let value = entries.next_value_seed(self.nested()?)?;
            dict.set_item(key, value).map_err(python_error)?;
        }
        Ok(dict.into_any())
    }
}

/// Makes an object's key (text) into a Python string.
struct Key<'py, 'k> {
    py: Python<'py>,
    strings: &'k mut StringCache,
}

impl<'de, 'py> DeserializeSeed<'de> for Key<'py, '_> {
    type Value = Bound<'py, PyString>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'py> Visitor<'de> for Key<'py, '_> {
    type Value = Bound<'py, PyString>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(self.strings.string(self.py, value))
    }

    fn visit_bytes<E: serde::de::Error>(self, value: &[u8]) -> Result<Self::Value, E> {
        self.strings.text_of(self.py, value).map_err(|_| E::custom("a key is not UTF-8"))
    }
}

fn write(value: &Bound<'_, PyAny>, out: &mut packed::Writer<'_>, depth: usize, limit: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("the answer nests deeper than {MAX_DEPTH} levels"));
    }
    // Checked before each value, so the answer ends at most one str past the limit.
    if out.written() > limit {
        return Err(format!(
            "the answer is larger than {limit} bytes, twice the memory_limit (does it hold the same list many times?)"
        ));
    }
    if value.is_none() {
        out.null();
    } else if let Ok(text) = value.cast::<PyString>() {
        let text = text.to_str().map_err(|e| format!("a str of the answer is not UTF-8: {e}"))?;
        out.string(text).map_err(|e| e.to_string())?;
    } else if let Ok(flag) = value.cast::<PyBool>() {
        out.boolean(flag.is_true());
    } else if value.cast::<PyInt>().is_ok() {
        if let Ok(number) = value.extract::<i64>() {
            out.integer(number);
        } else {
            let number: u64 = value.extract().map_err(|_| format!("the int {value} of the answer is too large"))?;
            out.unsigned(number);
        }
    } else if let Ok(number) = value.cast::<PyFloat>() {
        let number = number.value();
        if !number.is_finite() {
            return Err(format!("the answer holds the float {number}, which JSON cannot carry"));
        }
        out.number(number).map_err(|e| e.to_string())?;
    } else if let Ok(dict) = value.cast::<PyDict>() {
        let open = out.open_object();
        for (key, item) in dict.iter() {
            let key = key.cast::<PyString>().map_err(|_| {
                format!("the answer has a dict key {} of type {}; JSON keys are str", key, type_name(&key))
            })?;
            let key = key.to_str().map_err(|e| format!("a key of the answer is not UTF-8: {e}"))?;
            out.key(key).map_err(|e| e.to_string())?;
            write(&item, out, depth + 1, limit)?;
        }
        out.close(open, dict.len()).map_err(|e| e.to_string())?;
    } else if let Ok(list) = value.cast::<PyList>() {
        write_items(list.iter(), out, depth, limit)?;
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        write_items(tuple.iter(), out, depth, limit)?;
    } else {
        return Err(format!("the answer holds a {}, which JSON cannot carry", type_name(value)));
    }
    Ok(())
}

fn write_items<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    out: &mut packed::Writer<'_>,
    depth: usize,
    limit: usize,
) -> Result<(), String> {
    let open = out.open_list();
    let mut count = 0;
    for item in items {
        count += 1;
        write(&item, out, depth + 1, limit)?;
    }
    out.close(open, count).map_err(|e| e.to_string())
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|name| name.to_string()).unwrap_or_else(|_| "value".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache compares strings of up to 16 bytes by length and words alone: that must tell
    /// every two of them apart. Checked on every string of up to 16 bytes over a two-letter
    /// alphabet, and on byte patterns that differ only in the middle.
    #[test]
    fn length_and_words_tell_short_strings_apart() {
        let mut seen = std::collections::HashMap::new();
        for len in 0..=16usize {
            for bits in 0..(1u32 << len) {
                let text: Vec<u8> = (0..len).map(|i| if bits >> i & 1 == 1 { b'b' } else { b'a' }).collect();
                if let Some(other) = seen.insert((len, words(&text)), text.clone()) {
                    panic!(
                        "{:?} and {:?} look the same",
                        String::from_utf8_lossy(&other),
                        String::from_utf8_lossy(&text)
                    );
                }
            }
        }
    }
}
