//! The parser's structure: the document, arrays, the fields of the event and of each
//! sub-message, enums and timestamps. Tokens are read in [`lex`].

use super::*;

mod lex;

use lex::digits;
#[cfg(test)]
pub(in crate::json) use lex::short_decimal;

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

pub(super) struct Parser<'a, 's> {
    pub(super) b: &'a [u8],
    pub(super) i: usize,
    pub(super) scratch: &'s mut JsonScratch,
    /// The last timestamp read was written as the JSON writer writes it.
    pub(super) canonical_ts: bool,
}

/// Whether a member is written without whitespace: its key ends at `key_end`, the colon
/// follows, and the value (ending at `end`) starts right after the colon.
fn tight(b: &[u8], key_end: usize, value: usize, end: usize) -> bool {
    key_end + 1 == value && value < end && !matches!(b[value], b' ' | b'\n' | b'\r' | b'\t')
}

/// The number of decimal digits of `v`.
fn decimal_len(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

impl<'a> Parser<'a, '_> {
    /// The whole document: one object, then only whitespace.
    pub(super) fn document(&mut self, e: &mut Event) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            // Keys usually come in field order (serde's writer): the next one is tried
            // first, without scanning the key as a string.
            let mut hint = 0;
            loop {
                self.ws();
                let member = self.i;
                let key: &[u8] = match TOP.get(hint) {
                    Some(name) if self.quoted_is(name) => {
                        hint += 1;
                        name
                    }
                    _ => {
                        let (key, _) = self.key()?;
                        if let Some(p) = TOP.iter().position(|n| crate::json::same(n, key)) {
                            hint = p + 1;
                        }
                        key
                    }
                };
                let key_end = self.i;
                self.eat(b':')?;
                let value = self.i;
                self.top_field(key, e)?;
                self.top_clean(e, key, member, key_end, value);
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

    /// Whether the text of a value just read is what the JSON writer writes for it.
    fn canonical(&self, v: Val, kind: Kind, text: &[u8]) -> bool {
        let quoted = text.first() == Some(&b'"');
        match (v, kind) {
            // Without escapes: serde_json writes its bytes as they are.
            (Val::Str(Str::Input(..)), _) => true,
            // 64-bit integers as strings, 32-bit ones as numbers, both in plain decimal.
            (Val::U64(x), Kind::U64) => quoted && text.len() == decimal_len(x) + 2,
            (Val::I64(x), _) => {
                quoted && text.len() == decimal_len(x.unsigned_abs()) + 2 + usize::from(x < 0)
            }
            (Val::U64(x), Kind::U32) => !quoted && text.len() == decimal_len(x),
            (Val::Bool(true), _) => text == b"true",
            (Val::Ts(_), _) => self.canonical_ts,
            _ => false,
        }
    }

    /// Records whether a top-level member (fields 1–4) is written as the writer writes it.
    fn top_clean(&self, e: &mut Event, key: &[u8], member: usize, key_end: usize, value: usize) {
        let n = match key {
            b"eventId" => 1,
            b"eventTime" => 2,
            b"eventType" => 3,
            b"direction" => 4,
            _ => return,
        };
        if !tight(self.b, key_end, value, self.i) {
            return;
        }
        let text = &self.b[value..self.i];
        let clean = match n {
            1 => matches!(e.event_id, Str::Input(..)),
            2 => e.event_time.is_some() && self.canonical_ts,
            // Enums by name (the writer writes names, not numbers).
            _ => text.first() == Some(&b'"'),
        };
        if clean {
            e.top_clean |= 1 << (n - 1);
            e.top_text[n - 1] = (member as u32, self.i as u32);
        }
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

    /// An enum: its name, or its number when it names a value (pbjson).
    fn enumeration(&mut self, names: &[&[u8]]) -> Option<i32> {
        if self.peek()? == b'"' {
            let Str::Input(a, b) = self.string()? else {
                return None;
            };
            let s = &self.b[a as usize..b as usize];
            return names
                .iter()
                .position(|n| crate::json::same(n, s))
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
        self.canonical_ts = false;
        let s = self.plain_bytes()?;
        if let Some(ts) = utc_rfc3339(s) {
            self.canonical_ts = canonical_ts(s, &ts);
            return Some(Some(ts));
        }
        let t = chrono::DateTime::parse_from_rfc3339(std::str::from_utf8(s).ok()?).ok()?;
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
            _ => match SUBS
                .iter()
                .position(|(_, name, _)| crate::json::same(name, key))
            {
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
            let member = self.i;
            let (at, camel) = match defs.get(hint) {
                Some(d) if self.quoted_is(d.1) => (hint, true),
                _ => {
                    let (key, _) = self.key()?;
                    let at = defs
                        .iter()
                        .position(|d| crate::json::same(d.1, key) || crate::json::same(d.2, key))?;
                    (at, crate::json::same(defs[at].1, key))
                }
            };
            hint = at + 1;
            let key_end = self.i;
            self.eat(b':')?;
            let value = self.i;
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
            // Written as the writer writes it: camelCase name, then `:` and the value
            // with no whitespace, the value in its canonical form.
            let tight = camel && tight(self.b, key_end, value, self.i);
            if tight && self.canonical(*slot, kind, &self.b[value..self.i]) {
                s.clean |= 1 << (num - 1);
                s.text[num as usize - 1] = (member as u32, self.i as u32);
            }
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

/// The form serde writes timestamps in, read without chrono:
/// `YYYY-MM-DDTHH:MM:SS[.d…]Z`, one to nine fractional digits, a date that exists, no
/// leap second. The instant chrono's `parse_from_rfc3339` reads from the same text;
/// `None` for any other text (then chrono reads it, or refuses it).
pub(in crate::json) fn utc_rfc3339(b: &[u8]) -> Option<Timestamp> {
    let end = b.len().checked_sub(1)?;
    if !(19..=29).contains(&end) || b[end] != b'Z' {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let digit = |i: usize| -> Option<u32> {
        let c = b[i].wrapping_sub(b'0');
        (c < 10).then_some(u32::from(c))
    };
    let two = |i: usize| -> Option<u32> { Some(digit(i)? * 10 + digit(i + 1)?) };
    let year = two(0)? * 100 + two(2)?;
    let (month, day) = (two(5)?, two(8)?);
    let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut nanos = 0;
    if end > 19 {
        if b[19] != b'.' || end == 20 {
            return None;
        }
        let mut scale = 100_000_000;
        for i in 20..end {
            nanos += digit(i)? * scale;
            scale /= 10;
        }
    }
    // Days from 1970-01-01 to the date (H. Hinnant's `days_from_civil`).
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(Timestamp {
        seconds: days * 86_400 + i64::from(hour * 3_600 + minute * 60 + second),
        nanos: nanos as i32,
    })
}

/// Whether `text` (read by [`utc_rfc3339`] as `ts`) is what the JSON writer writes for
/// `ts`: years 1–9999, and the fraction as `wire::rfc3339_unix` writes it — none for
/// whole seconds, else 3, 6 or 9 digits, the fewest that hold the nanoseconds.
fn canonical_ts(text: &[u8], ts: &Timestamp) -> bool {
    let nanos = ts.nanos;
    let width = match text.len() {
        20 => 0,
        n => n - 21,
    };
    let fewest = if nanos == 0 {
        0
    } else if nanos % 1_000_000 == 0 {
        3
    } else if nanos % 1_000 == 0 {
        6
    } else {
        9
    };
    width == fewest && &text[..4] != b"0000"
}
