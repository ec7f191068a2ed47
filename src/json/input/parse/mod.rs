//! The parser's structure: the document, arrays, the fields of the event and of each
//! sub-message, enums and timestamps. Tokens are read in [`lex`].

use super::*;

mod lex;

use lex::digits;

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
            let at = match defs.get(hint) {
                Some(d) if self.quoted_is(d.1) => hint,
                _ => {
                    let (key, _) = self.key()?;
                    defs.iter()
                        .position(|d| crate::json::same(d.1, key) || crate::json::same(d.2, key))?
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
