//! The headers of an output record, built once per record without intermediate
//! `String`s, in one buffer: each header as its name's length (one byte), its name, its
//! value's length (four bytes) and its value. librdkafka copies headers into its own
//! message when a record is enqueued, so the pipeline keeps these (for a re-send) and
//! builds librdkafka's list only at the send ([`OutHeaders::to_kafka`]). Small, so that
//! an output record is cheap to move through the batch.

use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Headers, in order, in one buffer.
#[derive(Debug, Clone, Default)]
pub struct OutHeaders {
    buf: Vec<u8>,
    count: usize,
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
        OutHeaders {
            buf,
            count: pairs.len(),
        }
    }

    /// Every header, in order: (name, value).
    fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut rest = self.buf.as_slice();
        std::iter::from_fn(move || {
            let (&name_len, after) = rest.split_first()?;
            let (name, after) = after.split_at(usize::from(name_len));
            let (len, after) = after.split_at(4);
            let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
            let (value, after) = after.split_at(len);
            rest = after;
            // Written from a `&str` by `of`.
            let name = std::str::from_utf8(name).expect("a header name is UTF-8");
            Some((name, value))
        })
    }

    /// librdkafka's list of these headers, for a record to enqueue; `None` when there
    /// are none (no list is allocated).
    pub fn to_kafka(&self) -> Option<OwnedHeaders> {
        if self.count == 0 {
            return None;
        }
        let headers = OwnedHeaders::new_with_capacity(self.count);
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
        self.count
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
}
