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

/// The typed decoders read a module's answer as it is or refuse it: whatever bytes they
/// accept are one whole, well-formed message (what `skip` walks to its end) whose numbers a
/// message may carry (what `to_vec` writes back). Proptest makes well-formed messages of the
/// shapes the host reads (offers, labels, resources, tasks; structs as objects or as lists),
/// damages them (a byte, a count, a number made NaN or infinite, a cut), and shrinks any
/// failure to a small case.
mod typed_decoders {
    use modhost_abi::LaunchTask;
    use modhost_abi::messages::{Label, Offer, Resources, TaskStatus};
    use modhost_abi::packed::{Writer, from_slice, skip, to_vec};
    use proptest::prelude::*;
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    /// One way to damage a message; positions are taken modulo its length, or modulo the
    /// number of places where the damage means something, as a fuzzer's dictionary aims.
    #[derive(Clone, Debug)]
    enum Damage {
        Byte(usize, u8),
        /// The count of one of the message's lists or objects set to a small number.
        Count(usize, u8),
        /// One of the message's numbers made NaN or an infinity.
        Number(usize, u8),
        Cut(usize),
    }

    /// The offset after the `k`th byte (modulo how many there are) that is one of `tags`.
    fn after_tag(bytes: &[u8], k: usize, tags: &[u8]) -> Option<usize> {
        let places: Vec<usize> = (0..bytes.len()).filter(|&i| tags.contains(&bytes[i])).collect();
        (!places.is_empty()).then(|| places[k % places.len()] + 1)
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Damage::Byte(at, b)),
            (any::<usize>(), 0u8..8).prop_map(|(at, n)| Damage::Count(at, n)),
            (any::<usize>(), 0u8..3).prop_map(|(at, n)| Damage::Number(at, n)),
            any::<usize>().prop_map(Damage::Cut),
        ]
    }

    fn apply(mut bytes: Vec<u8>, damages: &[Damage]) -> Vec<u8> {
        for damage in damages {
            if bytes.is_empty() {
                break;
            }
            let len = bytes.len();
            match *damage {
                Damage::Byte(at, b) => bytes[at % len] = b,
                Damage::Count(k, n) => {
                    let Some(at) = after_tag(&bytes, k, &[7, 8]) else { continue };
                    let end = (at + 4).min(len);
                    bytes[at..end].copy_from_slice(&u32::from(n).to_le_bytes()[..end - at]);
                }
                Damage::Number(k, n) => {
                    let Some(at) = after_tag(&bytes, k, &[5]) else { continue };
                    let number = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][usize::from(n)];
                    let end = (at + 8).min(len);
                    bytes[at..end].copy_from_slice(&number.to_le_bytes()[..end - at]);
                }
                Damage::Cut(at) => bytes.truncate(at % len),
            }
        }
        bytes
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-z]{1,6}", Just("é".to_owned())]
    }

    fn resources() -> impl Strategy<Value = Value> {
        prop::collection::btree_map(
            prop_oneof![Just("cpus".to_owned()), Just("mem".to_owned()), name()],
            0.0..64.0f64,
            0..3,
        )
        .prop_map(|amounts| json!(amounts))
    }

    /// A struct as an object, or as the list of its fields' values in order (serde reads
    /// both).
    fn record(fields: Vec<(&'static str, Value)>, as_list: bool) -> Value {
        if as_list {
            Value::Array(fields.into_iter().map(|(_, v)| v).collect())
        } else {
            Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        }
    }

    fn offers() -> impl Strategy<Value = Value> {
        let offer = (name(), name(), resources(), any::<bool>()).prop_map(|(f, a, r, as_list)| {
            record(vec![("framework_id", json!(f)), ("agent_id", json!(a)), ("resources", r)], as_list)
        });
        prop::collection::vec(offer, 0..4).prop_map(Value::Array)
    }

    fn labels() -> impl Strategy<Value = Value> {
        let label = (name(), name(), any::<bool>())
            .prop_map(|(k, v, as_list)| record(vec![("key", json!(k)), ("value", json!(v))], as_list));
        prop_oneof![Just(Value::Null), prop::collection::vec(label, 0..4).prop_map(Value::Array)]
    }

    fn task() -> impl Strategy<Value = Value> {
        (name(), resources(), labels(), any::<bool>()).prop_map(|(id, resources, labels, as_list)| {
            let labels = if labels.is_null() { json!([]) } else { labels };
            record(
                vec![
                    ("id", json!(id)),
                    ("name", json!("t")),
                    ("framework_id", json!("f")),
                    ("agent_id", json!("a")),
                    ("resources", resources),
                    ("labels", labels),
                ],
                as_list,
            )
        })
    }

    fn launch() -> impl Strategy<Value = Value> {
        (task(), name()).prop_map(|(task, framework)| {
            json!({
                "framework": {"id": framework, "name": "n", "role": "r"},
                "agent": {"id": "a", "hostname": "h", "resources": {"cpus": 4.0}, "attributes": {}},
                "task": task,
            })
        })
    }

    /// The message as bytes, numbers always written as floats (a message's amounts are).
    fn pack(value: &Value) -> Vec<u8> {
        fn write(w: &mut Writer<'_>, value: &Value) {
            match value {
                Value::Null => w.null(),
                Value::Bool(b) => w.boolean(*b),
                Value::Number(n) => w.number(n.as_f64().unwrap()).unwrap(),
                Value::String(s) => w.string(s).unwrap(),
                Value::Array(items) => {
                    let open = w.open_list();
                    items.iter().for_each(|item| write(w, item));
                    w.close(open, items.len()).unwrap();
                }
                Value::Object(entries) => {
                    let open = w.open_object();
                    for (key, item) in entries {
                        w.key(key).unwrap();
                        write(w, item);
                    }
                    w.close(open, entries.len()).unwrap();
                }
            }
        }
        let mut out = Vec::new();
        write(&mut Writer::new(&mut out), value);
        out
    }

    /// The property, for one type: accepted bytes are whole, well formed and writable.
    fn check<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Ok(value) = from_slice::<T>(bytes) {
            prop_assert_eq!(skip(bytes, 0).map_err(|e| e.to_string()), Ok(bytes.len()), "accepted bytes skip refuses");
            prop_assert!(to_vec(&value).is_ok(), "accepted a value no message may carry: {:?}", to_vec(&value).err());
        }
        Ok(())
    }

    fn check_all(bytes: &[u8]) -> Result<(), TestCaseError> {
        check::<Vec<Offer>>(bytes)?;
        check::<Option<Vec<Label>>>(bytes)?;
        check::<Resources>(bytes)?;
        check::<LaunchTask>(bytes)?;
        check::<TaskStatus>(bytes)?;
        check::<Value>(bytes)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

        #[test]
        fn damaged_messages_are_read_whole_or_refused(
            message in prop_oneof![offers(), labels(), resources(), launch()],
            damages in prop::collection::vec(damage(), 0..3),
        ) {
            let bytes = apply(pack(&message), &damages);
            check_all(&bytes)?;
        }

        #[test]
        fn any_bytes_are_read_whole_or_refused(bytes in prop::collection::vec(prop_oneof![0u8..9, any::<u8>()], 0..48)) {
            check_all(&bytes)?;
        }
    }
}
