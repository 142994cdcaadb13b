//! The packed value format: JSON's data model (null, booleans, numbers, strings, lists,
//! objects) in a binary layout that is read without scanning for quotes, escapes or digits.
//!
//! A Vm call carries its message and its answer in this format when the Vm module offers
//! `call_packed` (ABI 1.1); the script sees exactly the values the JSON message would have
//! given it. It exists because, for a task-sized hook message, parsing and printing JSON took
//! more time than the script's own work (see BENCHMARKS.md).
//!
//! ```text
//! value  = 0x00                               null
//!        | 0x01 | 0x02                        false | true
//!        | 0x03 i64                           integer
//!        | 0x04 u64                           integer above i64::MAX
//!        | 0x05 f64                           number (finite)
//!        | 0x06 len bytes                     string (UTF-8)
//!        | 0x07 count value{count}            list
//!        | 0x08 count (len bytes value){count} object (keys UTF-8)
//! len, count = u32; every number is little-endian
//! ```
//!
//! A message is one value and nothing after it. Rust values go in with [`to_vec`] and come
//! out with [`from_slice`], as with `serde_json`; an interpreter's bridge reads a message
//! with [`Deserializer`] (through any serde visitor), or in place, a part at a time, with
//! [`read`], [`read_key`] and [`skip`], and writes its answer with [`Writer`].
//!
//! ```
//! use modhost_abi::messages::Label;
//! use modhost_abi::packed;
//!
//! let labels = vec![Label { key: "team".into(), value: "platform".into() }];
//! let bytes = packed::to_vec(&labels).unwrap();
//! let back: Vec<Label> = packed::from_slice(&bytes).unwrap();
//! assert_eq!(back, labels);
//! ```

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

const NULL: u8 = 0x00;
const FALSE: u8 = 0x01;
const TRUE: u8 = 0x02;
const INT: u8 = 0x03;
const UINT: u8 = 0x04;
const FLOAT: u8 = 0x05;
const STRING: u8 = 0x06;
const LIST: u8 = 0x07;
const OBJECT: u8 = 0x08;

/// Deepest nesting a message may have, as in the bridges' JSON readers.
const MAX_DEPTH: usize = 100;

/// Why a value could not be packed or unpacked.
///
/// An error met inside a list or an object names where: `offers[1].resources.cpus: ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    message: String,
    /// Where in the value, outermost first (`[1]`, `.cpus`), empty at the top.
    path: String,
}

impl Error {
    fn new(message: String) -> Self {
        Error { message, path: String::new() }
    }

    /// The same error, met inside the element or field `step` (`[3]`, `.key`) of a value.
    #[cold]
    #[inline(never)]
    fn inside(mut self, step: fmt::Arguments<'_>) -> Self {
        self.path.insert_str(0, &step.to_string());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.strip_prefix('.') {
            _ if self.path.is_empty() => f.write_str(&self.message),
            Some(field) => write!(f, "{field}: {}", self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error::new(message.to_string())
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error::new(message.to_string())
    }
}

/// Packs a value.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(1024);
    append(value, &mut out)?;
    Ok(out)
}

/// Packs a value at the end of `out`.
pub(crate) fn append<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    value.serialize(&mut Packer { writer: Writer::new(out) })
}

/// Unpacks a value, refusing bytes left over after it.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut deserializer = Deserializer::new(bytes);
    let value = T::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// `bytes` as text, if they are UTF-8. ASCII, what a message's names and values nearly always
/// are, is checked first: `str::from_utf8` takes about 90 instructions for a short string,
/// the ASCII check about 16 (measured with callgrind on the hook-call path, where the host
/// checks two dozen strings per answer).
///
/// ```
/// assert_eq!(modhost_abi::packed::utf8(b"team"), Some("team"));
/// assert_eq!(modhost_abi::packed::utf8("équipe".as_bytes()), Some("équipe"));
/// assert_eq!(modhost_abi::packed::utf8(&[0xff]), None);
/// ```
#[inline]
pub fn utf8(bytes: &[u8]) -> Option<&str> {
    if is_ascii(bytes) {
        // SAFETY: every ASCII byte sequence is UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok()
}

/// Whether every byte of `bytes` is ASCII, read a word at a time: `<[u8]>::is_ascii` first
/// aligns its reads, which on the short strings of a message costs more than the check
/// (about 33 instructions a string against 16). Reads may overlap; each byte is read at
/// least once. A read that came up short (none does, by the lengths each is made at) counts
/// as not ASCII: `utf8` then checks the whole string, where taking it as ASCII would make a
/// `str` of bytes nothing checked.
#[inline]
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |at: usize| bytes[at..].first_chunk::<8>().map_or(HIGH, |w| u64::from_le_bytes(*w));
    let half = |at: usize| bytes[at..].first_chunk::<4>().map_or(HIGH, |w| u64::from(u32::from_le_bytes(*w)));
    let n = bytes.len();
    let seen = match n {
        0 => 0,
        1..=3 => u64::from(bytes[0] | bytes[n / 2] | bytes[n - 1]),
        4..=7 => half(0) | half(n - 4),
        _ => {
            let mut seen = word(n - 8);
            let mut at = 0;
            while at + 8 <= n {
                seen |= word(at);
                at += 8;
            }
            seen
        }
    };
    seen & HIGH == 0
}

