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
}

/// The event as parsed: everything but the repeated parts, which live in the scratch.
#[derive(Debug, Default)]
struct Event {
    /// Bit `n`: top-level field `n` was seen (a second occurrence gives up).
    seen: u32,
    event_id: Str,
    event_time: Option<Timestamp>,
    event_type: i32,
    direction: i32,
    subs: [Sub; 9],
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
    /// Records the fast parser left to serde (they are still decoded exactly).
    pub fallbacks: u64,
}

impl JsonScratch {
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
        // Offsets are kept in u32.
        if input.len() >= u32::MAX as usize {
            return false;
        }
        self.unescaped.clear();
        self.purposes.clear();
        self.services.clear();
        self.extensions.clear();
        let mut event = Event::default();
        let mut p = Parser {
            b: input,
            i: 0,
            scratch: self,
        };
        if p.document(&mut event).is_none() {
            return false;
        }
        let unescaped = std::mem::take(&mut self.unescaped);
        let ok = self.sort_extensions(input, &unescaped);
        if ok {
            let mut out = std::mem::take(&mut self.out);
            out.clear();
            self.write(&event, input, &unescaped, &mut out);
            self.out = out;
        }
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

#[inline(always)]
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline(always)]
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn ts_body_len(ts: &Timestamp) -> usize {
    let mut n = 0;
    if ts.seconds != 0 {
        n += 1 + varint_len(ts.seconds as u64);
    }
    if ts.nanos != 0 {
        n += 1 + varint_len(ts.nanos as i64 as u64);
    }
    n
}

fn ts_field(num: u8, ts: &Timestamp, out: &mut Vec<u8>) {
    varint(u64::from(num) << 3 | 2, out);
    varint(ts_body_len(ts) as u64, out);
    if ts.seconds != 0 {
        out.push(0x08);
        varint(ts.seconds as u64, out);
    }
    if ts.nanos != 0 {
        out.push(0x10);
        varint(ts.nanos as i64 as u64, out);
    }
}

/// Writes fields as prost does: default values (empty, 0, false) left out.
struct Writer<'a> {
    input: &'a [u8],
    unescaped: &'a [u8],
}

impl Writer<'_> {
    fn string_len(&self, s: Str) -> usize {
        if s.is_empty() {
            0
        } else {
            1 + varint_len(s.len() as u64) + s.len()
        }
    }

    fn string(&self, num: u8, s: Str, out: &mut Vec<u8>) {
        if s.is_empty() {
            return;
        }
        varint(u64::from(num) << 3 | 2, out);
        varint(s.len() as u64, out);
        out.extend_from_slice(s.bytes(self.input, self.unescaped));
    }

    #[allow(clippy::redundant_guards)]
    fn sub(&self, num: u8, s: &Sub, defs: &[FieldDef], out: &mut Vec<u8>) {
        // The length is written after the body: one byte reserved, widened in the rare
        // body of 128 bytes or more.
        varint(u64::from(num) << 3 | 2, out);
        let at = out.len();
        out.push(0);
        for (i, v) in s.vals[..defs.len()].iter().enumerate() {
            let n = i as u8 + 1;
            match *v {
                Val::Unset | Val::Null => {}
                Val::Str(st) => self.string(n, st, out),
                Val::U64(0) | Val::I64(0) | Val::Bool(false) => {}
                Val::U64(x) => {
                    out.push(n << 3);
                    varint(x, out);
                }
                Val::I64(x) => {
                    out.push(n << 3);
                    varint(x as u64, out);
                }
                Val::F64(f) if f == 0.0 => {}
                Val::F64(f) => {
                    out.push(n << 3 | 1);
                    out.extend_from_slice(&f.to_le_bytes());
                }
                Val::Bool(true) => {
                    out.push(n << 3);
                    out.push(1);
                }
                Val::Ts(ts) => ts_field(n, &ts, out),
            }
        }
        let len = out.len() - at - 1;
        if len < 0x80 {
            out[at] = len as u8;
        } else {
            let mut prefix = [0u8; 10];
            let mut n = 0;
            let mut v = len;
            while v >= 0x80 {
                prefix[n] = (v as u8) | 0x80;
                v >>= 7;
                n += 1;
            }
            prefix[n] = v as u8;
            out.splice(at..at + 1, prefix[..=n].iter().copied());
        }
    }
}

