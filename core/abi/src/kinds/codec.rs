//! How a message kind's responses are encoded on the wire: JSON for all of them, except the
//! offers of `Allocator::allocate`, which cross in the packed layout of
//! [`Offers`](crate::messages::Offers) because a round at cluster scale returns tens of
//! thousands of them and JSON would cost more than the allocation itself (see BENCHMARKS.md).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::messages::Offers;

/// Turns a response into bytes and back.
pub trait Codec<T> {
    /// Encodes a value, consuming it (a value already in its wire form is handed over as is).
    fn encode(value: T) -> Result<Vec<u8>, String>;
    /// Decodes a value, refusing malformed bytes with a reason.
    fn decode(bytes: &[u8]) -> Result<T, String>;
    /// Decodes a value a script answered in the [packed value format](crate::packed).
    fn decode_value(bytes: &[u8]) -> Result<T, String>;
}

/// JSON (serde_json): the default for every request and response.
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    fn encode(value: T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(&value).map_err(|e| e.to_string())
    }

    fn decode(bytes: &[u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    fn decode_value(bytes: &[u8]) -> Result<T, String> {
        crate::packed::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// The packed layout of [`Offers`]: encoding gives up the bytes the offers already are,
/// decoding checks them once.
pub struct PackedOffers;

impl Codec<Offers> for PackedOffers {
    fn encode(offers: Offers) -> Result<Vec<u8>, String> {
        Ok(offers.into_packed())
    }

    fn decode(bytes: &[u8]) -> Result<Offers, String> {
        Offers::from_packed(bytes.to_vec())
    }

    fn decode_value(_: &[u8]) -> Result<Offers, String> {
        // A script's offers are checked against the cluster by the host's allocator adapter,
        // which reads them itself; no transport hands them here.
        Err("a script's offers are read by the allocator adapter, not decoded as a message".into())
    }
}
