//! One validating pass over a protobuf `cdr.v1.CdrEvent`, without decoding it: it records
//! where each field's last occurrence lies in the input, whether its value is set (proto3:
//! non-default), the routing values and the timestamps, and accepts exactly what prost
//! accepts (varints of at most 10 bytes without overflow, keys within `u32`, wire types
//! 0–5 and the one each known field expects, tags ≥ 1, lengths within their message,
//! UTF-8 strings everywhere — content, extensions and `retention` included —, groups
//! matched and nested no deeper than prost's recursion limit).
//!
//! Nothing is allocated here except the list of supplementary services, which is reused
//! from event to event.

use crate::schema::Timestamp;

/// The input is not a `CdrEvent` prost would accept. Carries nothing: the caller asks
/// prost for the message of the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bad;

/// prost's `RECURSION_LIMIT`.
const RECURSION_LIMIT: u32 = 100;

/// How a leaf field is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    I32,
    U32,
    U64,
    I64,
    Bool,
    F64,
    /// A `google.protobuf.Timestamp` sub-message (merged over its occurrences).
    Ts,
    /// `repeated Purpose`, packed or not.
    Purposes,
    /// `map<string, string>`.
    Map,
}

/// A leaf of the schema: a row of the policy table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leaf {
    pub path: &'static str,
    /// The field number of the sub-message of `CdrEvent` holding it; 0 for a top-level one.
    pub msg: u8,
    pub num: u8,
    pub kind: Kind,
}

const fn leaf(path: &'static str, msg: u8, num: u8, kind: Kind) -> Leaf {
    Leaf {
        path,
        msg,
        num,
        kind,
    }
}

use Kind::*;

/// Every leaf, in field-number order within each message (the emitter relies on it).
pub(crate) const LEAVES: [Leaf; 48] = [
    leaf("event_id", 0, 1, Str),
    leaf("event_time", 0, 2, Ts),
    leaf("event_type", 0, 3, I32),
    leaf("direction", 0, 4, I32),
    leaf("declared_purposes", 0, 5, Purposes),
    leaf("served.imsi", 6, 1, Str),
    leaf("served.msisdn", 6, 2, Str),
    leaf("served.account_id", 6, 3, Str),
    leaf("served.ue_ip", 6, 4, Str),
    leaf("terminal.imei", 7, 1, Str),
    leaf("terminal.imeisv", 7, 2, Str),
    leaf("calling.number", 8, 1, Str),
    leaf("calling.ip", 8, 2, Str),
    leaf("calling.port", 8, 3, U32),
    leaf("called.number", 9, 1, Str),
    leaf("called.ip", 9, 2, Str),
    leaf("called.port", 9, 3, U32),
    leaf("timing.answer_time", 10, 1, Ts),
    leaf("timing.release_time", 10, 2, Ts),
    leaf("timing.duration_ms", 10, 3, U64),
    leaf("network.recording_entity", 11, 1, Str),
    leaf("network.cause_for_term", 11, 2, Str),
    leaf("network.rat_type", 11, 3, Str),
    leaf("network.basic_service", 11, 4, Str),
    leaf("network.call_reference", 11, 5, Str),
    leaf("network.charging_id", 11, 6, Str),
    leaf("network.apn", 11, 7, Str),
    leaf("network.bytes_uplink", 11, 8, U64),
    leaf("network.bytes_downlink", 11, 9, U64),
    leaf("supplementary_services.code", 12, 1, Str),
    leaf("supplementary_services.provider", 12, 2, Str),
    leaf("location.mcc", 13, 1, Str),
    leaf("location.mnc", 13, 2, Str),
    leaf("location.lac", 13, 3, Str),
    leaf("location.cell_id", 13, 4, Str),
    leaf("location.latitude", 13, 5, F64),
    leaf("location.longitude", 13, 6, F64),
    leaf("charging.chargeable", 14, 1, Bool),
    leaf("charging.tariff_class", 14, 2, Str),
    leaf("charging.amount_minor", 14, 3, I64),
    leaf("charging.currency", 14, 4, Str),
    leaf("charging.rating_group", 14, 5, U32),
    leaf("content.sms_text", 15, 1, Str),
    leaf("content.ussd_string", 15, 2, Str),
    leaf("content.url", 15, 3, Str),
    leaf("content.dns_query", 15, 4, Str),
    leaf("content.sni", 15, 5, Str),
    leaf("extensions", 0, 16, Map),
];

