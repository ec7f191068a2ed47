//! The struct path's last step (the fallback and oracle of the wire path, which writes its
//! outputs itself): an [`OutputRecord`] to the bytes and headers of the contract.

use crate::framing::{self, BodyKind};
use crate::policy::OutputRecord;
use crate::retention::rfc3339;
use crate::schema::CdrEvent;
use prost::Message;
use std::borrow::Cow;

/// The output value format, from `output.format`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Protobuf,
    Json,
}

impl OutputFormat {
    /// The `content-type` header.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Protobuf => "application/x-protobuf",
            OutputFormat::Json => "application/json",
        }
    }
}

/// Header names of the contract; no other header is ever written.
pub mod header {
    pub const PURPOSE: &str = "cdr-purpose";
    pub const EXPIRES_AT: &str = "cdr-expires-at";
    pub const LEGAL_BASIS: &str = "cdr-legal-basis";
    pub const POLICY_VERSION: &str = "cdr-policy-version";
    pub const CONTENT_TYPE: &str = "content-type";
}

/// Why an event could not be encoded. Holds no value of the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode the record as {format}: {reason}")]
pub struct EncodeError {
    pub format: &'static str,
    pub reason: String,
}

/// Writes the encoded event into `buf` (cleared first).
///
/// Protobuf never fails. JSON fails for values that proto3 JSON cannot express and that
/// protobuf input can still carry: an enum number this schema does not know, a timestamp
/// outside 0001–9999. The caller dead-letters such a record instead of crashing.
pub fn encode_event(
    event: &CdrEvent,
    format: OutputFormat,
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode_framed(event, format, &[], buf)
}

/// Like [`encode_event`], after a header (the Schema Registry prefix of
/// [`confluent_header`], or nothing).
pub fn encode_framed(
    event: &CdrEvent,
    format: OutputFormat,
    header: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    buf.clear();
    buf.extend_from_slice(header);
    match format {
        OutputFormat::Protobuf => {
            event.encode(buf).expect("a Vec grows to fit any message");
            Ok(())
        }
        // A NaN or infinite coordinate (protobuf and JSON input both carry them) would be
        // written as `null`: not proto3 JSON ("NaN", "Infinity"), and a different value
        // to a reader. Refused like the other values JSON cannot express (found by
        // fuzzing: the JSON output did not read back).
        OutputFormat::Json
            if event
                .location
                .as_ref()
                .is_some_and(|l| !l.latitude.is_finite() || !l.longitude.is_finite()) =>
        {
            Err(EncodeError {
                format: "JSON",
                reason: "a location coordinate is NaN or infinite, which this JSON encoder \
                         cannot write"
                    .into(),
            })
        }
        // A timestamp outside 0001–9999 is written with a sign and five digits
        // (`+20111-03-15T…`), which RFC 3339 and proto3 JSON do not allow and no reader
        // parses back (found by fuzzing). Refused the same way.
        OutputFormat::Json if json_unwritable_timestamp(event).is_some() => Err(EncodeError {
            format: "JSON",
            reason: format!(
                "{} is outside 0001-01-01..9999-12-31, which JSON timestamps cannot express",
                json_unwritable_timestamp(event).unwrap_or_default()
            ),
        }),
        // serde's message names the problem (an invalid variant, a timestamp out of
        // range); the values concerned are enum numbers and dates, not personal data.
        OutputFormat::Json => serde_json::to_writer(&mut *buf, event).map_err(|e| EncodeError {
            format: "JSON",
            reason: e.to_string(),
        }),
    }
}

/// The first timestamp of `event` that proto3 JSON cannot write (its year outside
/// 1–9999), by field name.
fn json_unwritable_timestamp(event: &CdrEvent) -> Option<&'static str> {
    use chrono::Datelike;
    let out_of_range = |t: &Option<crate::schema::Timestamp>| {
        t.as_ref().is_some_and(|t| {
            crate::schema::to_datetime(t).is_none_or(|d| !(1..=9999).contains(&d.year()))
        })
    };
    let timing = event.timing.as_ref();
    [
        ("event_time", out_of_range(&event.event_time)),
        (
            "timing.answer_time",
            timing.is_some_and(|t| out_of_range(&t.answer_time)),
        ),
        (
            "timing.release_time",
            timing.is_some_and(|t| out_of_range(&t.release_time)),
        ),
        (
            "retention.expires_at",
            event
                .retention
                .as_ref()
                .is_some_and(|r| out_of_range(&r.expires_at)),
        ),
    ]
    .into_iter()
    .find_map(|(name, bad)| bad.then_some(name))
}

