//! The Confluent Schema Registry wire format, on its own and without I/O, so that every
//! reader of records (the pipeline, `dry-run`, `audit`) unframes them the same way.
//!
//! A framed record is the magic byte `0x00`, the schema id as 4 bytes big-endian, then:
//! - for protobuf, the *message indexes* — the path of the message type inside the
//!   registered `.proto` file, written as a zig-zag varint count followed by that many
//!   zig-zag varints, the single byte `0` standing for `[0]` (the first message) — and
//!   the message;
//! - for JSON Schema, the JSON document.
//!
//! Unframing borrows: the body is a slice of the record, never a copy. A bare protobuf
//! `CdrEvent` never starts with `0x00` (field number 0 does not exist), nor does JSON, so
//! a record starting with it is framed or broken.

/// The first byte of a framed record.
pub const MAGIC: u8 = 0x00;
/// Magic byte and schema id.
pub const HEADER_LEN: usize = 5;
/// More message indexes than any real schema nests; a count past it is garbage.
const MAX_INDEXES: u64 = 64;

/// What follows the schema id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Message indexes, then a protobuf message.
    Protobuf,
    /// A JSON document.
    Json,
}

/// Why a record is not a well-formed framed record. Holds no byte of the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("no Schema Registry header: the first byte is not the magic byte 0x00")]
    NoMagic,
    #[error("Schema Registry header truncated: {0} byte(s), 5 needed")]
    TruncatedHeader(usize),
    #[error("Schema Registry message indexes truncated or malformed")]
    BadIndexes,
}

/// A framed record, borrowed from the record's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unframed<'a> {
    pub schema_id: u32,
    /// The encoded message-index array (protobuf only; empty for JSON). Decode it with
    /// [`Unframed::message_indexes`].
    pub index_bytes: &'a [u8],
    /// The message or the JSON document: a slice of the record.
    pub body: &'a [u8],
}

impl Unframed<'_> {
    /// The message indexes (`[0]` for the single byte `0`; empty for JSON).
    pub fn message_indexes(&self) -> Vec<i32> {
        if self.index_bytes.is_empty() {
            return Vec::new();
        }
        read_indexes(self.index_bytes)
            .map(|(indexes, _)| indexes)
            .unwrap_or_default()
    }
}

/// True when the record starts with the magic byte.
pub fn is_framed(bytes: &[u8]) -> bool {
    bytes.first() == Some(&MAGIC)
}

/// The schema id of a framed record, without looking at its body.
pub fn schema_id(bytes: &[u8]) -> Result<u32, FramingError> {
    if !is_framed(bytes) {
        return Err(FramingError::NoMagic);
    }
    let id: [u8; 4] = bytes
        .get(1..HEADER_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(FramingError::TruncatedHeader(bytes.len()))?;
    Ok(u32::from_be_bytes(id))
}

/// Splits a framed record into schema id, message indexes and body.
pub fn unframe(bytes: &[u8], kind: BodyKind) -> Result<Unframed<'_>, FramingError> {
    let schema_id = schema_id(bytes)?;
    let rest = &bytes[HEADER_LEN..];
    match kind {
        BodyKind::Json => Ok(Unframed {
            schema_id,
            index_bytes: &[],
            body: rest,
        }),
        BodyKind::Protobuf => {
            let used = scan_indexes(rest, |_| ()).ok_or(FramingError::BadIndexes)?;
            Ok(Unframed {
                schema_id,
                index_bytes: &rest[..used],
                body: &rest[used..],
            })
        }
    }
}

/// The body kind of a framed record whose format is not configured: a JSON document
/// starts with `{` (a message-index count never does: `{` is the zig-zag varint -62).
pub fn guess_kind(bytes: &[u8]) -> BodyKind {
    match bytes.get(HEADER_LEN..) {
        Some(rest) if rest.trim_ascii_start().first() == Some(&b'{') => BodyKind::Json,
        _ => BodyKind::Protobuf,
    }
}

/// Writes the header of a framed record into `buf` (appended): magic byte, schema id,
/// and for protobuf the message indexes (`[0]` as the single byte `0`).
pub fn write_header(buf: &mut Vec<u8>, schema_id: u32, kind: BodyKind, indexes: &[i32]) {
    buf.push(MAGIC);
    buf.extend_from_slice(&schema_id.to_be_bytes());
    if kind == BodyKind::Protobuf {
        if indexes == [0] {
            buf.push(0);
        } else {
            write_varint(buf, zigzag(indexes.len() as i64));
            for i in indexes {
                write_varint(buf, zigzag(i64::from(*i)));
            }
        }
    }
}

