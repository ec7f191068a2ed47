//! Differential tests of the wire path (`policy::wire::WireFilter`) against its oracle,
//! the struct path (`decode::decode(.., Protobuf)` → `Policy::apply` → protobuf): for
//! generated events, events re-assembled at the wire level (fields repeated, merged
//! sub-messages, explicit defaults, unknown fields and groups, unpacked purposes,
//! non-canonical varints), mutated bytes, the hostile corpus and `gen::Generator`'s
//! events, under both policy versions, both purposes, random removals and keeps:
//! - the wire scanner accepts exactly what prost accepts;
//! - both refuse the same records with the same reason (prost's message for undecodable
//!   input);
//! - per purpose the same decision, and every forwarded value decodes to exactly the
//!   struct path's event (compared field by field, NaN and -0.0 included), with the same
//!   key, timestamp, expiry and headers;
//! - no byte of a sentinel value the struct path drops (content, unknown fields,
//!   extensions, an earlier occurrence of a field) is ever in a wire output.

use cdr_purpose_filter::config::{self, Settings};
use cdr_purpose_filter::decode::{self, InputFormat};
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::pipeline::records::{Outgoing, Source, Transform};
use cdr_purpose_filter::policy::table::{self, Column, Rule};
use cdr_purpose_filter::policy::{
    self, Outcome, Policy, PurposePolicy, Version, DEFAULT_MAX_CLOCK_SKEW,
};
use cdr_purpose_filter::retention::{self, LegalTime, Ttl};
use cdr_purpose_filter::schema::{
    CdrEvent, Charging, Content, Location, Network, Party, Retention, Subscriber,
    SupplementaryService, Terminal, Timestamp, Timing,
};
use cdr_purpose_filter::telemetry::{self, Stats};
use cdr_purpose_filter::wire::{self, WireFilter, WireRefusal, WireScratch};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use prost::Message;
use rdkafka::message::Headers;
use std::sync::Arc;

const CASES: u32 = 768;

const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;
const DAY: i64 = 86_400;

/// A value the struct path never keeps where the generators put it.
const SENTINEL: &str = "ZQXJ-SENTINEL-7781";

/// Five days after R10-14/2012 stopped applying (2021-10-20T22:00Z, Paris): the events
/// of the last 400 days fall on both sides of it, so both versions' tables and the
/// `not_in_force` drop are exercised.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 10, 25, 12, 0, 0).unwrap()
}

fn now_s() -> i64 {
    now().timestamp()
}

/// 2021-10-20T22:00:00Z and 2021-10-21T00:00:00Z.
const R2012_ENDS_PARIS: i64 = 1_634_767_200;
const R2012_ENDS_UTC: i64 = 1_634_774_400;

// ---------------------------------------------------------------------------------------
// Events (the style of tests/policy_props.rs)
// ---------------------------------------------------------------------------------------

const SAMPLES: &[&str] = &[
    "+33612345678",
    "208011234567890",
    "Ton code est 4821",
    "日本語のメッセージ",
    "*#21#",
    "10.0.0.1",
    "EUTRAN",
];

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => Just(String::new()),
        4 => "[A-Za-z0-9+.:/ -]{1,20}",
        3 => "\\PC{1,16}",
        1 => any::<String>(),
        2 => prop::sample::select(SAMPLES).prop_map(str::to_string),
    ]
    .boxed()
}

fn timestamp(seconds: i64, nanos: i32) -> Timestamp {
    Timestamp { seconds, nanos }
}

fn any_timestamp() -> BoxedStrategy<Timestamp> {
    let n = now_s();
    prop_oneof![
        6 => (n - 400 * DAY..=n, 0..1_000_000_000i32),
        2 => (MIN_SECONDS..=MAX_SECONDS, 0..1_000_000_000i32),
        1 => (any::<i64>(), any::<i32>()),
        1 => (Just(0i64), Just(0i32)),
    ]
    .prop_map(|(s, ns)| timestamp(s, ns))
    .boxed()
}

