//! The record's shape as the audit sees it, apart from the filter's own decoding: unframe,
//! decode (protobuf or JSON), whether it carried fields the schema does not know, and the
//! dotted paths of its present leaves in canonical JSON — looked up in the policy table.

use crate::schema::CdrEvent;
use prost::Message;

/// A decoded value, and whether it carried fields the schema does not know.
pub(super) struct Decoded {
    pub(super) event: CdrEvent,
    pub(super) unknown: bool,
}

/// Removes a Confluent Schema Registry header (magic byte 0, schema id, and for protobuf
/// the message indexes), if there is one: [`crate::framing::unframe`], the same function
/// the filter's input uses. `None` when the header is malformed.
pub fn unframe(bytes: &[u8], json: bool) -> Option<&[u8]> {
    if !crate::framing::is_framed(bytes) {
        return Some(bytes);
    }
    let kind = if json {
        crate::framing::BodyKind::Json
    } else {
        crate::framing::BodyKind::Protobuf
    };
    crate::framing::unframe(bytes, kind).ok().map(|u| u.body)
}

/// Decodes a value: `json` from the content type, or guessed (`{` first) when unknown.
pub(super) fn decode(value: &[u8], json: Option<bool>) -> Option<Decoded> {
    let json = json.unwrap_or_else(|| {
        let body = value.get(5..).filter(|_| value.first() == Some(&0));
        body.unwrap_or(value).trim_ascii_start().first() == Some(&b'{')
    });
    let body = unframe(value, json)?;
    if body.is_empty() {
        return None;
    }
    if json {
        let raw: serde_json::Value = serde_json::from_slice(body).ok()?;
        let event: CdrEvent = serde_json::from_value(raw.clone()).ok()?;
        let unknown = has_unknown_json_field(&raw);
        Some(Decoded { event, unknown })
    } else {
        let event = CdrEvent::decode(body).ok()?;
        // prost skips fields it does not know: what it re-encodes is shorter.
        let unknown = event.encoded_len() != body.len();
        Some(Decoded { event, unknown })
    }
}

/// `eventTime` → `event_time` (proto3 JSON accepts both spellings).
fn snake(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut s = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    std::borrow::Cow::Owned(s)
}

/// The message fields (groups) of `CdrEvent` whose members the table lists as paths.
const GROUPS: [&str; 11] = [
    "served",
    "terminal",
    "calling",
    "called",
    "timing",
    "network",
    "supplementary_services",
    "location",
    "charging",
    "content",
    "retention",
];
const RETENTION_FIELDS: [&str; 4] = ["purpose", "expires_at", "legal_basis", "policy_version"];

/// Whether a JSON document holds a key the schema does not know (a path with no row in
/// the table and not a field of `retention`).
fn has_unknown_json_field(v: &serde_json::Value) -> bool {
    let Some(top) = v.as_object() else {
        return true;
    };
    let rows = crate::policy::table::schema_rows();
    let known = |path: &str| rows.iter().any(|r| r.path == path);
    for (k, v) in top {
        let k = snake(k);
        if GROUPS.contains(&k.as_ref()) {
            let members: Vec<&serde_json::Map<String, serde_json::Value>> = match v {
                serde_json::Value::Object(m) => vec![m],
                serde_json::Value::Array(items) => {
                    items.iter().filter_map(|i| i.as_object()).collect()
                }
                _ => continue,
            };
            for m in members {
                for f in m.keys() {
                    let f = snake(f);
                    let ok = if k == "retention" {
                        RETENTION_FIELDS.contains(&f.as_ref())
                    } else {
                        known(&format!("{k}.{f}"))
                    };
                    if !ok {
                        return true;
                    }
                }
            }
        } else if !known(&k) {
            return true;
        }
    }
    false
}

/// The dotted snake_case paths of every present leaf of an event's canonical JSON
/// (proto3 JSON omits default values; `extensions` and repeated scalars are leaves).
pub(super) fn leaf_paths(v: &serde_json::Value, prefix: &mut String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) if prefix.is_empty() || is_group(prefix) => {
            for (k, v) in m {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(&snake(k));
                leaf_paths(v, prefix, out);
                prefix.truncate(len);
            }
        }
        serde_json::Value::Array(items) if is_group(prefix) => {
            for i in items {
                leaf_paths(i, prefix, out);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::Bool(false) => {}
        serde_json::Value::String(s) if s.is_empty() => {}
        serde_json::Value::Array(a) if a.is_empty() => {}
        serde_json::Value::Object(m) if m.is_empty() => {}
        _ => out.push(prefix.clone()),
    }
}

fn is_group(path: &str) -> bool {
    GROUPS.contains(&path)
}
