//! Writing an output record from a [`Scan`]: byte ranges of the input for the kept
//! fields, whole sub-messages when they hold nothing else, timestamps and `retention`
//! written anew. Output is in field-number order, like prost's.

use super::protobuf::{ts_field, ts_field_len, varint, varint_len};
use super::scan::{self, Occ, Scan, LEAVES, MSG_LEAVES};
use crate::schema::Timestamp;
use chrono::{DateTime, Utc};

/// What one (purpose, column, about the caller?) copies: a mask over leaf ids, and per
/// sub-message the field numbers kept (for whole copies).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CopyPlan {
    pub keep: u64,
    pub nums: [u32; scan::MSGS],
}

impl CopyPlan {
    pub fn from_leaves(keep: u64) -> CopyPlan {
        let mut nums = [0u32; scan::MSGS];
        for (i, l) in LEAVES.iter().enumerate() {
            if keep & (1 << i) != 0 && l.msg != 0 {
                nums[l.msg as usize] |= 1 << l.num;
            }
        }
        CopyPlan { keep, nums }
    }
}

#[inline(always)]
fn copy(input: &[u8], o: Occ, out: &mut Vec<u8>) {
    out.extend_from_slice(&input[o.start as usize..o.end as usize]);
}

/// Byte ranges of the input to append, adjacent ones joined into one copy.
struct Copies<'a> {
    input: &'a [u8],
    pending: Occ,
}

impl<'a> Copies<'a> {
    fn new(input: &'a [u8]) -> Copies<'a> {
        Copies {
            input,
            pending: Occ::default(),
        }
    }

    #[inline(always)]
    fn push(&mut self, o: Occ, out: &mut Vec<u8>) {
        if o.start == self.pending.end && self.pending.end != self.pending.start {
            self.pending.end = o.end;
        } else {
            self.flush(out);
            self.pending = o;
        }
    }

    #[inline(always)]
    fn flush(&mut self, out: &mut Vec<u8>) {
        if self.pending.end != self.pending.start {
            copy(self.input, self.pending, out);
            self.pending = Occ::default();
        }
    }
}

/// Writes `prefix`, then the event `plan` keeps, into `out` (cleared first), without
/// `retention`.
pub(crate) fn event(plan: &CopyPlan, input: &[u8], s: &Scan, prefix: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(prefix.len() + input.len() + 96);
    out.extend_from_slice(prefix);
    let keep = plan.keep;
    let kept_set = keep & s.set;
    let has = |l: usize| kept_set & (1 << l) != 0;
    let kept = |l: usize| keep & (1 << l) != 0;
    // Top-level scalars: copied as they came (a default value reads back as the default).
    if kept(scan::EVENT_ID) && s.occ[scan::EVENT_ID].end != 0 {
        copy(input, s.occ[scan::EVENT_ID], out);
    }
    if kept(scan::EVENT_TIME) {
        if let Some(ts) = &s.event_time {
            ts_field(2, ts, out);
        }
    }
    for l in [scan::EVENT_TYPE, scan::DIRECTION] {
        if kept(l) && s.occ[l].end != 0 {
            copy(input, s.occ[l], out);
        }
    }
    for msg in 6..=14u8 {
        let leaves = MSG_LEAVES[msg as usize] & kept_set;
        if msg == scan::SERVICES {
            services(plan, input, s, out);
            continue;
        }
        if leaves == 0 {
            continue;
        }
        if msg == scan::TIMING {
            timing(input, s, has, out);
            continue;
        }
        let info = &s.msgs[msg as usize];
        out.push(msg << 3 | 2);
        if info.count == 1 && info.clean && info.nums & !plan.nums[msg as usize] == 0 {
            varint(info.body.len() as u64, out);
            copy(input, info.body, out);
            continue;
        }
        let len: usize = bits(leaves).map(|l| s.occ[l].len()).sum();
        varint(len as u64, out);
        let mut copies = Copies::new(input);
        for l in bits(leaves) {
            copies.push(s.occ[l], out);
        }
        copies.flush(out);
    }
}

fn timing(input: &[u8], s: &Scan, has: impl Fn(usize) -> bool, out: &mut Vec<u8>) {
    let answer = s.answer_time.as_ref().filter(|_| has(scan::ANSWER_TIME));
    let release = s.release_time.as_ref().filter(|_| has(scan::RELEASE_TIME));
    let duration = has(scan::RELEASE_TIME + 1).then_some(s.occ[scan::RELEASE_TIME + 1]);
    let len = answer.map_or(0, ts_field_len)
        + release.map_or(0, ts_field_len)
        + duration.map_or(0, Occ::len);
    out.push(scan::TIMING << 3 | 2);
    varint(len as u64, out);
    if let Some(ts) = answer {
        ts_field(1, ts, out);
    }
    if let Some(ts) = release {
        ts_field(2, ts, out);
    }
    if let Some(o) = duration {
        copy(input, o, out);
    }
}

fn services(plan: &CopyPlan, input: &[u8], s: &Scan, out: &mut Vec<u8>) {
    let kept = (plan.keep >> 29) as u8 & 0b11;
    if kept == 0 {
        return;
    }
    for e in &s.services {
        out.push(scan::SERVICES << 3 | 2);
        if e.clean && e.nums & !(u32::from(kept) << 1) == 0 {
            varint(e.body.len() as u64, out);
            copy(input, e.body, out);
            continue;
        }
        let both = kept & e.set;
        let len: usize = (0..2)
            .filter(|i| both & (1 << i) != 0)
            .map(|i| e.occ[i].len())
            .sum();
        varint(len as u64, out);
        for i in 0..2 {
            if both & (1 << i) != 0 {
                copy(input, e.occ[i], out);
            }
        }
    }
}

/// The set bits of a mask, lowest first.
fn bits(mut m: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if m == 0 {
            return None;
        }
        let i = m.trailing_zeros() as usize;
        m &= m - 1;
        Some(i)
    })
}

