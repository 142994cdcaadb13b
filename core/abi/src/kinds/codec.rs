//! How a message kind's responses are encoded on the wire: JSON for all of them, except the
//! offers of `Allocator::allocate`, which use a packed binary layout because a round at
//! cluster scale returns tens of thousands of them and JSON would cost more than the
//! allocation itself (see BENCHMARKS.md).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::messages::{Offer, Resources};

/// Turns a response into bytes and back.
pub trait Codec<T> {
    /// Encodes a value.
    fn encode(value: &T) -> Result<Vec<u8>, String>;
    /// Decodes a value, refusing malformed bytes with a reason.
    fn decode(bytes: &[u8]) -> Result<T, String>;
}

/// JSON (serde_json): the default for every request and response.
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    fn encode(value: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }

    fn decode(bytes: &[u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// The packed layout of a list of offers, all integers little-endian:
///
/// ```text
/// "MHOF"  u32 offer_count
/// per offer:  str framework_id, str agent_id, u32 resource_count,
///             resource_count x (str name, f64 amount)
/// str = u32 byte_length, then that many bytes of UTF-8
/// ```
pub struct PackedOffers;

const OFFERS_MAGIC: &[u8; 4] = b"MHOF";

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Reads the packed form, checking every length against what is left.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("packed offers end early at byte {} (wanted {n} more)", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// A resource name, shared with an earlier one of the same text when there is one.
    fn name(&mut self, seen: &mut Vec<std::sync::Arc<str>>) -> Result<std::sync::Arc<str>, String> {
        let len = self.u32()? as usize;
        let at = self.at;
        let bytes = self.take(len)?;
        if let Some(name) = seen.iter().find(|n| n.as_bytes() == bytes) {
            return Ok(name.clone());
        }
        let text = std::str::from_utf8(bytes).map_err(|_| format!("packed offers: text at byte {at} is not UTF-8"))?;
        let name: std::sync::Arc<str> = text.into();
        seen.push(name.clone());
        Ok(name)
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.u32()? as usize;
        let at = self.at;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("packed offers: text at byte {at} is not UTF-8"))
    }
}

impl Codec<Vec<Offer>> for PackedOffers {
    fn encode(offers: &Vec<Offer>) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(8 + offers.len() * 64);
        out.extend_from_slice(OFFERS_MAGIC);
        out.extend_from_slice(&(offers.len() as u32).to_le_bytes());
        for offer in offers {
            put_str(&mut out, &offer.framework_id);
            put_str(&mut out, &offer.agent_id);
            out.extend_from_slice(&(offer.resources.0.len() as u32).to_le_bytes());
            for (name, amount) in &offer.resources.0 {
                put_str(&mut out, name);
                out.extend_from_slice(&amount.to_le_bytes());
            }
        }
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Vec<Offer>, String> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(4)? != OFFERS_MAGIC {
            return Err("not packed offers (the first bytes are not \"MHOF\")".into());
        }
        let count = reader.u32()? as usize;
        // Each offer takes at least 12 bytes: do not trust a count the bytes cannot hold.
        if count > bytes.len() / 12 {
            return Err(format!("packed offers claim {count} offers in {} bytes", bytes.len()));
        }
        let mut offers = Vec::with_capacity(count);
        // A round names a handful of resources many times over: share one Arc per name.
        let mut names: Vec<std::sync::Arc<str>> = Vec::new();
        for _ in 0..count {
            let framework_id = reader.string()?;
            let agent_id = reader.string()?;
            let mut resources = Resources::new();
            for _ in 0..reader.u32()? {
                let name = reader.name(&mut names)?;
                let amount = reader.f64()?;
                if !amount.is_finite() {
                    return Err(format!("packed offers: {name} of the offer to '{framework_id}' is not a number"));
                }
                resources.0.insert(name, amount);
            }
            offers.push(Offer { framework_id, agent_id, resources });
        }
        if reader.at != bytes.len() {
            return Err(format!("packed offers: {} bytes left over after {count} offers", bytes.len() - reader.at));
        }
        Ok(offers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers() -> Vec<Offer> {
        (0..3)
            .map(|i| Offer {
                framework_id: format!("f{i}"),
                agent_id: format!("agent-é{i}"),
                resources: Resources::new().with("cpus", 1.5 * i as f64).with("mem", 1024.0),
            })
            .collect()
    }

    #[test]
    fn packed_offers_round_trip() {
        let bytes = PackedOffers::encode(&offers()).unwrap();
        assert_eq!(PackedOffers::decode(&bytes).unwrap(), offers());
        assert_eq!(PackedOffers::decode(&PackedOffers::encode(&vec![]).unwrap()).unwrap(), vec![]);
    }

    #[test]
    fn malformed_packed_offers_are_refused_not_trusted() {
        let bytes = PackedOffers::encode(&offers()).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"JSON".to_vec(), "not packed offers"),
            (bytes[..bytes.len() - 3].to_vec(), "end early"),
            ([bytes.clone(), vec![0]].concat(), "left over"),
            ([b"MHOF".as_slice(), &u32::MAX.to_le_bytes()].concat(), "claim"),
        ];
        for (input, fragment) in cases {
            let error = PackedOffers::decode(&input).unwrap_err();
            assert!(error.contains(fragment), "{error}");
        }
    }
}
