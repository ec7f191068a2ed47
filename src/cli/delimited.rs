//! Length-delimited records, `dry-run`'s binary input: each record is a varint length
//! prefix, then that many bytes (bare protobuf, or Schema Registry framed). A prefix that
//! cannot be read ends the input with an error naming the record's number, its byte
//! offset and the cause — never any of its bytes (they may hold personal data).

use crate::error::{Classify, Fault};
use std::fmt;
use std::io::{self, Read};

/// The largest record accepted: a larger prefix is taken for input of another format.
const MAX_RECORD: u64 = 64 * 1024 * 1024;
/// A 64-bit varint takes at most ten bytes.
const MAX_PREFIX: usize = 10;

/// Why a record's length prefix cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cause {
    /// The input ends inside the length prefix.
    TruncatedPrefix,
    /// The prefix runs past ten bytes or past 64 bits.
    InvalidPrefix,
    /// The prefix announces more than [`MAX_RECORD`].
    TooLarge { announced: u64 },
    /// The input ends before the record does.
    TruncatedRecord { announced: u64, remaining: u64 },
    /// The input starts with `{"`, as JSON does: a `{` prefix (123 bytes) followed by
    /// field 4 with a length (wire type 2), which no `CdrEvent` has.
    LooksLikeJson,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::TruncatedPrefix => write!(f, "the input ends inside the length prefix"),
            Cause::InvalidPrefix => write!(
                f,
                "the length prefix is not a valid varint (longer than {MAX_PREFIX} bytes or past 64 bits)"
            ),
            Cause::TooLarge { announced } => write!(
                f,
                "the length prefix announces {announced} bytes, more than the {} MiB a record may have",
                MAX_RECORD >> 20
            ),
            Cause::TruncatedRecord {
                announced,
                remaining,
            } => write!(
                f,
                "the length prefix announces {announced} bytes but only {remaining} remain"
            ),
            Cause::LooksLikeJson => write!(f, "the input starts with `{{\"`, as JSON does"),
        }
    }
}

/// Input that is not length-delimited: the user's to fix (wrong `--format`, a truncated
/// file), not a failure of the filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "input record {record} at byte {offset}: {cause} (is the input length-delimited? \
     JSON lines need --format json)"
)]
pub(super) struct FramingError {
    /// The record's number, from 1.
    pub record: u64,
    /// Where its length prefix starts, from 0.
    pub offset: u64,
    pub cause: Cause,
}

impl Classify for FramingError {
    fn fault(&self) -> Fault {
        Fault::User
    }
}

/// Reading the input failed: the machine's I/O, or the input's framing.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Framing(#[from] FramingError),
}

/// Length-delimited records of `input`, with the position of each.
pub(super) struct Delimited<R> {
    input: R,
    /// Records read so far.
    records: u64,
    /// Bytes read so far.
    offset: u64,
}

impl<R: Read> Delimited<R> {
    pub(super) fn new(input: R) -> Delimited<R> {
        Delimited {
            input,
            records: 0,
            offset: 0,
        }
    }

    /// Reads the next record into `buf`; `false` at a clean end of input (between two
    /// records).
    pub(super) fn next_into(&mut self, buf: &mut Vec<u8>) -> Result<bool, ReadError> {
        let (record, offset) = (self.records + 1, self.offset);
        let framing = |cause| FramingError {
            record,
            offset,
            cause,
        };
        let mut len: u64 = 0;
        let mut prefix = 0;
        loop {
            let Some(byte) = self.byte()? else {
                if prefix == 0 {
                    return Ok(false);
                }
                return Err(framing(Cause::TruncatedPrefix).into());
            };
            prefix += 1;
            // The tenth byte holds bit 63 only, and ends the varint.
            if prefix == MAX_PREFIX && byte > 1 {
                return Err(framing(Cause::InvalidPrefix).into());
            }
            len |= u64::from(byte & 0x7f) << (7 * (prefix - 1));
            if byte & 0x80 == 0 {
                break;
            }
        }
        if len > MAX_RECORD {
            return Err(framing(Cause::TooLarge { announced: len }).into());
        }
        buf.clear();
        let read = (&mut self.input).take(len).read_to_end(buf)? as u64;
        if record == 1 && prefix == 1 && len == u64::from(b'{') && buf.first() == Some(&b'"') {
            return Err(framing(Cause::LooksLikeJson).into());
        }
        if read < len {
            return Err(framing(Cause::TruncatedRecord {
                announced: len,
                remaining: read,
            })
            .into());
        }
        self.offset += prefix as u64 + len;
        self.records += 1;
        Ok(true)
    }