fn event_time() -> BoxedStrategy<Option<Timestamp>> {
    let n = now_s();
    let skew = DEFAULT_MAX_CLOCK_SKEW.num_seconds();
    prop_oneof![
        1 => Just(None),
        20 => (n - 400 * DAY..=n, 0..1_000_000_000i32).prop_map(|(s, ns)| Some(timestamp(s, ns))),
        2 => prop::sample::select(vec![
            timestamp(n, 0),
            timestamp(n + skew, 0),
            timestamp(n + skew, 1),
            timestamp(n + skew + 1, 0),
            timestamp(n - 365 * DAY, 0),
            timestamp(n - 92 * DAY, 0),
            timestamp(MAX_SECONDS, 999_999_999),
            timestamp(MIN_SECONDS, 0),
            // Where R10-14/2012 stops applying: the start of 21 October 2021 in Paris,
            // in UTC (and in Cayenne, UTC's comes first), and just before each.
            timestamp(R2012_ENDS_PARIS - 1, 999_999_999),
            timestamp(R2012_ENDS_PARIS, 0),
            timestamp(R2012_ENDS_UTC - 1, 999_999_999),
            timestamp(R2012_ENDS_UTC, 0),
        ])
        .prop_map(Some),
        2 => any_timestamp().prop_map(Some),
    ]
    .boxed()
}

fn enum_value(known: std::ops::RangeInclusive<i32>) -> BoxedStrategy<i32> {
    prop_oneof![3 => known, 1 => -1..8i32, 1 => any::<i32>()].boxed()
}

fn any_f64() -> BoxedStrategy<f64> {
    prop_oneof![
        4 => -90.0..90.0f64,
        1 => any::<f64>(),
        1 => prop::sample::select(vec![0.0, -0.0, f64::NAN, f64::INFINITY]),
    ]
    .boxed()
}

fn any_party() -> impl Strategy<Value = Option<Party>> {
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
    let event_id = prop_oneof![1 => Just(String::new()), 9 => "\\PC{1,24}"];
    let head = (
        event_id,
        event_time(),
        enum_value(0..=5),
        enum_value(0..=4),
        prop_oneof![2 => Just(vec![]), 1 => vec(prop_oneof![3 => 0..4i32, 1 => any::<i32>()], 0..3)],
    );
    let served = option::weighted(
        0.85,
        (text(), text(), text(), text()).prop_map(|(imsi, msisdn, account_id, ue_ip)| Subscriber {
            imsi,
            msisdn,
            account_id,
            ue_ip,
        }),
    );
    let terminal = option::weighted(
        0.7,
        (text(), text()).prop_map(|(imei, imeisv)| Terminal { imei, imeisv }),
    );
    let timing = option::weighted(
        0.8,
        (
            option::of(any_timestamp()),
            option::of(any_timestamp()),
            prop_oneof![Just(0u64), 1..3_600_000u64, any::<u64>()],
        )
            .prop_map(|(answer_time, release_time, duration_ms)| Timing {
                answer_time,
                release_time,
                duration_ms,
            }),
    );
    let parties = (served, terminal, any_party(), any_party(), timing);
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
            .prop_map(
                |(
                    (recording_entity, cause_for_term, rat_type, basic_service, call_reference),
                    (charging_id, apn, bytes_uplink, bytes_downlink),
                )| Network {
                    recording_entity,
                    cause_for_term,
                    rat_type,
                    basic_service,
                    call_reference,
                    charging_id,
                    apn,
                    bytes_uplink,
                    bytes_downlink,
                },
            ),
    );
    let services = vec(
        (text(), text()).prop_map(|(code, provider)| SupplementaryService { code, provider }),
        0..3,
    );
    let location = option::weighted(
        0.75,
        (text(), text(), text(), text(), any_f64(), any_f64()).prop_map(
            |(mcc, mnc, lac, cell_id, latitude, longitude)| Location {
                mcc,
                mnc,
                lac,
                cell_id,
                latitude,
                longitude,
            },
        ),
    );
    let charging = option::weighted(
        0.85,
        (
            prop_oneof![2 => Just(true), 1 => Just(false)],
            text(),
            prop_oneof![Just(0i64), any::<i64>()],
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
    );
    let content = option::weighted(
        0.7,
        (text(), text(), text(), text(), text()).prop_map(
            |(sms_text, ussd_string, url, dns_query, sni)| Content {
                sms_text,
                ussd_string,
                url,
                dns_query,
                sni,
            },
        ),
    );
    let retention = option::weighted(
        0.3,
        (-1..4i32, option::of(any_timestamp()), text(), text()).prop_map(
            |(purpose, expires_at, legal_basis, policy_version)| Retention {
                purpose,
                expires_at,
                legal_basis,
                policy_version,
            },
        ),
    );
    let rest = (
        network,
        services,
        location,
        charging,
        content,
        btree_map(text(), text(), 0..3),
        retention,
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
// Policies
// ---------------------------------------------------------------------------------------

fn removals_and_keeps(
    version: Version,
) -> BoxedStrategy<(
    Vec<&'static table::FieldSpec>,
    Vec<&'static table::FieldSpec>,
)> {
    let removable: Vec<&'static table::FieldSpec> =
        version.fields().iter().filter(|f| !f.required).collect();
    let optional: Vec<&'static table::FieldSpec> = version
        .fields()
        .iter()
        .filter(|f| {
            Column::ALL
                .iter()
                .any(|c| f.cell(*c).rule == Rule::Optional)
        })
        .collect();
    let removed = prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::sample::subsequence(removable.clone(), 0..=4),
        1 => prop::sample::subsequence(removable, 0..=20),
    ];
    let kept = prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::sample::subsequence(optional.clone(), 0..=optional.len()),
    ];
    (removed, kept)
        .prop_map(
            |(removed, kept): (Vec<&'static table::FieldSpec>, Vec<_>)| {
                let kept = kept
                    .into_iter()
                    .filter(|k: &&table::FieldSpec| !removed.iter().any(|r| r.path == k.path))
                    .collect();
                (removed, kept)
            },
        )
        .boxed()
}

