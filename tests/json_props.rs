//! Differential tests of the JSON fast paths (`cdr_purpose_filter::json`) against their
//! oracle, the struct path:
//! - input: for every document, `JsonScratch::to_protobuf` gives exactly
//!   `decode::decode_json(..)` (retention cleared) then `encode_to_vec`, or the same
//!   error; and a document the fast parser accepts on its own is one serde accepts with
//!   the same bytes. Documents: generated events as canonical JSON and mutated (snake_case
//!   names, key order, whitespace, escapes, numbers as strings and numbers, enums as
//!   numbers, nulls, unknown fields, `retention`, duplicate keys, byte flips, truncation),
//!   the hostile corpus, `gen::Generator`'s events;
//! - output: `json::write_json` on the wire path's output parses to the same
//!   `serde_json::Value` as the struct path's JSON, for every generated event, both
//!   purposes, both policy versions;
//! - the pipeline: `Transform::process` (which takes these paths for bare JSON or
//!   protobuf in, protobuf or JSON out) gives the records, dead letters and counters of
//!   `Transform::process_struct`.

use cdr_purpose_filter::config::{self, Settings};
use cdr_purpose_filter::decode::{self, DecodeError};
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::json::{self, JsonScratch};
use cdr_purpose_filter::pipeline::records::{Outgoing, Source, Transform};
use cdr_purpose_filter::policy::{Outcome, Policy, Version};
use cdr_purpose_filter::schema::{
    CdrEvent, Charging, Content, Location, Network, Party, Retention, Subscriber,
    SupplementaryService, Terminal, Timestamp, Timing,
};
use cdr_purpose_filter::telemetry::Stats;
use cdr_purpose_filter::wire::{WireFilter, WireScratch};
use chrono::{TimeZone, Utc};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use prost::Message;
use rdkafka::message::Headers;
use serde_json::Value;
use std::sync::Arc;

const CASES: u32 = 512;

fn oracle(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    decode::decode_json(bytes).map(|mut e| {
        e.retention = None;
        e.encode_to_vec()
    })
}

/// The fast path against the oracle, on one document; returns whether the fast parser
/// took it alone.
fn check(scratch: &mut JsonScratch, bytes: &[u8]) -> Result<bool, TestCaseError> {
    let expected = oracle(bytes);
    let fast = scratch.fast(bytes);
    if fast {
        prop_assert!(
            expected.is_ok(),
            "fast parser accepted what serde refuses: {:?} on {}",
            expected,
            String::from_utf8_lossy(bytes)
        );
        prop_assert_eq!(
            scratch.protobuf(),
            expected.as_deref().unwrap(),
            "fast bytes differ on {}",
            String::from_utf8_lossy(bytes)
        );
    }
    let got = scratch.to_protobuf(bytes).map(<[u8]>::to_vec);
    prop_assert_eq!(&got, &expected, "on {}", String::from_utf8_lossy(bytes));
    if let Err(e) = &got {
        prop_assert_eq!(e.kind(), "json");
        prop_assert_eq!(e.reason(), "undecodable");
    }
    Ok(fast)
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => Just(String::new()),
        4 => "[A-Za-z0-9+.:/ -]{1,20}",
        3 => "\\PC{1,16}",
        1 => any::<String>(),
        1 => prop::sample::select(vec!["\"quoted\"", "back\\slash", "tab\there", "日本語", "é\u{1F600}", "\u{0}"]).prop_map(str::to_string),
    ]
    .boxed()
}

fn ts() -> BoxedStrategy<Timestamp> {
    let now = Utc
        .with_ymd_and_hms(2021, 10, 15, 12, 0, 0)
        .unwrap()
        .timestamp();
    prop_oneof![
        4 => (now - 400 * 86_400..=now, prop_oneof![Just(0i32), 0..1_000_000_000i32, Just(250_000_000), Just(123_456_000)]),
        1 => (-62_135_596_800i64..=253_402_300_799, 0..1_000_000_000i32),
    ]
    .prop_map(|(seconds, nanos)| Timestamp { seconds, nanos })
    .boxed()
}

fn f64s() -> BoxedStrategy<f64> {
    prop_oneof![
        4 => -90.0..90.0f64,
        1 => any::<f64>(),
        1 => prop::sample::select(vec![0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, 5e-324]),
    ]
    .boxed()
}

fn party() -> impl Strategy<Value = Option<Party>> {
    option::weighted(
        0.8,
        (
            text(),
            text(),
            prop_oneof![Just(0u32), 1..65_536u32, any::<u32>()],
        )
            .prop_map(|(number, ip, port)| Party { number, ip, port }),
    )
}