    /// One byte of the prefix; `None` at the end of the input.
    fn byte(&mut self) -> io::Result<Option<u8>> {
        let mut byte = [0u8];
        loop {
            match self.input.read(&mut byte) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(byte[0])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        while n >= 0x80 {
            v.push((n as u8) | 0x80);
            n >>= 7;
        }
        v.push(n as u8);
        v
    }

    fn records(lens: &[usize]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            v.extend(varint(*len as u64));
            v.extend(std::iter::repeat_n(i as u8, *len));
        }
        v
    }

    /// Reads every record; the records read and the error, if any.
    fn read_all(input: &[u8]) -> (Vec<Vec<u8>>, Option<FramingError>) {
        let mut d = Delimited::new(input);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match d.next_into(&mut buf) {
                Ok(true) => out.push(buf.clone()),
                Ok(false) => return (out, None),
                Err(ReadError::Framing(e)) => return (out, Some(e)),
                Err(ReadError::Io(e)) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn json_lines_are_told_at_the_first_record() {
        let json = b"{\"eventId\":\"e-1\",\"eventTime\":\"2026-11-28T12:00:00Z\"}\n".repeat(5);
        let (read, err) = read_all(&json);
        assert!(read.is_empty());
        let err = err.expect("an error");
        assert_eq!((err.record, err.offset), (1, 0));
        assert_eq!(err.cause, Cause::LooksLikeJson);
        assert!(err.to_string().contains("--format json"), "{err}");
        // A first record of 123 bytes that is not `"`-led is read as one.
        let (read, err) = read_all(&records(&[123, 2]));
        assert_eq!((read.len(), err), (2, None));
    }

    #[test]
    fn reads_records_up_to_a_clean_end() {
        let (read, err) = read_all(&records(&[3, 0, 200, 1]));
        assert_eq!(err, None);
        let lens: Vec<usize> = read.iter().map(Vec::len).collect();
        assert_eq!(lens, [3, 0, 200, 1]);
        assert_eq!(read[2], vec![2u8; 200]);
        assert_eq!(read_all(&[]), (vec![], None));
    }

    #[test]
    fn a_record_cut_short_names_its_number_offset_and_the_bytes_missing() {
        let mut input = records(&[5, 300]);
        let offset = input.len() as u64;
        input.extend(varint(9223));
        input.extend([7u8; 41]);
        let (read, err) = read_all(&input);
        assert_eq!(read.len(), 2);
        let err = err.expect("a framing error");
        assert_eq!(
            err,
            FramingError {
                record: 3,
                offset,
                cause: Cause::TruncatedRecord {
                    announced: 9223,
                    remaining: 41
                }
            }
        );
        // 1 + 5 + 2 + 300 bytes before it.
        assert_eq!(offset, 308);
        assert_eq!(
            err.to_string(),
            "input record 3 at byte 308: the length prefix announces 9223 bytes but only 41 \
             remain (is the input length-delimited? JSON lines need --format json)"
        );
    }

    #[test]
    fn a_prefix_cut_short_overlong_or_too_large_is_named() {
        let mut input = records(&[2]);
        input.push(0x80);
        let (read, err) = read_all(&input);
        assert_eq!(read.len(), 1);
        assert_eq!(
            err,
            Some(FramingError {
                record: 2,
                offset: 3,
                cause: Cause::TruncatedPrefix
            })
        );

        // Eleven continuation bytes; ten with a tenth past bit 63.
        for bad in [vec![0xff; 11], [vec![0x80; 9], vec![0x02]].concat()] {
            let (read, err) = read_all(&bad);
            assert!(read.is_empty());
            assert_eq!(err.expect("an error").cause, Cause::InvalidPrefix);
        }

        // u64::MAX is a valid varint, and too large.
        for (len, input) in [
            (u64::MAX, varint(u64::MAX)),
            (MAX_RECORD + 1, varint(MAX_RECORD + 1)),
        ] {
            let err = read_all(&input).1.expect("an error");
            assert_eq!(err.cause, Cause::TooLarge { announced: len });
            assert!(err.to_string().contains("64 MiB"), "{err}");
        }
    }

    #[test]
    fn the_message_holds_no_byte_of_the_input() {
        let mut input = varint(100);
        input.extend(b"33612345678");
        let err = read_all(&input).1.expect("an error").to_string();
        assert!(!err.contains("33612345678"), "{err}");
        assert!(
            err.contains("announces 100 bytes but only 11 remain"),
            "{err}"
        );
    }
}