const ZONES: [&str; 3] = ["Europe/Paris", "UTC", "Indian/Reunion"];

fn any_policy() -> impl Strategy<Value = Policy> {
    (
        prop::sample::select(Version::ALL.to_vec()),
        prop::sample::select(ZONES.to_vec()),
    )
        .prop_flat_map(|(version, zone)| any_policy_of(version, LegalTime::parse(zone).unwrap()))
}

fn any_policy_of(version: Version, legal_time: LegalTime) -> impl Strategy<Value = Policy> {
    let billing = option::weighted(
        0.85,
        (
            prop::sample::select(vec![
                Ttl::Months(12),
                Ttl::Fixed(Duration::days(30)),
                Ttl::Fixed(Duration::hours(1)),
                Ttl::Months(13),
            ]),
            removals_and_keeps(version),
        ),
    );
    let security = option::weighted(
        0.85,
        (
            prop::sample::select(vec![
                Ttl::Months(3),
                Ttl::Fixed(Duration::days(7)),
                Ttl::Fixed(Duration::days(92)),
            ]),
            removals_and_keeps(version),
        ),
    );
    let configured = (billing, security, any::<bool>())
        .prop_filter("at least one purpose", |(b, s, _)| {
            b.is_some() || s.is_some()
        })
        .prop_map(move |(b, s, security_first)| {
            let mut purposes = Vec::new();
            if let Some((ttl, (removed, kept))) = b {
                purposes.push(PurposePolicy::new(
                    version,
                    policy::BILLING,
                    ttl,
                    removed,
                    kept,
                ));
            }
            if let Some((ttl, (removed, kept))) = s {
                purposes.push(PurposePolicy::new(
                    version,
                    policy::SECURITY,
                    ttl,
                    removed,
                    kept,
                ));
            }
            if security_first {
                purposes.reverse();
            }
            Policy {
                version,
                legal_time,
                purposes,
                max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            }
        });
    let maximum = Policy {
        legal_time,
        ..Policy::legal_maximum_of(version)
    };
    prop_oneof![1 => Just(maximum), 3 => configured]
}

// ---------------------------------------------------------------------------------------
// Wire-level assembly
// ---------------------------------------------------------------------------------------

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint padded with `extra` continuation bytes (still at most 10 bytes: prost reads it).
fn put_overlong(v: u64, extra: usize, out: &mut Vec<u8>) {
    let mut bytes = Vec::new();
    put_varint(v, &mut bytes);
    let extra = extra.min(10 - bytes.len());
    if extra == 0 {
        out.extend(bytes);
        return;
    }
    let last = bytes.len() - 1;
    bytes[last] |= 0x80;
    bytes.extend(std::iter::repeat_n(0x80, extra - 1));
    bytes.push(0x00);
    out.extend(bytes);
}

fn field(num: u32, wire_type: u8, out: &mut Vec<u8>) {
    put_varint(u64::from(num << 3 | u32::from(wire_type)), out);
}

