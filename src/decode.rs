//! The struct path's first step (the fallback and oracle of the wire path, [`crate::wire`];
//! also `dry-run` and the audit): raw bytes to `CdrEvent`, from protobuf or proto3 canonical
//! JSON (both field-name styles, RFC 3339 timestamps, 64-bit integers as strings or
//! numbers, enum names), or `auto`, which tells them apart per record — bare, or in the
//! Confluent Schema Registry wire format ([`crate::framing`]).
//!
//! Errors never quote the input: serde's messages can contain the offending value (a
//! phone number, an SMS), so a JSON error is reduced to its class and position.

use crate::framing::{self, BodyKind, FramingError};
use crate::schema::CdrEvent;
use prost::Message;

/// The input format, from `input.format`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    Json,
    Protobuf,
    /// Per record: JSON, protobuf, or either in the Schema Registry wire format.
    Auto,
    /// Schema Registry wire format, protobuf: magic byte, schema id, message indexes.
    #[serde(rename = "confluent-protobuf")]
    ConfluentProtobuf,
    /// Schema Registry wire format, JSON Schema: magic byte, schema id, JSON document.
    #[serde(rename = "confluent-json")]
    ConfluentJson,
}

impl InputFormat {
    /// True for the formats that require the Schema Registry header.
    pub fn is_framed(self) -> bool {
        matches!(
            self,
            InputFormat::ConfluentProtobuf | InputFormat::ConfluentJson
        )
    }
}

/// The format a record was actually decoded as (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detected {
    Json,
    Protobuf,
}

impl Detected {
    pub fn as_str(self) -> &'static str {
        match self {
            Detected::Json => "json",
            Detected::Protobuf => "protobuf",
        }
    }
}

/// Why a record could not be decoded. The messages hold no input data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty record")]
    Empty,
    #[error("not a protobuf cdr.v1.CdrEvent: {0}")]
    Protobuf(String),
    #[error("not a JSON cdr.v1.CdrEvent: {class} error at line {line}, column {column}")]
    Json {
        class: &'static str,
        line: usize,
        column: usize,
    },
    #[error("{0}")]
    Framing(FramingError),
    /// A framed record whose schema id is not in `input.schema_ids`.
    #[error("schema id {schema_id} is not one of input.schema_ids")]
    UnexpectedSchema { schema_id: u32 },
}

impl DecodeError {
    /// Every value of [`DecodeError::kind`] (the metrics show each from the start).
    pub const KINDS: [&'static str; 5] =
        ["empty", "protobuf", "json", "framing", "unexpected_schema"];

    /// A short label for metrics and dead letters.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Protobuf(_) => "protobuf",
            DecodeError::Json { .. } => "json",
            DecodeError::Framing(_) => "framing",
            DecodeError::UnexpectedSchema { .. } => "unexpected_schema",
        }
    }

    /// The dead-letter reason: `unexpected_schema`, or `undecodable` for the others.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::UnexpectedSchema { .. } => "unexpected_schema",
            _ => "undecodable",
        }
    }

    /// The schema id of a record refused for it (for the dead-letter pointer).
    pub fn schema_id(&self) -> Option<u32> {
        match self {
            DecodeError::UnexpectedSchema { schema_id } => Some(*schema_id),
            _ => None,
        }
    }
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub event: CdrEvent,
    /// The format of the body.
    pub detected: Detected,
    /// The schema id of a record in the Schema Registry wire format.
    pub schema_id: Option<u32>,
}

fn json_error(e: serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    DecodeError::Json {
        class: match e.classify() {
            Category::Io => "io",
            Category::Syntax => "syntax",
            Category::Data => "type or value",
            Category::Eof => "truncated input",
        },
        line: e.line(),
        column: e.column(),
    }
}

