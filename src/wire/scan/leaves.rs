//! The leaves of `cdr.v1.CdrEvent` the scanner knows: each row of the policy tables,
//! where it lies (sub-message, field number) and how it is read.

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
pub(super) const RETENTION: u32 = 17;

/// Sub-messages of `CdrEvent` are numbered below this.
pub(crate) const MSGS: usize = 16;

/// `INDEX[msg][num]`: the leaf id, or `NONE`.
pub(super) const NONE: u8 = u8::MAX;
pub(super) const INDEX: [[u8; 17]; MSGS + 1] = {
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

/// The string leaves, as a mask over leaf ids.
pub(super) const STR_LEAVES: u64 = {
    let mut m = 0u64;
    let mut i = 0;
    while i < LEAVES.len() {
        if matches!(LEAVES[i].kind, Str) {
            m |= 1 << i;
        }
        i += 1;
    }
    m
};

/// The leaf of field `num` of sub-message `msg`.
#[inline(always)]
pub(crate) fn leaf_of(msg: usize, num: u32) -> Option<usize> {
    match INDEX[msg].get(num as usize) {
        Some(&l) if l != NONE => Some(l as usize),
        _ => None,
    }
}