#[cold]
fn too_long() -> Error {
    Error::new("a string of 4 GiB or more".into())
}

#[cold]
fn too_many() -> Error {
    Error::new("more than 2^32 elements".into())
}

/// Writes packed values into a byte vector, for a bridge that walks its interpreter's values.
///
/// Lists and objects are opened with their element count unknown and closed with it: the
/// count is written into the place [`Writer::open_list`] or [`Writer::open_object`] kept.
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

/// Where an open list's or object's count goes.
#[must_use = "a list or object must be closed with its count"]
pub struct Open(usize);

impl<'a> Writer<'a> {
    /// Appends to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out }
    }

    /// How many bytes the output holds (what was there before, and what this wrote).
    pub fn written(&self) -> usize {
        self.out.len()
    }

    /// `null`.
    #[inline]
    pub fn null(&mut self) {
        self.out.push(NULL);
    }

    /// `true` or `false`.
    #[inline]
    pub fn boolean(&mut self, value: bool) {
        self.out.push(if value { TRUE } else { FALSE });
    }

    /// An integer.
    #[inline]
    pub fn integer(&mut self, value: i64) {
        self.out.push(INT);
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// An integer too large for `i64`.
    pub fn unsigned(&mut self, value: u64) {
        match i64::try_from(value) {
            Ok(value) => self.integer(value),
            Err(_) => {
                self.out.push(UINT);
                self.out.extend_from_slice(&value.to_le_bytes());
            }
        }
    }

    /// A number; NaN and the infinities are refused, as JSON cannot carry them.
    pub fn number(&mut self, value: f64) -> Result<(), Error> {
        if !value.is_finite() {
            return Err(Error::new(format!("{value} is not a number a message can carry")));
        }
        self.out.push(FLOAT);
        self.out.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }

    /// A string.
    pub fn string(&mut self, value: &str) -> Result<(), Error> {
        self.sized(&[STRING], value.as_bytes())
    }

    /// An object's key (after [`Writer::open_object`], before the key's value).
    pub fn key(&mut self, key: &str) -> Result<(), Error> {
        self.sized(&[], key.as_bytes())
    }

    /// Starts a list: its elements follow, then [`Writer::close`].
    pub fn open_list(&mut self) -> Open {
        self.open(LIST)
    }

    /// Starts an object: key, value, key, value..., then [`Writer::close`].
    pub fn open_object(&mut self) -> Open {
        self.open(OBJECT)
    }

    /// Ends a list of `count` elements or an object of `count` entries.
    pub fn close(&mut self, open: Open, count: usize) -> Result<(), Error> {
        let Ok(count) = u32::try_from(count) else { return Err(too_many()) };
        self.out[open.0..open.0 + 4].copy_from_slice(&count.to_le_bytes());
        Ok(())
    }

    /// A value that is already packed, such as one read in place with [`read`]: copied as
    /// it is, after checking that `value` is exactly one value (as [`skip`] checks it: the
    /// UTF-8 of its strings is left to whoever takes text out, as [`from_slice`] does).
    pub fn packed(&mut self, value: &[u8]) -> Result<(), Error> {
        self.packed_values(value, 1)
    }

    /// `count` values that are already packed, one after another (elements of a list read in
    /// place): copied in one go, after checking that `values` is exactly `count` values, as
    /// [`Writer::packed`] checks one.
    pub fn packed_values(&mut self, values: &[u8], count: usize) -> Result<(), Error> {
        let mut end = 0;
        for _ in 0..count {
            end = skip(values, end)?;
        }
        if end != values.len() {
            let after = if count == 1 { "the value".to_owned() } else { format!("{count} values") };
            return Err(Error::new(format!("packed values, byte {end}: {} bytes after {after}", values.len() - end)));
        }
        self.out.extend_from_slice(values);
        Ok(())
    }

    /// A run of whole packed values that [`skip`] has already walked value by value (the
    /// elements of a list read in place, their ends found), copied as they are: not walked a
    /// second time as [`Writer::packed_values`] walks them. A run that is not whole values
    /// makes a message its reader refuses, as any malformed message is refused.
    pub fn walked_values(&mut self, values: &[u8]) {
        self.out.extend_from_slice(values);
    }

    fn open(&mut self, tag: u8) -> Open {
        self.out.push(tag);
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        Open(at)
    }

    /// `tag` (none, for a key), then the length of `bytes`, then `bytes`: one reservation and
    /// one length update for the three, where pushing each checked the room and moved the
    /// length again (a message is mostly short strings and keys).
    #[inline]
    fn sized(&mut self, tag: &[u8], bytes: &[u8]) -> Result<(), Error> {
        let Ok(len) = u32::try_from(bytes.len()) else { return Err(too_long()) };
        let total = tag.len() + 4 + bytes.len();
        self.out.reserve(total);
        // SAFETY: `reserve` made room for `total` more bytes after the length, and the three
        // copies fill exactly that room before the length takes it in; no source overlaps
        // the vector's spare room.
        unsafe {
            let end = self.out.as_mut_ptr().add(self.out.len());
            std::ptr::copy_nonoverlapping(tag.as_ptr(), end, tag.len());
            std::ptr::copy_nonoverlapping(len.to_le_bytes().as_ptr(), end.add(tag.len()), 4);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), end.add(tag.len() + 4), bytes.len());
            self.out.set_len(self.out.len() + total);
        }
        Ok(())
    }
}

