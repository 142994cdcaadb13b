//! `include/modhost.h` states the same constants as the Rust crate. (The layouts are checked
//! by the host's tests, which compile a C module against the header and load it.)

use modhost_abi::{
    ABI_MAJOR, ABI_MINOR, ALLOCATOR_METHODS, FLAG_PACKED_MESSAGES, FLAG_SINGLETON, FLAG_THREAD_SAFE, HOOK_METHODS,
    HOST_VERSION, ISOLATOR_METHODS, Kind, MAGIC, Status,
};

fn define(header: &str, name: &str) -> String {
    let prefix = format!("#define {name} ");
    let line = header.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("modhost.h lacks {name}"));
    line[prefix.len()..].split("/*").next().unwrap().trim().to_owned()
}

#[test]
fn header_constants_match_the_crate() {
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/modhost.h")).unwrap();
    let checks = [
        ("MODHOST_VERSION", format!("\"{}\"", HOST_VERSION.to_str().unwrap())),
        ("MODHOST_ABI_MAJOR", ABI_MAJOR.to_string()),
        ("MODHOST_ABI_MINOR", ABI_MINOR.to_string()),
        ("MODHOST_MAGIC", format!("\"{}\\x01\"", std::str::from_utf8(&MAGIC[..7]).unwrap())),
        ("MODHOST_OK", Status::OK.0.to_string()),
        ("MODHOST_ERROR", Status::ERROR.0.to_string()),
        ("MODHOST_PANIC", Status::PANIC.0.to_string()),
        ("MODHOST_FLAG_THREAD_SAFE", format!("(1u << {})", FLAG_THREAD_SAFE.trailing_zeros())),
        ("MODHOST_FLAG_SINGLETON", format!("(1u << {})", FLAG_SINGLETON.trailing_zeros())),
        ("MODHOST_FLAG_PACKED_MESSAGES", format!("(1u << {})", FLAG_PACKED_MESSAGES.trailing_zeros())),
    ];
    for (name, expected) in checks {
        assert_eq!(define(&header, name), expected, "{name}");
    }
    for kind in Kind::ALL {
        let c_name = match kind {
            Kind::TestModule => "TEST_MODULE".to_owned(),
            other => other.name().to_uppercase(),
        };
        let entry = format!("MODHOST_KIND_{c_name} = {}", kind as u32);
        assert!(header.contains(&entry), "modhost.h lacks `{entry}`");
    }
}

/// The message vtables list the same methods, in the same order, as the Rust traits.
#[test]
fn header_vtables_match_the_traits() {
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/modhost.h")).unwrap();
    for (name, methods) in [
        ("modhost_allocator_vtable", ALLOCATOR_METHODS),
        ("modhost_hook_vtable", HOOK_METHODS),
        ("modhost_isolator_vtable", ISOLATOR_METHODS),
    ] {
        let start = header.find(&format!("typedef struct {name} {{")).unwrap_or_else(|| panic!("no {name}"));
        let end = header[start..].find(&format!("}} {name};")).unwrap_or_else(|| panic!("{name} does not end"));
        let body = &header[start..start + end];
        let fields: Vec<&str> = body
            .lines()
            .filter_map(|line| line.trim().strip_prefix("modhost_message_fn "))
            .map(|rest| rest.split(';').next().unwrap().trim())
            .collect();
        assert_eq!(fields, methods, "{name}");
    }
}