fn any_event() -> impl Strategy<Value = CdrEvent> {
    let head = (
        prop_oneof![1 => Just(String::new()), 9 => "\\PC{1,24}"],
        option::weighted(0.9, ts()),
        0..=5i32,
        0..=4i32,
        vec(0..=2i32, 0..3),
    );
    let parties = (
        option::weighted(
            0.85,
            (text(), text(), text(), text()).prop_map(|(imsi, msisdn, account_id, ue_ip)| {
                Subscriber {
                    imsi,
                    msisdn,
                    account_id,
                    ue_ip,
                }
            }),
        ),
        option::weighted(
            0.7,
            (text(), text()).prop_map(|(imei, imeisv)| Terminal { imei, imeisv }),
        ),
        party(),
        party(),
        option::weighted(
            0.8,
            (
                option::of(ts()),
                option::of(ts()),
                prop_oneof![Just(0u64), 1..3_600_000u64, any::<u64>()],
            )
                .prop_map(|(answer_time, release_time, duration_ms)| Timing {
                    answer_time,
                    release_time,
                    duration_ms,
                }),
        ),
    );
    let network = option::weighted(
        0.8,
        (
            (text(), text(), text(), text(), text()),
            (
                text(),
                text(),
                any::<u64>(),
                prop_oneof![Just(0u64), any::<u64>()],
            ),
        )
            .prop_map(|((a, b, c, d, e), (f, g, up, down))| Network {
                recording_entity: a,
                cause_for_term: b,
                rat_type: c,
                basic_service: d,
                call_reference: e,
                charging_id: f,
                apn: g,
                bytes_uplink: up,
                bytes_downlink: down,
            }),
    );
    let rest = (
        network,
        vec(
            (text(), text()).prop_map(|(code, provider)| SupplementaryService { code, provider }),
            0..3,
        ),
        option::weighted(
            0.75,
            (text(), text(), text(), text(), f64s(), f64s()).prop_map(
                |(mcc, mnc, lac, cell_id, latitude, longitude)| Location {
                    mcc,
                    mnc,
                    lac,
                    cell_id,
                    latitude,
                    longitude,
                },
            ),
        ),
        option::weighted(
            0.85,
            (
                any::<bool>(),
                text(),
                prop_oneof![Just(0i64), any::<i64>(), Just(i64::MIN)],
                text(),
                prop_oneof![Just(0u32), any::<u32>()],
            )
                .prop_map(
                    |(chargeable, tariff_class, amount_minor, currency, rating_group)| Charging {
                        chargeable,
                        tariff_class,
                        amount_minor,
                        currency,
                        rating_group,
                    },
                ),
        ),
        option::weighted(
            0.7,
            (text(), text(), text(), text(), text()).prop_map(|(a, b, c, d, e)| Content {
                sms_text: a,
                ussd_string: b,
                url: c,
                dns_query: d,
                sni: e,
            }),
        ),
        btree_map(text(), text(), 0..4),
        option::weighted(
            0.2,
            (0..=2i32, option::of(ts()), text(), text()).prop_map(
                |(purpose, expires_at, legal_basis, policy_version)| Retention {
                    purpose,
                    expires_at,
                    legal_basis,
                    policy_version,
                },
            ),
        ),
    );
    (head, parties, rest).prop_map(
        |(
            (event_id, event_time, event_type, direction, declared_purposes),
            (served, terminal, calling, called, timing),
            (network, supplementary_services, location, charging, content, extensions, retention),
        )| CdrEvent {
            event_id,
            event_time,
            event_type,
            direction,
            declared_purposes,
            served,
            terminal,
            calling,
            called,
            timing,
            network,
            supplementary_services,
            location,
            charging,
            content,
            extensions,
            retention,
        },
    )
}

// ---------------------------------------------------------------------------------------
// Mutations of a document
// ---------------------------------------------------------------------------------------

fn snake(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// A mutation of the `serde_json::Value` of an event, chosen by `pick`.
#[derive(Debug, Clone)]
enum Mutation {
    /// Every key of the objects at this depth in snake_case (not extensions' keys).
    Snake,
    /// An unknown field with some value, in the top object or a sub-message.
    Unknown(bool, Value),
    /// A field (by index among the top keys) set to `null`.
    Null(usize),
    /// A nested field (by index) set to a value.
    Replace(usize, usize, Value),
    /// A top-level field set to a value.
    ReplaceTop(usize, Value),
    /// Numbers written as strings become numbers (and the reverse).
    NumberForms,
    /// Enum names become their numbers.
    EnumNumbers,
}

fn odd_value() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::Bool(true)),
        Just(serde_json::json!(0)),
        Just(serde_json::json!(-0.0)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(1.5)),
        Just(serde_json::json!(4_294_967_296u64)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(i64::MIN)),
        Just(serde_json::json!("18446744073709551616")),
        Just(serde_json::json!("-9223372036854775808")),
        Just(serde_json::json!("+5")),
        Just(serde_json::json!("007")),
        Just(serde_json::json!("1e3")),
        Just(serde_json::json!("NaN")),
        Just(serde_json::json!("-Infinity")),
        Just(serde_json::json!("VOICE_CALL")),
        Just(serde_json::json!("BILLING")),
        Just(serde_json::json!("voice_call")),
        Just(serde_json::json!(3)),
        Just(serde_json::json!(9)),
        Just(serde_json::json!("2026-11-28T10:00:00Z")),
        Just(serde_json::json!("2026-11-28T10:00:00.5+02:00")),
        Just(serde_json::json!("2026-11-28t10:00:00z")),
        Just(serde_json::json!("2026-11-28 10:00:00Z")),
        Just(serde_json::json!("2016-12-31T23:59:60Z")),
        Just(serde_json::json!("0000-01-01T00:00:00Z")),
        Just(serde_json::json!("2026-11-28T10:00:00.123456789123Z")),
        Just(serde_json::json!([])),
        Just(serde_json::json!(["BILLING", 2, "SECURITY"])),
        Just(serde_json::json!([null])),
        Just(serde_json::json!({})),
        Just(serde_json::json!({"code": "x", "provider": "y"})),
        Just(serde_json::json!({"a": "b", "": ""})),
        Just(serde_json::json!({"a": 1})),
        "\\PC{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
    ]
    .boxed()
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        2 => Just(Mutation::Snake),
        1 => (any::<bool>(), odd_value()).prop_map(|(top, v)| Mutation::Unknown(top, v)),
        1 => (0..20usize).prop_map(Mutation::Null),
        3 => (0..20usize, 0..10usize, odd_value()).prop_map(|(a, b, v)| Mutation::Replace(a, b, v)),
        2 => (0..20usize, odd_value()).prop_map(|(a, v)| Mutation::ReplaceTop(a, v)),
        1 => Just(Mutation::NumberForms),
        1 => Just(Mutation::EnumNumbers),
    ]
    .boxed()
}

