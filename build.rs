//! Compiles `proto/` with a pure-Rust protobuf compiler (protox), so a fresh machine needs
//! no `protoc`, then generates prost structs and pbjson serde impls (proto3 canonical JSON).

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/cdr/v1/cdr.proto");
    println!("cargo:rerun-if-changed=build.rs");

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let file_descriptors = protox::compile(["cdr/v1/cdr.proto"], ["proto"])?;
    let bytes = prost::Message::encode_to_vec(&file_descriptors);
    std::fs::write(out_dir.join("cdr_descriptor.bin"), &bytes)?;
    schema_registry::write(&file_descriptors, &out_dir)?;

    prost_build::Config::new()
        .extern_path(".google.protobuf.Timestamp", "crate::schema::Timestamp")
        .btree_map(["."])
        .compile_fds(file_descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&bytes)?
        .ignore_unknown_fields()
        .btree_map(["."])
        .build(&[".cdr.v1"])?;
    Ok(())
}

/// What the Schema Registry needs from the schema: the message index of `CdrEvent` in
/// `cdr.proto` (for framed protobuf output) and a JSON Schema of the canonical JSON.
mod schema_registry {
    use prost_types::{field_descriptor_proto::Label, field_descriptor_proto::Type};
    use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};
    use serde_json::{json, Map, Value};
    use std::path::Path;

    pub fn write(
        set: &FileDescriptorSet,
        out_dir: &Path,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let file = set
            .file
            .iter()
            .find(|f| f.name() == "cdr/v1/cdr.proto")
            .ok_or("cdr/v1/cdr.proto not compiled")?;
        let index = file
            .message_type
            .iter()
            .position(|m| m.name() == "CdrEvent")
            .ok_or("no message CdrEvent in cdr.proto")?;
        std::fs::write(
            out_dir.join("cdr_event_index.rs"),
            format!(
                "/// The Schema Registry message indexes of `CdrEvent` in `cdr.proto`.\n\
                 pub const CDR_EVENT_MESSAGE_INDEXES: &[i32] = &[{index}];\n"
            ),
        )?;
        let mut defs = Map::new();
        for m in &file.message_type {
            if m.name() != "CdrEvent" {
                defs.insert(format!("cdr.v1.{}", m.name()), message(file, m));
            }
        }
        let root = &file.message_type[index];
        let mut schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "cdr.v1.CdrEvent",
            "description": "cdr.v1.CdrEvent as proto3 canonical JSON (lowerCamelCase names are written; snake_case names are accepted on input).",
        });
        let body = message(file, root);
        for (k, v) in body.as_object().expect("an object") {
            schema[k] = v.clone();
        }
        schema["$defs"] = Value::Object(defs);
        std::fs::write(
            out_dir.join("cdr_event.schema.json"),
            serde_json::to_string_pretty(&schema)? + "\n",
        )?;
        Ok(())
    }

    fn message(file: &FileDescriptorProto, m: &DescriptorProto) -> Value {
        let mut properties = Map::new();
        for f in &m.field {
            let single = match f.r#type() {
                Type::String => json!({"type": "string"}),
                Type::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
                Type::Bool => json!({"type": "boolean"}),
                Type::Int32 | Type::Sint32 | Type::Sfixed32 => json!({"type": "integer"}),
                Type::Uint32 | Type::Fixed32 => json!({"type": "integer", "minimum": 0}),
                Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
                    json!({"type": ["string", "integer"], "pattern": "^-?[0-9]+$"})
                }
                Type::Uint64 | Type::Fixed64 => {
                    json!({"type": ["string", "integer"], "pattern": "^[0-9]+$", "minimum": 0})
                }
                Type::Double | Type::Float => json!({"anyOf": [
                    {"type": "number"},
                    {"enum": ["NaN", "Infinity", "-Infinity"]}
                ]}),
                Type::Enum => {
                    let name = f.type_name().rsplit('.').next().unwrap_or_default();
                    let values: Vec<&str> = file
                        .enum_type
                        .iter()
                        .find(|e| e.name() == name)
                        .map(|e| e.value.iter().map(|v| v.name()).collect())
                        .unwrap_or_default();
                    json!({"anyOf": [{"enum": values}, {"type": "integer"}]})
                }
                Type::Message | Type::Group => match f.type_name() {
                    ".google.protobuf.Timestamp" => {
                        json!({"type": "string", "format": "date-time"})
                    }
                    t => {
                        let local = t.rsplit('.').next().unwrap_or_default();
                        match m.nested_type.iter().find(|n| {
                            n.name() == local && n.options.as_ref().is_some_and(|o| o.map_entry())
                        }) {
                            Some(entry) => {
                                let value = message(file, entry)["properties"]["value"].clone();
                                properties.insert(
                                    f.json_name().to_string(),
                                    json!({"type": "object", "additionalProperties": value}),
                                );
                                continue;
                            }
                            None => json!({"$ref": format!("#/$defs{}", t.replacen('.', "/", 1))}),
                        }
                    }
                },
            };
            let schema = if f.label() == Label::Repeated {
                json!({"type": "array", "items": single})
            } else {
                single
            };
            properties.insert(f.json_name().to_string(), schema);
        }
        json!({"type": "object", "properties": properties})
    }
}