/// One value read in place: scalars decoded, strings and containers left in the message.
///
/// For a bridge that makes its script's values only when the script reads them: see
/// [`read`], [`read_key`] and [`skip`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Item<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A number.
    Float(f64),
    /// A string's bytes (UTF-8 is not checked).
    Str(&'a [u8]),
    /// A list of `count` elements, the first starting at offset `first`.
    List {
        /// How many elements.
        count: u32,
        /// Where the first element starts.
        first: usize,
    },
    /// An object of `count` entries, the first key starting at offset `first` (see
    /// [`read_key`]).
    Object {
        /// How many entries.
        count: u32,
        /// Where the first key starts.
        first: usize,
    },
}

/// Reads the value that starts at offset `at` of `message`: a scalar whole, a list or
/// object only as far as its count (see [`skip`] for its end).
///
/// ```
/// use modhost_abi::packed::{self, Item};
///
/// let message = packed::to_vec(&serde_json::json!({"cpus": 0.5})).unwrap();
/// assert_eq!(packed::skip(&message, 0).unwrap(), message.len());
/// let Item::Object { count: 1, first } = packed::read(&message, 0).unwrap() else { panic!("an object") };
/// let (key, value_at) = packed::read_key(&message, first).unwrap();
/// assert_eq!(key, b"cpus");
/// assert_eq!(packed::read(&message, value_at).unwrap(), Item::Float(0.5));
/// ```
pub fn read(message: &[u8], at: usize) -> Result<Item<'_>, Error> {
    let mut reader = Deserializer::new(message).strings_as_bytes();
    reader.at = at;
    Ok(match reader.tag()? {
        NULL => Item::Null,
        FALSE => Item::Bool(false),
        TRUE => Item::Bool(true),
        INT => Item::Int(i64::from_le_bytes(reader.take()?)),
        UINT => Item::UInt(u64::from_le_bytes(reader.take()?)),
        FLOAT => Item::Float(reader.finite()?),
        STRING => Item::Str(reader.bytes()?),
        LIST => Item::List { count: u32::from_le_bytes(reader.take()?), first: reader.at },
        OBJECT => Item::Object { count: u32::from_le_bytes(reader.take()?), first: reader.at },
        tag => {
            reader.at -= 1;
            return Err(reader.error(format_args!("unknown tag 0x{tag:02x}")));
        }
    })
}

/// The offset just past the value that starts at offset `at` of `message`, checking its
/// structure on the way (not its strings' UTF-8), without allocating.
#[inline]
pub fn skip(message: &[u8], at: usize) -> Result<usize, Error> {
    // A scalar is stepped over here, where the caller walks a list element by element (a
    // view's n-th number): the walk is for containers, and for the errors.
    match message.get(at) {
        Some(&(INT | UINT)) if at + 9 <= message.len() => Ok(at + 9),
        Some(&(NULL | FALSE | TRUE)) => Ok(at + 1),
        _ => Skip { message }.value(at, 0),
    }
}

/// The walk of [`skip`].
struct Skip<'a> {
    message: &'a [u8],
}

impl Skip<'_> {
    #[cold]
    #[inline(never)]
    fn error(&self, at: usize, what: fmt::Arguments<'_>) -> Error {
        Error::new(format!("packed message, byte {at}: {what}"))
    }

    #[inline(always)]
    fn word(&self, at: usize) -> Result<usize, Error> {
        match self.message.get(at..at + 4) {
            Some(&[a, b, c, d]) => Ok(u32::from_le_bytes([a, b, c, d]) as usize),
            _ => Err(self.error(at, format_args!("ends in the middle of a value"))),
        }
    }

    /// A number at `at` (its tag first): the offset after it, if it is finite.
    fn finite(&self, at: usize) -> Result<usize, Error> {
        match self.message.get(at + 1..at + 9).map(|bytes| f64::from_le_bytes(bytes.try_into().unwrap_or_default())) {
            Some(number) if number.is_finite() => Ok(at + 9),
            Some(number) => Err(self.error(at, format_args!("{number} is not a number a message can carry"))),
            None => Err(self.error(at, format_args!("ends in the middle of a value"))),
        }
    }

    /// A string or key at `at` (its length first): the offset after it.
    #[inline(always)]
    fn string(&self, at: usize) -> Result<usize, Error> {
        let end = at + 4 + self.word(at)?;
        if end > self.message.len() {
            return Err(self.error(at, format_args!("a string runs past the end")));
        }
        Ok(end)
    }

    fn value(&self, at: usize, depth: usize) -> Result<usize, Error> {
        let Some(&tag) = self.message.get(at) else {
            return Err(self.error(at, format_args!("ends in the middle of a value")));
        };
        match tag {
            NULL | FALSE | TRUE => Ok(at + 1),
            FLOAT => self.finite(at),
            INT | UINT if at + 9 <= self.message.len() => Ok(at + 9),
            INT | UINT => Err(self.error(at, format_args!("ends in the middle of a value"))),
            STRING => self.string(at + 1),
            LIST | OBJECT => {
                if depth >= MAX_DEPTH {
                    return Err(self.error(at, format_args!("nests deeper than {MAX_DEPTH} levels")));
                }
                let count = self.word(at + 1)?;
                let mut at = at + 5;
                for _ in 0..count {
                    if tag == OBJECT {
                        at = self.string(at)?;
                    }
                    // Most elements are strings or numbers: stepped over here rather than in a
                    // call (a short one is left to `value`, for its error).
                    at = match self.message.get(at) {
                        Some(&STRING) => self.string(at + 1)?,
                        Some(&(INT | UINT)) if at + 9 <= self.message.len() => at + 9,
                        Some(&(NULL | FALSE | TRUE)) => at + 1,
                        _ => self.value(at, depth + 1)?,
                    };
                }
                Ok(at)
            }
            tag => Err(self.error(at, format_args!("unknown tag 0x{tag:02x}"))),
        }
    }
}

