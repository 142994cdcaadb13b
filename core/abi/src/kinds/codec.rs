//! How a message kind's responses are encoded on the wire: as [packed values](crate::packed)
//! (or JSON, for a module without [`FLAG_PACKED_MESSAGES`](crate::FLAG_PACKED_MESSAGES)), except
//! the offers of `Allocator::allocate`, which cross in the packed layout of
//! [`Offers`](crate::messages::Offers) either way because a round at cluster scale returns
//! tens of thousands of them (see BENCHMARKS.md).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::message::Answer;
use crate::messages::Offers;
use crate::packed;

/// Turns a response into bytes and back.
pub trait Codec<T> {
    /// Encodes a value for the wire of this crate's shims, consuming it (a value already in
    /// its wire form is handed over as is).
    fn encode(value: T) -> Result<Vec<u8>, String>;
    /// Decodes what [`Codec::encode`] made (a module's or a script's answer), refusing
    /// malformed bytes with a reason.
    fn decode(bytes: &[u8]) -> Result<T, String>;
    /// Decodes the answer of a module that speaks JSON (no `FLAG_PACKED_MESSAGES`).
    fn decode_json(bytes: &[u8]) -> Result<T, String>;
    /// Decodes an answer as a transport hands it over (JSON if `json`): by default read where
    /// it lies, the module's buffer then released.
    fn decode_answer(answer: Answer<'_>, json: bool) -> Result<T, String> {
        if json { Self::decode_json(answer.bytes()) } else { Self::decode(answer.bytes()) }
    }
}

/// Packed values, or JSON for modules that speak JSON: the default for every request and
/// response.
pub struct Values;

impl<T: Serialize + DeserializeOwned> Codec<T> for Values {
    fn encode(value: T) -> Result<Vec<u8>, String> {
        packed::to_vec(&value).map_err(|e| e.to_string())
    }

    fn decode(bytes: &[u8]) -> Result<T, String> {
        packed::from_slice(bytes).map_err(|e| e.to_string())
    }

    fn decode_json(bytes: &[u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// The packed layout of [`Offers`]: encoding gives up the bytes the offers already are,
/// decoding checks them once. Modules that speak JSON answer in this layout too.
pub struct PackedOffers;

impl Codec<Offers> for PackedOffers {
    fn encode(offers: Offers) -> Result<Vec<u8>, String> {
        Ok(offers.into_packed())
    }

    fn decode(bytes: &[u8]) -> Result<Offers, String> {
        Offers::from_packed(bytes.to_vec())
    }

    fn decode_json(bytes: &[u8]) -> Result<Offers, String> {
        Self::decode(bytes)
    }

    /// A module's buffer is kept as the offers' storage, not copied.
    fn decode_answer(answer: Answer<'_>, _json: bool) -> Result<Offers, String> {
        match answer.into_kept() {
            Ok(kept) => Offers::from_kept(kept),
            Err(lent) => Self::decode(lent.bytes()),
        }
    }
}