fn rename_keys(v: &mut Value) {
    if let Value::Object(m) = v {
        let old = std::mem::take(m);
        for (k, mut v) in old {
            if k != "extensions" {
                rename_keys(&mut v);
            }
            m.insert(snake(&k), v);
        }
    } else if let Value::Array(a) = v {
        a.iter_mut().for_each(rename_keys);
    }
}

fn number_forms(v: &mut Value) {
    match v {
        Value::Object(m) => m.values_mut().for_each(number_forms),
        Value::Array(a) => a.iter_mut().for_each(number_forms),
        Value::String(s)
            if s.parse::<i64>().is_ok_and(|n| n.to_string() == *s)
                || s.parse::<u64>().is_ok_and(|n| n.to_string() == *s) =>
        {
            *v = serde_json::from_str(s).unwrap();
        }
        Value::Number(n) if !n.is_f64() => *v = Value::String(n.to_string()),
        _ => {}
    }
}

fn enum_numbers(v: &mut Value) {
    const NAMES: &[(&str, i32)] = &[
        ("VOICE_CALL", 1),
        ("SMS", 2),
        ("DATA_SESSION", 3),
        ("SIGNALLING", 4),
        ("SUPPLEMENTARY_SERVICE", 5),
        ("ORIGINATING", 1),
        ("TERMINATING", 2),
        ("FORWARDED", 3),
        ("NONE", 4),
        ("BILLING", 1),
        ("SECURITY", 2),
    ];
    let Value::Object(m) = v else { return };
    for key in ["eventType", "direction"] {
        if let Some(Value::String(s)) = m.get(key) {
            if let Some((_, n)) = NAMES.iter().find(|(name, _)| name == s) {
                m.insert(key.into(), serde_json::json!(n));
            }
        }
    }
    if let Some(Value::Array(a)) = m.get_mut("declaredPurposes") {
        for x in a {
            if let Value::String(s) = x {
                if let Some((_, n)) = NAMES.iter().find(|(name, _)| name == s) {
                    *x = serde_json::json!(n);
                }
            }
        }
    }
}

fn apply(v: &mut Value, m: &Mutation) {
    let Value::Object(top) = v else { return };
    let keys: Vec<String> = top.keys().cloned().collect();
    match m {
        Mutation::Snake => rename_keys(v),
        Mutation::Unknown(true, x) => {
            top.insert("someUnknownField".into(), x.clone());
        }
        Mutation::Unknown(false, x) => {
            if let Some(Value::Object(sub)) = top.values_mut().find(|s| s.is_object()) {
                sub.insert("vendorX".into(), x.clone());
            }
        }
        Mutation::Null(i) if !keys.is_empty() => {
            top.insert(keys[i % keys.len()].clone(), Value::Null);
        }
        Mutation::ReplaceTop(i, x) if !keys.is_empty() => {
            top.insert(keys[i % keys.len()].clone(), x.clone());
        }
        Mutation::Replace(i, j, x) => {
            let subs: Vec<String> = keys
                .iter()
                .filter(|k| top[k.as_str()].is_object())
                .cloned()
                .collect();
            if subs.is_empty() {
                return;
            }
            let Value::Object(sub) = &mut top[subs[i % subs.len()].as_str()] else {
                return;
            };
            let sk: Vec<String> = sub.keys().cloned().collect();
            if !sk.is_empty() {
                sub.insert(sk[j % sk.len()].clone(), x.clone());
            }
        }
        Mutation::NumberForms => number_forms(v),
        Mutation::EnumNumbers => enum_numbers(v),
        _ => {}
    }
}

/// Text-level changes serde_json's writer never makes.
#[derive(Debug, Clone)]
enum TextChange {
    None,
    Pretty,
    /// Every `n`-th ASCII letter of string contents as a `\u00XX` escape.
    Escape(usize),
    /// A key written twice (the first member again, at the end).
    Duplicate,
    /// One byte replaced.
    Flip(usize, u8),
    /// Cut at a position.
    Truncate(usize),
    /// Bytes inserted.
    Insert(usize, Vec<u8>),
}

fn text_change() -> BoxedStrategy<TextChange> {
    prop_oneof![
        4 => Just(TextChange::None),
        1 => Just(TextChange::Pretty),
        2 => (1..6usize).prop_map(TextChange::Escape),
        1 => Just(TextChange::Duplicate),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| TextChange::Flip(i, b)),
        1 => any::<usize>().prop_map(TextChange::Truncate),
        1 => (any::<usize>(), prop::sample::select(vec![
            b" ".to_vec(), b"\t\r\n".to_vec(), b",".to_vec(), b"\"".to_vec(), b"\\".to_vec(),
            b"null".to_vec(), b"}".to_vec(), b"\xff".to_vec(), b"\xc3\xa9".to_vec(), b"\x01".to_vec(),
        ])).prop_map(|(i, b)| TextChange::Insert(i, b)),
    ]
    .boxed()
}

fn escape_letters(s: &str, every: usize) -> String {
    // Inside strings only: track quotes and backslashes.
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut n = 0;
    for c in s.chars() {
        if in_string && !escaped && c.is_ascii_alphabetic() {
            n += 1;
            if n % every == 0 {
                out.push_str(&format!("\\u{:04x}", c as u32));
                continue;
            }
        }
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_string = !in_string;
        }
        out.push(c);
    }
    out
}

