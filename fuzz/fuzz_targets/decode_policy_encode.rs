//! Fuzz target: arbitrary bytes through the filter's record path — decode (auto, JSON,
//! protobuf) → policy → encode (protobuf and JSON) — and through the pipeline's own
//! transform, which also builds the dead-letter pointers. It must never panic, and what
//! it forwards must hold no content, no extensions, and read back as it was written.
//! The Schema Registry framing too: unframing never panics and borrows a suffix of the
//! record; the input framed (with `[0]` or a longer message-index array) decodes as the
//! bare input does; framed output unframes to the bare output.

#![no_main]

use cdr_purpose_filter::config::{self, Settings};
use cdr_purpose_filter::decode::{self, InputFormat};
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::framing::{self, BodyKind};
use cdr_purpose_filter::pipeline::records::{Source, Transform};
use cdr_purpose_filter::policy::Outcome;
use cdr_purpose_filter::telemetry::Stats;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct Fixture {
    now: DateTime<Utc>,
    transforms: Vec<Transform>,
    settings: Settings,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let settings = |output: &str| {
            let text = format!(
                "[output]\nformat = \"{output}\"\n[purposes.billing]\n[purposes.security]\n"
            );
            Settings::validate(config::parse(&text, &[]).expect("parse")).expect("valid")
        };
        Fixture {
            // A fixed `now`, so that a crash reproduces.
            now: "2026-11-28T12:00:00Z".parse().expect("time"),
            transforms: vec![
                Transform::new(Arc::new(settings("protobuf"))),
                Transform::new(Arc::new(settings("json"))),
            ],
            settings: settings("protobuf"),
        }
    })
}

fn check_framing(data: &[u8]) {
    for kind in [BodyKind::Protobuf, BodyKind::Json] {
        if let Ok(u) = framing::unframe(data, kind) {
            assert!(data.ends_with(u.body), "the body is a suffix of the record");
            assert_eq!(
                u.body.as_ptr() as usize + u.body.len(),
                data.as_ptr() as usize + data.len(),
                "the body is borrowed"
            );
            let _ = u.message_indexes();
        }
    }
    for (indexes, kind, bare) in [
        (&[0][..], BodyKind::Protobuf, InputFormat::Protobuf),
        (&[10, 2][..], BodyKind::Protobuf, InputFormat::Protobuf),
        (&[][..], BodyKind::Json, InputFormat::Json),
    ] {
        let framed = framing::frame(7, kind, indexes, data);
        let u = framing::unframe(&framed, kind).expect("a framed record unframes");
        assert_eq!((u.schema_id, u.body), (7, data));
        let explicit = match kind {
            BodyKind::Protobuf => InputFormat::ConfluentProtobuf,
            BodyKind::Json => InputFormat::ConfluentJson,
        };
        let framed_result = decode::decode(&framed, explicit).map(|(e, _)| e);
        let bare_result = decode::decode(data, bare).map(|(e, _)| e);
        // Compared as protobuf bytes: a NaN coordinate is not equal to itself.
        let bytes = |e: cdr_purpose_filter::schema::CdrEvent| {
            let mut buf = Vec::new();
            encode::encode_event(&e, OutputFormat::Protobuf, &mut buf).expect("encodes");
            buf
        };
        assert_eq!(
            framed_result.map(bytes).ok(),
            bare_result.map(bytes).ok(),
            "framing changes nothing but the header"
        );
        let refused = decode::decode_record(&framed, InputFormat::Auto, &[8]);
        assert!(
            matches!(
                refused,
                Err(decode::DecodeError::UnexpectedSchema { schema_id: 7 })
            ),
            "another schema id is refused before the body is read"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    check_framing(data);
    for format in [
        InputFormat::Auto,
        InputFormat::Json,
        InputFormat::Protobuf,
        InputFormat::ConfluentProtobuf,
        InputFormat::ConfluentJson,
    ] {
        let Ok((event, _)) = decode::decode(data, format) else {
            continue;
        };
        assert!(event.retention.is_none(), "retention is removed on input");
        for (purpose, outcome) in f.settings.policy.apply(&event, f.now).outcomes {
            let Outcome::Forward(r) = outcome else {
                continue;
            };
            assert!(
                r.event.content.is_none(),
                "content forwarded to {purpose:?}"
            );
            assert!(r.event.extensions.is_empty(), "extensions forwarded");
            assert_eq!(r.key, r.event.event_id, "the key is the event_id");
            let _ = encode::headers(&r, OutputFormat::Protobuf);
            let mut buf = Vec::new();
            encode::encode_event(&r.event, OutputFormat::Protobuf, &mut buf)
                .expect("protobuf always encodes");
            let (mut back, _) =
                decode::decode(&buf, InputFormat::Protobuf).expect("protobuf output decodes");
            // Compared as bytes: a NaN coordinate is not equal to itself.
            back.retention = r.event.retention.clone();
            let mut again = Vec::new();
            encode::encode_event(&back, OutputFormat::Protobuf, &mut again).expect("encodes");
            assert_eq!(again, buf, "protobuf output round-trips");
            if encode::encode_event(&r.event, OutputFormat::Json, &mut buf).is_ok() {
                decode::decode(&buf, InputFormat::Json).expect("JSON output decodes");
            }
            let header = encode::confluent_header(OutputFormat::Protobuf, 9);
            let mut framed = Vec::new();
            encode::encode_framed(&r.event, OutputFormat::Protobuf, &header, &mut framed)
                .expect("protobuf always encodes");
            let u = framing::unframe(&framed, BodyKind::Protobuf).expect("framed output");
            assert_eq!(u.body, &again[..], "framed output is the bare output");
        }
    }
    let source = Source {
        topic: Arc::from("cdr.raw"),
        partition: 0,
        offset: 0,
    };
    for t in &f.transforms {
        let mut out = Vec::new();
        t.process(&source, data, f.now, &Stats::default(), &mut out);
        let dead = out
            .iter()
            .filter(|o| &o.topic == t.dead_letter_topic())
            .count();
        assert!(
            dead == 0 || out.len() == 1,
            "a dead-lettered record is never half-forwarded"
        );
        for o in &out {
            if &o.topic == t.dead_letter_topic() {
                assert!(o.key.is_none(), "a pointer has no key");
                assert!(o.value.len() < 4096, "a pointer never copies the record");
            }
        }
    }
});