pub(crate) const EVENT_ID: usize = 0;
pub(crate) const EVENT_TIME: usize = 1;
pub(crate) const EVENT_TYPE: usize = 2;
pub(crate) const DIRECTION: usize = 3;
pub(crate) const CHARGEABLE: usize = 37;
pub(crate) const ANSWER_TIME: usize = 17;
pub(crate) const RELEASE_TIME: usize = 18;
pub(crate) const SERVICES: u8 = 12;
pub(crate) const TIMING: u8 = 10;
const RETENTION: u32 = 17;

/// Sub-messages of `CdrEvent` are numbered below this.
pub(crate) const MSGS: usize = 16;

/// `INDEX[msg][num]`: the leaf id, or `NONE`.
const NONE: u8 = u8::MAX;
const INDEX: [[u8; 17]; MSGS + 1] = {
    let mut t = [[NONE; 17]; MSGS + 1];
    let mut i = 0;
    while i < LEAVES.len() {
        let l = LEAVES[i];
        let msg = if l.msg == 0 { 0 } else { l.msg as usize };
        t[msg][l.num as usize] = i as u8;
        i += 1;
    }
    t
};

/// The leaves of a sub-message, as a mask over leaf ids.
pub(crate) const MSG_LEAVES: [u64; MSGS] = {
    let mut t = [0u64; MSGS];
    let mut i = 0;
    while i < LEAVES.len() {
        if LEAVES[i].msg != 0 {
            t[LEAVES[i].msg as usize] |= 1 << i;
        }
        i += 1;
    }
    t
};

/// `KINDS[msg][num]`: the kind of `INDEX[msg][num]` (one load with the leaf id).
const KINDS: [[Kind; 17]; MSGS + 1] = {
    let mut t = [[Str; 17]; MSGS + 1];
    let mut i = 0;
    while i < LEAVES.len() {
        let l = LEAVES[i];
        t[l.msg as usize][l.num as usize] = l.kind;
        i += 1;
    }
    t
};

/// The leaf of field `num` of sub-message `msg`, and its kind.
#[inline(always)]
fn leaf_kind(msg: usize, num: u32) -> Option<(usize, Kind)> {
    let n = num as usize;
    match INDEX[msg].get(n) {
        Some(&l) if l != NONE => Some((l as usize, KINDS[msg][n])),
        _ => None,
    }
}

/// Where a field occurrence lies: key included.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Occ {
    pub start: u32,
    pub end: u32,
}

impl Occ {
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }
}

/// What one sub-message of `CdrEvent` looked like.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MsgInfo {
    /// Occurrences of the field in the event (prost merges them).
    pub count: u32,
    /// The body of the last occurrence.
    pub body: Occ,
    /// The field numbers it holds (bit n = field n).
    pub nums: u32,
    /// No unknown field, no field twice, no field at its default value: its body is
    /// exactly what a filtered copy keeping all of `nums` would write.
    pub clean: bool,
}

/// One element of `supplementary_services`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Service {
    pub body: Occ,
    /// `code`, `provider`: the last occurrence in the element.
    pub occ: [Occ; 2],
    /// Bit i: field i + 1 holds a non-default value.
    pub set: u8,
    pub nums: u32,
    pub clean: bool,
}

/// The result of a scan, reused from event to event.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Last occurrence of each leaf (by id).
    pub occ: [Occ; 48],
    /// Leaves whose final value is set (non-default; for a timestamp: present).
    pub set: u64,
    /// Where the value of `event_id` lies (its last occurrence).
    pub event_id: Occ,
    /// Timestamps by leaf id, merged over their occurrences.
    pub event_time: Option<Timestamp>,
    pub answer_time: Option<Timestamp>,
    pub release_time: Option<Timestamp>,
    pub event_type: i32,
    pub direction: i32,
    pub chargeable: bool,
    /// `declared_purposes`: any value at all, and bit v for a value v in 0..=31.
    pub declared_any: bool,
    pub declared: u32,
    pub msgs: [MsgInfo; MSGS],
    pub services: Vec<Service>,
}

