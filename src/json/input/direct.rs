//! JSON in, JSON out, without protobuf in between: the policy's decisions taken on the
//! parsed mirror of the event ([`JsonScratch::route`]), each purpose's output written
//! from it as canonical JSON ([`JsonScratch::write_output`]) — the bytes
//! [`crate::json::write_json`] writes for the wire path's output of the same event, which
//! stays the oracle (`tests/json_props.rs`). Whatever this writer is not sure of (a value
//! JSON cannot express, a row the tables never keep) makes it give up, and the caller
//! takes the path through protobuf.

use super::*;
use crate::json::output::names::{
    Fields, CHARGING, CONTENT, DIRECTIONS, EVENT_TYPES, LOCATION, NETWORK, PARTY, PURPOSES,
    SERVICE, SUBSCRIBER, TERMINAL, TIMING,
};
use crate::json::output::{decimal as number, json_string, rfc3339};
use crate::wire::{leaf_of, Route, WireRecord, MSG_LEAVES, RFC3339_MAX};

/// The JSON names of each sub-message's fields (with quotes and colon), in SUBS order.
const NAMES: [Fields; 9] = [
    SUBSCRIBER, TERMINAL, PARTY, PARTY, TIMING, NETWORK, LOCATION, CHARGING, CONTENT,
];

/// The index of `timing` in SUBS.
const TIMING_SUB: usize = 4;
const _: () = assert!(SUBS[TIMING_SUB].0 == 10);

/// The leaf ids of `supplementary_services.code` and `.provider`.
const SERVICE_LEAVES: u64 = 0b11 << 29;
/// The leaves no table keeps a value of (`declared_purposes`, content, extensions): an
/// output holding one is not this writer's to write.
const NEVER_KEPT: u64 = (1 << 4) | (0b11111 << 42) | (1 << 47);

/// The RFC 3339 text of the event's three timestamps, written once per record and
/// copied into each output.
#[derive(Debug)]
pub(crate) struct Times {
    text: [[u8; RFC3339_MAX]; 3],
    /// 0: not written yet; `u8::MAX`: out of JSON's range.
    len: [u8; 3],
}

impl Default for Times {
    fn default() -> Times {
        Times {
            text: [[0; RFC3339_MAX]; 3],
            len: [0; 3],
        }
    }
}

impl Times {
    /// The text of timestamp `slot` (0 event, 1 answer, 2 release), `None` when JSON
    /// cannot write it.
    fn get(&mut self, slot: usize, ts: &Timestamp) -> Option<&[u8]> {
        if self.len[slot] == 0 {
            self.len[slot] = match rfc3339(ts, &mut self.text[slot]) {
                Some(n) => n as u8,
                None => u8::MAX,
            };
        }
        let n = self.len[slot];
        (n != u8::MAX).then(|| &self.text[slot][..usize::from(n)])
    }
}

/// Appends `"name":` after a comma unless it is the object's first member.
#[inline(always)]
fn key(out: &mut Vec<u8>, first: &mut bool, name: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(name.as_bytes());
}

/// Appends a whole member's text after a comma unless it is the object's first.
#[inline(always)]
fn member(out: &mut Vec<u8>, first: &mut bool, text: &[u8]) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(text);
}

fn quoted(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
}

impl JsonScratch {
    /// The parsed event's routing values and set leaves, as the scan reads them from the
    /// event's protobuf bytes.
    pub(crate) fn route(&self) -> Route {
        let e = self.event();
        let mut set = 0u64;
        set |= u64::from(!e.event_id.is_empty());
        set |= u64::from(e.event_time.is_some()) << 1;
        set |= u64::from(e.event_type != 0) << 2;
        set |= u64::from(e.direction != 0) << 3;
        set |= u64::from(!self.purposes.is_empty()) << 4;
        for (sub, (num, _, _)) in e.subs.iter().zip(SUBS.iter()) {
            if !sub.present {
                continue;
            }
            for (n, v) in sub.vals.iter().enumerate() {
                if is_set(v) {
                    let leaf = leaf_of(usize::from(*num), n as u32 + 1).expect("a known field");
                    set |= 1 << leaf;
                }
            }
        }
        for s in &self.services {
            for (i, v) in s.vals[..2].iter().enumerate() {
                if is_set(v) {
                    set |= 1 << (29 + i);
                }
            }
        }
        set |= u64::from(!self.extensions.is_empty()) << 47;
        let mut declared = 0;
        for &v in &self.purposes {
            if (0..32).contains(&v) {
                declared |= 1 << v;
            }
        }
        // answer_time and release_time: fields 1 and 2 of `timing`.
        let time = |n: usize| match e.subs[TIMING_SUB].vals[n] {
            Val::Ts(ts) => Some(ts),
            _ => None,
        };
        Route {
            event_id_len: e.event_id.len(),
            event_time: e.event_time,
            answer_time: time(0),
            release_time: time(1),
            event_type: e.event_type,
            direction: e.direction,
            chargeable: set & (1 << crate::wire::CHARGEABLE) != 0,
            declared_any: !self.purposes.is_empty(),
            declared,
            set,
        }
    }