/// Decodes a protobuf `CdrEvent`.
pub fn decode_protobuf(bytes: &[u8]) -> Result<CdrEvent, DecodeError> {
    // prost's messages name the message and field, never the value.
    CdrEvent::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Decodes a JSON `CdrEvent`.
pub fn decode_json(bytes: &[u8]) -> Result<CdrEvent, DecodeError> {
    serde_json::from_slice(bytes).map_err(json_error)
}

/// True when the bytes look like a JSON object: `{` after optional whitespace. (A
/// top-level `{` in protobuf would be field 15 as a group, which this schema never
/// writes; the rare protobuf message that still matches is caught by the fallback.)
fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().first() == Some(&b'{')
}

/// Decodes one record in the configured format. `retention` is cleared: it is set by the
/// filter on output only.
pub fn decode(bytes: &[u8], format: InputFormat) -> Result<(CdrEvent, Detected), DecodeError> {
    decode_record(bytes, format, &[]).map(|d| (d.event, d.detected))
}

/// Decodes one record, bare or framed. A framed record whose schema id is not in
/// `schema_ids` (when not empty) is refused before its body is read.
pub fn decode_record(
    bytes: &[u8],
    format: InputFormat,
    schema_ids: &[u32],
) -> Result<Decoded, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let kind = match format {
        InputFormat::ConfluentProtobuf => Some(BodyKind::Protobuf),
        InputFormat::ConfluentJson => Some(BodyKind::Json),
        // `0x00` never starts a bare CdrEvent (field 0) nor a JSON object.
        InputFormat::Auto if framing::is_framed(bytes) => Some(framing::guess_kind(bytes)),
        _ => None,
    };
    let Some(kind) = kind else {
        let (event, detected) = decode_bare(bytes, format)?;
        return Ok(Decoded {
            event,
            detected,
            schema_id: None,
        });
    };
    let schema_id = framing::schema_id(bytes).map_err(DecodeError::Framing)?;
    if !schema_ids.is_empty() && !schema_ids.contains(&schema_id) {
        return Err(DecodeError::UnexpectedSchema { schema_id });
    }
    let unframed = framing::unframe(bytes, kind).map_err(DecodeError::Framing)?;
    if unframed.body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let (event, detected) = match kind {
        BodyKind::Protobuf => decode_bare(unframed.body, InputFormat::Protobuf)?,
        BodyKind::Json => decode_bare(unframed.body, InputFormat::Json)?,
    };
    Ok(Decoded {
        event,
        detected,
        schema_id: Some(schema_id),
    })
}