/// Reads the object key that starts at offset `at` of `message`: the key's bytes (UTF-8 not
/// checked) and the offset where its value starts.
pub fn read_key(message: &[u8], at: usize) -> Result<(&[u8], usize), Error> {
    let mut reader = Deserializer::new(message);
    reader.at = at;
    let key = reader.bytes()?;
    Ok((key, reader.at))
}

/// Reads one packed message, as `serde_json::Deserializer` reads a JSON one.
pub struct Deserializer<'de> {
    input: &'de [u8],
    at: usize,
    depth: usize,
    /// Strings and keys go to the visitor as bytes, unchecked.
    as_bytes: bool,
}

impl<'de> Deserializer<'de> {
    /// Reads from `input`.
    pub fn new(input: &'de [u8]) -> Self {
        Deserializer { input, at: 0, depth: 0, as_bytes: false }
    }

    /// Hands strings and object keys to the visitor as bytes (`visit_borrowed_bytes`),
    /// without checking that they are UTF-8: for a reader that needs no text (Lua strings are
    /// bytes) or checks only what it has not seen before (a cache of strings it made).
    pub fn strings_as_bytes(mut self) -> Self {
        self.as_bytes = true;
        self
    }

    /// Refuses bytes after the value.
    pub fn end(&self) -> Result<(), Error> {
        if self.at != self.input.len() {
            return Err(self.error(format_args!("{} bytes after the value", self.input.len() - self.at)));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn error(&self, what: fmt::Arguments<'_>) -> Error {
        Error::new(format!("packed message, byte {}: {what}", self.at))
    }

    #[inline]
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        match self.input.get(self.at..).and_then(<[u8]>::first_chunk::<N>) {
            Some(bytes) => {
                self.at += N;
                Ok(*bytes)
            }
            None => Err(self.error(format_args!("ends in the middle of a value"))),
        }
    }

    fn tag(&mut self) -> Result<u8, Error> {
        Ok(self.take::<1>()?[0])
    }

    /// A number's eight bytes (after its tag), refused if they are NaN or an infinity, which
    /// no message may carry (the writer refuses them too).
    #[inline]
    fn finite(&mut self) -> Result<f64, Error> {
        let number = f64::from_le_bytes(self.take()?);
        if !number.is_finite() {
            self.at -= 9;
            return Err(self.error(format_args!("{number} is not a number a message can carry")));
        }
        Ok(number)
    }

    /// A list's elements or an object's entries, after the tag: all of them must be read. A
    /// visitor that stops early (a struct's fields sent as a list, with more elements than
    /// fields) would leave the rest to be read as whatever comes next.
    fn elements<V: Visitor<'de>>(&mut self, object: bool, visitor: V) -> Result<V::Value, Error> {
        let count = self.count()?;
        self.nested(|de| {
            let mut elements = Elements { de, left: count, count, key: b"" };
            let value = if object { visitor.visit_map(&mut elements)? } else { visitor.visit_seq(&mut elements)? };
            if elements.left != 0 {
                let (what, read) = if object { ("an object of", "entries") } else { ("a list of", "elements") };
                let taken = count - elements.left;
                return Err(elements.de.error(format_args!("{what} {count} {read}, of which {taken} were expected")));
            }
            Ok(value)
        })
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn count(&mut self) -> Result<usize, Error> {
        Ok(u32::from_le_bytes(self.take()?) as usize)
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'de [u8], Error> {
        let len = self.count()?;
        let input: &'de [u8] = self.input;
        let Some(bytes) = input.get(self.at..).and_then(|rest| rest.get(..len)) else {
            return Err(self.error(format_args!("a string runs past the end")));
        };
        self.at += len;
        Ok(bytes)
    }

    fn text(&mut self) -> Result<&'de str, Error> {
        let start = self.at;
        let bytes = self.bytes()?;
        utf8(bytes).ok_or_else(|| {
            self.at = start;
            self.error(format_args!("a string is not UTF-8"))
        })
    }

