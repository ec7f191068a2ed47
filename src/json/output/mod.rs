//! A filtered protobuf event (the wire path's output) → proto3 canonical JSON, written
//! straight into a reused buffer: names in lowerCamelCase, default values left out, 64-bit
//! integers as strings, enums by name, timestamps in RFC 3339 UTC — what the generated
//! serde impls write for the same event.
//!
//! The fast writer takes the canonical form the wire path writes: fields in increasing
//! number order, each singular field once, the map in key order, packed purposes, known
//! enum values, finite coordinates, timestamps within 0001–9999. Anything else (or a
//! value the JSON encoder refuses) goes to the struct path — prost decode, then
//! [`encode::encode_event`] — which writes the record or gives the same error as before.

use crate::encode::{self, EncodeError, OutputFormat};
use crate::schema::{CdrEvent, Timestamp};
use prost::Message;

pub(super) mod names;
mod time;

use names::*;
pub(super) use time::rfc3339;

/// Writes the JSON of the protobuf event `pb` into `out` (cleared first).
pub fn write_json(pb: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if write_json_fast(pb, out) {
        return Ok(());
    }
    slow(pb, out)
}

/// The fast writer alone: `true` when it wrote `pb` into `out`; `false` when the record
/// is not in the form it takes (then only [`write_json`] can tell what to write).
pub fn write_json_fast(pb: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    out.reserve(pb.len() * 2 + 64);
    (Writer { b: pb, i: 0, out }).event().is_some()
}