    /// Whether the event's protobuf bytes would be empty (no field at all).
    pub(crate) fn is_empty_event(&self) -> bool {
        let e = self.event();
        e.event_id.is_empty()
            && e.event_time.is_none()
            && e.event_type == 0
            && e.direction == 0
            && self.purposes.is_empty()
            && !e.subs.iter().any(|s| s.present)
            && self.services.is_empty()
            && self.extensions.is_empty()
    }

    /// The parsed `event_id`, as text.
    pub(crate) fn event_id<'a>(&'a self, input: &'a [u8]) -> &'a str {
        let bytes = self.event().event_id.bytes(input, &self.unescaped);
        std::str::from_utf8(bytes).expect("the parser validated it")
    }

    /// Writes into `r.value` (cleared) the JSON of the output keeping the leaves `keep`
    /// of the parsed event, `retention` from `r`; `false` when it cannot (then `r.value`
    /// holds nothing of use).
    pub(crate) fn write_output(
        &self,
        input: &[u8],
        route: &Route,
        keep: u64,
        r: &mut WireRecord,
        times: &mut Times,
    ) -> bool {
        let mut out = std::mem::take(&mut r.value);
        let written = self.write_into(input, route, keep, r, times, &mut out);
        r.value = out;
        written
    }

    fn write_into(
        &self,
        input: &[u8],
        route: &Route,
        keep: u64,
        r: &WireRecord,
        times: &mut Times,
        out: &mut Vec<u8>,
    ) -> bool {
        let kept = keep & route.set;
        if kept & NEVER_KEPT != 0 {
            return false;
        }
        let w = Out {
            input,
            unescaped: &self.unescaped,
        };
        let e = self.event();
        out.clear();
        out.reserve(input.len() + 192);
        out.push(b'{');
        let mut first = true;
        if !write_top(&w, e, kept, times, out, &mut first) {
            return false;
        }
        for (i, (sub, (num, _, _))) in e.subs.iter().zip(SUBS.iter()).enumerate() {
            if *num == 13
                && keep & SERVICE_LEAVES != 0
                && !self.services.is_empty()
                && !self.write_services(&w, keep, out, &mut first)
            {
                return false;
            }
            let leaves = MSG_LEAVES[usize::from(*num)] & kept;
            if leaves != 0 && !write_sub(&w, i, sub, leaves, times, out, &mut first) {
                return false;
            }
        }
        write_retention(r, out, &mut first)
    }

    /// supplementary_services (12), written before location (13): every element, with
    /// the kept fields it sets (`{}` when none).
    #[inline(always)]
    fn write_services(&self, w: &Out<'_>, keep: u64, out: &mut Vec<u8>, first: &mut bool) -> bool {
        key(out, first, "\"supplementaryServices\":[");
        for (k, s) in self.services.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.push(b'{');
            let mut inner = true;
            for (n, (name, _)) in SERVICE.iter().enumerate() {
                if keep & (1 << (29 + n)) != 0 && s.clean & (1 << n) != 0 {
                    member(out, &mut inner, w.text(s.text[n]));
                    continue;
                }
                if keep & (1 << (29 + n)) != 0 {
                    if let Val::Str(v) = s.vals[n] {
                        if !v.is_empty() {
                            key(out, &mut inner, name);
                            if w.string(v, out).is_none() {
                                return false;
                            }
                        }
                    }
                }
            }
            out.push(b'}');
        }
        out.push(b']');
        true
    }
}

/// Fields 1–4 in order; a member written in the input as this writer writes it is copied
/// whole.
#[inline(always)]
fn write_top(
    w: &Out<'_>,
    e: &Event,
    kept: u64,
    times: &mut Times,
    out: &mut Vec<u8>,
    first: &mut bool,
) -> bool {
    for n in 0..4 {
        if kept & (1 << n) == 0 {
            continue;
        }
        if e.top_clean & (1 << n) != 0 {
            member(out, first, w.text(e.top_text[n]));
            continue;
        }
        match n {
            0 => {
                key(out, first, "\"eventId\":");
                if w.string(e.event_id, out).is_none() {
                    return false;
                }
            }
            1 => {
                let Some(text) = e.event_time.as_ref().and_then(|t| times.get(0, t)) else {
                    return false;
                };
                key(out, first, "\"eventTime\":");
                quoted(out, text);
            }
            2 => {
                key(out, first, "\"eventType\":");
                quoted(out, EVENT_TYPES[e.event_type as usize].as_bytes());
            }
            _ => {
                key(out, first, "\"direction\":");
                quoted(out, DIRECTIONS[e.direction as usize].as_bytes());
            }
        }
    }
    true
}