fn render(v: &Value, change: &TextChange) -> Vec<u8> {
    let compact = serde_json::to_string(v).unwrap();
    match change {
        TextChange::None => compact.into_bytes(),
        TextChange::Pretty => serde_json::to_string_pretty(v).unwrap().into_bytes(),
        TextChange::Escape(n) => escape_letters(&compact, *n).into_bytes(),
        TextChange::Duplicate => {
            let Value::Object(m) = v else {
                return compact.into_bytes();
            };
            match m.iter().next() {
                Some((k, x)) if compact.len() > 2 => {
                    let mut s = compact[..compact.len() - 1].to_string();
                    s.push_str(&format!(",{}:{}}}", Value::String(k.clone()), x));
                    s.into_bytes()
                }
                _ => compact.into_bytes(),
            }
        }
        TextChange::Flip(i, b) => {
            let mut bytes = compact.into_bytes();
            let n = bytes.len();
            bytes[i % n] = *b;
            bytes
        }
        TextChange::Truncate(i) => {
            let mut bytes = compact.into_bytes();
            bytes.truncate(i % (bytes.len() + 1));
            bytes
        }
        TextChange::Insert(i, x) => {
            let mut bytes = compact.into_bytes();
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, x.iter().copied());
            bytes
        }
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Generated events as canonical JSON: the fast parser takes them all (none holds
    /// anything it leaves to serde, but `retention`), with serde's bytes.
    #[test]
    fn canonical_json_is_converted_exactly(event in any_event()) {
        let Ok(json) = serde_json::to_vec(&event) else { return Ok(()) };
        let mut scratch = JsonScratch::default();
        let fast = check(&mut scratch, &json)?;
        // (serde_json writes a NaN or infinite double as `null`, which serde then refuses.)
        prop_assert!(fast || event.retention.is_some() || oracle(&json).is_err(), "fast parser gave up on {}", String::from_utf8_lossy(&json));
    }

    /// Mutated documents: the same bytes or the same refusal; one scratch reused.
    #[test]
    fn mutated_json_matches_serde(
        events in vec((any_event(), vec(mutation(), 0..3), text_change()), 1..4),
    ) {
        let mut scratch = JsonScratch::default();
        for (event, mutations, change) in &events {
            let Ok(mut v) = serde_json::to_value(event) else { continue };
            for m in mutations {
                apply(&mut v, m);
            }
            check(&mut scratch, &render(&v, change))?;
        }
    }
}

/// Every record of the hostile corpus (JSON and protobuf files alike), as JSON input.
#[test]
fn hostile_corpus_matches_serde() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut scratch = JsonScratch::default();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        let result = check(&mut scratch, &bytes);
        assert!(result.is_ok(), "{name}: {result:?}");
        seen += 1;
    }
    assert!(seen >= 50, "the corpus was read ({seen} files)");
}

/// `gen::Generator`'s events (those of the benchmarks): all taken by the fast parser.
#[test]
fn generator_events_take_the_fast_parser() {
    let mut scratch = JsonScratch::default();
    for seed in 0..4 {
        let mut g = Generator::new(seed, Utc::now());
        for _ in 0..500 {
            let mut json = Vec::new();
            encode::encode_event(&g.next_event(), OutputFormat::Json, &mut json).unwrap();
            let fast = check(&mut scratch, &json).unwrap();
            assert!(fast, "{}", String::from_utf8_lossy(&json));
        }
    }
    assert_eq!(scratch.fallbacks, 0);
}

