//! The headers of an output record, built once per record without intermediate
//! `String`s, and turned into librdkafka's list only at the send
//! ([`OutHeaders::to_kafka`]; librdkafka keeps that list with its message, and a failed
//! delivery's report gives it back for a re-send).
//!
//! A few headers with short values — a forwarded record's five contract headers — are
//! held without any allocation ([`OutHeaders::inline`]: static names, the values copied
//! into an inline buffer). Any other set (dead letters, the struct path) is packed in one
//! buffer: each header as its name's length (one byte), its name, its value's length
//! (four bytes) and its value.

use rdkafka::message::{Header, Headers, OwnedHeaders};

/// The most headers held inline.
const INLINE_HEADERS: usize = 5;
/// Room for the inline headers' values (the contract's five take about 80 bytes).
const INLINE_BYTES: usize = 128;

/// Headers, in order.
#[derive(Debug, Clone)]
pub struct OutHeaders(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// Up to [`INLINE_HEADERS`] headers: static names, the values one after the other
    /// in `values`, header `i`'s ending at `ends[i]`.
    Inline {
        names: [&'static str; INLINE_HEADERS],
        values: [u8; INLINE_BYTES],
        ends: [u8; INLINE_HEADERS],
        count: u8,
    },
    /// Any headers, in one buffer.
    Packed { buf: Vec<u8>, count: usize },
}

impl Default for OutHeaders {
    fn default() -> OutHeaders {
        OutHeaders(Repr::Packed {
            buf: Vec::new(),
            count: 0,
        })
    }
}

impl OutHeaders {
    /// The headers of `pairs`, in order.
    pub fn of<V: AsRef<str>>(pairs: &[(&'static str, V)]) -> OutHeaders {
        let len = pairs
            .iter()
            .map(|(k, v)| 5 + k.len() + v.as_ref().len())
            .sum();
        let mut buf = Vec::with_capacity(len);
        for (name, value) in pairs {
            let (name, value) = (name.as_bytes(), value.as_ref().as_bytes());
            let name_len = u8::try_from(name.len()).expect("a header name under 256 bytes");
            let value_len = u32::try_from(value.len()).expect("a header value under 4 GiB");
            buf.push(name_len);
            buf.extend_from_slice(name);
            buf.extend_from_slice(&value_len.to_le_bytes());
            buf.extend_from_slice(value);
        }
        OutHeaders(Repr::Packed {
            buf,
            count: pairs.len(),
        })
    }

    /// The headers of `pairs`, in order, without allocation when they fit inline (at most
    /// [`INLINE_HEADERS`], values of [`INLINE_BYTES`] in all); packed otherwise.
    pub fn inline(pairs: &[(&'static str, &str)]) -> OutHeaders {
        let total: usize = pairs.iter().map(|(_, v)| v.len()).sum();
        if pairs.len() > INLINE_HEADERS || total > INLINE_BYTES {
            return OutHeaders::of(pairs);
        }
        let mut names = [""; INLINE_HEADERS];
        let mut values = [0u8; INLINE_BYTES];
        let mut ends = [0u8; INLINE_HEADERS];
        let mut end = 0;
        for (i, (name, value)) in pairs.iter().enumerate() {
            values[end..end + value.len()].copy_from_slice(value.as_bytes());
            end += value.len();
            names[i] = name;
            // At most INLINE_BYTES (128).
            ends[i] = end as u8;
        }
        OutHeaders(Repr::Inline {
            names,
            values,
            ends,
            count: pairs.len() as u8,
        })
    }

    /// Every header, in order: (name, value).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let (inline, mut rest) = match &self.0 {
            Repr::Inline {
                names,
                values,
                ends,
                count,
            } => {
                let count = usize::from(*count);
                let starts = std::iter::once(0).chain(ends.iter().map(|&e| usize::from(e)));
                let entries = names[..count]
                    .iter()
                    .zip(starts.zip(&ends[..count]))
                    .map(move |(&name, (start, &end))| (name, &values[start..usize::from(end)]));
                (Some(entries), &[][..])
            }
            Repr::Packed { buf, .. } => (None, buf.as_slice()),
        };
        let packed = std::iter::from_fn(move || {
            let (&name_len, after) = rest.split_first()?;
            let (name, after) = after.split_at(usize::from(name_len));
            let (len, after) = after.split_at(4);
            let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
            let (value, after) = after.split_at(len);
            rest = after;
            // Written from a `&str` by `of`.
            let name = std::str::from_utf8(name).expect("a header name is UTF-8");
            Some((name, value))
        });
        inline.into_iter().flatten().chain(packed)
    }

    /// The headers' size in a v2 record: each name and value with its zigzag-varint
    /// length.
    pub fn wire_len(&self) -> usize {
        fn zigzag_len(n: usize) -> usize {
            let mut v = (n as u64) << 1;
            let mut len = 1;
            while v >= 0x80 {
                v >>= 7;
                len += 1;
            }
            len
        }
        self.entries()
            .map(|(name, value)| {
                zigzag_len(name.len()) + name.len() + zigzag_len(value.len()) + value.len()
            })
            .sum()
    }

    /// librdkafka's list of these headers, for a record to enqueue; `None` when there
    /// are none (no list is allocated).
    pub fn to_kafka(&self) -> Option<OwnedHeaders> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let headers = OwnedHeaders::new_with_capacity(count);
        Some(self.entries().fold(headers, |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        }))
    }
}

impl Headers for OutHeaders {
    fn count(&self) -> usize {
        match &self.0 {
            Repr::Inline { count, .. } => usize::from(*count),
            Repr::Packed { count, .. } => *count,
        }
    }

    fn try_get(&self, idx: usize) -> Option<Header<'_, &[u8]>> {
        self.entries().nth(idx).map(|(key, value)| Header {
            key,
            value: Some(value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headers_read_back_in_order_and_as_librdkafka_holds_them() {
        let long = "v".repeat(70_000);
        let h = OutHeaders::of(&[
            ("a", "1"),
            ("empty", ""),
            ("content-type", "x/y"),
            ("long", long.as_str()),
        ]);
        let read: Vec<(String, Vec<u8>)> = h
            .iter()
            .map(|h| (h.key.to_string(), h.value.unwrap().to_vec()))
            .collect();
        let expected = vec![
            ("a".to_string(), b"1".to_vec()),
            ("empty".to_string(), Vec::new()),
            ("content-type".to_string(), b"x/y".to_vec()),
            ("long".to_string(), long.as_bytes().to_vec()),
        ];
        assert_eq!(read, expected);
        let kafka = h.to_kafka().unwrap();
        let read: Vec<(String, Vec<u8>)> = kafka
            .iter()
            .map(|h| (h.key.to_string(), h.value.unwrap().to_vec()))
            .collect();
        assert_eq!(read, expected);
        assert!(OutHeaders::default().to_kafka().is_none());
        assert_eq!(h.try_get(4).map(|h| h.key), None);
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn headers_held_inline_read_back_as_the_same_headers_packed() {
        let pairs = [
            ("cdr-purpose", "billing"),
            ("cdr-expires-at", "2027-02-28T10:00:00Z"),
            ("cdr-legal-basis", "CPCE R10-14 III"),
            ("cdr-policy-version", "R10-14/2021"),
            ("content-type", "application/x-protobuf"),
        ];
        let inline = OutHeaders::inline(&pairs);
        assert!(matches!(inline.0, Repr::Inline { .. }));
        let packed = OutHeaders::of(&pairs);
        let read = |h: &OutHeaders| -> Vec<(String, Vec<u8>)> {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap().to_vec()))
                .collect()
        };
        assert_eq!(read(&inline), read(&packed));
        assert_eq!(inline.count(), 5);
        // Every name and value under 64 bytes: one byte of length each.
        let sizes: usize = read(&packed)
            .iter()
            .map(|(n, v)| 2 + n.len() + v.len())
            .sum();
        assert_eq!(inline.wire_len(), sizes);
        assert_eq!(packed.wire_len(), sizes);
        let kafka = inline.to_kafka().unwrap();
        let from_kafka: Vec<(String, Vec<u8>)> = kafka
            .iter()
            .map(|h| (h.key.to_string(), h.value.unwrap().to_vec()))
            .collect();
        assert_eq!(from_kafka, read(&packed));
        // Empty values and fewer headers.
        let few = OutHeaders::inline(&[("a", ""), ("b", "x")]);
        assert!(matches!(few.0, Repr::Inline { .. }));
        assert_eq!(read(&few), read(&OutHeaders::of(&[("a", ""), ("b", "x")])));

        // More than the inline room: the same headers, packed.
        let long = "9".repeat(INLINE_BYTES + 1);
        let h = OutHeaders::inline(&[("a", "b"), ("long", &long)]);
        assert!(matches!(h.0, Repr::Packed { .. }));
        assert_eq!(h.try_get(1).unwrap().value, Some(long.as_bytes()));
        let six = [("h", "v"); 6];
        let h = OutHeaders::inline(&six);
        assert!(matches!(h.0, Repr::Packed { .. }));
        assert_eq!(h.count(), 6);
    }
}