fn delimited(num: u32, body: &[u8], out: &mut Vec<u8>) {
    field(num, 2, out);
    put_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// An unknown field (numbers the schema does not use), any wire type, groups nested.
fn unknown_field() -> BoxedStrategy<Vec<u8>> {
    (
        prop_oneof![18u32..40, 1000u32..2000, Just((1 << 29) - 1)],
        0u8..6,
        0usize..4,
    )
        .prop_map(|(num, wt, depth)| {
            let mut out = Vec::new();
            let wt = if wt == 4 { 3 } else { wt };
            match wt {
                0 => {
                    field(num, 0, &mut out);
                    put_varint(u64::MAX, &mut out);
                }
                1 => {
                    field(num, 1, &mut out);
                    out.extend_from_slice(&[7; 8]);
                }
                2 => delimited(num, SENTINEL.as_bytes(), &mut out),
                3 => {
                    for d in 0..=depth {
                        field(num + d as u32, 3, &mut out);
                    }
                    delimited(num, SENTINEL.as_bytes(), &mut out);
                    for d in (0..=depth).rev() {
                        field(num + d as u32, 4, &mut out);
                    }
                }
                _ => {
                    field(num, 5, &mut out);
                    out.extend_from_slice(&[9; 4]);
                }
            }
            out
        })
        .boxed()
}

/// A fragment of a record; a record is a concatenation of fragments (protobuf merges
/// them: later scalars win, sub-messages merge, repeated fields append).
fn fragment() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        // A whole event, or the same with the sentinel where it never goes out.
        4 => any_event().prop_map(|e| e.encode_to_vec()),
        1 => any_event().prop_map(|mut e| {
            e.content.get_or_insert_with(Default::default).sms_text = SENTINEL.into();
            e.extensions.insert(SENTINEL.into(), SENTINEL.into());
            e.encode_to_vec()
        }),
        // A sub-message with an unknown field (and an earlier, overridden value).
        2 => (6u32..=15, 1u32..=9, unknown_field()).prop_map(|(msg, num, unknown)| {
            let mut body = Vec::new();
            delimited(num, SENTINEL.as_bytes(), &mut body);
            body.extend(unknown);
            let mut out = Vec::new();
            delimited(msg, &body, &mut out);
            out
        }),
        // Explicit default values in sub-messages (proto3: the same as absent).
        2 => (6u32..=14, 1u32..=9, 0u8..3).prop_map(|(msg, num, kind)| {
            let mut body = Vec::new();
            match kind {
                0 => delimited(num, b"", &mut body),
                1 => {
                    field(num, 0, &mut body);
                    body.push(0);
                }
                _ => {
                    field(num, 1, &mut body);
                    body.extend_from_slice(&(-0.0f64).to_le_bytes());
                }
            }
            let mut out = Vec::new();
            delimited(msg, &body, &mut out);
            out
        }),
        // Empty sub-messages and empty timestamps.
        1 => (2u32..=17).prop_map(|msg| {
            let mut out = Vec::new();
            delimited(msg, b"", &mut out);
            out
        }),
        1 => Just(vec![0x52, 0x02, 0x0a, 0x00]),
        // Unknown top-level fields.
        2 => unknown_field(),
        // declared_purposes unpacked, any value.
        1 => any::<u64>().prop_map(|v| {
            let mut out = vec![0x28];
            put_varint(v % 4, &mut out);
            out
        }),
        1 => prop_oneof![Just(1u64), Just(2), Just(1 << 32 | 1), Just(u64::MAX)].prop_map(|v| {
            let mut out = vec![0x28];
            put_varint(v, &mut out);
            out
        }),
        // Scalars with overlong keys and values, wrapping enum values.
        2 => (1u32..=4, 0usize..5, prop_oneof![0u64..6, Just(1 << 32), Just(u64::MAX), any::<u64>()], "[a-z]{0,6}").prop_map(|(num, extra, v, s)| {
            let mut out = Vec::new();
            if num == 1 {
                put_overlong(u64::from(num << 3 | 2), extra, &mut out);
                put_overlong(s.len() as u64, extra, &mut out);
                out.extend_from_slice(s.as_bytes());
            } else if num == 2 {
                put_overlong(u64::from(num << 3 | 2), extra, &mut out);
                let mut ts = Vec::new();
                field(1, 0, &mut ts);
                put_overlong(now_s() as u64 - v % 1000, extra, &mut ts);
                put_varint(ts.len() as u64, &mut out);
                out.extend(ts);
            } else {
                put_overlong(u64::from(num << 3), extra, &mut out);
                put_overlong(v, extra, &mut out);
            }
            out
        }),
        // A nested scalar with an overlong value (port, rating_group wrapping to 0).
        1 => (prop_oneof![Just((8u32, 3u32)), Just((9, 3)), Just((14, 5)), Just((14, 1)), Just((10, 3))], prop_oneof![Just(1u64 << 32), Just(5), Just(0), any::<u64>()], 0usize..4).prop_map(|((msg, num), v, extra)| {
            let mut body = Vec::new();
            field(num, 0, &mut body);
            put_overlong(v, extra, &mut body);
            let mut out = Vec::new();
            delimited(msg, &body, &mut out);
            out
        }),
    ]
    .boxed()
}

