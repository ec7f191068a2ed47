//! Writes the hostile-input corpus of `tests/hostile.rs` into `tests/corpus/` (or the
//! folder given as the only argument):
//!
//! ```text
//! cargo run --example make_hostile_corpus [-- DIR]
//! ```
//!
//! Deterministic: run it again and the files are the same, byte for byte
//! (`tests/hostile.rs` regenerates the corpus in a temporary folder and compares). Each
//! file is one Kafka record value; `expect.tsv` says what the filter must do with it:
//! `undecodable`, `invalid` or `future_event_time` (a dead letter with that reason) or
//! `accepted` (decoded and judged by the policy: forwarded and/or dropped with a counted
//! reason).
//!
//! The protobuf records are the crate's own prost types (`cdr_purpose_filter::schema`),
//! encoded, then — for the malformed ones — truncated, extended with raw fields or
//! patched byte by byte: the schema exists once, in `proto/cdr/v1/cdr.proto`. The JSON
//! records are hostile *text* (duplicate keys, broken UTF-8, deep nesting), written as
//! such. The identifiers are recognisable fakes, so that a leak is easy to grep for.
//!
//! Notes on some outcomes: the year 1 is in range (then expired: a counted drop);
//! "0000" parses as JSON but is out of range (invalid), in any timestamp; a leap second
//! is read as `23:59:59.999999999` (docs/timestamps.md), so the events holding one are
//! accepted; an unknown enum *number* (event type, direction) is refused: by the policy
//! from protobuf (invalid), by the JSON parser from JSON (undecodable); JSON `null` for a
//! map is refused by the JSON parser (proto3 JSON would read it as empty).

use cdr_purpose_filter::schema::{
    CdrEvent, Charging, Content, Party, Retention, Subscriber, Terminal, Timestamp, Timing,
};
use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message;
use std::path::{Path, PathBuf};

#[path = "json.rs"]
mod json;

/// 2026-11-28T10:00:00Z: an event that may be expired later is still "accepted".
const T: i64 = 1_795_860_000;
const MSISDN: &str = "+33699001122";
const IMSI: &str = "208019900112233";
const IMEI: &str = "359881234567897";
const IP: &str = "192.0.2.77";
const SMS: &str = "hostile-sms-text-do-not-leak";

/// One file of the corpus.
pub struct Case {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// The expected outcome, as `expect.tsv` lists it.
    pub expect: &'static str,
}

/// The header line of `expect.tsv`.
pub const MANIFEST_HEADER: &str =
    "# file\texpected outcome (written by examples/make_hostile_corpus/)\n";

