//! Writing the mirror of the event as protobuf, in field-number order, as prost does.

use super::*;
use crate::wire::protobuf::{ts_field, varint, varint_len};

/// Writes fields as prost does: default values (empty, 0, false) left out.
pub(super) struct Writer<'a> {
    pub(super) input: &'a [u8],
    pub(super) unescaped: &'a [u8],
}

impl Writer<'_> {
    pub(super) fn string_len(&self, s: Str) -> usize {
        if s.is_empty() {
            0
        } else {
            1 + varint_len(s.len() as u64) + s.len()
        }
    }

    pub(super) fn string(&self, num: u8, s: Str, out: &mut Vec<u8>) {
        if s.is_empty() {
            return;
        }
        varint(u64::from(num) << 3 | 2, out);
        varint(s.len() as u64, out);
        out.extend_from_slice(s.bytes(self.input, self.unescaped));
    }

    #[allow(clippy::redundant_guards)]
    pub(super) fn sub(&self, num: u8, s: &Sub, defs: &[FieldDef], out: &mut Vec<u8>) {
        // The length is written after the body: one byte reserved, widened in the rare
        // body of 128 bytes or more.
        varint(u64::from(num) << 3 | 2, out);
        let at = out.len();
        out.push(0);
        for (i, v) in s.vals[..defs.len()].iter().enumerate() {
            let n = i as u8 + 1;
            match *v {
                Val::Unset | Val::Null => {}
                Val::Str(st) => self.string(n, st, out),
                Val::U64(0) | Val::I64(0) | Val::Bool(false) => {}
                Val::U64(x) => {
                    out.push(n << 3);
                    varint(x, out);
                }
                Val::I64(x) => {
                    out.push(n << 3);
                    varint(x as u64, out);
                }
                Val::F64(f) if f == 0.0 => {}
                Val::F64(f) => {
                    out.push(n << 3 | 1);
                    out.extend_from_slice(&f.to_le_bytes());
                }
                Val::Bool(true) => {
                    out.push(n << 3);
                    out.push(1);
                }
                Val::Ts(ts) => ts_field(n, &ts, out),
            }
        }
        let len = out.len() - at - 1;
        if len < 0x80 {
            out[at] = len as u8;
        } else {
            let mut prefix = [0u8; 10];
            let mut n = 0;
            let mut v = len;
            while v >= 0x80 {
                prefix[n] = (v as u8) | 0x80;
                v >>= 7;
                n += 1;
            }
            prefix[n] = v as u8;
            out.splice(at..at + 1, prefix[..=n].iter().copied());
        }
    }
}