impl Default for Scan {
    fn default() -> Scan {
        Scan {
            occ: [Occ::default(); 48],
            set: 0,
            event_id: Occ::default(),
            event_time: None,
            answer_time: None,
            release_time: None,
            event_type: 0,
            direction: 0,
            chargeable: false,
            declared_any: false,
            declared: 0,
            msgs: [MsgInfo::default(); MSGS],
            services: Vec::new(),
        }
    }
}

/// A position in the record, before `end` (the record's or a sub-message's end).
struct Cursor<'a> {
    /// The record up to `end`: positions are offsets in the record.
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over the next bytes of this one, up to `end` (a sub-message's end, from
    /// [`Cursor::delimited`]).
    fn until(&self, end: usize) -> Cursor<'a> {
        Cursor {
            buf: &self.buf[..end],
            pos: self.pos,
            end,
        }
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64, Bad> {
        // Most varints (keys, lengths, small values) are one byte.
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.long_varint(),
        }
    }

    fn long_varint(&mut self) -> Result<u64, Bad> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(Bad);
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                // The tenth byte may only hold the 64th bit.
                if i == 9 && b >= 2 {
                    return Err(Bad);
                }
                return Ok(value);
            }
        }
        Err(Bad)
    }

    #[inline(always)]
    fn key(&mut self) -> Result<(u32, u8), Bad> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(Bad);
        }
        let wire_type = (key & 7) as u8;
        if wire_type > 5 {
            return Err(Bad);
        }
        let tag = (key as u32) >> 3;
        if tag == 0 {
            return Err(Bad);
        }
        Ok((tag, wire_type))
    }

    /// A length prefix; returns the end of the delimited bytes.
    #[inline(always)]
    fn delimited(&mut self) -> Result<usize, Bad> {
        let len = self.varint()?;
        if len > (self.end - self.pos) as u64 {
            return Err(Bad);
        }
        Ok(self.pos + len as usize)
    }

    fn take(&mut self, n: usize) -> Result<(), Bad> {
        if self.end - self.pos < n {
            return Err(Bad);
        }
        self.pos += n;
        Ok(())
    }

    /// prost's `skip_field`.
    fn skip(&mut self, wire_type: u8, tag: u32, ctx: u32) -> Result<(), Bad> {
        if ctx == 0 {
            return Err(Bad);
        }
        match wire_type {
            0 => self.varint().map(drop),
            1 => self.take(8),
            5 => self.take(4),
            2 => {
                let end = self.delimited()?;
                self.pos = end;
                Ok(())
            }
            3 => loop {
                let (inner_tag, inner_wire_type) = self.key()?;
                if inner_wire_type == 4 {
                    return if inner_tag == tag { Ok(()) } else { Err(Bad) };
                }
                self.skip(inner_wire_type, inner_tag, ctx - 1)?;
            },
            _ => Err(Bad),
        }
    }

    /// A string field: wire type 2, UTF-8. Returns whether it is non-empty.
    #[inline(always)]
    fn string(&mut self, wire_type: u8) -> Result<bool, Bad> {
        self.string_value(wire_type).map(|v| v.start != v.end)
    }

    /// A string field; returns where its value lies.
    #[inline(always)]
    fn string_value(&mut self, wire_type: u8) -> Result<Occ, Bad> {
        if wire_type != 2 {
            return Err(Bad);
        }
        let end = self.delimited()?;
        let bytes = &self.buf[self.pos..end];
        let value = occ(self.pos, end);
        self.pos = end;
        // Most values are ASCII: a word-at-a-time test first.
        if !bytes.is_ascii() {
            std::str::from_utf8(bytes).map_err(|_| Bad)?;
        }
        Ok(value)
    }

    #[inline(always)]
    fn varint_field(&mut self, wire_type: u8) -> Result<u64, Bad> {
        if wire_type != 0 {
            return Err(Bad);
        }
        self.varint()
    }

    /// A `Timestamp` field, merged into `ts` (prost's `message::merge`). `ctx` is the
    /// context of the field holding it.
    fn timestamp(&mut self, wire_type: u8, ts: &mut Timestamp, ctx: u32) -> Result<(), Bad> {
        if wire_type != 2 || ctx == 0 {
            return Err(Bad);
        }
        let end = self.delimited()?;
        let mut inner = self.until(end);
        while inner.pos < end {
            let (tag, wt) = inner.key()?;
            match tag {
                1 => ts.seconds = inner.varint_field(wt)? as i64,
                2 => ts.nanos = inner.varint_field(wt)? as i32,
                _ => inner.skip(wt, tag, ctx - 1)?,
            }
        }
        self.pos = end;
        Ok(())
    }
}

