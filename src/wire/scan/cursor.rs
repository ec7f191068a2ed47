//! Reading a protobuf record as prost does: varints, keys, lengths, skipped fields,
//! strings (UTF-8), timestamps; and the two top-level fields validated but never kept.

use super::{Bad, Occ};
use crate::schema::Timestamp;

/// A position in the record, before `end` (the record's or a sub-message's end).
pub(super) struct Cursor<'a> {
    /// The record up to `end`: positions are offsets in the record.
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    pub(super) end: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over the next bytes of this one, up to `end` (a sub-message's end, from
    /// [`Cursor::delimited`]).
    pub(super) fn until(&self, end: usize) -> Cursor<'a> {
        Cursor {
            buf: &self.buf[..end],
            pos: self.pos,
            end,
        }
    }

    #[inline(always)]
    pub(super) fn varint(&mut self) -> Result<u64, Bad> {
        // Most varints (keys, lengths, small values) are one byte.
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.long_varint(),
        }
    }

    pub(super) fn long_varint(&mut self) -> Result<u64, Bad> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(Bad);
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                // The tenth byte may only hold the 64th bit.
                if i == 9 && b >= 2 {
                    return Err(Bad);
                }
                return Ok(value);
            }
        }
        Err(Bad)
    }

    #[inline(always)]
    pub(super) fn key(&mut self) -> Result<(u32, u8), Bad> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(Bad);
        }
        let wire_type = (key & 7) as u8;
        if wire_type > 5 {
            return Err(Bad);
        }
        let tag = (key as u32) >> 3;
        if tag == 0 {
            return Err(Bad);
        }
        Ok((tag, wire_type))
    }

    /// A length prefix; returns the end of the delimited bytes.
    #[inline(always)]
    pub(super) fn delimited(&mut self) -> Result<usize, Bad> {
        let len = self.varint()?;
        if len > (self.end - self.pos) as u64 {
            return Err(Bad);
        }
        Ok(self.pos + len as usize)
    }

    pub(super) fn take(&mut self, n: usize) -> Result<(), Bad> {
        if self.end - self.pos < n {
            return Err(Bad);
        }
        self.pos += n;
        Ok(())
    }

    /// prost's `skip_field`.
    pub(super) fn skip(&mut self, wire_type: u8, tag: u32, ctx: u32) -> Result<(), Bad> {
        if ctx == 0 {
            return Err(Bad);
        }
        match wire_type {
            0 => self.varint().map(drop),
            1 => self.take(8),
            5 => self.take(4),
            2 => {
                let end = self.delimited()?;
                self.pos = end;
                Ok(())
            }
            3 => loop {
                let (inner_tag, inner_wire_type) = self.key()?;
                if inner_wire_type == 4 {
                    return if inner_tag == tag { Ok(()) } else { Err(Bad) };
                }
                self.skip(inner_wire_type, inner_tag, ctx - 1)?;
            },
            _ => Err(Bad),
        }
    }

    /// A string field: wire type 2, UTF-8. Returns whether it is non-empty.
    #[inline(always)]
    pub(super) fn string(&mut self, wire_type: u8) -> Result<bool, Bad> {
        self.string_value(wire_type).map(|v| v.start != v.end)
    }

    /// A string field; returns where its value lies.
    #[inline(always)]
    pub(super) fn string_value(&mut self, wire_type: u8) -> Result<Occ, Bad> {
        if wire_type != 2 {
            return Err(Bad);
        }
        let end = self.delimited()?;
        let bytes = &self.buf[self.pos..end];
        let value = occ(self.pos, end);
        self.pos = end;
        // Most values are ASCII: a word-at-a-time test first.
        if !bytes.is_ascii() {
            std::str::from_utf8(bytes).map_err(|_| Bad)?;
        }
        Ok(value)
    }

    #[inline(always)]
    pub(super) fn varint_field(&mut self, wire_type: u8) -> Result<u64, Bad> {
        if wire_type != 0 {
            return Err(Bad);
        }
        self.varint()
    }

    /// A `Timestamp` field, merged into `ts` (prost's `message::merge`). `ctx` is the
    /// context of the field holding it.
    pub(super) fn timestamp(
        &mut self,
        wire_type: u8,
        ts: &mut Timestamp,
        ctx: u32,
    ) -> Result<(), Bad> {
        if wire_type != 2 || ctx == 0 {
            return Err(Bad);
        }
        let end = self.delimited()?;
        let mut inner = self.until(end);
        while inner.pos < end {
            let (tag, wt) = inner.key()?;
            match tag {
                1 => ts.seconds = inner.varint_field(wt)? as i64,
                2 => ts.nanos = inner.varint_field(wt)? as i32,
                _ => inner.skip(wt, tag, ctx - 1)?,
            }
        }
        self.pos = end;
        Ok(())
    }
}

/// One entry of `extensions`: validated, never kept.
pub(super) fn map_entry(c: &mut Cursor<'_>, wt: u8, ctx: u32) -> Result<(), Bad> {
    if wt != 2 || ctx == 0 {
        return Err(Bad);
    }
    let end = c.delimited()?;
    let mut inner = c.until(end);
    while inner.pos < end {
        let (tag, wt) = inner.key()?;
        match tag {
            1 | 2 => inner.string(wt).map(drop)?,
            _ => inner.skip(wt, tag, ctx - 1)?,
        }
    }
    c.pos = end;
    Ok(())
}

/// An input `retention`: validated like prost does, never kept.
pub(super) fn retention(c: &mut Cursor<'_>, wt: u8, ctx: u32) -> Result<(), Bad> {
    if wt != 2 || ctx == 0 {
        return Err(Bad);
    }
    let end = c.delimited()?;
    let mut inner = c.until(end);
    let mut ts = Timestamp::default();
    while inner.pos < end {
        let (tag, wt) = inner.key()?;
        match tag {
            1 => inner.varint_field(wt).map(drop)?,
            2 => inner.timestamp(wt, &mut ts, ctx - 1)?,
            3 | 4 => inner.string(wt).map(drop)?,
            _ => inner.skip(wt, tag, ctx - 1)?,
        }
    }
    c.pos = end;
    Ok(())
}

pub(super) fn occ(start: usize, end: usize) -> Occ {
    Occ {
        start: start as u32,
        end: end as u32,
    }
}
