//! Proto3 canonical JSON → the canonical protobuf bytes of the event (`retention`
//! removed), without an owned `CdrEvent`.
//!
//! One pass over the input records each field's value — strings as byte ranges of the
//! input (or of a scratch buffer when they hold escapes), numbers parsed — into a
//! fixed-size mirror of the event; then the mirror is written in field-number order, as
//! prost writes it. The rules are those of the generated serde impls (pbjson) and
//! `serde_json`, restricted to what this parser can decide for certain: whatever else it
//! meets makes it give up (`None`), and [`JsonScratch::to_protobuf`] asks the struct
//! path (`decode::decode_json`), which also gives the error of a refused record.

use crate::decode::{self, DecodeError};
use crate::schema::{self, Timestamp};
use prost::Message;

mod direct;
mod parse;
mod write;

pub(crate) use direct::Times;
#[cfg(test)]
pub(in crate::json) use parse::{short_decimal, utc_rfc3339};

use crate::wire::protobuf::{ts_field, varint, varint_len};
use parse::Parser;
use write::Writer;

/// Where a string's bytes are: the input, or the scratch buffer (unescaped).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Str {
    #[default]
    Empty,
    Input(u32, u32),
    Scratch(u32, u32),
}

impl Str {
    fn bytes<'a>(self, input: &'a [u8], scratch: &'a [u8]) -> &'a [u8] {
        match self {
            Str::Empty => &[],
            Str::Input(a, b) => &input[a as usize..b as usize],
            Str::Scratch(a, b) => &scratch[a as usize..b as usize],
        }
    }

    fn is_empty(self) -> bool {
        match self {
            Str::Empty => true,
            Str::Input(a, b) | Str::Scratch(a, b) => a == b,
        }
    }

    fn len(self) -> usize {
        match self {
            Str::Empty => 0,
            Str::Input(a, b) | Str::Scratch(a, b) => (b - a) as usize,
        }
    }
}

/// A field value of a sub-message.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Val {
    #[default]
    Unset,
    /// `null` where serde reads it as absent (timestamps).
    Null,
    Str(Str),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Ts(Timestamp),
}

/// The kind of a sub-message field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    U64,
    U32,
    I64,
    F64,
    Bool,
    Ts,
}

/// A sub-message field: protobuf number (1-based), its two JSON names, its kind.
type FieldDef = (u8, &'static [u8], &'static [u8], Kind);

const SUBSCRIBER: &[FieldDef] = &[
    (1, b"imsi", b"imsi", Kind::Str),
    (2, b"msisdn", b"msisdn", Kind::Str),
    (3, b"accountId", b"account_id", Kind::Str),
    (4, b"ueIp", b"ue_ip", Kind::Str),
];
const TERMINAL: &[FieldDef] = &[
    (1, b"imei", b"imei", Kind::Str),
    (2, b"imeisv", b"imeisv", Kind::Str),
];
const PARTY: &[FieldDef] = &[
    (1, b"number", b"number", Kind::Str),
    (2, b"ip", b"ip", Kind::Str),
    (3, b"port", b"port", Kind::U32),
];
const TIMING: &[FieldDef] = &[
    (1, b"answerTime", b"answer_time", Kind::Ts),
    (2, b"releaseTime", b"release_time", Kind::Ts),
    (3, b"durationMs", b"duration_ms", Kind::U64),
];
const NETWORK: &[FieldDef] = &[
    (1, b"recordingEntity", b"recording_entity", Kind::Str),
    (2, b"causeForTerm", b"cause_for_term", Kind::Str),
    (3, b"ratType", b"rat_type", Kind::Str),
    (4, b"basicService", b"basic_service", Kind::Str),
    (5, b"callReference", b"call_reference", Kind::Str),
    (6, b"chargingId", b"charging_id", Kind::Str),
    (7, b"apn", b"apn", Kind::Str),
    (8, b"bytesUplink", b"bytes_uplink", Kind::U64),
    (9, b"bytesDownlink", b"bytes_downlink", Kind::U64),
];
const SERVICE: &[FieldDef] = &[
    (1, b"code", b"code", Kind::Str),
    (2, b"provider", b"provider", Kind::Str),
];
const LOCATION: &[FieldDef] = &[
    (1, b"mcc", b"mcc", Kind::Str),
    (2, b"mnc", b"mnc", Kind::Str),
    (3, b"lac", b"lac", Kind::Str),
    (4, b"cellId", b"cell_id", Kind::Str),
    (5, b"latitude", b"latitude", Kind::F64),
    (6, b"longitude", b"longitude", Kind::F64),
];
const CHARGING: &[FieldDef] = &[
    (1, b"chargeable", b"chargeable", Kind::Bool),
    (2, b"tariffClass", b"tariff_class", Kind::Str),
    (3, b"amountMinor", b"amount_minor", Kind::I64),
    (4, b"currency", b"currency", Kind::Str),
    (5, b"ratingGroup", b"rating_group", Kind::U32),
];
const CONTENT: &[FieldDef] = &[
    (1, b"smsText", b"sms_text", Kind::Str),
    (2, b"ussdString", b"ussd_string", Kind::Str),
    (3, b"url", b"url", Kind::Str),
    (4, b"dnsQuery", b"dns_query", Kind::Str),
    (5, b"sni", b"sni", Kind::Str),
];