impl Scan {
    fn reset(&mut self) {
        self.occ = [Occ::default(); 48];
        self.set = 0;
        self.event_id = Occ::default();
        self.event_time = None;
        self.answer_time = None;
        self.release_time = None;
        self.event_type = 0;
        self.direction = 0;
        self.chargeable = false;
        self.declared_any = false;
        self.declared = 0;
        self.msgs = [MsgInfo::default(); MSGS];
        self.services.clear();
    }

    #[inline(always)]
    fn mark(&mut self, leaf: usize, set: bool) {
        if set {
            self.set |= 1 << leaf;
        } else {
            self.set &= !(1 << leaf);
        }
    }

    /// Scans a whole record. `Err` exactly when prost's `CdrEvent::decode` fails.
    pub(crate) fn run(&mut self, buf: &[u8]) -> Result<(), Bad> {
        self.reset();
        let mut c = Cursor {
            buf,
            pos: 0,
            end: buf.len(),
        };
        debug_assert_eq!(c.buf.len(), c.end);
        let ctx = RECURSION_LIMIT;
        while c.pos < c.end {
            let start = c.pos;
            let (tag, wt) = c.key()?;
            match tag {
                1 => {
                    self.event_id = c.string_value(wt)?;
                    self.occ[EVENT_ID] = occ(start, c.pos);
                    self.mark(EVENT_ID, self.event_id.len() > 0);
                }
                2 => {
                    let ts = self.event_time.get_or_insert_with(Timestamp::default);
                    c.timestamp(wt, ts, ctx)?;
                    self.mark(EVENT_TIME, true);
                }
                3 => {
                    self.event_type = c.varint_field(wt)? as i32;
                    self.occ[EVENT_TYPE] = occ(start, c.pos);
                    self.mark(EVENT_TYPE, self.event_type != 0);
                }
                4 => {
                    self.direction = c.varint_field(wt)? as i32;
                    self.occ[DIRECTION] = occ(start, c.pos);
                    self.mark(DIRECTION, self.direction != 0);
                }
                5 => self.purposes(&mut c, wt)?,
                6..=11 | 13..=15 => self.message(&mut c, wt, tag as u8, ctx)?,
                12 => self.service(&mut c, wt, ctx)?,
                16 => map_entry(&mut c, wt, ctx).map(|()| self.mark(47, true))?,
                RETENTION => retention(&mut c, wt, ctx)?,
                _ => c.skip(wt, tag, ctx)?,
            }
        }
        self.chargeable = self.set & (1 << CHARGEABLE) != 0;
        Ok(())
    }

    fn purposes(&mut self, c: &mut Cursor<'_>, wt: u8) -> Result<(), Bad> {
        let mut push = |v: u64| {
            let v = v as i32;
            self.declared_any = true;
            if (0..32).contains(&v) {
                self.declared |= 1 << v;
            }
        };
        if wt == 2 {
            let end = c.delimited()?;
            let mut inner = c.until(end);
            while inner.pos < end {
                push(inner.varint()?);
            }
            c.pos = end;
        } else {
            push(c.varint_field(wt)?);
        }
        if self.declared_any {
            self.mark(4, true);
        }
        Ok(())
    }

