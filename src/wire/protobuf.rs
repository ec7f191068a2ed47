//! The small parts of the protobuf encoding both protobuf writers use — the wire path's
//! outputs and the JSON input's conversion: varints and `google.protobuf.Timestamp`
//! fields, written as prost writes them.

use crate::schema::Timestamp;

#[inline(always)]
pub(crate) fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline(always)]
pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub(crate) fn ts_body_len(ts: &Timestamp) -> usize {
    let mut n = 0;
    if ts.seconds != 0 {
        n += 1 + varint_len(ts.seconds as u64);
    }
    if ts.nanos != 0 {
        n += 1 + varint_len(ts.nanos as u64);
    }
    n
}

/// Writes `v` as a varint at `buf[at..]`; returns the position after it.
#[inline(always)]
fn put_varint(mut v: u64, buf: &mut [u8; 32], mut at: usize) -> usize {
    while v >= 0x80 {
        buf[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    buf[at] = v as u8;
    at + 1
}

/// A timestamp field (number below 16): key, length, the set members; written into a
/// stack buffer, then appended at once.
pub(crate) fn ts_field(num: u8, ts: &Timestamp, out: &mut Vec<u8>) {
    debug_assert!(num < 16);
    // Key 1 byte, length 1 byte (a body is at most 22 bytes), two keys, two varints.
    let mut buf = [0u8; 32];
    buf[0] = num << 3 | 2;
    let mut n = 2;
    if ts.seconds != 0 {
        buf[n] = 0x08;
        n = put_varint(ts.seconds as u64, &mut buf, n + 1);
    }
    if ts.nanos != 0 {
        buf[n] = 0x10;
        n = put_varint(ts.nanos as u64, &mut buf, n + 1);
    }
    buf[1] = (n - 2) as u8;
    out.extend_from_slice(&buf[..n]);
}

pub(crate) fn ts_field_len(ts: &Timestamp) -> usize {
    let body = ts_body_len(ts);
    1 + varint_len(body as u64) + body
}