#[cold]
fn slow(pb: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.clear();
    let event = CdrEvent::decode(pb).map_err(|e| EncodeError {
        format: "JSON",
        reason: e.to_string(),
    })?;
    encode::encode_event(&event, OutputFormat::Json, out)
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
pub(in crate::json) fn json_string(s: &str, out: &mut Vec<u8>) {
    if super::plain_prefix(s.as_bytes()) == s.len() {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // serde_json's escaping, written into the Vec without allocating.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Appends an integer in decimal, `-` first when `negative`.
pub(in crate::json) fn decimal(out: &mut Vec<u8>, negative: bool, mut n: u64) {
    let mut buf = [0u8; 21];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    out.extend_from_slice(&buf[at..]);
}

/// A field read: number, wire type, and for length-delimited fields the body range.
struct Field {
    num: u64,
    wire: u8,
    value: u64,
    body: (usize, usize),
}

struct Writer<'a, 'o> {
    b: &'a [u8],
    i: usize,
    out: &'o mut Vec<u8>,
}

impl<'a> Writer<'a, '_> {
    #[inline(always)]
    fn varint(&mut self) -> Option<u64> {
        // One byte: most keys, lengths and small numbers.
        let c = *self.b.get(self.i)?;
        if c < 0x80 {
            self.i += 1;
            return Some(u64::from(c));
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            v |= u64::from(c & 0x7f) << shift;
            if c < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// The next field before `end`.
    #[inline(always)]
    fn field(&mut self, end: usize) -> Option<Field> {
        let key = self.varint()?;
        let (num, wire) = (key >> 3, (key & 7) as u8);
        let mut f = Field {
            num,
            wire,
            value: 0,
            body: (0, 0),
        };
        match wire {
            0 => f.value = self.varint()?,
            1 => {
                let bytes = self.b.get(self.i..self.i + 8)?;
                f.value = u64::from_le_bytes(bytes.try_into().ok()?);
                self.i += 8;
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let start = self.i;
                let stop = start.checked_add(len)?;
                if stop > end {
                    return None;
                }
                f.body = (start, stop);
                self.i = stop;
            }
            _ => return None,
        }
        (self.i <= end).then_some(f)
    }

    fn str_of(&self, body: (usize, usize)) -> Option<&'a str> {
        let b: &'a [u8] = self.b;
        std::str::from_utf8(&b[body.0..body.1]).ok()
    }

    /// A string field's bytes as a JSON string; `None` if they are not UTF-8.
    fn string_bytes(&mut self, body: (usize, usize)) -> Option<()> {
        let b: &'a [u8] = &self.b[body.0..body.1];
        if super::plain_prefix(b) == b.len() {
            self.out.push(b'"');
            self.out.extend_from_slice(b);
            self.out.push(b'"');
        } else {
            self.string(std::str::from_utf8(b).ok()?);
        }
        Some(())
    }

    /// A member's name, written with its quotes and colon (`"imsi":`).
    fn key(&mut self, first: &mut bool, name: &str) {
        if !std::mem::take(first) {
            self.out.push(b',');
        }
        self.out.extend_from_slice(name.as_bytes());
    }

    fn string(&mut self, s: &str) {
        json_string(s, self.out);
    }

    fn quoted_number(&mut self, negative: bool, n: u64) {
        self.out.push(b'"');
        self.number(negative, n);
        self.out.push(b'"');
    }

    /// An integer in decimal, `-` first when `negative`.
    fn number(&mut self, negative: bool, n: u64) {
        decimal(self.out, negative, n);
    }

    fn timestamp(&mut self, body: (usize, usize)) -> Option<()> {
        let end = body.1;
        let save = self.i;
        self.i = body.0;
        let mut ts = Timestamp::default();
        let mut last = 0;
        while self.i < end {
            let f = self.field(end)?;
            if f.wire != 0 || f.num <= last {
                return None;
            }
            last = f.num;
            match f.num {
                1 => ts.seconds = f.value as i64,
                2 => ts.nanos = i32::try_from(f.value as i64).ok()?,
                _ => return None,
            }
        }
        self.i = save;
        let mut buf = [0u8; crate::wire::RFC3339_MAX];
        let n = rfc3339(&ts, &mut buf)?;
        self.out.push(b'"');
        self.out.extend_from_slice(&buf[..n]);
        self.out.push(b'"');
        Some(())
    }

    /// A sub-message body as a JSON object.
    fn message(&mut self, body: (usize, usize), fields: Fields) -> Option<()> {
        let save = self.i;
        self.i = body.0;
        self.out.push(b'{');
        let mut first = true;
        let mut last = 0;
        while self.i < body.1 {
            let f = self.field(body.1)?;
            if f.num <= last || f.num == 0 || f.num > fields.len() as u64 {
                return None;
            }
            last = f.num;
            let (name, kind) = fields[f.num as usize - 1];
            match (kind, f.wire) {
                (Kind::Str, 2) => {
                    if f.body.0 != f.body.1 {
                        self.key(&mut first, name);
                        self.string_bytes(f.body)?;
                    }
                }
                (Kind::U64, 0) if f.value != 0 => {
                    self.key(&mut first, name);
                    self.quoted_number(false, f.value);
                }
                (Kind::I64, 0) if f.value != 0 => {
                    self.key(&mut first, name);
                    let v = f.value as i64;
                    self.quoted_number(v < 0, v.unsigned_abs());
                }
                (Kind::U32, 0) if f.value as u32 != 0 => {
                    self.key(&mut first, name);
                    self.number(false, u64::from(f.value as u32));
                }
                (Kind::Bool, 0) if f.value != 0 => {
                    self.key(&mut first, name);
                    self.out.extend_from_slice(b"true");
                }
                (Kind::Purpose, 0) if f.value as i32 != 0 => {
                    self.key(&mut first, name);
                    self.enumeration(f.value, PURPOSES)?;
                }
                (Kind::U64 | Kind::I64 | Kind::U32 | Kind::Bool | Kind::Purpose, 0) => {}
                (Kind::F64, 1) => {
                    let v = f64::from_bits(f.value);
                    if !v.is_finite() {
                        return None;
                    }
                    if v != 0.0 {
                        self.key(&mut first, name);
                        let _ = serde_json::to_writer(&mut *self.out, &v);
                    }
                }
                (Kind::Ts, 2) => {
                    self.key(&mut first, name);
                    self.timestamp(f.body)?;
                }
                _ => return None,
            }
        }
        self.out.push(b'}');
        self.i = save;
        Some(())
    }

    fn enumeration(&mut self, v: u64, names: &[&str]) -> Option<()> {
        let name = names.get(usize::try_from(v).ok()?)?;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'"');
        Some(())
    }

    fn event(&mut self) -> Option<()> {
        let end = self.b.len();
        self.out.push(b'{');
        let mut first = true;
        let mut last = 0;
        // The open array or map (12 or 16), and the previous map key.
        let mut open = 0;
        let mut prev_key: Option<&str> = None;
        while self.i < end {
            let f = self.field(end)?;
            let repeated = matches!(f.num, 12 | 16);
            if f.num < last || (f.num == last && !repeated) || f.num == 0 {
                return None;
            }
            if open != 0 && f.num != open {
                self.out.push(if open == 12 { b']' } else { b'}' });
                open = 0;
            }
            last = f.num;
            self.event_field(f, &mut first, &mut open, &mut prev_key)?;
        }
        if open != 0 {
            self.out.push(if open == 12 { b']' } else { b'}' });
        }
        self.out.push(b'}');
        Some(())
    }

    /// One top-level field of the event; `open` is the array or map an element of which
    /// was written last (12 or 16, else 0), `prev_key` the last map key.
    #[inline(always)]
    fn event_field(
        &mut self,
        f: Field,
        first: &mut bool,
        open: &mut u64,
        prev_key: &mut Option<&'a str>,
    ) -> Option<()> {
        match (f.num, f.wire) {
            (1, 2) => {
                if f.body.0 != f.body.1 {
                    self.key(first, "\"eventId\":");
                    self.string_bytes(f.body)?;
                }
            }
            (2, 2) => {
                self.key(first, "\"eventTime\":");
                self.timestamp(f.body)?;
            }
            (3, 0) if f.value != 0 => {
                self.key(first, "\"eventType\":");
                self.enumeration(f.value, EVENT_TYPES)?;
            }
            (4, 0) if f.value != 0 => {
                self.key(first, "\"direction\":");
                self.enumeration(f.value, DIRECTIONS)?;
            }
            (3 | 4, 0) => {}
            (5, 2) => self.declared_purposes(first, f.body)?,
            (6, 2) => self.sub(first, "\"served\":", f.body, SUBSCRIBER)?,
            (7, 2) => self.sub(first, "\"terminal\":", f.body, TERMINAL)?,
            (8, 2) => self.sub(first, "\"calling\":", f.body, PARTY)?,
            (9, 2) => self.sub(first, "\"called\":", f.body, PARTY)?,
            (10, 2) => self.sub(first, "\"timing\":", f.body, TIMING)?,
            (11, 2) => self.sub(first, "\"network\":", f.body, NETWORK)?,
            (12, 2) => self.service(first, open, f.body)?,
            (13, 2) => self.sub(first, "\"location\":", f.body, LOCATION)?,
            (14, 2) => self.sub(first, "\"charging\":", f.body, CHARGING)?,
            (15, 2) => self.sub(first, "\"content\":", f.body, CONTENT)?,
            (16, 2) => self.extension(first, open, prev_key, f.body)?,
            (17, 2) => self.sub(first, "\"retention\":", f.body, RETENTION)?,
            _ => return None,
        }
        Some(())
    }

    /// `declaredPurposes`: a packed array of enum numbers, written as names.
    #[inline(always)]
    fn declared_purposes(&mut self, first: &mut bool, body: (usize, usize)) -> Option<()> {
        if body.0 == body.1 {
            return Some(());
        }
        self.key(first, "\"declaredPurposes\":");
        self.out.push(b'[');
        let save = self.i;
        self.i = body.0;
        let mut n = 0;
        while self.i < body.1 {
            let v = self.varint()?;
            if n > 0 {
                self.out.push(b',');
            }
            n += 1;
            self.enumeration(v, PURPOSES)?;
        }
        if self.i != body.1 {
            return None;
        }
        self.i = save;
        self.out.push(b']');
        Some(())
    }

    /// One element of `supplementaryServices`, opening the array at the first.
    #[inline(always)]
    fn service(&mut self, first: &mut bool, open: &mut u64, body: (usize, usize)) -> Option<()> {
        if *open == 12 {
            self.out.push(b',');
        } else {
            self.key(first, "\"supplementaryServices\":");
            self.out.push(b'[');
            *open = 12;
        }
        self.message(body, SERVICE)
    }

    /// One entry of `extensions`, opening the map at the first.
    #[inline(always)]
    fn extension(
        &mut self,
        first: &mut bool,
        open: &mut u64,
        prev_key: &mut Option<&'a str>,
        body: (usize, usize),
    ) -> Option<()> {
        let (k, v) = self.entry(body)?;
        // Keys strictly increasing: no repeated key to resolve.
        if prev_key.is_some_and(|p| p >= k) {
            return None;
        }
        *prev_key = Some(k);
        if *open == 16 {
            self.out.push(b',');
        } else {
            self.key(first, "\"extensions\":");
            self.out.push(b'{');
            *open = 16;
        }
        self.string(k);
        self.out.push(b':');
        self.string(v);
        Some(())
    }

    fn sub(
        &mut self,
        first: &mut bool,
        name: &str,
        body: (usize, usize),
        fields: Fields,
    ) -> Option<()> {
        self.key(first, name);
        self.message(body, fields)
    }

    /// A map entry: key (1) then value (2), each at most once.
    fn entry(&mut self, body: (usize, usize)) -> Option<(&'a str, &'a str)> {
        let save = self.i;
        self.i = body.0;
        let (mut k, mut v) = ("", "");
        let mut last = 0;
        while self.i < body.1 {
            let f = self.field(body.1)?;
            if f.wire != 2 || f.num <= last || f.num > 2 {
                return None;
            }
            last = f.num;
            let s = self.str_of(f.body)?;
            if f.num == 1 {
                k = s;
            } else {
                v = s;
            }
        }
        self.i = save;
        Some((k, v))
    }
}