fn ts(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// A complete event full of identifiers (every field the hostile tests look for).
fn event(event_id: &str, seconds: i64) -> CdrEvent {
    CdrEvent {
        event_id: event_id.into(),
        event_time: Some(ts(seconds)),
        event_type: 1,
        direction: 1,
        served: Some(Subscriber {
            imsi: IMSI.into(),
            msisdn: MSISDN.into(),
            ue_ip: IP.into(),
            ..Default::default()
        }),
        terminal: Some(Terminal {
            imei: IMEI.into(),
            ..Default::default()
        }),
        calling: Some(Party {
            number: MSISDN.into(),
            ip: IP.into(),
            ..Default::default()
        }),
        charging: Some(Charging {
            chargeable: true,
            ..Default::default()
        }),
        content: Some(Content {
            sms_text: SMS.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An event with only these fields.
fn only(edit: impl FnOnce(&mut CdrEvent)) -> CdrEvent {
    let mut e = CdrEvent::default();
    edit(&mut e);
    e
}

/// A field key (number and wire type), raw: also for the numbers and wire types the
/// schema does not have.
fn key(field: u32, wire: WireType) -> Vec<u8> {
    let mut b = Vec::new();
    if field == 0 {
        encode_varint(wire as u64, &mut b);
    } else {
        encode_key(field, wire, &mut b);
    }
    b
}

fn varint(n: u64) -> Vec<u8> {
    let mut b = Vec::new();
    encode_varint(n, &mut b);
    b
}

/// `bytes` with the only occurrence of `placeholder` replaced by `with` (same length, so
/// that the length prefixes stay right): how invalid UTF-8 gets into a string field.
fn patch(bytes: Vec<u8>, placeholder: &[u8], with: &[u8]) -> Vec<u8> {
    assert_eq!(placeholder.len(), with.len());
    let at: Vec<usize> = bytes
        .windows(placeholder.len())
        .enumerate()
        .filter(|(_, w)| *w == placeholder)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "one placeholder");
    let mut bytes = bytes;
    bytes[at[0]..at[0] + with.len()].copy_from_slice(with);
    bytes
}

fn pb(name: &'static str, bytes: Vec<u8>, expect: &'static str) -> Case {
    Case {
        name,
        bytes,
        expect,
    }
}

/// Python's `random.Random(7)` (MT19937 seeded by `init_by_array`) drawing
/// `randrange(256)`: the corpus's garbage bytes were first drawn that way.
struct Mt19937 {
    mt: [u32; 624],
    i: usize,
}

impl Mt19937 {
    fn seeded(key: &[u32]) -> Mt19937 {
        let mut mt = [0u32; 624];
        mt[0] = 19_650_218;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..624.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..623 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        Mt19937 { mt, i: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.i >= 624 {
            for k in 0..624 {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % 624] & 0x7fff_ffff);
                let mut v = self.mt[(k + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.mt[k] = v;
            }
            self.i = 0;
        }
        let mut y = self.mt[self.i];
        self.i += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `randrange(256)`: 9 random bits, drawn again while they are 256 or more.
    fn byte(&mut self) -> u8 {
        loop {
            let r = self.next_u32() >> (32 - 9);
            if r < 256 {
                return r as u8;
            }
        }
    }
}

/// Every file of the corpus, in the order of `expect.tsv`: protobuf, then JSON.
pub fn cases() -> Vec<Case> {
    let full = event("hostile-pb", T).encode_to_vec();
    let mut rng = Mt19937::seeded(&[7]);
    let garbage: Vec<u8> = std::iter::once(0xff)
        .chain((0..255).map(|_| rng.byte()))
        .collect();
    let x = only(|e| e.event_id = "x".into()).encode_to_vec();
    let with = |mut a: Vec<u8>, b: &[&[u8]]| {
        for part in b {
            a.extend_from_slice(part);
        }
        a
    };
    let minimal = |id: &str, time: Option<Timestamp>| {
        only(|e| {
            e.event_id = id.into();
            e.event_time = time;
            e.event_type = 1;
            e.served = Some(Subscriber {
                msisdn: MSISDN.into(),
                ..Default::default()
            });
        })
        .encode_to_vec()
    };
    vec![
        // protobuf
        pb("pb-empty.bin", vec![], "undecodable"),
        pb(
            "pb-truncated-in-string.bin",
            full[..full.len() - 5].to_vec(),
            "undecodable",
        ),
        pb(
            "pb-truncated-varint.bin",
            with(key(3, WireType::Varint), &[b"\xff\xff"]),
            "undecodable",
        ),
        pb(
            "pb-truncated-key.bin",
            {
                let abc = only(|e| e.event_id = "abc".into()).encode_to_vec();
                abc[..abc.len() - 1].to_vec()
            },
            "undecodable",
        ),
        pb("pb-garbage.bin", garbage, "undecodable"),
        pb(
            "pb-wrong-wire-type-string-as-varint.bin",
            with(
                key(1, WireType::Varint),
                &[
                    &varint(42),
                    &only(|e| e.event_time = Some(ts(T))).encode_to_vec(),
                ],
            ),
            "undecodable",
        ),
        pb(
            "pb-wrong-wire-type-message-as-fixed64.bin",
            with(x.clone(), &[&key(6, WireType::SixtyFourBit), &[0; 8]]),
            "undecodable",
        ),
        pb(
            "pb-wrong-wire-type-enum-as-string.bin",
            with(
                x.clone(),
                &[
                    &key(3, WireType::LengthDelimited),
                    &varint(10),
                    b"VOICE_CALL",
                ],
            ),
            "undecodable",
        ),
        pb(
            "pb-invalid-utf8-event-id.bin",
            patch(
                only(|e| {
                    e.event_id = "###".into();
                    e.event_time = Some(ts(T));
                })
                .encode_to_vec(),
                b"###",
                b"\xff\xfe\xfd",
            ),
            "undecodable",
        ),
        pb(
            "pb-invalid-utf8-msisdn.bin",
            patch(
                only(|e| {
                    e.event_id = "x".into();
                    e.served = Some(Subscriber {
                        msisdn: format!("+3369##{MSISDN}"),
                        ..Default::default()
                    });
                })
                .encode_to_vec(),
                b"##",
                b"\xc3\x28",
            ),
            "undecodable",
        ),
        pb(
            "pb-length-past-end.bin",
            with(
                x.clone(),
                &[
                    &key(15, WireType::LengthDelimited),
                    &varint(1 << 32),
                    b"abc",
                ],
            ),
            "undecodable",
        ),
        pb(
            "pb-overlong-varint.bin",
            with(key(3, WireType::Varint), &[&[0xff; 10], b"\x01"]),
            "undecodable",
        ),
        pb(
            "pb-field-number-zero.bin",
            with(key(0, WireType::LengthDelimited), &[&varint(1), b"a"]),
            "undecodable",
        ),
        pb(
            "pb-deprecated-group-wire-types.bin",
            with(
                x.clone(),
                &[
                    &key(99, WireType::StartGroup).repeat(200),
                    &key(99, WireType::EndGroup).repeat(200),
                ],
            ),
            "undecodable",
        ),
        pb(
            "pb-deeply-nested-unknown-groups.bin",
            with(x.clone(), &[&key(99, WireType::StartGroup).repeat(5000)]),
            "undecodable",
        ),
        pb(
            "pb-unknown-enum-values.bin",
            with(
                only(|e| {
                    *e = event("hostile-enum", T);
                    e.event_type = 99;
                    e.direction = 77;
                })
                .encode_to_vec(),
                // An unknown purpose, as an unpacked repeated enum.
                &[&key(5, WireType::Varint), &varint(42)],
            ),
            "invalid",
        ),
        pb(
            "pb-unknown-fields.bin",
            with(
                event("hostile-unknown", T).encode_to_vec(),
                &[
                    &key(100, WireType::LengthDelimited),
                    &varint(MSISDN.len() as u64),
                    MSISDN.as_bytes(),
                    &key(101, WireType::Varint),
                    &varint(5),
                    &key(102, WireType::ThirtyTwoBit),
                    b"\x01\x02\x03\x04",
                ],
            ),
            "accepted",
        ),
        pb(
            "pb-forged-retention.bin",
            CdrEvent {
                retention: Some(Retention {
                    legal_basis: "forged basis".into(),
                    ..Default::default()
                }),
                ..event("hostile-retention", T)
            }
            .encode_to_vec(),
            "accepted",
        ),
        pb(
            "pb-missing-event-id.bin",
            minimal("", Some(ts(T))),
            "invalid",
        ),
        pb(
            "pb-missing-event-time.bin",
            minimal("hostile-no-time", None),
            "invalid",
        ),
        pb(
            "pb-time-min.bin",
            event("hostile-min", -62_135_596_800).encode_to_vec(),
            "accepted",
        ),
        pb(
            "pb-time-before-min.bin",
            event("hostile-before-min", -62_135_596_801).encode_to_vec(),
            "invalid",
        ),
        pb(
            "pb-time-max.bin",
            event("hostile-max", 253_402_300_799).encode_to_vec(),
            "future_event_time",
        ),
        pb(
            "pb-time-i64-max.bin",
            event("hostile-i64max", i64::MAX).encode_to_vec(),
            "invalid",
        ),
        pb(
            "pb-time-i64-min.bin",
            event("hostile-i64min", i64::MIN).encode_to_vec(),
            "invalid",
        ),
        pb(
            "pb-time-nanos-out-of-range.bin",
            only(|e| {
                e.event_id = "hostile-nanos".into();
                e.event_time = Some(Timestamp {
                    seconds: T,
                    nanos: 2_000_000_000,
                });
                e.event_type = 1;
            })
            .encode_to_vec(),
            "invalid",
        ),
        pb(
            "pb-time-negative-nanos.bin",
            only(|e| {
                e.event_id = "hostile-negnanos".into();
                e.event_time = Some(Timestamp {
                    seconds: T,
                    nanos: -1,
                });
                e.event_type = 1;
            })
            .encode_to_vec(),
            "invalid",
        ),
        // The other timestamps obey the rule of event_time (docs/timestamps.md): a
        // value the protobuf specification does not allow refuses the event.
        pb(
            "pb-answer-time-nanos-out-of-range.bin",
            CdrEvent {
                timing: Some(Timing {
                    answer_time: Some(Timestamp {
                        seconds: T,
                        nanos: 1_000_000_000,
                    }),
                    release_time: Some(ts(T + 60)),
                    duration_ms: 60_000,
                }),
                ..event("hostile-answer-nanos", T)
            }
            .encode_to_vec(),
            "invalid",
        ),
        pb(
            "pb-release-time-after-max.bin",
            CdrEvent {
                timing: Some(Timing {
                    answer_time: Some(ts(T)),
                    release_time: Some(ts(253_402_300_800)),
                    duration_ms: 60_000,
                }),
                ..event("hostile-release-max", T)
            }
            .encode_to_vec(),
            "invalid",
        ),
        pb(
            "pb-negative-durations.bin",
            with(
                event("hostile-negdur", T).encode_to_vec(),
                // Appended, so merged into the event: release before answer, a
                // duration of 2^64 - 1 ms (-1 as a varint), a negative amount.
                &[&only(|e| {
                    e.timing = Some(Timing {
                        answer_time: Some(ts(T + 100)),
                        release_time: Some(ts(T)),
                        duration_ms: u64::MAX,
                    });
                    e.charging = Some(Charging {
                        amount_minor: -5,
                        ..Default::default()
                    });
                })
                .encode_to_vec()],
            ),
            "accepted",
        ),
        pb(
            "pb-repeated-scalar-fields.bin",
            with(
                event("hostile-repeat", T).encode_to_vec(),
                &[&only(|e| {
                    e.event_id = "hostile-repeat-2".into();
                    e.event_type = 2;
                })
                .encode_to_vec()],
            ),
            "accepted",
        ),
    ]
    .into_iter()
    .chain(json::cases())
    .collect()
}

/// Writes every file of the corpus and `expect.tsv` into `dir`; the number of files.
pub fn write(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let cases = cases();
    let mut manifest = String::from(MANIFEST_HEADER);
    for c in &cases {
        std::fs::write(dir.join(c.name), &c.bytes)?;
        manifest.push_str(&format!("{}\t{}\n", c.name, c.expect));
    }
    std::fs::write(dir.join("expect.tsv"), manifest)?;
    Ok(cases.len())
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"));
    match write(&dir) {
        Ok(n) => println!("{n} files in {}", dir.display()),
        Err(e) => {
            eprintln!("writing the corpus into {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
}
