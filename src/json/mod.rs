//! The JSON fast paths, around the protobuf wire path ([`crate::wire`]):
//!
//! - **in** ([`JsonScratch::to_protobuf`]): proto3 canonical JSON to the event's canonical
//!   protobuf bytes in one pass, strings borrowed from the input (copied once, into the
//!   reused output buffer), then the wire path runs on those bytes;
//! - **out** ([`write_json`]): the wire path's filtered protobuf output written as
//!   canonical JSON straight into a reused buffer, without an owned event;
//! - **in and out** (`input/direct.rs`): no protobuf in between — the policy decides on
//!   what the parser read (`wire::Route`, `WireFilter::apply_routed`) and each purpose's
//!   output is written from the parsed event, members already in the writer's form
//!   copied as they are; byte for byte what `write_json` writes from the wire path's
//!   output, which stays its oracle and its fallback.
//!
//! Both have the struct path as their oracle and fall back to it on anything they are not
//! sure of: [`decode::decode_json`] → `encode_to_vec` for input, [`encode::encode_event`]
//! for output. The fast input path accepts a record only when it would give exactly the
//! bytes the struct path gives (`tests/json_props.rs` checks it on generated, hostile and
//! mutated input); everything else — unknown fields, duplicate keys, escaped keys, nulls
//! where serde refuses them, numbers in an unusual form, `retention` — is left to serde.
//!
//! [`decode::decode_json`]: crate::decode::decode_json
//! [`encode::encode_event`]: crate::encode::encode_event

#[cfg(test)]
mod tests;

mod input;
pub(crate) mod output;

pub use input::JsonScratch;
pub(crate) use input::Times;

/// How many leading bytes of `b` a JSON string holds as they are: ASCII, not a control
/// character, not `"` nor `\\`. Sixteen bytes at a time.
#[inline(always)]
pub(crate) fn plain_prefix(b: &[u8]) -> usize {
    const LO: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
    const HI: u128 = 0x8080_8080_8080_8080_8080_8080_8080_8080;
    let mut i = 0;
    // Sixteen bytes a step: most keys and values end within the first.
    while let Some(chunk) = b.get(i..i + 16) {
        let w = u128::from_le_bytes(chunk.try_into().expect("16 bytes"));
        let q = w ^ (LO * u128::from(b'"'));
        let s = w ^ (LO * u128::from(b'\\'));
        // A byte equal to 0 (after the xor), or below 0x20, or with its high bit set; the
        // lowest flagged byte is exact (borrows only run upwards).
        let special = ((q.wrapping_sub(LO) & !q)
            | (s.wrapping_sub(LO) & !s)
            | (w.wrapping_sub(LO * 0x20) & !w)
            | w)
            & HI;
        if special != 0 {
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 16;
    }
    while let Some(&c) = b.get(i) {
        if !(0x20..0x80).contains(&c) || c == b'"' || c == b'\\' {
            break;
        }
        i += 1;
    }
    i
}

/// Byte-wise equality of short keys (no call to `memcmp`).
#[inline(always)]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}
pub use output::{write_json, write_json_fast};
