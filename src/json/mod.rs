//! The JSON fast paths of issue 14, around the protobuf wire path ([`crate::wire`]):
//!
//! - **in** ([`JsonScratch::to_protobuf`]): proto3 canonical JSON to the event's canonical
//!   protobuf bytes in one pass, strings borrowed from the input (copied once, into the
//!   reused output buffer), then the wire path runs on those bytes;
//! - **out** ([`write_json`]): the wire path's filtered protobuf output written as
//!   canonical JSON straight into a reused buffer, without an owned event.
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

mod input;
mod output;

pub use input::JsonScratch;
pub use output::{write_json, write_json_fast};