    fn nested<R>(&mut self, read: impl FnOnce(&mut Self) -> Result<R, Error>) -> Result<R, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format_args!("nests deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let result = read(self);
        self.depth -= 1;
        result
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.tag()? {
            NULL => visitor.visit_unit(),
            FALSE => visitor.visit_bool(false),
            TRUE => visitor.visit_bool(true),
            INT => visitor.visit_i64(i64::from_le_bytes(self.take()?)),
            UINT => visitor.visit_u64(u64::from_le_bytes(self.take()?)),
            FLOAT => visitor.visit_f64(self.finite()?),
            STRING if self.as_bytes => visitor.visit_borrowed_bytes(self.bytes()?),
            STRING => visitor.visit_borrowed_str(self.text()?),
            LIST => self.elements(false, visitor),
            OBJECT => self.elements(true, visitor),
            tag => {
                self.at -= 1;
                Err(self.error(format_args!("unknown tag 0x{tag:02x}")))
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.peek() == Some(NULL) {
            self.at += 1;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Unit variants are strings, as serde_json writes them; variants with data are not
        // part of any message.
        if self.peek() != Some(STRING) {
            return Err(self.error(format_args!("expected the name of a variant")));
        }
        self.at += 1;
        let name = self.text()?;
        visitor.visit_enum(name.into_deserializer())
    }

    // The shapes messages are made of, read directly when the tag is the expected one (the
    // common case: one branch instead of `deserialize_any`'s dispatch); anything else goes
    // through `deserialize_any`, which hands the visitor what is there (and so makes the
    // error "invalid type: ..., expected ...").
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.peek() == Some(STRING) && !self.as_bytes {
            self.at += 1;
            return visitor.visit_borrowed_str(self.text()?);
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.peek() == Some(OBJECT) {
            self.at += 1;
            return self.elements(true, visitor);
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.peek() == Some(LIST) {
            self.at += 1;
            return self.elements(false, visitor);
        }
        self.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct tuple tuple_struct identifier ignored_any
    }
}

/// The elements of a list, or the entries of an object.
struct Elements<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    left: usize,
    count: usize,
    /// The key of the entry being read, to name it in an error.
    key: &'de [u8],
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let index = self.count - self.left - 1;
        seed.deserialize(&mut *self.de).map(Some).map_err(|e| e.inside(format_args!("[{index}]")))
    }

    fn size_hint(&self) -> Option<usize> {
        // A count read from the message is not trusted for allocation beyond what it holds.
        Some(self.left.min(self.de.input.len() - self.de.at))
    }
}

impl<'de> de::MapAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        if self.de.as_bytes {
            self.key = self.de.bytes()?;
            return seed.deserialize(de::value::BorrowedBytesDeserializer::new(self.key)).map(Some);
        }
        let key = self.de.text()?;
        self.key = key.as_bytes();
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let key = self.key;
        seed.deserialize(&mut *self.de).map_err(|e| e.inside(format_args!(".{}", String::from_utf8_lossy(key))))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min(self.de.input.len() - self.de.at))
    }
}

/// serde's side of packing: the shapes serde_json gives each Rust type.
struct Packer<'a> {
    writer: Writer<'a>,
}

/// A list or object being packed, with the entries written so far.
struct Compound<'p, 'a> {
    packer: &'p mut Packer<'a>,
    open: Open,
    count: usize,
    /// An enum variant with data is `{variant: data}`: the outer object to close after.
    variant: Option<Open>,
}

impl<'a> Packer<'a> {
    fn compound(&mut self, object: bool, variant: Option<&'static str>) -> Result<Compound<'_, 'a>, Error> {
        let variant = match variant {
            None => None,
            Some(name) => {
                let outer = self.writer.open_object();
                self.writer.key(name)?;
                Some(outer)
            }
        };
        let open = if object { self.writer.open_object() } else { self.writer.open_list() };
        Ok(Compound { packer: self, open, count: 0, variant })
    }
}

impl Compound<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.count += 1;
        value.serialize(&mut *self.packer)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.packer.writer.key(key)?;
        self.element(value)
    }

    fn finish(self) -> Result<(), Error> {
        self.packer.writer.close(self.open, self.count)?;
        match self.variant {
            Some(outer) => self.packer.writer.close(outer, 1),
            None => Ok(()),
        }
    }
}

