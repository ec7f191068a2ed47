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

mod cursor;
mod leaves;

use cursor::{map_entry, occ, retention, Cursor};
pub(crate) use leaves::*;
use Kind::*;

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

    /// What the policy's decisions read of the scanned event.
    pub(crate) fn route(&self) -> super::Route {
        super::Route {
            event_id_len: self.event_id.len(),
            event_time: self.event_time,
            answer_time: self.answer_time,
            release_time: self.release_time,
            event_type: self.event_type,
            direction: self.direction,
            chargeable: self.chargeable,
            declared_any: self.declared_any,
            declared: self.declared,
            set: self.set,
        }
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
            let Some(l) = leaf_of(msg as usize, tag) else {
                inner.skip(wt, tag, ctx)?;
                clean = false;
                continue;
            };
            // Strings first: most leaves are.
            // Strings first, by a bit test (a conditional branch, not the jump table of
            // the `match`): most leaves are strings.
            let set = if STR_LEAVES & (1 << l) != 0 {
                inner.string(wt)?
            } else {
                match LEAVES[l].kind {
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