/// The singular sub-messages of `CdrEvent`: protobuf number, JSON names, fields.
const SUBS: [(u8, &[u8], &[FieldDef]); 9] = [
    (6, b"served", SUBSCRIBER),
    (7, b"terminal", TERMINAL),
    (8, b"calling", PARTY),
    (9, b"called", PARTY),
    (10, b"timing", TIMING),
    (11, b"network", NETWORK),
    (13, b"location", LOCATION),
    (14, b"charging", CHARGING),
    (15, b"content", CONTENT),
];

/// The top-level names serde writes, in the order it writes them.
const TOP: &[&[u8]] = &[
    b"eventId",
    b"eventTime",
    b"eventType",
    b"direction",
    b"declaredPurposes",
    b"served",
    b"terminal",
    b"calling",
    b"called",
    b"timing",
    b"network",
    b"supplementaryServices",
    b"location",
    b"charging",
    b"content",
    b"extensions",
];

/// A parsed sub-message: `vals[n - 1]` is field `n`.
#[derive(Debug, Clone, Copy, Default)]
struct Sub {
    present: bool,
    vals: [Val; 9],
    /// Bit `n - 1`: field `n`'s member is written in the input exactly as the JSON
    /// writer writes it (`"camelName":value`, canonical value, no whitespace): its text,
    /// `text[n - 1]`, can be copied as it is.
    clean: u16,
    text: [(u32, u32); 9],
}

/// The event as parsed: everything but the repeated parts, which live in the scratch.
#[derive(Debug, Default, Clone)]
struct Event {
    /// Bit `n`: top-level field `n` was seen (a second occurrence gives up).
    seen: u32,
    event_id: Str,
    event_time: Option<Timestamp>,
    event_type: i32,
    direction: i32,
    subs: [Sub; 9],
    /// Fields 1–4 (bit `n - 1`) written in the input as the JSON writer writes them,
    /// and their members' text (see [`Sub::clean`]).
    top_clean: u8,
    top_text: [(u32, u32); 4],
}

impl Event {
    /// Back to the default, writing only what the last parse may have set (a
    /// sub-message's values are set only once it is marked present).
    fn reset(&mut self) {
        self.seen = 0;
        self.top_clean = 0;
        self.event_id = Str::Empty;
        self.event_time = None;
        self.event_type = 0;
        self.direction = 0;
        for s in &mut self.subs {
            if s.present {
                *s = Sub::default();
            }
        }
    }
}

/// Reused state of the JSON input path: the output buffer, unescaped strings, the
/// repeated fields of the current record. One per thread.
#[derive(Debug, Default)]
pub struct JsonScratch {
    out: Vec<u8>,
    unescaped: Vec<u8>,
    purposes: Vec<i32>,
    services: Vec<Sub>,
    extensions: Vec<(Str, Str)>,
    /// The last record parsed by [`JsonScratch::parse`] (boxed: moved out and back
    /// around each parse without copying it).
    event: Option<Box<Event>>,
    /// Records the fast parser left to serde (they are still decoded exactly).
    pub fallbacks: u64,
}

impl JsonScratch {
    /// The last parsed event.
    fn event(&self) -> &Event {
        self.event.as_deref().expect("parsed before it is read")
    }

    /// The protobuf bytes of the last successful conversion.
    pub fn protobuf(&self) -> &[u8] {
        &self.out
    }