/// The Schema Registry prefix of every output value with `output.framing = "confluent"`:
/// magic byte, `schema_id`, and for protobuf the message indexes of `CdrEvent` in
/// `cdr.proto`.
pub fn confluent_header(format: OutputFormat, schema_id: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(8);
    let kind = match format {
        OutputFormat::Protobuf => BodyKind::Protobuf,
        OutputFormat::Json => BodyKind::Json,
    };
    framing::write_header(
        &mut buf,
        schema_id,
        kind,
        crate::schema::CDR_EVENT_MESSAGE_INDEXES,
    );
    buf
}

/// The headers of a record, in the contract's order.
/// Only the expiry is formatted; the other values are static.
pub fn headers(
    record: &OutputRecord,
    format: OutputFormat,
) -> [(&'static str, Cow<'static, str>); 5] {
    [
        (header::PURPOSE, Cow::Borrowed(record.purpose.name())),
        (header::EXPIRES_AT, Cow::Owned(rfc3339(record.expires_at))),
        (header::LEGAL_BASIS, Cow::Borrowed(record.legal_basis)),
        (header::POLICY_VERSION, Cow::Borrowed(record.policy_version)),
        (header::CONTENT_TYPE, Cow::Borrowed(format.content_type())),
    ]
}

/// The canonical JSON of an event as a `serde_json::Value` (dry-run's `record`).
pub fn to_json_value(event: &CdrEvent) -> Result<serde_json::Value, EncodeError> {
    serde_json::to_value(event).map_err(|e| EncodeError {
        format: "JSON",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_refuses_a_timestamp_past_year_9999_instead_of_writing_plus_five_digits() {
        // Found by fuzzing: a framed protobuf record whose answer_time is in year 20111
        // was written as "+20111-03-15T13:51:01Z", which the filter's own JSON reader (and
        // RFC 3339) refuses.
        let mut e = CdrEvent {
            event_id: "e".into(),
            event_time: Some(crate::schema::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
            timing: Some(crate::schema::Timing {
                answer_time: Some(crate::schema::Timestamp {
                    seconds: 572_500_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut buf = Vec::new();
        let err = encode_event(&e, OutputFormat::Json, &mut buf).unwrap_err();
        assert!(err.reason.contains("timing.answer_time"), "{}", err.reason);
        encode_event(&e, OutputFormat::Protobuf, &mut buf).expect("protobuf carries it");
        // Within the range, JSON is written and reads back.
        e.timing.as_mut().unwrap().answer_time = Some(crate::schema::Timestamp {
            seconds: 253_402_300_799, // 9999-12-31T23:59:59Z
            nanos: 0,
        });
        encode_event(&e, OutputFormat::Json, &mut buf).unwrap();
        crate::decode::decode(&buf, crate::decode::InputFormat::Json).expect("reads back");
    }

    #[test]
    fn confluent_output_carries_the_schema_id_and_the_index_of_cdr_event() {
        // CdrEvent is the 11th message of cdr.proto: indexes [10], count 1 → 0x02,
        // 10 → 0x14.
        assert_eq!(crate::schema::CDR_EVENT_MESSAGE_INDEXES, &[10]);
        let header = confluent_header(OutputFormat::Protobuf, 258);
        assert_eq!(header, b"\x00\x00\x00\x01\x02\x02\x14");
        assert_eq!(
            confluent_header(OutputFormat::Json, 258),
            b"\x00\x00\x00\x01\x02"
        );
        let event = CdrEvent {
            event_id: "e1".into(),
            ..Default::default()
        };
        let mut buf = vec![9, 9, 9];
        encode_framed(&event, OutputFormat::Protobuf, &header, &mut buf).unwrap();
        let u = framing::unframe(&buf, BodyKind::Protobuf).unwrap();
        assert_eq!((u.schema_id, u.message_indexes()), (258, vec![10]));
        assert_eq!(u.body, event.encode_to_vec());
        encode_framed(&event, OutputFormat::Json, &[], &mut buf).unwrap();
        assert_eq!(buf, br#"{"eventId":"e1"}"#);
    }
}