/// A record: fragments, sometimes mutated at the byte level.
fn record() -> BoxedStrategy<Vec<u8>> {
    let assembled = vec(fragment(), 1..4).prop_map(|f| f.concat());
    prop_oneof![
        6 => assembled.clone(),
        2 => (assembled, any::<prop::sample::Index>(), any::<u8>(), 0u8..4).prop_map(
            |(mut b, at, byte, how)| {
                if b.is_empty() {
                    return b;
                }
                let i = at.index(b.len());
                match how {
                    0 => b[i] = byte,
                    1 => b.truncate(i),
                    2 => b.insert(i, byte),
                    _ => {
                        b.remove(i);
                    }
                }
                b
            }
        ),
        1 => vec(any::<u8>(), 0..64),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// The differential
// ---------------------------------------------------------------------------------------

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Checks the wire path against the struct path on one record.
fn differential(
    policy: &Policy,
    filter: &WireFilter,
    input: &[u8],
    now: DateTime<Utc>,
    scratch: &mut WireScratch,
) -> Result<(), TestCaseError> {
    let oracle = decode::decode(input, InputFormat::Protobuf);
    prop_assert_eq!(
        wire::scans(input),
        input.is_empty() || oracle.is_ok(),
        "the scanner and prost disagree on acceptance"
    );
    let wire = filter.apply(input, now, scratch);
    prop_assert_eq!(scratch.disagreements, 0);
    let event = match oracle {
        Err(e) => {
            prop_assert_eq!(wire, Err(WireRefusal::Undecodable(e)));
            return Ok(());
        }
        Ok((event, _)) => event,
    };
    let evaluation = policy.apply(&event, now);
    if let Some(r) = evaluation.refusal() {
        prop_assert_eq!(wire, Err(WireRefusal::Refused(r)));
        return Ok(());
    }
    prop_assert_eq!(wire, Ok(()));
    prop_assert_eq!(scratch.presence(), telemetry::presence(&event));
    prop_assert_eq!(scratch.records().len(), evaluation.outcomes.len());
    for ((purpose, outcome), r) in evaluation.outcomes.iter().zip(scratch.records()) {
        prop_assert_eq!(r.purpose, *purpose);
        match outcome {
            Outcome::Drop(reason) => prop_assert_eq!(r.outcome, Err(*reason)),
            Outcome::Forward(f) => {
                prop_assert_eq!(r.outcome, Ok(()));
                let decoded = CdrEvent::decode(r.value.as_slice());
                prop_assert!(decoded.is_ok(), "the wire output does not decode");
                let decoded = decoded.unwrap();
                // Debug: field by field, NaN equal to NaN, -0.0 different from 0.0.
                prop_assert_eq!(format!("{decoded:?}"), format!("{:?}", f.event));
                let mut canonical = Vec::new();
                encode::encode_event(&f.event, OutputFormat::Protobuf, &mut canonical).unwrap();
                prop_assert_eq!(decoded.encode_to_vec(), canonical.clone());
                prop_assert_eq!(
                    contains(&r.value, SENTINEL.as_bytes()),
                    contains(&canonical, SENTINEL.as_bytes()),
                    "a dropped value reached the output bytes"
                );
                prop_assert_eq!(r.presence(), telemetry::presence(&f.event));
                prop_assert_eq!(scratch.key(), f.key.as_str());
                prop_assert_eq!(r.timestamp_ms, f.timestamp_ms);
                prop_assert_eq!(r.expires_at(), f.expires_at);
                prop_assert_eq!(r.expires_at_text(), retention::rfc3339(f.expires_at));
                prop_assert_eq!(r.legal_basis, f.legal_basis);
                prop_assert_eq!(r.policy_version, f.policy_version);
                let struct_headers = encode::headers(f, OutputFormat::Protobuf);
                for ((name, value), (sname, svalue)) in r
                    .headers(OutputFormat::Protobuf)
                    .iter()
                    .zip(&struct_headers)
                {
                    prop_assert_eq!(name, sname);
                    prop_assert_eq!(*value, svalue.as_ref());
                }
            }
        }
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Generated events, encoded by prost.
    #[test]
    fn generated_events_match_the_struct_path(event in any_event(), policy in any_policy()) {
        let filter = WireFilter::new(&policy).unwrap();
        let mut scratch = WireScratch::default();
        differential(&policy, &filter, &event.encode_to_vec(), now(), &mut scratch)?;
    }

    /// Records assembled and mutated at the wire level; one scratch reused across them.
    #[test]
    fn wire_level_records_match_the_struct_path(records in vec(record(), 1..4), policy in any_policy()) {
        let filter = WireFilter::new(&policy).unwrap();
        let mut scratch = WireScratch::default();
        for r in &records {
            differential(&policy, &filter, r, now(), &mut scratch)?;
        }
    }
}

fn every_policy() -> Vec<Policy> {
    let mut policies = Vec::new();
    for version in Version::ALL {
        policies.push(Policy::legal_maximum_of(version));
        // Every optional field kept, and a policy with many removals.
        let optional: Vec<_> = version
            .fields()
            .iter()
            .filter(|f| {
                Column::ALL
                    .iter()
                    .any(|c| f.cell(*c).rule == Rule::Optional)
            })
            .collect();
        let removed: Vec<_> = [
            "served.msisdn",
            "calling",
            "network.apn",
            "supplementary_services.provider",
            "location.cell_id",
            "charging.rating_group",
        ]
        .iter()
        .flat_map(|n| version.select(n))
        .collect();
        policies.push(Policy {
            purposes: vec![
                PurposePolicy::new(
                    version,
                    policy::BILLING,
                    Ttl::Months(12),
                    vec![],
                    optional.clone(),
                ),
                PurposePolicy::new(version, policy::SECURITY, Ttl::Months(3), vec![], optional),
            ],
            ..Policy::legal_maximum_of(version)
        });
        policies.push(Policy {
            purposes: vec![
                PurposePolicy::new(
                    version,
                    policy::SECURITY,
                    Ttl::Months(3),
                    removed.clone(),
                    vec![],
                ),
                PurposePolicy::new(version, policy::BILLING, Ttl::Months(12), removed, vec![]),
            ],
            ..Policy::legal_maximum_of(version)
        });
    }
    policies
}

/// Every record of the hostile corpus (both versions, several policies): the same
/// outcome; and the corpus's expectations hold for the wire path too.
#[test]
fn hostile_corpus_matches_the_struct_path() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let expect = std::fs::read_to_string(format!("{dir}/expect.tsv")).unwrap();
    let mut seen = 0;
    for policy in every_policy() {
        let filter = WireFilter::new(&policy).unwrap();
        let mut scratch = WireScratch::default();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            if !name.ends_with(".bin") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let result = differential(&policy, &filter, &bytes, Utc::now(), &mut scratch);
            assert!(result.is_ok(), "{name}: {result:?}");
            let expected = expect
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}\t")))
                .unwrap_or_else(|| panic!("{name} has no expectation"));
            let got = filter.apply(&bytes, Utc::now(), &mut scratch);
            match expected {
                "undecodable" => assert!(
                    matches!(got, Err(WireRefusal::Undecodable(_))),
                    "{name}: {got:?}"
                ),
                "accepted" => assert_eq!(got, Ok(()), "{name}"),
                other => assert!(
                    matches!(&got, Err(WireRefusal::Refused(r)) if r.as_str() == other),
                    "{name}: expected {other}, got {got:?}"
                ),
            }
            seen += 1;
        }
    }
    assert!(seen >= 6 * 25, "the corpus was read ({seen} records)");
}