    /// The canonical protobuf bytes of a JSON `CdrEvent`, `retention` removed: exactly
    /// `decode::decode_json(input)` (retention cleared) then `encode_to_vec`, or its
    /// error. Takes the fast parser when it can, serde otherwise.
    pub fn to_protobuf(&mut self, input: &[u8]) -> Result<&[u8], DecodeError> {
        if !self.fast(input) {
            self.fallbacks += 1;
            let mut event = decode::decode_json(input)?;
            event.retention = None;
            self.out.clear();
            event.encode(&mut self.out).expect("a Vec grows as needed");
        }
        Ok(&self.out)
    }

    /// The fast parser alone: `true` when it converted `input` (the bytes are then in
    /// [`JsonScratch::protobuf`]); `false` when it gave up, and only serde can tell
    /// whether the record is valid.
    pub fn fast(&mut self, input: &[u8]) -> bool {
        if !self.parse(input) {
            return false;
        }
        self.write_protobuf(input);
        true
    }

    /// Writes the protobuf bytes of the event [`JsonScratch::parse`] read from `input`
    /// (then in [`JsonScratch::protobuf`]).
    pub(crate) fn write_protobuf(&mut self, input: &[u8]) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.write(self.event(), input, &self.unescaped, &mut out);
        self.out = out;
    }

    /// The fast parser's reading of `input` into the scratch, without writing its
    /// protobuf bytes: `true` when it read the record (then [`JsonScratch::route`] and
    /// [`JsonScratch::write_output`] may be used on it), `false` when it gave up.
    pub(crate) fn parse(&mut self, input: &[u8]) -> bool {
        // Offsets are kept in u32.
        if input.len() >= u32::MAX as usize {
            return false;
        }
        self.unescaped.clear();
        self.purposes.clear();
        self.services.clear();
        self.extensions.clear();
        let mut event = self.event.take().unwrap_or_default();
        event.reset();
        let mut p = Parser {
            b: input,
            i: 0,
            scratch: self,
            canonical_ts: false,
        };
        let parsed = p.document(&mut event).is_some();
        self.event = Some(event);
        if !parsed {
            return false;
        }
        let unescaped = std::mem::take(&mut self.unescaped);
        let ok = self.sort_extensions(input, &unescaped);
        self.unescaped = unescaped;
        ok
    }

    /// Sorts the map in key order (prost's `BTreeMap`); gives up on a repeated key
    /// (serde keeps the last, this parser does not try).
    fn sort_extensions(&mut self, input: &[u8], unescaped: &[u8]) -> bool {
        let ext = &mut self.extensions;
        if ext.len() > 1 {
            ext.sort_unstable_by(|a, b| {
                a.0.bytes(input, unescaped).cmp(b.0.bytes(input, unescaped))
            });
            if ext
                .windows(2)
                .any(|w| w[0].0.bytes(input, unescaped) == w[1].0.bytes(input, unescaped))
            {
                return false;
            }
        }
        true
    }

    fn write(&self, e: &Event, input: &[u8], unescaped: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        let w = Writer { input, unescaped };
        w.string(1, e.event_id, out);
        if let Some(ts) = &e.event_time {
            ts_field(2, ts, out);
        }
        if e.event_type != 0 {
            out.push(3 << 3);
            varint(e.event_type as i64 as u64, out);
        }
        if e.direction != 0 {
            out.push(4 << 3);
            varint(e.direction as i64 as u64, out);
        }
        if !self.purposes.is_empty() {
            out.push(5 << 3 | 2);
            let len: usize = self
                .purposes
                .iter()
                .map(|&v| varint_len(v as i64 as u64))
                .sum();
            varint(len as u64, out);
            for &v in &self.purposes {
                varint(v as i64 as u64, out);
            }
        }
        for (s, (num, _, defs)) in e.subs.iter().zip(SUBS.iter()) {
            if *num == 13 {
                // supplementary_services (12) comes before location (13).
                for svc in &self.services {
                    w.sub(12, svc, SERVICE, out);
                }
            }
            if s.present {
                w.sub(*num, s, defs, out);
            }
        }
        for (k, v) in &self.extensions {
            let body = w.string_len(*k) + w.string_len(*v);
            varint(16 << 3 | 2, out);
            varint(body as u64, out);
            w.string(1, *k, out);
            w.string(2, *v, out);
        }
    }
}