/// A whole framed record: header then body (for tests and tools; the pipeline writes
/// the header once and encodes after it).
pub fn frame(schema_id: u32, kind: BodyKind, indexes: &[i32], body: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + 4 + body.len());
    write_header(&mut buf, schema_id, kind, indexes);
    buf.extend_from_slice(body);
    buf
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn write_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// A varint and the bytes it took; `None` when truncated or longer than 10 bytes.
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The message indexes at the start of `bytes`, and the bytes they took.
fn read_indexes(bytes: &[u8]) -> Option<(Vec<i32>, usize)> {
    let mut indexes = Vec::new();
    let used = scan_indexes(bytes, |v| indexes.push(v))?;
    Some((indexes, used))
}

/// Reads the message indexes at the start of `bytes`, each given to `index` (`[0]` for
/// the single byte `0`); returns the bytes they took. Allocates nothing.
fn scan_indexes(bytes: &[u8], mut index: impl FnMut(i32)) -> Option<usize> {
    let (count, mut used) = read_varint(bytes)?;
    let count = unzigzag(count);
    if count == 0 {
        index(0);
        return Some(used);
    }
    if count < 0 || count as u64 > MAX_INDEXES {
        return None;
    }
    for _ in 0..count {
        let (v, n) = read_varint(&bytes[used..])?;
        used += n;
        let v = i32::try_from(unzigzag(v)).ok().filter(|v| *v >= 0)?;
        index(v);
    }
    Some(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_first_message_is_the_single_byte_zero() {
        let framed = frame(7, BodyKind::Protobuf, &[0], b"\x0a\x01x");
        assert_eq!(framed, b"\x00\x00\x00\x00\x07\x00\x0a\x01x");
        let u = unframe(&framed, BodyKind::Protobuf).unwrap();
        assert_eq!(u.schema_id, 7);
        assert_eq!(u.message_indexes(), vec![0]);
        assert_eq!(u.body, b"\x0a\x01x");
    }

    #[test]
    fn non_trivial_indexes_are_zigzag_varints() {
        // [10, 1]: count 2 → 4, 10 → 20, 1 → 2.
        let framed = frame(0x0102_0304, BodyKind::Protobuf, &[10, 1], b"body");
        assert_eq!(framed, b"\x00\x01\x02\x03\x04\x04\x14\x02body");
        let u = unframe(&framed, BodyKind::Protobuf).unwrap();
        assert_eq!(u.schema_id, 0x0102_0304);
        assert_eq!(u.message_indexes(), vec![10, 1]);
        assert_eq!(u.body, b"body");
        // An explicit [0] (count 1, index 0) is read as [0] too.
        let u = unframe(b"\x00\x00\x00\x00\x01\x02\x00body", BodyKind::Protobuf).unwrap();
        assert_eq!(u.message_indexes(), vec![0]);
        assert_eq!(u.body, b"body");
    }

    #[test]
    fn json_has_no_indexes() {
        let framed = frame(3, BodyKind::Json, &[5], b"{\"eventId\":\"e\"}");
        assert_eq!(&framed[..5], b"\x00\x00\x00\x00\x03");
        assert_eq!(guess_kind(&framed), BodyKind::Json);
        let u = unframe(&framed, BodyKind::Json).unwrap();
        assert_eq!(u.body, b"{\"eventId\":\"e\"}");
        assert!(u.message_indexes().is_empty());
    }

    #[test]
    fn broken_headers_are_errors() {
        assert_eq!(
            unframe(b"\x0a\x01x", BodyKind::Protobuf),
            Err(FramingError::NoMagic)
        );
        assert_eq!(
            unframe(b"\x00\x00\x01", BodyKind::Json),
            Err(FramingError::TruncatedHeader(3))
        );
        // No index byte at all, a negative count, an unterminated varint.
        for bad in [
            &b"\x00\x00\x00\x00\x01"[..],
            b"\x00\x00\x00\x00\x01\x01",
            b"\x00\x00\x00\x00\x01\x04\x80",
            b"\x00\x00\x00\x00\x01\x02\x01",
        ] {
            assert_eq!(
                unframe(bad, BodyKind::Protobuf),
                Err(FramingError::BadIndexes),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_body_is_borrowed_not_copied() {
        let framed = frame(1, BodyKind::Protobuf, &[2, 3], b"message");
        let u = unframe(&framed, BodyKind::Protobuf).unwrap();
        let start = framed.as_ptr() as usize;
        assert_eq!(u.body.as_ptr() as usize, start + framed.len() - 7);
    }

    proptest! {
        #[test]
        fn framing_then_unframing_is_the_identity_on_the_body(
            id in any::<u32>(),
            indexes in prop::collection::vec(0..i32::MAX, 1..6),
            body in prop::collection::vec(any::<u8>(), 0..256),
            json in any::<bool>(),
        ) {
            let kind = if json { BodyKind::Json } else { BodyKind::Protobuf };
            let framed = frame(id, kind, &indexes, &body);
            let u = unframe(&framed, kind).unwrap();
            prop_assert_eq!(u.schema_id, id);
            prop_assert_eq!(u.body, &body[..]);
            prop_assert_eq!(schema_id(&framed).unwrap(), id);
            if !json {
                prop_assert_eq!(u.message_indexes(), indexes);
            }
        }
    }
}