/// Appends `retention` (field 17): the purpose, the expiry and `tail` (its encoded
/// `legal_basis` and `policy_version`).
pub(crate) fn retention(purpose: i32, expires_at: &Timestamp, tail: &[u8], out: &mut Vec<u8>) {
    let purpose_len = if purpose != 0 {
        1 + varint_len(purpose as u64)
    } else {
        0
    };
    let len = purpose_len + ts_field_len(expires_at) + tail.len();
    out.extend_from_slice(&[0x8a, 0x01]);
    varint(len as u64, out);
    if purpose != 0 {
        out.push(0x08);
        varint(purpose as u64, out);
    }
    ts_field(2, expires_at, out);
    out.extend_from_slice(tail);
}

/// A string field, for the constant tail of `retention`.
pub(crate) fn string_field(num: u32, s: &str, out: &mut Vec<u8>) {
    if s.is_empty() {
        return;
    }
    varint(u64::from(num << 3 | 2), out);
    varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// Room for `-YYYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` and more.
pub const RFC3339_MAX: usize = 40;

/// [`crate::retention::rfc3339`] into a buffer, without allocating for years 0–9999 (the
/// others, never reached from a valid event, are formatted by chrono).
pub fn rfc3339(t: DateTime<Utc>, buf: &mut [u8; RFC3339_MAX]) -> usize {
    let nanos = t.timestamp_subsec_nanos();
    if nanos >= 1_000_000_000 {
        return by_chrono(t, buf);
    }
    rfc3339_unix(t.timestamp(), nanos, buf, &mut { NO_DAY })
}

/// No date in the buffer yet (see [`rfc3339_unix`]).
pub(crate) const NO_DAY: i64 = i64::MIN;

#[cold]
fn by_chrono(t: DateTime<Utc>, buf: &mut [u8; RFC3339_MAX]) -> usize {
    let s = crate::retention::rfc3339(t);
    let n = s.len().min(RFC3339_MAX);
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    n
}

/// The first second of year 0 and of year 10000.
const YEAR_0: i64 = -62_167_219_200;
const YEAR_10000: i64 = 253_402_300_800;

/// The civil date of a day counted from 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// [`rfc3339`] of Unix seconds and nanoseconds (below 10⁹), by integer arithmetic.
/// `written_day`: the day (since 1970-01-01) whose date `buf` already starts with, or
/// [`NO_DAY`]; the date is written only when the day changes.
pub(crate) fn rfc3339_unix(
    secs: i64,
    nanos: u32,
    buf: &mut [u8; RFC3339_MAX],
    written_day: &mut i64,
) -> usize {
    if !(YEAR_0..YEAR_10000).contains(&secs) {
        *written_day = NO_DAY;
        return match DateTime::from_timestamp(secs, nanos) {
            Some(t) => by_chrono(t, buf),
            None => 0,
        };
    }
    fn put(buf: &mut [u8], at: usize, v: u32, width: usize) {
        let mut v = v;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    let days = secs.div_euclid(86_400);
    if *written_day != days {
        let (year, month, day) = civil(days);
        put(buf, 0, year as u32, 4);
        buf[4] = b'-';
        put(buf, 5, month, 2);
        buf[7] = b'-';
        put(buf, 8, day, 2);
        buf[10] = b'T';
        *written_day = days;
    }
    let sod = secs.rem_euclid(86_400) as u32;
    put(buf, 11, sod / 3_600, 2);
    buf[13] = b':';
    put(buf, 14, sod / 60 % 60, 2);
    buf[16] = b':';
    put(buf, 17, sod % 60, 2);
    let mut n = 19;
    if nanos != 0 {
        buf[n] = b'.';
        n += 1;
        let (v, width) = if nanos % 1_000_000 == 0 {
            (nanos / 1_000_000, 3)
        } else if nanos % 1_000 == 0 {
            (nanos / 1_000, 6)
        } else {
            (nanos, 9)
        };
        put(buf, n, v, width);
        n += width;
    }
    buf[n] = b'Z';
    n + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One buffer reused from instant to instant, as a record's header text is: the
    /// date is kept only while the day is the same.
    #[test]
    fn the_reused_date_is_the_right_one() {
        let day = 86_400;
        let instants = [
            (1_700_000_000, 0),
            (1_700_000_001, 5_000_000),
            (1_700_000_000 + day, 0),
            (1_700_000_000 + day + 3_600, 123),
            (YEAR_10000 + 10, 0),
            (1_700_000_000 + day + 7_200, 0),
            (-1, 999_999_999),
            (0, 0),
            (YEAR_0, 0),
            (YEAR_0 - 1, 0),
            (YEAR_0, 1),
        ];
        let mut buf = [0u8; RFC3339_MAX];
        let mut written = NO_DAY;
        for (secs, nanos) in instants {
            let n = rfc3339_unix(secs, nanos, &mut buf, &mut written);
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            assert_eq!(
                std::str::from_utf8(&buf[..n]).unwrap(),
                crate::retention::rfc3339(t),
                "{secs} {nanos}"
            );
        }
    }
}
