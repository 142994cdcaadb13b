//! Packed values, the format of messages to Rust modules and Vms: property tests over random
//! messages (the fixed cases are unit tests in `core/abi/src/packed.rs`).

mod support;

use modhost_abi::packed::{from_slice, to_vec};
use serde_json::Value;
use support::Rng;

#[test]
fn random_values_come_back_as_they_went() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2_000 {
        let value = rng.value(0, false);
        let back: Value = from_slice(&to_vec(&value).unwrap()).unwrap();
        assert_eq!(back, value);
    }
}

/// Whatever the bytes, reading them ends in a value or an error, never a panic: random bytes,
/// and every truncation and a single-byte corruption of valid messages.
#[test]
fn any_bytes_are_read_or_refused() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..2_000 {
        let noise: Vec<u8> = (0..rng.below(64)).map(|_| rng.below(12) as u8).collect();
        let _ = from_slice::<Value>(&noise);
    }
    for _ in 0..200 {
        let bytes = to_vec(&rng.value(0, false)).unwrap();
        for end in 0..bytes.len() {
            assert!(from_slice::<Value>(&bytes[..end]).is_err(), "a truncation was accepted");
        }
        let mut corrupt = bytes.clone();
        let at = rng.below(bytes.len() as u64) as usize;
        corrupt[at] = rng.next() as u8;
        let _ = from_slice::<Value>(&corrupt);
    }
}
