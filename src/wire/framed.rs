//! Schema Registry framing on the wire path: a framed protobuf record is filtered from a
//! slice after its prefix (no copy), as [`decode::decode_record`] reads it — the same
//! schema-id check and the same refusals —, and each output value starts with the
//! `output.framing` prefix written into its reused buffer.

use super::{WireFilter, WireRefusal, WireScratch};
use crate::decode::{self, DecodeError, InputFormat};
use crate::framing::{self, BodyKind};
use chrono::{DateTime, Utc};

impl WireFilter {
    /// [`WireFilter::apply_prefixed`] on a record as [`decode::decode_record`] reads it in
    /// `format` with `schema_ids`: bare, or framed (the body filtered in place). A framed
    /// JSON record (`confluent-json`, or `auto` guessing JSON) is decoded and filtered on
    /// the struct path into `out`: the same records, with protobuf output.
    pub fn apply_record(
        &self,
        input: &[u8],
        format: InputFormat,
        schema_ids: &[u32],
        prefix: &[u8],
        now: DateTime<Utc>,
        out: &mut WireScratch,
    ) -> Result<(), WireRefusal> {
        match body(input, format, schema_ids)? {
            Some(body) => self.apply_prefixed(body, prefix, now, out),
            None => {
                let decoded = decode::decode_record(input, format, schema_ids)
                    .map_err(WireRefusal::Undecodable)?;
                self.apply_struct(decoded.event, prefix, now, out)
            }
        }
    }
}

/// The protobuf message of a record: the record itself when bare, the slice after the
/// prefix when framed; `None` for a framed JSON document. The refusals are
/// [`decode::decode_record`]'s, in its order.
fn body<'a>(
    input: &'a [u8],
    format: InputFormat,
    schema_ids: &[u32],
) -> Result<Option<&'a [u8]>, WireRefusal> {
    let refuse = |e| Err(WireRefusal::Undecodable(e));
    let kind = match format {
        InputFormat::ConfluentProtobuf => BodyKind::Protobuf,
        InputFormat::Json | InputFormat::ConfluentJson => return Ok(None),
        InputFormat::Auto if framing::is_framed(input) => framing::guess_kind(input),
        InputFormat::Auto if super::looks_like_json(input) => return Ok(None),
        InputFormat::Auto | InputFormat::Protobuf => return Ok(Some(input)),
    };
    if kind == BodyKind::Json {
        return Ok(None);
    }
    if input.is_empty() {
        return refuse(DecodeError::Empty);
    }
    let schema_id = match framing::schema_id(input) {
        Ok(id) => id,
        Err(e) => return refuse(DecodeError::Framing(e)),
    };
    if !schema_ids.is_empty() && !schema_ids.contains(&schema_id) {
        return refuse(DecodeError::UnexpectedSchema { schema_id });
    }
    match framing::unframe(input, kind) {
        Ok(u) if u.body.is_empty() => refuse(DecodeError::Empty),
        Ok(u) => Ok(Some(u.body)),
        Err(e) => refuse(DecodeError::Framing(e)),
    }
}