/// `gen::Generator`'s events (those of the benchmarks and `demo`), many seeds.
#[test]
fn generator_events_match_the_struct_path() {
    let now = Utc::now();
    for policy in every_policy() {
        let filter = WireFilter::new(&policy).unwrap();
        let mut scratch = WireScratch::default();
        for seed in 0..4 {
            let mut g = Generator::new(seed, now);
            for _ in 0..500 {
                let bytes = g.next_event().encode_to_vec();
                let result = differential(&policy, &filter, &bytes, now, &mut scratch);
                assert!(result.is_ok(), "{result:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// The `cdr-expires-at` value written without allocating is `retention::rfc3339`'s.
    #[test]
    fn expiry_header_text_matches(seconds in MIN_SECONDS - 400 * DAY..=MAX_SECONDS + 400 * DAY, nanos in prop_oneof![Just(0u32), 0..1000u32, Just(5_000_000), 0..1_000_000_000u32]) {
        let t = Utc.timestamp_opt(seconds, nanos).unwrap();
        let mut buf = [0u8; wire::RFC3339_MAX];
        let n = wire::rfc3339(t, &mut buf);
        prop_assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), retention::rfc3339(t));
    }
}

/// A policy keeping every optional field compiles for the wire (every copied row is known).
#[test]
fn a_policy_keeping_everything_compiles() {
    for version in Version::ALL {
        let every: Vec<_> = version.fields().iter().collect();
        let keep_all = Policy {
            purposes: vec![PurposePolicy::new(
                version,
                policy::BILLING,
                Ttl::Months(12),
                vec![],
                every,
            )],
            ..Policy::legal_maximum_of(version)
        };
        assert!(WireFilter::new(&keep_all).is_ok(), "{version:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The pipeline's transform: `process_wire` against `process_struct` (the oracle)
// ---------------------------------------------------------------------------------------

fn headers(o: &Outgoing) -> Vec<(String, Vec<u8>)> {
    o.headers
        .iter()
        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
        .collect()
}

/// The same records out of `process_wire` as out of `process_struct`: topics, keys, values
/// (decoded), headers, timestamps; dead letters with the same reason and message.
fn same_records(
    transform: &Transform,
    filter: &WireFilter,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    let stats = Stats::default();
    let source = Source {
        topic: Arc::from("cdr.raw"),
        partition: 0,
        offset: 7,
    };
    let (mut old, mut new) = (Vec::new(), Vec::new());
    transform.process_struct(&source, payload, now, &stats, &mut old);
    transform.process_wire(filter, &source, payload, now, &stats, &mut new);
    prop_assert_eq!(old.len(), new.len());
    for (o, n) in old.iter().zip(&new) {
        prop_assert_eq!(&o.topic, &n.topic);
        prop_assert_eq!(&o.key, &n.key);
        let dead_letter = o.topic == *transform.dead_letter_topic();
        if dead_letter {
            // The same pointer (reason, message, schema id of an unexpected schema).
            prop_assert_eq!(&o.value, &n.value);
            // The record's timestamp is the time of writing.
            let (oh, nh) = (headers(o), headers(n));
            prop_assert_eq!(oh.len(), nh.len());
            for (a, b) in oh.iter().zip(&nh) {
                prop_assert_eq!(&a.0, &b.0);
                if !a.0.contains("time") {
                    prop_assert_eq!(&a.1, &b.1, "header {}", a.0);
                }
            }
        } else {
            prop_assert_eq!(o.timestamp_ms, n.timestamp_ms);
            prop_assert_eq!(headers(o), headers(n));
            // `output.framing`: the same Schema Registry prefix, then the message.
            let (a, b) = (message_of(&o.value), message_of(&n.value));
            prop_assert_eq!(a.0, b.0, "Schema Registry prefix");
            let (a, b) = (
                CdrEvent::decode(a.1).unwrap(),
                CdrEvent::decode(b.1).unwrap(),
            );
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }
    Ok(())
}

/// An output value's Schema Registry prefix (empty when bare: no `CdrEvent` starts with
/// `0x00`) and its message.
fn message_of(value: &[u8]) -> (&[u8], &[u8]) {
    use cdr_purpose_filter::framing::{is_framed, unframe, BodyKind};
    if !is_framed(value) {
        return (&[], value);
    }
    let body = unframe(value, BodyKind::Protobuf).unwrap().body;
    value.split_at(value.len() - body.len())
}

fn transform(input: &str) -> (Transform, WireFilter) {
    framed_transform(input, "")
}

/// `input.format = input`, then `extra` in `[input]`; an `[output]` line of `extra` after
/// `##` (e.g. `"schema_ids = [5]##framing = \"confluent\"\nschema_id = 77"`).
fn framed_transform(input: &str, extra: &str) -> (Transform, WireFilter) {
    let (input_extra, output_extra) = extra.split_once("##").unwrap_or((extra, ""));
    let toml = format!(
        "[input]\nformat = \"{input}\"\n{input_extra}\n[output]\nformat = \"protobuf\"\n{output_extra}\n[purposes.billing]\n[purposes.security]\n[topics]\nmode = \"off\"\n"
    );
    let settings = Arc::new(Settings::validate(config::parse(&toml, &[]).unwrap()).unwrap());
    let filter = WireFilter::new(&settings.policy).unwrap();
    (Transform::new(settings), filter)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn process_wire_gives_the_records_of_process(records in vec(record(), 1..4)) {
        for input in ["protobuf", "auto"] {
            let (t, filter) = transform(input);
            for r in &records {
                same_records(&t, &filter, r, now())?;
            }
        }
    }
}

#[test]
fn process_wire_on_the_corpus_and_generated_events() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let now = Utc::now();
    let mut g = Generator::new(3, now);
    let mut inputs: Vec<Vec<u8>> = (0..300).map(|_| g.next_event().encode_to_vec()).collect();
    for entry in std::fs::read_dir(dir).unwrap() {
        inputs.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    for input in ["protobuf", "auto", "json"] {
        let (t, filter) = transform(input);
        for bytes in &inputs {
            let r = same_records(&t, &filter, bytes, now);
            assert!(r.is_ok(), "{input}: {r:?}");
        }
    }
}

/// Schema Registry framing in, out, or both, takes the wire path and gives the struct
/// path's records: framed and bare inputs (generated events, the hostile corpus), an
/// unexpected schema id, truncated headers and indexes, an empty body, framed JSON.
#[test]
fn framed_records_on_the_wire_path_match_the_struct_path() {
    use cdr_purpose_filter::framing::{frame, BodyKind};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let now = Utc::now();
    let mut g = Generator::new(11, now);
    let mut bare: Vec<Vec<u8>> = (0..150).map(|_| g.next_event().encode_to_vec()).collect();
    for entry in std::fs::read_dir(dir).unwrap() {
        bare.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let mut inputs = Vec::new();
    for (i, b) in bare.iter().enumerate() {
        let id = [5, 6, 9][i % 3];
        let indexes: &[i32] = if i % 2 == 0 { &[0] } else { &[10] };
        inputs.push(frame(id, BodyKind::Protobuf, indexes, b));
        inputs.push(b.clone());
    }
    let json = serde_json::to_vec(&g.next_event()).unwrap();
    inputs.push(frame(5, BodyKind::Json, &[], &json));
    inputs.push(frame(5, BodyKind::Protobuf, &[0], &[]));
    inputs.push(vec![0, 0, 0]);
    inputs.push(vec![0, 0, 0, 0, 5, 0x7f]);
    let configs = [
        ("confluent-protobuf", ""),
        ("confluent-protobuf", "schema_ids = [5, 9]"),
        (
            "auto",
            "schema_ids = [5]##framing = \"confluent\"\nschema_id = 77",
        ),
        ("protobuf", "##framing = \"confluent\"\nschema_id = 77"),
        (
            "confluent-protobuf",
            "##framing = \"confluent\"\nschema_id = 77",
        ),
    ];
    let mut framed_on_wire = 0;
    for (input, extra) in configs {
        let (t, filter) = framed_transform(input, extra);
        for bytes in &inputs {
            if cdr_purpose_filter::framing::is_framed(bytes) && t.wire_applies(bytes) {
                framed_on_wire += 1;
            }
            let r = same_records(&t, &filter, bytes, now);
            assert!(r.is_ok(), "{input} {extra}: {r:?}");
        }
        // With `output.framing`, the wire path's values carry the prefix.
        if extra.contains("framing") {
            let mut out = Vec::new();
            let source = Source {
                topic: Arc::from("cdr.raw"),
                partition: 0,
                offset: 1,
            };
            let record = &inputs[if input == "protobuf" { 1 } else { 0 }];
            let stats = Stats::default();
            t.process_wire(&filter, &source, record, now, &stats, &mut out);
            out.retain(|o| o.topic != *t.dead_letter_topic());
            assert!(!out.is_empty());
            for o in &out {
                assert_eq!(
                    message_of(&o.value).0,
                    [0, 0, 0, 0, 77, 2, 20],
                    "{input} {extra}"
                );
            }
        }
    }
    assert!(framed_on_wire > 400, "{framed_on_wire}");
}