/// Sub-message `i` of SUBS with its kept `leaves` (at least one).
#[inline(always)]
fn write_sub(
    w: &Out<'_>,
    i: usize,
    sub: &Sub,
    leaves: u64,
    times: &mut Times,
    out: &mut Vec<u8>,
    first: &mut bool,
) -> bool {
    let num = SUBS[i].0;
    key(out, first, SUBS_KEYS[i]);
    out.push(b'{');
    let mut inner = true;
    for (n, v) in sub.vals.iter().enumerate().take(NAMES[i].len()) {
        let leaf = leaf_of(usize::from(num), n as u32 + 1).expect("a known field");
        if leaves & (1 << leaf) == 0 {
            continue;
        }
        if sub.clean & (1 << n) != 0 {
            member(out, &mut inner, w.text(sub.text[n]));
            continue;
        }
        key(out, &mut inner, NAMES[i][n].0);
        if !write_value(w, *v, SUBS[i].2[n].3, num == 10, n, times, out) {
            return false;
        }
    }
    out.push(b'}');
    true
}

/// One field's value, as the JSON writer writes it; `timing` says whether a timestamp
/// is `timing`'s field `n + 1`. `false` when JSON cannot express it.
#[inline(always)]
fn write_value(
    w: &Out<'_>,
    v: Val,
    kind: Kind,
    timing: bool,
    n: usize,
    times: &mut Times,
    out: &mut Vec<u8>,
) -> bool {
    match (v, kind) {
        (Val::Str(s), _) => w.string(s, out).is_some(),
        (Val::U64(x), Kind::U32) => {
            number(out, false, x);
            true
        }
        (Val::U64(x), _) => {
            out.push(b'"');
            number(out, false, x);
            out.push(b'"');
            true
        }
        (Val::I64(x), _) => {
            out.push(b'"');
            number(out, x < 0, x.unsigned_abs());
            out.push(b'"');
            true
        }
        (Val::F64(x), _) if x.is_finite() => serde_json::to_writer(&mut *out, &x).is_ok(),
        (Val::Bool(true), _) => {
            out.extend_from_slice(b"true");
            true
        }
        (Val::Ts(ts), _) if timing => match times.get(n + 1, &ts) {
            Some(text) => {
                quoted(out, text);
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// `retention`, as the protobuf path's writer puts it, and the event's closing brace.
#[inline(always)]
fn write_retention(r: &WireRecord, out: &mut Vec<u8>, first: &mut bool) -> bool {
    let expires = r.expires_at_text();
    if expires.is_empty() || r.expires_at().timestamp() > 253_402_300_799 {
        return false;
    }
    key(out, first, "\"retention\":{\"purpose\":");
    let Some(purpose) = PURPOSES.get(r.purpose as usize) else {
        return false;
    };
    quoted(out, purpose.as_bytes());
    out.extend_from_slice(b",\"expiresAt\":");
    quoted(out, expires.as_bytes());
    if !r.legal_basis.is_empty() {
        out.extend_from_slice(b",\"legalBasis\":");
        json_string(r.legal_basis, out);
    }
    if !r.policy_version.is_empty() {
        out.extend_from_slice(b",\"policyVersion\":");
        json_string(r.policy_version, out);
    }
    out.extend_from_slice(b"}}");
    true
}

/// `"served":` … by SUBS index.
const SUBS_KEYS: [&str; 9] = [
    "\"served\":",
    "\"terminal\":",
    "\"calling\":",
    "\"called\":",
    "\"timing\":",
    "\"network\":",
    "\"location\":",
    "\"charging\":",
    "\"content\":",
];

fn is_set(v: &Val) -> bool {
    match *v {
        Val::Unset | Val::Null => false,
        Val::Str(s) => !s.is_empty(),
        Val::U64(x) => x != 0,
        Val::I64(x) => x != 0,
        Val::F64(x) => x != 0.0,
        Val::Bool(b) => b,
        Val::Ts(_) => true,
    }
}

struct Out<'a> {
    input: &'a [u8],
    unescaped: &'a [u8],
}

impl<'a> Out<'a> {
    /// A range of the input.
    #[inline(always)]
    fn text(&self, (a, b): (u32, u32)) -> &'a [u8] {
        &self.input[a as usize..b as usize]
    }

    /// A parsed string as serde_json writes it. One of the input holds no escape, no
    /// quote and no control character (the parser took it as it was): its bytes are
    /// what serde_json writes.
    #[inline(always)]
    fn string(&self, s: Str, out: &mut Vec<u8>) -> Option<()> {
        match s {
            Str::Input(..) | Str::Empty => quoted(out, s.bytes(self.input, self.unescaped)),
            Str::Scratch(..) => {
                let text = std::str::from_utf8(s.bytes(self.input, self.unescaped)).ok()?;
                serde_json::to_writer(&mut *out, text).ok()?;
            }
        }
        Some(())
    }
}