/// The enum names of `cdr.v1`, by value.
const EVENT_TYPES: &[&[u8]] = &[
    b"EVENT_TYPE_UNSPECIFIED",
    b"VOICE_CALL",
    b"SMS",
    b"DATA_SESSION",
    b"SIGNALLING",
    b"SUPPLEMENTARY_SERVICE",
];
const DIRECTIONS: &[&[u8]] = &[
    b"DIRECTION_UNSPECIFIED",
    b"ORIGINATING",
    b"TERMINATING",
    b"FORWARDED",
    b"NONE",
];
const PURPOSES: &[&[u8]] = &[b"PURPOSE_UNSPECIFIED", b"BILLING", b"SECURITY"];

/// `[0-9]+` as a u64, `None` for anything else or on overflow (which `u64::from_str`
/// refuses too).
#[inline]
fn digits(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// `-?[0-9]+` as an i64, as `i64::from_str` reads it; `None` for anything else.
#[inline]
fn signed_digits(b: &[u8]) -> Option<i64> {
    match b.split_first() {
        Some((b'-', rest)) => {
            let v = digits(rest)?;
            if v == 1 << 63 {
                Some(i64::MIN)
            } else {
                i64::try_from(v).ok().map(|v| -v)
            }
        }
        _ => i64::try_from(digits(b)?).ok(),
    }
}

/// A JSON number token, as written.
struct Number {
    start: usize,
    end: usize,
    negative: bool,
    /// No fraction, no exponent.
    integer: bool,
}

struct Parser<'a, 's> {
    b: &'a [u8],
    i: usize,
    scratch: &'s mut JsonScratch,
}

impl<'a> Parser<'a, '_> {
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.i += 1;
        }
    }

    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null")
    }

    /// The whole document: one object, then only whitespace.
    fn document(&mut self, e: &mut Event) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            // Keys usually come in field order (serde's writer): the next one is tried
            // first, without scanning the key as a string.
            let mut hint = 0;
            loop {
                self.ws();
                let key: &[u8] = match TOP.get(hint) {
                    Some(name) if self.quoted_is(name) => {
                        hint += 1;
                        name
                    }
                    _ => {
                        let (key, _) = self.key()?;
                        if let Some(p) = TOP.iter().position(|n| super::same(n, key)) {
                            hint = p + 1;
                        }
                        key
                    }
                };
                self.eat(b':')?;
                self.top_field(key, e)?;
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    /// Iterates over the elements of an array.
    fn array(&mut self, mut f: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            f(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Whether the next token is the string `name` (plain ASCII): then it is consumed.
    #[inline(always)]
    fn quoted_is(&mut self, name: &[u8]) -> bool {
        let (b, i, n) = (self.b, self.i, name.len());
        let hit = b.get(i) == Some(&b'"')
            && b.get(i + 1 + n) == Some(&b'"')
            && super::same(&b[i + 1..i + 1 + n], name);
        if hit {
            self.i = i + n + 2;
        }
        hit
    }

    /// An object key without escapes (an escaped key is left to serde), and its range.
    fn key(&mut self) -> Option<(&'a [u8], Str)> {
        let b = self.b;
        match self.string()? {
            Str::Input(x, y) => Some((&b[x as usize..y as usize], Str::Input(x, y))),
            _ => None,
        }
    }

    /// A string: its bytes are valid UTF-8, without control characters; escapes are
    /// decoded into the scratch buffer.
    fn string(&mut self) -> Option<Str> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let b = self.b;
        let mut j = start;
        let mut high = false;
        loop {
            j += super::plain_prefix(b.get(j..)?);
            let c = *b.get(j)?;
            if c == b'"' {
                break;
            }
            if c == b'\\' {
                return self.escaped(start, j);
            }
            if c < 0x20 {
                return None;
            }
            high = true;
            j += 1;
        }
        if high {
            std::str::from_utf8(&b[start..j]).ok()?;
        }
        self.i = j + 1;
        Some(Str::Input(start as u32, j as u32))
    }

    /// The rest of a string holding an escape at `j`: decoded into the scratch buffer.
    #[cold]
    fn escaped(&mut self, start: usize, mut j: usize) -> Option<Str> {
        let out = &mut self.scratch.unescaped;
        let from = out.len();
        let mut run = start;
        loop {
            let c = *self.b.get(j)?;
            match c {
                b'"' => break,
                b'\\' => {
                    out.extend_from_slice(&self.b[run..j]);
                    let e = *self.b.get(j + 1)?;
                    j += 2;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hex = |at: usize| -> Option<u32> {
                                let h = self.b.get(at..at + 4)?;
                                let s = std::str::from_utf8(h).ok()?;
                                if !h.iter().all(u8::is_ascii_hexdigit) {
                                    return None;
                                }
                                u32::from_str_radix(s, 16).ok()
                            };
                            let u = hex(j)?;
                            j += 4;
                            let ch = if (0xD800..0xDC00).contains(&u) {
                                // A surrogate pair, or serde's error.
                                if self.b.get(j..j + 2)? != b"\\u" {
                                    return None;
                                }
                                let low = hex(j + 2)?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                j += 6;
                                char::from_u32(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00))?
                            } else {
                                char::from_u32(u)?
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return None,
                    }
                    run = j;
                }
                c if c < 0x20 => return None,
                _ => j += 1,
            }
        }
        out.extend_from_slice(&self.b[run..j]);
        std::str::from_utf8(&out[from..]).ok()?;
        self.i = j + 1;
        Some(Str::Scratch(from as u32, out.len() as u32))
    }

    /// A string without escapes, as `&str` (numbers and timestamps in strings).
    fn plain_str(&mut self) -> Option<&str> {
        match self.string()? {
            Str::Empty => Some(""),
            Str::Input(a, b) => std::str::from_utf8(&self.b[a as usize..b as usize]).ok(),
            Str::Scratch(..) => None,
        }
    }

    /// A number token by the JSON grammar.
    fn number(&mut self) -> Option<Number> {
        self.ws();
        let start = self.i;
        let b = self.b;
        let mut j = start;
        let negative = b.get(j) == Some(&b'-');
        if negative {
            j += 1;
        }
        match b.get(j)? {
            b'0' => j += 1,
            b'1'..=b'9' => {
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            _ => return None,
        }
        let mut integer = true;
        if b.get(j) == Some(&b'.') {
            integer = false;
            j += 1;
            if !b.get(j)?.is_ascii_digit() {
                return None;
            }
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        if matches!(b.get(j), Some(b'e' | b'E')) {
            integer = false;
            j += 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if !b.get(j)?.is_ascii_digit() {
                return None;
            }
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        self.i = j;
        Some(Number {
            start,
            end: j,
            negative,
            integer,
        })
    }

    /// An unsigned integer: a JSON integer, or a string `u64::from_str` reads (pbjson).
    fn unsigned(&mut self) -> Option<u64> {
        if self.peek()? == b'"' {
            return match self.string()? {
                Str::Input(a, b) => digits(&self.b[a as usize..b as usize]).or_else(|| {
                    std::str::from_utf8(&self.b[a as usize..b as usize])
                        .ok()?
                        .parse()
                        .ok()
                }),
                _ => None,
            };
        }
        let n = self.number()?;
        if !n.integer || n.negative {
            return None;
        }
        digits(&self.b[n.start..n.end])
    }

    /// A signed integer, likewise. (`-0` is a float for serde_json: left to it.)
    fn signed(&mut self) -> Option<i64> {
        if self.peek()? == b'"' {
            return match self.string()? {
                Str::Input(a, b) => signed_digits(&self.b[a as usize..b as usize]).or_else(|| {
                    std::str::from_utf8(&self.b[a as usize..b as usize])
                        .ok()?
                        .parse()
                        .ok()
                }),
                _ => None,
            };
        }
        let n = self.number()?;
        if !n.integer || self.b[n.start..n.end] == *b"-0" {
            return None;
        }
        signed_digits(&self.b[n.start..n.end])
    }

    /// A double: a JSON number as serde_json reads it, or a string `f64::from_str`
    /// reads (pbjson: "NaN", "Infinity", "1.5").
    fn double(&mut self) -> Option<f64> {
        if self.peek()? == b'"' {
            return self.plain_str()?.parse().ok();
        }
        let n = self.number()?;
        // serde_json's own float reading, on the token alone.
        serde_json::from_slice(&self.b[n.start..n.end]).ok()
    }

    /// An enum: its name, or its number when it names a value (pbjson).
    fn enumeration(&mut self, names: &[&[u8]]) -> Option<i32> {
        if self.peek()? == b'"' {
            let Str::Input(a, b) = self.string()? else {
                return None;
            };
            let s = &self.b[a as usize..b as usize];
            return names
                .iter()
                .position(|n| super::same(n, s))
                .map(|v| v as i32);
        }
        let n = self.number()?;
        if !n.integer || n.negative {
            return None;
        }
        let v = digits(&self.b[n.start..n.end])?;
        (v < names.len() as u64).then_some(v as i32)
    }

    /// A timestamp: RFC 3339 as `schema::Timestamp`'s serde reads it, or `null` (absent).
    fn timestamp(&mut self) -> Option<Option<Timestamp>> {
        if self.null() {
            return Some(None);
        }
        let s = self.plain_str()?;
        let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
        Some(Some(schema::to_timestamp(t.to_utc())))
    }

    fn top_field(&mut self, key: &[u8], e: &mut Event) -> Option<()> {
        let num: u32 = match key {
            b"eventId" | b"event_id" => 1,
            b"eventTime" | b"event_time" => 2,
            b"eventType" | b"event_type" => 3,
            b"direction" => 4,
            b"declaredPurposes" | b"declared_purposes" => 5,
            b"supplementaryServices" | b"supplementary_services" => 12,
            b"extensions" => 16,
            _ => match SUBS.iter().position(|(_, name, _)| super::same(name, key)) {
                Some(i) => return self.sub_message(e, i),
                // Unknown fields and `retention`: serde's.
                None => return None,
            },
        };
        if e.seen & (1 << num) != 0 {
            return None;
        }
        e.seen |= 1 << num;
        match num {
            1 => e.event_id = self.string()?,
            2 => e.event_time = self.timestamp()?,
            3 => e.event_type = self.enumeration(EVENT_TYPES)?,
            4 => e.direction = self.enumeration(DIRECTIONS)?,
            5 => self.array(|p| {
                let v = p.enumeration(PURPOSES)?;
                p.scratch.purposes.push(v);
                Some(())
            })?,
            12 => self.array(|p| {
                let mut s = Sub::default();
                p.fields(&mut s, SERVICE)?;
                p.scratch.services.push(s);
                Some(())
            })?,
            _ => self.extensions()?,
        }
        Some(())
    }

    /// `extensions`: an object of strings; its keys may hold escapes.
    fn extensions(&mut self) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let k = self.string()?;
            self.eat(b':')?;
            let v = self.string()?;
            self.scratch.extensions.push((k, v));
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn sub_message(&mut self, e: &mut Event, i: usize) -> Option<()> {
        let (num, _, defs) = SUBS[i];
        if e.seen & (1 << num) != 0 {
            return None;
        }
        e.seen |= 1 << num;
        if self.null() {
            return Some(());
        }
        let s = &mut e.subs[i];
        s.present = true;
        self.fields(s, defs)
    }

    /// The members of a sub-message object.
    fn fields(&mut self, s: &mut Sub, defs: &[FieldDef]) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        // Keys usually come in field order: the one after the last is tried first,
        // without scanning it as a string.
        let mut hint = 0;
        loop {
            self.ws();
            let at = match defs.get(hint) {
                Some(d) if self.quoted_is(d.1) => hint,
                _ => {
                    let (key, _) = self.key()?;
                    defs.iter()
                        .position(|d| super::same(d.1, key) || super::same(d.2, key))?
                }
            };
            hint = at + 1;
            self.eat(b':')?;
            let p = &mut *self;
            let (num, _, _, kind) = defs[at];
            let slot = &mut s.vals[num as usize - 1];
            if *slot != Val::Unset {
                return None;
            }
            *slot = match kind {
                Kind::Str => Val::Str(p.string()?),
                Kind::U64 => Val::U64(p.unsigned()?),
                Kind::U32 => Val::U64(u64::from(u32::try_from(p.unsigned()?).ok()?)),
                Kind::I64 => Val::I64(p.signed()?),
                Kind::F64 => Val::F64(p.double()?),
                Kind::Bool => {
                    p.ws();
                    if p.literal(b"true") {
                        Val::Bool(true)
                    } else if p.literal(b"false") {
                        Val::Bool(false)
                    } else {
                        return None;
                    }
                }
                Kind::Ts => match p.timestamp()? {
                    Some(ts) => Val::Ts(ts),
                    None => Val::Null,
                },
            };
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}