fn decode_bare(bytes: &[u8], format: InputFormat) -> Result<(CdrEvent, Detected), DecodeError> {
    let (mut event, detected) = match format {
        InputFormat::Json => (decode_json(bytes)?, Detected::Json),
        InputFormat::Protobuf => (decode_protobuf(bytes)?, Detected::Protobuf),
        _ if looks_like_json(bytes) => match decode_json(bytes) {
            Ok(e) => (e, Detected::Json),
            // A protobuf message can, rarely, start with `{` and end with `}`.
            Err(json) => match decode_protobuf(bytes) {
                Ok(e) => (e, Detected::Protobuf),
                Err(_) => return Err(json),
            },
        },
        _ => (decode_protobuf(bytes)?, Detected::Protobuf),
    };
    event.retention = None;
    Ok((event, detected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Direction, EventType, Purpose, Retention};

    const CAMEL: &str = r#"{
        "eventId": "e1",
        "eventTime": "2026-11-28T10:00:00.250Z",
        "eventType": "VOICE_CALL",
        "direction": "ORIGINATING",
        "declaredPurposes": ["BILLING"],
        "served": {"imsi": "208011234567890", "msisdn": "+33612345678", "accountId": "A1", "ueIp": "10.0.0.1"},
        "timing": {"answerTime": "2026-11-28T10:00:05Z", "durationMs": "61000"},
        "network": {"bytesUplink": 12, "bytesDownlink": "34"},
        "charging": {"chargeable": true, "amountMinor": "-15", "ratingGroup": 7},
        "location": {"latitude": 48.85, "longitude": 2.35},
        "extensions": {"vendor.x": "y"},
        "retention": {"purpose": "BILLING", "legalBasis": "forged"},
        "someUnknownField": {"nested": [1, 2, 3]}
    }"#;

    #[test]
    fn decodes_lower_camel_case_json() {
        let (e, d) = decode(CAMEL.as_bytes(), InputFormat::Json).unwrap();
        assert_eq!(d, Detected::Json);
        assert_eq!(e.event_id, "e1");
        let t = e.event_time.unwrap();
        assert_eq!(t.nanos, 250_000_000);
        assert_eq!(e.event_type, EventType::VoiceCall as i32);
        assert_eq!(e.direction, Direction::Originating as i32);
        assert_eq!(e.declared_purposes, vec![Purpose::Billing as i32]);
        let served = e.served.unwrap();
        assert_eq!(served.account_id, "A1");
        assert_eq!(served.ue_ip, "10.0.0.1");
        assert_eq!(e.timing.unwrap().duration_ms, 61_000);
        let n = e.network.unwrap();
        assert_eq!((n.bytes_uplink, n.bytes_downlink), (12, 34));
        let c = e.charging.unwrap();
        assert_eq!(
            (c.chargeable, c.amount_minor, c.rating_group),
            (true, -15, 7)
        );
        assert_eq!(e.extensions.get("vendor.x").map(String::as_str), Some("y"));
        assert_eq!(e.retention, None, "retention on input is removed");
    }

    #[test]
    fn decodes_snake_case_json() {
        let json = r#"{"event_id":"e2","event_time":"2026-11-28T10:00:00+01:00",
            "event_type":"SMS","direction":"TERMINATING",
            "served":{"account_id":"A2","ue_ip":"10.0.0.2"},
            "timing":{"duration_ms":5},"charging":{"amount_minor":3,"tariff_class":"STD"}}"#;
        let (e, _) = decode(json.as_bytes(), InputFormat::Json).unwrap();
        assert_eq!(e.event_id, "e2");
        assert_eq!(e.event_time.unwrap().seconds, 1_795_856_400);
        assert_eq!(e.event_type, EventType::Sms as i32);
        assert_eq!(e.served.unwrap().account_id, "A2");
        assert_eq!(e.charging.unwrap().tariff_class, "STD");
    }

    #[test]
    fn auto_tells_formats_apart() {
        let (json_event, d) = decode(CAMEL.as_bytes(), InputFormat::Auto).unwrap();
        assert_eq!(d, Detected::Json);
        let bytes = json_event.encode_to_vec();
        assert_eq!(
            bytes[0], 0x0a,
            "protobuf starting with a newline byte (field 1)"
        );
        let (pb_event, d) = decode(&bytes, InputFormat::Auto).unwrap();
        assert_eq!(d, Detected::Protobuf);
        assert_eq!(pb_event, json_event);
    }

    #[test]
    fn protobuf_retention_is_removed() {
        let e = CdrEvent {
            event_id: "x".into(),
            retention: Some(Retention {
                legal_basis: "forged".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (d, _) = decode(&e.encode_to_vec(), InputFormat::Protobuf).unwrap();
        assert_eq!(d.retention, None);
    }

    #[test]
    fn errors_never_quote_the_input() {
        let secret = "msisdn +33699999999";
        let bad = format!(r#"{{"eventId": "e", "timing": {{"durationMs": "{secret}"}}}}"#);
        let err = decode(bad.as_bytes(), InputFormat::Json).unwrap_err();
        assert!(matches!(err, DecodeError::Json { .. }), "{err:?}");
        assert!(!err.to_string().contains(secret), "{err}");
        let bad = format!(r#"{{"eventType": "{secret}"}}"#);
        let err = decode(bad.as_bytes(), InputFormat::Auto).unwrap_err();
        assert!(!err.to_string().contains(secret), "{err}");
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert_eq!(decode(b"", InputFormat::Auto), Err(DecodeError::Empty));
        assert!(matches!(
            decode(b"\xff\xff\xff\xff", InputFormat::Auto),
            Err(DecodeError::Protobuf(_))
        ));
        let full = decode(CAMEL.as_bytes(), InputFormat::Json)
            .unwrap()
            .0
            .encode_to_vec();
        assert!(decode(&full[..full.len() / 2], InputFormat::Protobuf).is_err());
        assert!(matches!(
            decode(b"{\"eventId\": ", InputFormat::Auto),
            Err(DecodeError::Protobuf(_)) | Err(DecodeError::Json { .. })
        ));
        assert!(decode(b"[1,2]", InputFormat::Json).is_err());
    }

    #[test]
    fn auto_and_explicit_formats_read_the_schema_registry_wire_format() {
        use crate::framing::{frame, BodyKind};
        let (event, _) = decode(CAMEL.as_bytes(), InputFormat::Json).unwrap();
        let pb = event.encode_to_vec();
        let cases = [
            (frame(42, BodyKind::Protobuf, &[0], &pb), Detected::Protobuf),
            (
                frame(42, BodyKind::Protobuf, &[10], &pb),
                Detected::Protobuf,
            ),
            (
                frame(42, BodyKind::Protobuf, &[3, 1, 4], &pb),
                Detected::Protobuf,
            ),
            (
                frame(42, BodyKind::Json, &[], CAMEL.as_bytes()),
                Detected::Json,
            ),
        ];
        for (framed, detected) in cases {
            let explicit = if detected == Detected::Json {
                InputFormat::ConfluentJson
            } else {
                InputFormat::ConfluentProtobuf
            };
            for format in [InputFormat::Auto, explicit] {
                let d = decode_record(&framed, format, &[]).unwrap();
                assert_eq!((d.detected, d.schema_id), (detected, Some(42)));
                assert_eq!(d.event, event, "{format:?}");
                let d = decode_record(&framed, format, &[7, 42]).unwrap();
                assert_eq!(d.event, event);
            }
            // Bare formats do not strip a header.
            assert!(decode(&framed, InputFormat::Protobuf).is_err());
        }
        // The explicit framed formats require the header.
        assert_eq!(
            decode_record(&pb, InputFormat::ConfluentProtobuf, &[]),
            Err(DecodeError::Framing(FramingError::NoMagic))
        );
    }

    #[test]
    fn other_schema_ids_and_broken_bodies_are_refused() {
        use crate::framing::{frame, BodyKind};
        let (event, _) = decode(CAMEL.as_bytes(), InputFormat::Json).unwrap();
        let pb = event.encode_to_vec();
        let framed = frame(9, BodyKind::Protobuf, &[0], &pb);
        let err = decode_record(&framed, InputFormat::Auto, &[1, 2]).unwrap_err();
        assert_eq!(err, DecodeError::UnexpectedSchema { schema_id: 9 });
        assert_eq!(
            (err.reason(), err.schema_id()),
            ("unexpected_schema", Some(9))
        );
        // A framed record whose body does not decode is undecodable like any other.
        let broken = frame(9, BodyKind::Protobuf, &[0], &pb[..pb.len() / 2]);
        let err = decode_record(&broken, InputFormat::Auto, &[]).unwrap_err();
        assert_eq!(err.reason(), "undecodable");
        let broken = frame(9, BodyKind::Json, &[], b"{\"eventId\": ");
        let err = decode_record(&broken, InputFormat::ConfluentJson, &[]).unwrap_err();
        assert!(matches!(err, DecodeError::Json { .. }), "{err:?}");
        for bad in [
            &b"\x00"[..],
            b"\x00\x00\x00\x00\x09",
            b"\x00\x00\x00\x00\x09\x01",
        ] {
            let err = decode_record(bad, InputFormat::Auto, &[]).unwrap_err();
            assert_eq!(err.reason(), "undecodable", "{bad:?}");
        }
    }
}
