//! Tokens: whitespace, literals, strings (plain or with escapes), numbers.

use super::*;

/// `[0-9]+` as a u64, `None` for anything else or on overflow (which `u64::from_str`
/// refuses too).
#[inline]
pub(super) fn digits(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// `-?[0-9]+` as an i64, as `i64::from_str` reads it; `None` for anything else.
#[inline]
pub(super) fn signed_digits(b: &[u8]) -> Option<i64> {
    match b.split_first() {
        Some((b'-', rest)) => {
            let v = digits(rest)?;
            if v == 1 << 63 {
                Some(i64::MIN)
            } else {
                i64::try_from(v).ok().map(|v| -v)
            }
        }
        _ => i64::try_from(digits(b)?).ok(),
    }
}

/// A JSON number token, as written.
pub(super) struct Number {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) negative: bool,
    /// No fraction, no exponent.
    pub(super) integer: bool,
}

impl<'a> Parser<'a, '_> {
    #[inline(always)]
    pub(super) fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.i += 1;
        }
    }

    #[inline(always)]
    pub(super) fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    pub(super) fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    pub(super) fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null")
    }

    /// Whether the next token is the string `name` (plain ASCII): then it is consumed.
    #[inline(always)]
    pub(super) fn quoted_is(&mut self, name: &[u8]) -> bool {
        let (b, i, n) = (self.b, self.i, name.len());
        let hit = b.get(i) == Some(&b'"')
            && b.get(i + 1 + n) == Some(&b'"')
            && crate::json::same(&b[i + 1..i + 1 + n], name);
        if hit {
            self.i = i + n + 2;
        }
        hit
    }

    /// An object key without escapes (an escaped key is left to serde), and its range.
    pub(super) fn key(&mut self) -> Option<(&'a [u8], Str)> {
        let b = self.b;
        match self.string()? {
            Str::Input(x, y) => Some((&b[x as usize..y as usize], Str::Input(x, y))),
            _ => None,
        }
    }

    /// A string: its bytes are valid UTF-8, without control characters; escapes are
    /// decoded into the scratch buffer.
    pub(super) fn string(&mut self) -> Option<Str> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let b = self.b;
        let mut j = start;
        let mut high = false;
        loop {
            j += crate::json::plain_prefix(b.get(j..)?);
            let c = *b.get(j)?;
            if c == b'"' {
                break;
            }
            if c == b'\\' {
                return self.escaped(start, j);
            }
            if c < 0x20 {
                return None;
            }
            high = true;
            j += 1;
        }
        if high {
            std::str::from_utf8(&b[start..j]).ok()?;
        }
        self.i = j + 1;
        Some(Str::Input(start as u32, j as u32))
    }

    /// The rest of a string holding an escape at `j`: decoded into the scratch buffer.
    #[cold]
    pub(super) fn escaped(&mut self, start: usize, mut j: usize) -> Option<Str> {
        let out = &mut self.scratch.unescaped;
        let from = out.len();
        let mut run = start;
        loop {
            let c = *self.b.get(j)?;
            match c {
                b'"' => break,
                b'\\' => {
                    out.extend_from_slice(&self.b[run..j]);
                    let e = *self.b.get(j + 1)?;
                    j += 2;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hex = |at: usize| -> Option<u32> {
                                let h = self.b.get(at..at + 4)?;
                                let s = std::str::from_utf8(h).ok()?;
                                if !h.iter().all(u8::is_ascii_hexdigit) {
                                    return None;
                                }
                                u32::from_str_radix(s, 16).ok()
                            };
                            let u = hex(j)?;
                            j += 4;
                            let ch = if (0xD800..0xDC00).contains(&u) {
                                // A surrogate pair, or serde's error.
                                if self.b.get(j..j + 2)? != b"\\u" {
                                    return None;
                                }
                                let low = hex(j + 2)?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                j += 6;
                                char::from_u32(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00))?
                            } else {
                                char::from_u32(u)?
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return None,
                    }
                    run = j;
                }
                c if c < 0x20 => return None,
                _ => j += 1,
            }
        }
        out.extend_from_slice(&self.b[run..j]);
        std::str::from_utf8(&out[from..]).ok()?;
        self.i = j + 1;
        Some(Str::Scratch(from as u32, out.len() as u32))
    }

    /// A string without escapes, as its bytes (valid UTF-8: [`Self::string`] checked).
    pub(super) fn plain_bytes(&mut self) -> Option<&'a [u8]> {
        match self.string()? {
            Str::Empty => Some(b""),
            Str::Input(a, b) => Some(&self.b[a as usize..b as usize]),
            Str::Scratch(..) => None,
        }
    }

    /// A string without escapes, as `&str` (numbers and timestamps in strings).
    pub(super) fn plain_str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.plain_bytes()?).ok()
    }

    /// A number token by the JSON grammar.
    pub(super) fn number(&mut self) -> Option<Number> {
        self.ws();
        let start = self.i;
        let b = self.b;
        let mut j = start;
        let negative = b.get(j) == Some(&b'-');
        if negative {
            j += 1;
        }
        match b.get(j)? {
            b'0' => j += 1,
            b'1'..=b'9' => {
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            _ => return None,
        }
        let mut integer = true;
        if b.get(j) == Some(&b'.') {
            integer = false;
            j += 1;
            if !b.get(j)?.is_ascii_digit() {
                return None;
            }
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        if matches!(b.get(j), Some(b'e' | b'E')) {
            integer = false;
            j += 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if !b.get(j)?.is_ascii_digit() {
                return None;
            }
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        self.i = j;
        Some(Number {
            start,
            end: j,
            negative,
            integer,
        })
    }

    /// An unsigned integer: a JSON integer, or a string `u64::from_str` reads (pbjson).
    pub(super) fn unsigned(&mut self) -> Option<u64> {
        if self.peek()? == b'"' {
            return self.quoted_integer(digits);
        }
        let n = self.number()?;
        if !n.integer || n.negative {
            return None;
        }
        digits(&self.b[n.start..n.end])
    }

    /// A signed integer, likewise. (`-0` is a float for serde_json: left to it.)
    pub(super) fn signed(&mut self) -> Option<i64> {
        if self.peek()? == b'"' {
            return self.quoted_integer(signed_digits);
        }
        let n = self.number()?;
        if !n.integer || self.b[n.start..n.end] == *b"-0" {
            return None;
        }
        signed_digits(&self.b[n.start..n.end])
    }

    /// An integer written as a string (`"123"`, as pbjson writes 64-bit integers): read
    /// by `fast`, else by `FromStr` (`"+5"`); an escaped string is left to serde.
    fn quoted_integer<T: std::str::FromStr>(&mut self, fast: fn(&[u8]) -> Option<T>) -> Option<T> {
        match self.string()? {
            Str::Input(a, b) => {
                let text = &self.b[a as usize..b as usize];
                fast(text).or_else(|| std::str::from_utf8(text).ok()?.parse().ok())
            }
            _ => None,
        }
    }

    /// A double: a JSON number as serde_json reads it, or a string `f64::from_str`
    /// reads (pbjson: "NaN", "Infinity", "1.5").
    pub(super) fn double(&mut self) -> Option<f64> {
        if self.peek()? == b'"' {
            return self.plain_str()?.parse().ok();
        }
        let n = self.number()?;
        let token = &self.b[n.start..n.end];
        if let Some(v) = short_decimal(token) {
            return Some(v);
        }
        // serde_json's own float reading, on the token alone.
        serde_json::from_slice(token).ok()
    }
}

/// `-?D+.D+` with at most 18 digits and no exponent (coordinates as they are written),
/// read with the operations serde_json (without `float_roundtrip`) performs on it: the
/// digits as an integer converted to `f64`, divided once by the exact power of ten of
/// the fraction's length, the sign applied last — so the same bits. `None` for any other
/// token (serde_json reads it).
pub(in crate::json) fn short_decimal(token: &[u8]) -> Option<f64> {
    /// 10⁰ … 10¹⁸, exact in `f64` (serde_json's table holds the same values).
    const POW10: [f64; 19] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18,
    ];
    let (negative, digits) = match token.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, token),
    };
    let dot = digits.iter().position(|&c| c == b'.')?;
    let (int, frac) = (&digits[..dot], &digits[dot + 1..]);
    if int.is_empty() || frac.is_empty() || int.len() + frac.len() > 18 {
        return None;
    }
    // JSON: no leading zero but for `0` itself.
    if int.len() > 1 && int[0] == b'0' {
        return None;
    }
    let mut significand: u64 = 0;
    for &c in int.iter().chain(frac) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        significand = significand * 10 + u64::from(d);
    }
    let v = significand as f64 / POW10[frac.len()];
    Some(if negative { -v } else { v })
}
