//! The preludes that give a script job_submit/lua's conventions (`prelude.lua`,
//! `prelude.py`), completed with the fields and constants of the Slurm the plugin runs in.

use std::fmt::Write;

use crate::plugin::{Field, FieldKind, Schema};

/// Constants whose value is a 64-bit unsigned number (Python shows them unsigned; Lua keeps the
/// bits, which its integers compare and mask alike).
const UNSIGNED_64: [&str; 3] = ["NO_VAL64", "INFINITE64", "MEM_PER_CPU"];

/// The Lua prelude.
pub(crate) fn lua(schema: &Schema) -> String {
    let mut tables = String::from("slurm = {\n");
    for (name, value) in &schema.constants {
        let _ = writeln!(tables, "    {name} = {value},");
    }
    // Each field's place in the message's list of fields; the text fields again in TEXT.
    tables.push_str("}\nlocal FIELDS = {\n");
    for (place, field) in schema.fields.iter().enumerate() {
        let _ = writeln!(tables, "    {} = {},", field.name, place + 1);
    }
    tables.push('}');
    lua_set(&mut tables, "TEXT", schema, |f| f.kind == FieldKind::Text);
    lua_set(&mut tables, "WRITABLE", schema, |f| f.writable);
    include_str!("prelude.lua").replace("--@TABLES@", &tables)
}

/// Appends `local NAME = { field = true, ... }` of the fields `keep` selects.
fn lua_set(tables: &mut String, name: &str, schema: &Schema, keep: impl Fn(&Field) -> bool) {
    let _ = writeln!(tables, "\nlocal {name} = {{");
    for field in schema.fields.iter().filter(|f| keep(f)) {
        let _ = writeln!(tables, "    {} = true,", field.name);
    }
    tables.push('}');
}

/// The Python prelude.
pub(crate) fn python(schema: &Schema) -> String {
    let mut tables = String::new();
    for (name, value) in &schema.constants {
        let value = if UNSIGNED_64.contains(&name.as_str()) { i128::from(*value as u64) } else { i128::from(*value) };
        let _ = writeln!(tables, "slurm.{name} = {value}");
    }
    tables.push_str("_FIELDS = {\n");
    for field in &schema.fields {
        let kind = match field.kind {
            FieldKind::Text => "text",
            FieldKind::Unsigned(8) => "u64",
            _ => "int",
        };
        let _ = writeln!(tables, "    {:?}: {kind:?},", field.name);
    }
    // Each field's place in the message's list of fields.
    tables.push_str("}\n_PLACE = {\n");
    for (place, field) in schema.fields.iter().enumerate() {
        let _ = writeln!(tables, "    {:?}: {place},", field.name);
    }
    tables.push_str("}\n_WRITABLE = frozenset((\n");
    for field in schema.fields.iter().filter(|f| f.writable) {
        let _ = writeln!(tables, "    {:?},", field.name);
    }
    tables.push_str("))");
    include_str!("prelude.py").replace("#@TABLES@", &tables)
}