    /// A sub-message whose leaves are scalars or timestamps.
    fn message(&mut self, c: &mut Cursor<'_>, wt: u8, msg: u8, ctx: u32) -> Result<(), Bad> {
        if wt != 2 || ctx == 0 {
            return Err(Bad);
        }
        let end = c.delimited()?;
        let body = occ(c.pos, end);
        let ctx = ctx - 1;
        let mut inner = c.until(end);
        let mut nums = 0u32;
        let mut clean = true;
        while inner.pos < end {
            let start = inner.pos;
            let (tag, wt) = inner.key()?;
            let Some((l, kind)) = leaf_kind(msg as usize, tag) else {
                inner.skip(wt, tag, ctx)?;
                clean = false;
                continue;
            };
            // Strings first: most leaves are.
            let set = if kind == Str {
                inner.string(wt)?
            } else {
                match kind {
                    // The bits prost keeps of the varint: 32 for `int32` and `uint32`.
                    I32 | U32 => inner.varint_field(wt)? as u32 != 0,
                    U64 | I64 | Bool => inner.varint_field(wt)? != 0,
                    F64 => {
                        if wt != 1 || end - inner.pos < 8 {
                            return Err(Bad);
                        }
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&c.buf[inner.pos..inner.pos + 8]);
                        inner.pos += 8;
                        f64::from_le_bytes(b) != 0.0
                    }
                    Ts => {
                        let slot = if l == ANSWER_TIME {
                            &mut self.answer_time
                        } else {
                            &mut self.release_time
                        };
                        inner.timestamp(wt, slot.get_or_insert_with(Timestamp::default), ctx)?;
                        true
                    }
                    Str | Purposes | Map => unreachable!("top-level kinds"),
                }
            };
            let bit = 1u32 << tag;
            if nums & bit != 0 || !set {
                clean = false;
            }
            nums |= bit;
            self.occ[l] = occ(start, inner.pos);
            self.mark(l, set);
        }
        c.pos = end;
        let info = &mut self.msgs[msg as usize];
        info.count += 1;
        info.body = body;
        info.nums = nums;
        info.clean = clean;
        Ok(())
    }

    fn service(&mut self, c: &mut Cursor<'_>, wt: u8, ctx: u32) -> Result<(), Bad> {
        if wt != 2 || ctx == 0 {
            return Err(Bad);
        }
        let end = c.delimited()?;
        let mut s = Service {
            body: occ(c.pos, end),
            clean: true,
            ..Service::default()
        };
        let mut inner = c.until(end);
        while inner.pos < end {
            let start = inner.pos;
            let (tag, wt) = inner.key()?;
            if tag != 1 && tag != 2 {
                inner.skip(wt, tag, ctx - 1)?;
                s.clean = false;
                continue;
            }
            let set = inner.string(wt)?;
            let i = tag as usize - 1;
            let bit = 1u32 << tag;
            if s.nums & bit != 0 || !set {
                s.clean = false;
            }
            s.nums |= bit;
            s.occ[i] = occ(start, inner.pos);
            if set {
                s.set |= 1 << i;
            } else {
                s.set &= !(1 << i);
            }
        }
        c.pos = end;
        // Presence as the table reads it: any element holding the field.
        for i in 0..2 {
            if s.set & (1 << i) != 0 {
                self.set |= 1 << (29 + i);
            }
        }
        self.services.push(s);
        Ok(())
    }
}

/// One entry of `extensions`: validated, never kept.
fn map_entry(c: &mut Cursor<'_>, wt: u8, ctx: u32) -> Result<(), Bad> {
    if wt != 2 || ctx == 0 {
        return Err(Bad);
    }
    let end = c.delimited()?;
    let mut inner = c.until(end);
    while inner.pos < end {
        let (tag, wt) = inner.key()?;
        match tag {
            1 | 2 => inner.string(wt).map(drop)?,
            _ => inner.skip(wt, tag, ctx - 1)?,
        }
    }
    c.pos = end;
    Ok(())
}

/// An input `retention`: validated like prost does, never kept.
fn retention(c: &mut Cursor<'_>, wt: u8, ctx: u32) -> Result<(), Bad> {
    if wt != 2 || ctx == 0 {
        return Err(Bad);
    }
    let end = c.delimited()?;
    let mut inner = c.until(end);
    let mut ts = Timestamp::default();
    while inner.pos < end {
        let (tag, wt) = inner.key()?;
        match tag {
            1 => inner.varint_field(wt).map(drop)?,
            2 => inner.timestamp(wt, &mut ts, ctx - 1)?,
            3 | 4 => inner.string(wt).map(drop)?,
            _ => inner.skip(wt, tag, ctx - 1)?,
        }
    }
    c.pos = end;
    Ok(())
}

fn occ(start: usize, end: usize) -> Occ {
    Occ {
        start: start as u32,
        end: end as u32,
    }
}