impl<'p, 'a> ser::Serializer for &'p mut Packer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'p, 'a>;
    type SerializeTuple = Compound<'p, 'a>;
    type SerializeTupleStruct = Compound<'p, 'a>;
    type SerializeTupleVariant = Compound<'p, 'a>;
    type SerializeMap = Compound<'p, 'a>;
    type SerializeStruct = Compound<'p, 'a>;
    type SerializeStructVariant = Compound<'p, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.writer.boolean(v);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.writer.integer(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.writer.unsigned(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        // serde_json writes NaN and the infinities as null; a message must not carry them.
        self.writer.number(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.writer.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.writer.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        // As serde_json: a list of numbers.
        let open = self.writer.open_list();
        v.iter().for_each(|b| self.writer.integer((*b).into()));
        self.writer.close(open, v.len())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.writer.null();
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.writer.null();
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.writer.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let open = self.writer.open_object();
        self.writer.key(variant)?;
        value.serialize(&mut *self)?;
        self.writer.close(open, 1)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'p, 'a>, Error> {
        self.compound(false, None)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'p, 'a>, Error> {
        self.compound(false, None)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'p, 'a>, Error> {
        self.compound(false, None)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'p, 'a>, Error> {
        self.compound(false, Some(variant))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'p, 'a>, Error> {
        self.compound(true, None)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'p, 'a>, Error> {
        self.compound(true, None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'p, 'a>, Error> {
        self.compound(true, Some(variant))
    }
}

/// The serde traits of lists (sequences, tuples, tuple structs and variants): each element
/// is packed in turn.
macro_rules! list_compound {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

list_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        key.serialize(KeyPacker { writer: &mut self.packer.writer })
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// The serde traits of structs (and struct variants): each field is a key and its value.
macro_rules! struct_compound {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
                self.field(key, value)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

struct_compound!(SerializeStruct, SerializeStructVariant);

/// Packs a map key: a string, or an integer or character written as text (as serde_json).
struct KeyPacker<'w, 'a> {
    writer: &'w mut Writer<'a>,
}

fn key_error() -> Error {
    Error::new("an object key must be a string or an integer".into())
}

impl ser::Serializer for KeyPacker<'_, '_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.writer.key(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.writer.key(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.writer.key(&v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.writer.key(&v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.writer.key(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_bool(self, _: bool) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_f32(self, _: f32) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_f64(self, _: f64) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_error())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_error())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_error())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_error())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LaunchTask;
    use crate::messages::{AgentInfo, FrameworkInfo, Label, Resources, TaskInfo, TaskState, TaskStatus};

    fn launch() -> LaunchTask {
        let resources = Resources::new().with("cpus", 0.5).with("mem", 512.0);
        LaunchTask {
            task: TaskInfo {
                id: "t1".into(),
                name: "t ✓".into(),
                framework_id: "f".into(),
                agent_id: "a".into(),
                resources: resources.clone(),
                labels: vec![Label { key: "k".into(), value: "v".into() }],
            },
            framework: FrameworkInfo { id: "f".into(), name: "f".into(), role: "web".into(), ..Default::default() },
            agent: AgentInfo {
                id: "a".into(),
                hostname: "h".into(),
                resources,
                attributes: [("rack".to_owned(), "r1".to_owned())].into(),
            },
        }
    }

    /// Packing then reading any value as JSON's data model gives what JSON gives.
    fn check_same_as_json<T: Serialize>(value: &T) {
        let packed = to_vec(value).unwrap();
        let through_packed: serde_json::Value = from_slice(&packed).unwrap();
        assert_eq!(through_packed, serde_json::to_value(value).unwrap());
    }

    #[test]
    fn messages_pack_to_the_values_their_json_has() {
        check_same_as_json(&launch());
        check_same_as_json(&TaskStatus {
            task_id: "t".into(),
            agent_id: "a".into(),
            state: TaskState::TaskFailed,
            message: "oom".into(),
            labels: Vec::new(),
        });
        check_same_as_json(&serde_json::json!([null, true, false, -3, u64::MAX, 2.5, "", {"1": []}]));
        let back: LaunchTask = from_slice(&to_vec(&launch()).unwrap()).unwrap();
        assert_eq!(back, launch());
    }

    /// A message of the wrong shape for `T` is read as serde_json reads the same JSON: the
    /// same value, or an error (where serde_json says "invalid type", one that says so and
    /// what was expected; it names a null "unit value", as serde does).
    fn check_shape<T: DeserializeOwned + PartialEq + std::fmt::Debug>(json: serde_json::Value) {
        let packed = from_slice::<T>(&to_vec(&json).unwrap()).map_err(|e| e.to_string());
        let expected = serde_json::from_value::<T>(json.clone()).map_err(|e| e.to_string());
        match (&packed, &expected) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{json}"),
            (Err(a), Err(b)) if b.contains("invalid type") => {
                let expected_part = |e: &str| e.split(", expected").nth(1).map(str::to_owned);
                assert!(a.contains("invalid type"), "{json}: {a}");
                assert_eq!(expected_part(a), expected_part(b), "{json}: {a} / {b}");
            }
            (Err(_), Err(_)) => {}
            _ => panic!("{json}: packed gave {packed:?}, JSON {expected:?}"),
        }
    }

    #[test]
    fn values_of_the_wrong_shape_are_read_as_json_reads_them() {
        use serde_json::json;
        check_shape::<Label>(json!({"key": "k", "value": "v"}));
        check_shape::<Label>(json!(["k", "v"]));
        check_shape::<Label>(json!({"key": 1, "value": "v"}));
        check_shape::<Label>(json!("k=v"));
        check_shape::<Label>(json!({"key": "k"}));
        check_shape::<String>(json!(7));
        check_shape::<String>(json!(["text"]));
        check_shape::<Vec<Label>>(json!({"key": "k", "value": "v"}));
        check_shape::<Vec<Label>>(json!([{"key": "k", "value": "v"}, null]));
        check_shape::<Option<Vec<String>>>(json!(null));
        check_shape::<std::collections::BTreeMap<String, f64>>(json!([1.0]));
        check_shape::<std::collections::BTreeMap<String, f64>>(json!({"cpus": 0.5}));
        check_shape::<LaunchTask>(serde_json::to_value(launch()).unwrap());
    }

    /// Each malformed message is refused with its reason, never a panic: by `from_slice`, and
    /// (UTF-8 aside, which it leaves to the reader) by `Writer::packed`, which walks as
    /// `skip` does.
    fn check_refused(bytes: &[u8], reason: &str) {
        let error = from_slice::<serde_json::Value>(bytes).unwrap_err().to_string();
        assert!(error.contains(reason), "{error:?} should say {reason:?}");
        if reason != "not UTF-8" {
            let error = Writer::new(&mut Vec::new()).packed(bytes).unwrap_err().to_string();
            assert!(error.contains(reason), "in place: {error:?} should say {reason:?}");
        }
    }

    /// A value rebuilt from what `read`, `read_key` and `skip` find in place.
    fn read_in_place(message: &[u8], at: usize) -> (serde_json::Value, usize) {
        use serde_json::Value;
        let end = skip(message, at).unwrap();
        let value = match read(message, at).unwrap() {
            Item::Null => Value::Null,
            Item::Bool(b) => Value::Bool(b),
            Item::Int(n) => Value::from(n),
            Item::UInt(n) => Value::from(n),
            Item::Float(x) => Value::from(x),
            Item::Str(s) => Value::from(std::str::from_utf8(s).unwrap()),
            Item::List { count, first } => {
                let mut at = first;
                let list = (0..count).map(|_| {
                    let (value, next) = read_in_place(message, at);
                    at = next;
                    value
                });
                Value::Array(list.collect())
            }
            Item::Object { count, first } => {
                let mut at = first;
                let object = (0..count).map(|_| {
                    let (key, value_at) = read_key(message, at).unwrap();
                    let (value, next) = read_in_place(message, value_at);
                    at = next;
                    (String::from_utf8(key.to_vec()).unwrap(), value)
                });
                Value::Object(object.collect())
            }
        };
        (value, end)
    }

    #[test]
    fn reading_in_place_finds_what_from_slice_finds() {
        let message = to_vec(&launch()).unwrap();
        let (value, end) = read_in_place(&message, 0);
        assert_eq!(end, message.len());
        assert_eq!(value, from_slice::<serde_json::Value>(&message).unwrap());
        let mut copy = Vec::new();
        Writer::new(&mut copy).packed(&message).unwrap();
        assert_eq!(copy, message);
    }

    #[test]
    fn malformed_messages_are_refused_with_the_reason() {
        check_refused(&[], "ends in the middle");
        check_refused(&[INT, 1, 2], "ends in the middle");
        check_refused(&[0x42], "unknown tag 0x42");
        check_refused(&[STRING, 9, 0, 0, 0, b'a'], "runs past the end");
        check_refused(&[STRING, 1, 0, 0, 0, 0xff], "not UTF-8");
        check_refused(&[NULL, NULL], "1 bytes after the value");
        let mut out = Vec::new();
        let mut run = Writer::new(&mut out);
        run.packed_values(&[NULL, TRUE], 2).unwrap();
        assert_eq!(
            run.packed_values(&[NULL, NULL, NULL], 2).unwrap_err().to_string(),
            "packed values, byte 2: 1 bytes after 2 values"
        );
        assert!(run.packed_values(&[NULL], 2).unwrap_err().to_string().contains("ends in the middle"));
        assert_eq!(out, [NULL, TRUE], "nothing of a refused run is written");
        check_refused(&[LIST, 0xff, 0xff, 0xff, 0xff], "ends in the middle");
        let deep: Vec<u8> = std::iter::repeat_n([LIST, 1, 0, 0, 0], MAX_DEPTH + 1).flatten().chain([NULL]).collect();
        check_refused(&deep, "nests deeper than 100 levels");
    }

    #[test]
    fn text_is_checked_as_the_standard_library_checks_it() {
        // Every length the word-at-a-time check treats apart (0, 1 to 3, 4 to 7, 8 and up,
        // whole words and not), with a byte that is not ASCII at each place in turn: a
        // lone continuation byte (not UTF-8) and the first byte of a two-byte character.
        for len in 0..40 {
            let plain = vec![b'a'; len];
            assert_eq!(utf8(&plain), Some(std::str::from_utf8(&plain).unwrap()), "{len} ASCII bytes");
            for at in 0..len {
                let mut lone = plain.clone();
                lone[at] = 0x80;
                assert_eq!(utf8(&lone), None, "{len} bytes, 0x80 at {at}");
                let mut accented = plain.clone();
                accented.splice(at..=at, "é".bytes());
                assert_eq!(utf8(&accented), std::str::from_utf8(&accented).ok(), "{len} bytes, é at {at}");
            }
        }
    }

    /// Bytes for a test, written a value at a time: `w.string("k")` and so on.
    fn bytes(write: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut Writer::new(&mut out));
        out
    }

    /// The typed reader refuses `bytes` as a `T`, with `reason` and the path to the fault.
    fn check_typed_refused<T: DeserializeOwned + std::fmt::Debug>(bytes: &[u8], reason: &str) {
        let error = from_slice::<T>(bytes).unwrap_err().to_string();
        assert!(error.contains(reason), "{error:?} should say {reason:?}");
    }

    #[test]
    fn a_struct_sent_as_a_list_is_its_fields_and_nothing_more() {
        // Three elements claimed, two there: the count must be met, not read as a Label.
        let short = bytes(|w| {
            let list = w.open_list();
            w.string("k").unwrap();
            w.string("v").unwrap();
            w.close(list, 3).unwrap();
        });
        check_typed_refused::<Label>(&short, "a list of 3 elements, of which 2 were expected");
        // 1.6 billion elements claimed, none there, for a struct with no fields.
        #[derive(Debug, serde::Deserialize)]
        struct Nothing {}
        let mut huge = vec![LIST];
        huge.extend_from_slice(&1_600_000_000u32.to_le_bytes());
        check_typed_refused::<Nothing>(&huge, "a list of 1600000000 elements, of which 0 were expected");
        // An offer list with a second offer inside the first one's list: one offer of five
        // elements, not two offers.
        let offer = |w: &mut Writer<'_>| {
            let list = w.open_list();
            w.string("f").unwrap();
            w.string("a").unwrap();
            let resources = w.open_object();
            w.key("cpus").unwrap();
            w.number(1.0).unwrap();
            w.close(resources, 1).unwrap();
            w.string("eng").unwrap();
            list
        };
        let nested = bytes(|w| {
            let outer = w.open_list();
            let first = offer(w);
            let second = offer(w);
            w.close(second, 4).unwrap();
            w.close(first, 5).unwrap();
            w.close(outer, 2).unwrap();
        });
        check_typed_refused::<Vec<crate::messages::Offer>>(
            &nested,
            "[0]: packed message, byte 52: a list of 5 elements, of which 4 were expected",
        );
        // The same lists, whole, still read.
        let whole = bytes(|w| {
            let outer = w.open_list();
            let first = offer(w);
            w.close(first, 4).unwrap();
            w.close(outer, 1).unwrap();
        });
        let offers: Vec<crate::messages::Offer> = from_slice(&whole).unwrap();
        assert_eq!((offers.len(), offers[0].agent_id.as_str(), offers[0].role.as_str()), (1, "a", "eng"));
        // An offer written as a list before ABI 1.2, without its role, reads too.
        let old = bytes(|w| {
            let outer = w.open_list();
            let first = w.open_list();
            w.string("f").unwrap();
            w.string("a").unwrap();
            let resources = w.open_object();
            w.close(resources, 0).unwrap();
            w.close(first, 3).unwrap();
            w.close(outer, 1).unwrap();
        });
        let offers: Vec<crate::messages::Offer> = from_slice(&old).unwrap();
        assert_eq!((offers[0].agent_id.as_str(), offers[0].role.as_str()), ("a", ""));
        // A map read by a visitor that stops early is refused likewise.
        struct FirstKey;
        impl<'de> Visitor<'de> for FirstKey {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
                let key: String = map.next_key()?.unwrap_or_default();
                map.next_value::<de::IgnoredAny>()?;
                Ok(key)
            }
        }
        let two = to_vec(&serde_json::json!({"a": 1, "b": 2})).unwrap();
        let error = de::Deserializer::deserialize_map(&mut Deserializer::new(&two), FirstKey).unwrap_err();
        assert!(error.to_string().contains("an object of 2 entries, of which 1 were expected"), "{error}");
    }

    #[test]
    fn numbers_that_are_not_finite_are_refused_where_they_are_read() {
        for number in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut resources = bytes(|w| {
                let object = w.open_object();
                w.key("cpus").unwrap();
                w.number(0.0).unwrap();
                w.close(object, 1).unwrap();
            });
            let at = resources.len() - 8;
            resources[at..].copy_from_slice(&number.to_le_bytes());
            let reason = format!("{number} is not a number a message can carry");
            check_typed_refused::<Resources>(&resources, &format!("cpus: packed message, byte 13: {reason}"));
            check_refused(&resources, &reason);
            assert!(read(&resources, 13).is_err_and(|e| e.to_string().contains(&reason)));
            let mut alone = vec![FLOAT];
            alone.extend_from_slice(&number.to_le_bytes());
            check_typed_refused::<f64>(&alone, &format!("packed message, byte 0: {reason}"));
        }
    }

    #[test]
    fn numbers_a_message_cannot_carry_are_refused() {
        assert!(to_vec(&f64::NAN).unwrap_err().to_string().contains("NaN"));
        let map: std::collections::HashMap<bool, i32> = [(true, 2)].into();
        assert!(to_vec(&map).unwrap_err().to_string().contains("must be a string or an integer"));
    }
}