/// Hand-picked documents at the edges of the rules.
#[test]
fn edge_documents_match_serde() {
    let docs: &[&str] = &[
        "{}",
        " {\"eventId\":\"e\"} \n",
        "{\"eventId\":\"e\"} x",
        "[]",
        "{\"eventId\":null}",
        "{\"eventTime\":null}",
        "{\"eventTime\":null,\"eventTime\":\"2026-11-28T10:00:00Z\"}",
        "{\"served\":null,\"served\":{\"imsi\":\"1\"}}",
        "{\"served\":{}}",
        "{\"served\":{\"imsi\":\"1\",\"imsi\":\"2\"}}",
        "{\"served\":{\"ueIp\":\"1\",\"ue_ip\":\"2\"}}",
        "{\"eventId\":\"a\",\"event_id\":\"b\"}",
        "{\"eventId\":\"\\u00e9\\ud83d\\ude00\\n\"}",
        "{\"eventId\":\"\\ud83d\"}",
        "{\"eventId\":\"\\ude00\"}",
        "{\"eventId\":\"\\u0000\"}",
        "{\"eventId\":\"\\x\"}",
        "{\"event\\u0049d\":\"e\"}",
        "{\"eventType\":1,\"direction\":\"NONE\"}",
        "{\"eventType\":6}",
        "{\"eventType\":-1}",
        "{\"eventType\":1.0}",
        "{\"eventType\":\"EVENT_TYPE_UNSPECIFIED\"}",
        "{\"declaredPurposes\":[0,\"BILLING\",2,2]}",
        "{\"declaredPurposes\":null}",
        "{\"timing\":{\"durationMs\":\"0012\"}}",
        "{\"timing\":{\"durationMs\":-0}}",
        "{\"timing\":{\"durationMs\":18446744073709551615}}",
        "{\"timing\":{\"durationMs\":18446744073709551616}}",
        "{\"timing\":{\"durationMs\":1e2}}",
        "{\"timing\":{\"answerTime\":null,\"answerTime\":null}}",
        "{\"charging\":{\"amountMinor\":-0}}",
        "{\"charging\":{\"amountMinor\":\"-0\"}}",
        "{\"charging\":{\"amountMinor\":-9223372036854775808}}",
        "{\"charging\":{\"amountMinor\":-9223372036854775809}}",
        "{\"charging\":{\"chargeable\":\"true\"}}",
        "{\"charging\":{\"ratingGroup\":4294967295}}",
        "{\"charging\":{\"ratingGroup\":4294967296}}",
        "{\"location\":{\"latitude\":-0.0,\"longitude\":\"NaN\"}}",
        "{\"location\":{\"latitude\":1.7976931348623157e309}}",
        "{\"location\":{\"latitude\":0.30000000000000004441}}",
        "{\"location\":{\"latitude\":1E-400}}",
        "{\"location\":{\"latitude\":12}}",
        "{\"extensions\":{\"b\":\"1\",\"a\":\"2\",\"\":\"\"}}",
        "{\"extensions\":{\"a\":\"1\",\"a\":\"2\"}}",
        "{\"extensions\":{\"a\":null}}",
        "{\"extensions\":{\"\\u0061\":\"x\"}}",
        "{\"supplementaryServices\":[{\"code\":\"a\"},{},{\"provider\":\"p\"}]}",
        "{\"supplementaryServices\":[null]}",
        "{\"retention\":{\"legalBasis\":\"forged\"}}",
        "{\"eventId\":\"e\",}",
        "{\"eventId\" : \"e\" , \"eventTime\" : \"2026-11-28T10:00:00+14:00\"}",
        "{\"eventTime\":\"2026-02-30T10:00:00Z\"}",
        "{\"eventTime\":\"2026-11-28T10:00:00\"}",
        "{\"eventId\":\"tab\there\"}",
        "\u{feff}{}",
    ];
    let mut scratch = JsonScratch::default();
    for d in docs {
        let result = check(&mut scratch, d.as_bytes());
        assert!(result.is_ok(), "{d}: {result:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

/// For one protobuf event, under one policy: every output the wire path forwards, written
/// by `json::write_json`, parses to the same `Value` as the struct path's JSON of the same
/// record (or both refuse to write it, with the same error). Returns the outputs compared.
fn check_output(
    policy: &Policy,
    filter: &WireFilter,
    scratch: &mut WireScratch,
    pb: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, TestCaseError> {
    let now = Utc.with_ymd_and_hms(2021, 10, 15, 12, 0, 0).unwrap();
    let Ok(event) = CdrEvent::decode(pb) else {
        return Ok(0);
    };
    let evaluation = policy.apply(&event, now);
    if filter.apply(pb, now, scratch).is_err() {
        prop_assert!(evaluation.refusal().is_some());
        return Ok(0);
    }
    let mut n = 0;
    let fast_outputs = FAST.with(|f| f.clone());
    for ((purpose, outcome), r) in evaluation.outcomes.iter().zip(scratch.records()) {
        prop_assert_eq!(*purpose, r.purpose);
        let Outcome::Forward(expected) = outcome else {
            prop_assert!(r.outcome.is_err());
            continue;
        };
        let mut want = Vec::new();
        let want = encode::encode_event(&expected.event, OutputFormat::Json, &mut want)
            .map(|()| serde_json::from_slice::<Value>(&want).unwrap());
        if json::write_json_fast(&r.value, out) {
            fast_outputs.set(fast_outputs.get() + 1);
        }
        let got = json::write_json(&r.value, out)
            .map(|()| serde_json::from_slice::<Value>(out).expect("write_json writes JSON"));
        prop_assert_eq!(got, want);
        n += 1;
    }
    Ok(n)
}

thread_local! {
    /// Outputs the fast writer took alone, in this thread.
    static FAST: std::rc::Rc<std::cell::Cell<usize>> = std::rc::Rc::default();
}

fn both_versions() -> Vec<Policy> {
    Version::ALL
        .iter()
        .map(|v| Policy::legal_maximum_of(*v))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// Generated events, both purposes, both policy versions.
    #[test]
    fn json_output_matches_the_struct_path(event in any_event()) {
        let pb = event.encode_to_vec();
        let mut out = Vec::new();
        for policy in both_versions() {
            let filter = WireFilter::new(&policy).unwrap();
            let mut scratch = WireScratch::default();
            check_output(&policy, &filter, &mut scratch, &pb, &mut out)?;
        }
    }
}

/// `gen::Generator`'s events, both policy versions.
#[test]
fn json_output_of_generator_events_matches_the_struct_path() {
    let mut out = Vec::new();
    let mut compared = 0;
    FAST.with(|f| f.set(0));
    for policy in both_versions() {
        let filter = WireFilter::new(&policy).unwrap();
        let mut scratch = WireScratch::default();
        for seed in 0..4 {
            let mut g = Generator::new(seed, Utc.with_ymd_and_hms(2021, 10, 15, 11, 0, 0).unwrap());
            for _ in 0..500 {
                let pb = g.next_event().encode_to_vec();
                compared += check_output(&policy, &filter, &mut scratch, &pb, &mut out).unwrap();
            }
        }
    }
    assert!(compared > 4 * 500, "{compared} outputs compared");
    assert_eq!(
        FAST.with(|f| f.get()),
        compared,
        "every output took the fast writer"
    );
}

// ---------------------------------------------------------------------------------------
// The pipeline: `process` (fast paths) against `process_struct`
// ---------------------------------------------------------------------------------------

fn transform(input: &str, output: &str) -> Transform {
    let toml = format!(
        "[input]\nformat = \"{input}\"\n[output]\nformat = \"{output}\"\n[purposes.billing]\n[purposes.security]\n[topics]\nmode = \"off\"\n"
    );
    Transform::new(Arc::new(
        Settings::validate(config::parse(&toml, &[]).unwrap()).unwrap(),
    ))
}

fn header_list(o: &Outgoing) -> Vec<(String, Vec<u8>)> {
    o.headers
        .iter()
        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
        .collect()
}

/// The rule of `docs/timestamps.md` on an output: every timestamp is one a
/// `google.protobuf.Timestamp` may hold (a leap second arrives as `23:59:59.999999999`;
/// anything else out of range refuses the event).
fn canonical_times(e: &CdrEvent) -> bool {
    let timing = e.timing.as_ref();
    [
        e.event_time.as_ref(),
        timing.and_then(|t| t.answer_time.as_ref()),
        timing.and_then(|t| t.release_time.as_ref()),
        e.retention.as_ref().and_then(|r| r.expires_at.as_ref()),
    ]
    .into_iter()
    .flatten()
    .all(cdr_purpose_filter::schema::is_canonical)
}

/// The same records out of `process` as out of `process_struct`, and the same counters.
fn same_records(t: &Transform, json_out: bool, payload: &[u8]) -> Result<(), TestCaseError> {
    let now = Utc.with_ymd_and_hms(2021, 10, 15, 12, 0, 0).unwrap();
    let source = Source {
        topic: Arc::from("cdr.raw"),
        partition: 0,
        offset: 7,
    };
    let (old_stats, new_stats) = (Stats::default(), Stats::default());
    let (mut old, mut new) = (Vec::new(), Vec::new());
    t.process_struct(&source, payload, now, &old_stats, &mut old);
    t.process(&source, payload, now, &new_stats, &mut new);
    prop_assert_eq!(old.len(), new.len());
    for (o, n) in old.iter().zip(&new) {
        prop_assert_eq!(&o.topic, &n.topic);
        prop_assert_eq!(&o.key, &n.key);
        let (oh, nh) = (header_list(o), header_list(n));
        prop_assert_eq!(oh.len(), nh.len());
        if o.topic == *t.dead_letter_topic() {
            for (a, b) in oh.iter().zip(&nh) {
                prop_assert_eq!(&a.0, &b.0);
                if !a.0.contains("time") {
                    prop_assert_eq!(&a.1, &b.1, "header {}", a.0);
                }
            }
            continue;
        }
        prop_assert_eq!(oh, nh);
        prop_assert_eq!(o.timestamp_ms, n.timestamp_ms);
        if json_out {
            let a: Value = serde_json::from_slice(&o.value).unwrap();
            let b: Value = serde_json::from_slice(&n.value).unwrap();
            prop_assert_eq!(a, b);
        } else {
            let a = CdrEvent::decode(o.value.as_slice()).unwrap();
            let b = CdrEvent::decode(n.value.as_slice()).unwrap();
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
            prop_assert!(canonical_times(&b), "a timestamp out of range: {b:?}");
        }
    }
    prop_assert_eq!(old_stats.consumed(), new_stats.consumed());
    prop_assert_eq!(old_stats.produced(), new_stats.produced());
    prop_assert_eq!(old_stats.dropped(), new_stats.dropped());
    prop_assert_eq!(
        old_stats.dead_letters.lock().unwrap().clone(),
        new_stats.dead_letters.lock().unwrap().clone()
    );
    Ok(())
}

const PIPELINES: [(&str, &str); 6] = [
    ("json", "protobuf"),
    ("json", "json"),
    ("auto", "protobuf"),
    ("auto", "json"),
    ("protobuf", "json"),
    ("protobuf", "protobuf"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Generated events as JSON (mutated) and as protobuf, through every pairing of
    /// input and output formats.
    #[test]
    fn process_gives_the_records_of_process_struct(
        event in any_event(),
        mutations in vec(mutation(), 0..2),
        change in text_change(),
    ) {
        let mut inputs = vec![event.encode_to_vec()];
        if let Ok(mut v) = serde_json::to_value(&event) {
            inputs.push(render(&v, &TextChange::None));
            for m in &mutations {
                apply(&mut v, m);
            }
            inputs.push(render(&v, &change));
        }
        for (input, output) in PIPELINES {
            let t = transform(input, output);
            for bytes in &inputs {
                same_records(&t, output == "json", bytes)?;
            }
        }
    }
}

#[test]
fn process_on_the_corpus_and_generated_events() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut g = Generator::new(5, Utc.with_ymd_and_hms(2021, 10, 15, 11, 0, 0).unwrap());
    let mut inputs = Vec::new();
    for _ in 0..200 {
        let e = g.next_event();
        inputs.push(e.encode_to_vec());
        inputs.push(serde_json::to_vec(&e).unwrap());
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        inputs.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    for (input, output) in PIPELINES {
        let t = transform(input, output);
        for bytes in &inputs {
            let r = same_records(&t, output == "json", bytes);
            assert!(r.is_ok(), "{input} → {output}: {r:?}");
        }
    }
}

/// `cdr_json_slow_path_total`: a JSON record the fast parser leaves to the general
/// decoder is counted once, and filtered alike; one it takes is not counted.
#[test]
fn json_records_left_to_the_general_decoder_are_counted() {
    use std::sync::atomic::Ordering;
    let now = Utc.with_ymd_and_hms(2021, 10, 15, 12, 0, 0).unwrap();
    let source = Source {
        topic: Arc::from("cdr.raw"),
        partition: 0,
        offset: 7,
    };
    let mut g = Generator::new(11, Utc.with_ymd_and_hms(2021, 10, 15, 11, 0, 0).unwrap());
    let plain = serde_json::to_string(&g.next_event()).unwrap();
    // The same document with one key written with an escape (`\u0049` is `I`).
    let escaped = plain.replacen("\"eventId\"", "\"event\\u0049d\"", 1);
    assert_ne!(plain, escaped);
    for (input, output) in PIPELINES
        .into_iter()
        .filter(|(input, _)| *input != "protobuf")
    {
        let t = transform(input, output);
        let stats = Stats::default();
        let mut out = Vec::new();
        t.process(&source, plain.as_bytes(), now, &stats, &mut out);
        assert!(!out.is_empty());
        assert_eq!(
            stats.json_slow_path.load(Ordering::Relaxed),
            0,
            "{input} → {output}"
        );
        let mut slow = Vec::new();
        t.process(&source, escaped.as_bytes(), now, &stats, &mut slow);
        assert_eq!(
            stats.json_slow_path.load(Ordering::Relaxed),
            1,
            "{input} → {output}"
        );
        assert_eq!(
            out.iter().map(|o| (&o.topic, &o.key)).collect::<Vec<_>>(),
            slow.iter().map(|o| (&o.topic, &o.key)).collect::<Vec<_>>(),
            "the same records either way"
        );
    }
}

// ---------------------------------------------------------------------------------------
// JSON to JSON: written from the parsed event, against the path through protobuf
// ---------------------------------------------------------------------------------------

fn transform_version(input: &str, output: &str, version: &str) -> Transform {
    let toml = format!(
        "[input]\nformat = \"{input}\"\n[output]\nformat = \"{output}\"\n[purposes.billing]\n[purposes.security]\n[topics]\nmode = \"off\"\n[policy]\nversion = \"{version}\"\n"
    );
    Transform::new(Arc::new(
        Settings::validate(config::parse(&toml, &[]).unwrap()).unwrap(),
    ))
}

/// `json → json` gives, byte for byte, the JSON written (`json::write_json`) from the
/// values of `json → protobuf`, with the same topics, keys, timestamps, headers (but
/// `content-type`), dead letters and counters. Returns how many outputs it compared.
fn same_json_bytes(version: &str, payload: &[u8]) -> Result<usize, TestCaseError> {
    let now = Utc.with_ymd_and_hms(2021, 10, 15, 12, 0, 0).unwrap();
    let source = Source {
        topic: Arc::from("cdr.raw"),
        partition: 0,
        offset: 7,
    };
    let direct = transform_version("json", "json", version);
    let through = transform_version("json", "protobuf", version);
    let (direct_stats, through_stats) = (Stats::default(), Stats::default());
    let (mut got, mut via) = (Vec::new(), Vec::new());
    direct.process(&source, payload, now, &direct_stats, &mut got);
    through.process(&source, payload, now, &through_stats, &mut via);
    prop_assert_eq!(got.len(), via.len());
    let mut compared = 0;
    for (g, v) in got.iter().zip(&via) {
        prop_assert_eq!(&g.topic, &v.topic);
        prop_assert_eq!(&g.key, &v.key);
        if g.topic == *direct.dead_letter_topic() {
            continue;
        }
        prop_assert_eq!(g.timestamp_ms, v.timestamp_ms);
        let strip = |o: &Outgoing| {
            header_list(o)
                .into_iter()
                .filter(|(k, _)| k != "content-type")
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(strip(g), strip(v));
        // The reference: the protobuf output, whose timestamps follow the rule (a leap
        // second as `23:59:59.999999999`, never nanoseconds holding a whole second),
        // written as JSON.
        let pb = CdrEvent::decode(v.value.as_slice()).unwrap();
        prop_assert!(canonical_times(&pb), "a timestamp out of range: {pb:?}");
        let mut want = Vec::new();
        json::write_json(&v.value, &mut want).unwrap();
        prop_assert_eq!(
            String::from_utf8_lossy(&g.value),
            String::from_utf8_lossy(&want),
            "on {}",
            String::from_utf8_lossy(payload)
        );
        compared += 1;
    }
    prop_assert_eq!(direct_stats.consumed(), through_stats.consumed());
    prop_assert_eq!(direct_stats.produced(), through_stats.produced());
    prop_assert_eq!(direct_stats.dropped(), through_stats.dropped());
    prop_assert_eq!(
        direct_stats.dead_letters.lock().unwrap().clone(),
        through_stats.dead_letters.lock().unwrap().clone()
    );
    Ok(compared)
}

const VERSIONS: [&str; 2] = ["R10-14/2021", "R10-14/2012"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Generated events, as serde writes them and mutated (names, number forms, enum
    /// numbers, escapes, whitespace), under both versions of the table.
    #[test]
    fn json_to_json_is_the_bytes_of_the_path_through_protobuf(
        event in any_event(),
        mutations in vec(mutation(), 0..3),
        change in text_change(),
    ) {
        if let Ok(mut v) = serde_json::to_value(&event) {
            let mut inputs = vec![render(&v, &TextChange::None)];
            for m in &mutations {
                apply(&mut v, m);
            }
            inputs.push(render(&v, &change));
            for version in VERSIONS {
                for bytes in &inputs {
                    same_json_bytes(version, bytes)?;
                }
            }
        }
    }
}

#[test]
fn json_to_json_on_the_corpus_and_generated_events() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut g = Generator::new(17, Utc.with_ymd_and_hms(2021, 10, 15, 11, 0, 0).unwrap());
    let mut inputs = Vec::new();
    for _ in 0..500 {
        inputs.push(serde_json::to_vec(&g.next_event()).unwrap());
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        inputs.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let mut compared = 0;
    for version in VERSIONS {
        for bytes in &inputs {
            let r = same_json_bytes(version, bytes);
            assert!(r.is_ok(), "{version}: {r:?}");
            compared += r.unwrap();
        }
    }
    // Most generated events are forwarded to at least one purpose.
    assert!(compared > 500, "{compared} outputs compared");
}

/// Kept fields written in the input in a form other than the writer's — 64-bit integers
/// as numbers, 32-bit ones as strings, timestamps with another fraction width or an
/// offset, enums by number, escapes, whitespace, snake_case names — give the writer's
/// form in the output, byte for byte as through protobuf (the writer copies a member's
/// text only when it is already in that form).
#[test]
fn json_to_json_rewrites_unusual_forms_of_kept_fields() {
    type Change = fn(&mut Value);
    type Rewrite = fn(&str) -> String;
    fn widen(s: &mut Value) {
        if let Some(t) = s.as_str() {
            let t = if let Some(p) = t.strip_suffix('Z') {
                if p.contains('.') {
                    format!("{p}000Z")
                } else {
                    format!("{p}.000Z")
                }
            } else {
                t.to_string()
            };
            *s = Value::String(t);
        }
    }
    fn to_number(s: &mut Value) {
        if let Some(n) = s.as_str().and_then(|t| t.parse::<i64>().ok()) {
            *s = Value::from(n);
        }
    }
    let changes: [(&str, Change); 10] = [
        ("durationMs as a number", |v| {
            to_number(&mut v["timing"]["durationMs"])
        }),
        ("amountMinor as a number", |v| {
            to_number(&mut v["charging"]["amountMinor"])
        }),
        ("bytesUplink as a number", |v| {
            to_number(&mut v["network"]["bytesUplink"])
        }),
        ("port as a string", |v| {
            if let Some(n) = v["calling"]["port"].as_u64() {
                v["calling"]["port"] = Value::String(n.to_string());
            }
        }),
        ("answerTime wider", |v| {
            widen(&mut v["timing"]["answerTime"])
        }),
        ("eventTime wider", |v| widen(&mut v["eventTime"])),
        ("releaseTime with an offset", |v| {
            if let Some(t) = v["timing"]["releaseTime"].as_str() {
                let t = t.replace('Z', "+00:00");
                v["timing"]["releaseTime"] = Value::String(t);
            }
        }),
        ("eventType by number", |v| v["eventType"] = Value::from(1)),
        ("direction by number", |v| v["direction"] = Value::from(1)),
        ("chargeable false", |v| {
            if v["charging"].is_object() {
                v["charging"]["chargeable"] = Value::Bool(false);
            }
        }),
    ];
    let texts: [(&str, Rewrite); 4] = [
        ("an escape", |t| {
            t.replacen("\"msisdn\":\"+", "\"msisdn\":\"\\u002b", 1)
        }),
        ("space before the value", |t| {
            t.replacen("\"imsi\":", "\"imsi\": ", 1)
        }),
        ("space before the colon", |t| {
            t.replacen("\"eventId\":", "\"eventId\" :", 1)
        }),
        ("a snake_case name", |t| {
            t.replacen("\"cellId\":", "\"cell_id\":", 1)
        }),
    ];
    let mut g = Generator::new(29, Utc.with_ymd_and_hms(2021, 10, 15, 11, 0, 0).unwrap());
    let mut compared = 0;
    for _ in 0..60 {
        let base: Value = serde_json::to_value(g.next_event()).unwrap();
        let mut docs = Vec::new();
        for (what, change) in &changes {
            let mut v = base.clone();
            change(&mut v);
            docs.push((*what, serde_json::to_string(&v).unwrap()));
        }
        let plain = serde_json::to_string(&base).unwrap();
        for (what, text) in &texts {
            docs.push((*what, text(&plain)));
        }
        for (what, doc) in &docs {
            for version in VERSIONS {
                let r = same_json_bytes(version, doc.as_bytes());
                assert!(r.is_ok(), "{what}, {version}: {r:?}");
                compared += r.unwrap();
            }
        }
    }
    assert!(compared > 1_000, "{compared} outputs compared");
}

/// Documents in field order (as serde writes the event), with one change the writer
/// would not write — whitespace inside a sub-message, a member at its default value, two
/// members swapped, a member in snake_case — give, byte for byte, what the path through
/// protobuf gives (the writer's form, whatever the input's).
#[test]
fn json_to_json_writes_its_own_form_of_near_canonical_documents() {
    type Rewrite = fn(&str) -> String;
    fn zero_duration(t: &str) -> String {
        let at = "\"durationMs\":\"";
        if let Some(a) = t.find(at) {
            let s = a + at.len();
            if let Some(b) = t[s..].find('"') {
                return format!("{}0{}", &t[..s], &t[s + b..]);
            }
        }
        t.to_string()
    }
    fn swap_times(t: &str) -> String {
        // `"answerTime":"A","releaseTime":"R"` → `"releaseTime":"R","answerTime":"A"`.
        fn member_at(t: &str, key: &str) -> Option<(usize, usize)> {
            let a = t.find(key)?;
            let v = a + key.len();
            Some((a, v + t[v..].find('"')? + 1))
        }
        let answer = member_at(t, "\"answerTime\":\"");
        let release = member_at(t, "\"releaseTime\":\"");
        match (answer, release) {
            (Some((a1, e1)), Some((a2, e2))) if e1 + 1 == a2 => {
                format!("{}{},{}{}", &t[..a1], &t[a2..e2], &t[a1..e1], &t[e2..])
            }
            _ => t.to_string(),
        }
    }
    let rewrites: [(&str, Rewrite); 8] = [
        ("as written", |t| t.to_string()),
        ("space after the brace", |t| {
            t.replacen("\"network\":{", "\"network\":{ ", 1)
        }),
        ("space before the brace", |t| {
            t.replacen("\"charging\":{", "\"charging\": {", 1)
        }),
        ("space before a comma", |t| {
            t.replacen(",\"msisdn\"", " ,\"msisdn\"", 1)
        }),
        ("newline after a comma", |t| {
            t.replacen(",\"releaseTime\"", ",\n\"releaseTime\"", 1)
        }),
        ("a member at its default", zero_duration),
        ("two members swapped", swap_times),
        ("snake_case", |t| {
            t.replacen("\"accountId\":", "\"account_id\":", 1)
        }),
    ];
    let mut g = Generator::new(37, Utc.with_ymd_and_hms(2021, 10, 15, 11, 0, 0).unwrap());
    let (mut compared, mut rewritten) = (0, 0);
    for _ in 0..80 {
        let plain = serde_json::to_string(&g.next_event()).unwrap();
        for (what, rewrite) in &rewrites {
            let doc = rewrite(&plain);
            if *what != "as written" && doc != plain {
                rewritten += 1;
            }
            for version in VERSIONS {
                let r = same_json_bytes(version, doc.as_bytes());
                assert!(r.is_ok(), "{what}, {version}: {r:?}");
                compared += r.unwrap();
            }
        }
    }
    assert!(compared > 1_000, "{compared} outputs compared");
    assert!(rewritten > 300, "{rewritten} documents rewritten");
}
