//! The headers of an output record, built once per record without intermediate
//! `String`s. librdkafka copies headers into its own message when a record is enqueued,
//! so the pipeline keeps these (for a re-send) and builds librdkafka's list only at the
//! send ([`OutHeaders::to_kafka`]).
//!
//! A forwarded record's five contract headers ([`OutHeaders::contract`]) are held without
//! any allocation: static names and values, and the expiry's text inline. Any other set
//! (dead letters, the struct path) is packed in one buffer: each header as its name's
//! length (one byte), its name, its value's length (four bytes) and its value.

use crate::encode::header;
use crate::wire::RFC3339_MAX;
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Headers, in order.
#[derive(Debug, Clone)]
pub struct OutHeaders(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// The contract's headers of a forwarded record, in the contract's order.
    Contract {
        purpose: &'static str,
        expires_at: [u8; RFC3339_MAX],
        expires_len: u8,
        legal_basis: &'static str,
        policy_version: &'static str,
        content_type: &'static str,
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

    /// The contract's five headers of a forwarded record (`cdr-purpose`,
    /// `cdr-expires-at`, `cdr-legal-basis`, `cdr-policy-version`, `content-type`), with no
    /// allocation.
    pub fn contract(
        purpose: &'static str,
        expires_at: &str,
        legal_basis: &'static str,
        policy_version: &'static str,
        content_type: &'static str,
    ) -> OutHeaders {
        let mut text = [0u8; RFC3339_MAX];
        let Some(slot) = text.get_mut(..expires_at.len()) else {
            // Longer than any RFC 3339 time of a valid event: packed instead.
            return OutHeaders::of(&[
                (header::PURPOSE, purpose),
                (header::EXPIRES_AT, expires_at),
                (header::LEGAL_BASIS, legal_basis),
                (header::POLICY_VERSION, policy_version),
                (header::CONTENT_TYPE, content_type),
            ]);
        };
        slot.copy_from_slice(expires_at.as_bytes());
        OutHeaders(Repr::Contract {
            purpose,
            expires_at: text,
            expires_len: expires_at.len() as u8,
            legal_basis,
            policy_version,
            content_type,
        })
    }

    /// Every header, in order: (name, value).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let (contract, mut rest) = match &self.0 {
            Repr::Contract {
                purpose,
                expires_at,
                expires_len,
                legal_basis,
                policy_version,
                content_type,
            } => (
                Some([
                    (header::PURPOSE, purpose.as_bytes()),
                    (header::EXPIRES_AT, &expires_at[..usize::from(*expires_len)]),
                    (header::LEGAL_BASIS, legal_basis.as_bytes()),
                    (header::POLICY_VERSION, policy_version.as_bytes()),
                    (header::CONTENT_TYPE, content_type.as_bytes()),
                ]),
                &[][..],
            ),
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
        contract.into_iter().flatten().chain(packed)
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
            Repr::Contract { .. } => 5,
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
    fn the_contract_headers_read_back_as_the_same_headers_packed() {
        let expires = "2027-02-28T10:00:00Z";
        let contract = OutHeaders::contract(
            "billing",
            expires,
            "CPCE R10-14 III",
            "R10-14/2021",
            "application/x-protobuf",
        );
        assert!(matches!(contract.0, Repr::Contract { .. }));
        let packed = OutHeaders::of(&[
            (header::PURPOSE, "billing"),
            (header::EXPIRES_AT, expires),
            (header::LEGAL_BASIS, "CPCE R10-14 III"),
            (header::POLICY_VERSION, "R10-14/2021"),
            (header::CONTENT_TYPE, "application/x-protobuf"),
        ]);
        let read = |h: &OutHeaders| -> Vec<(String, Vec<u8>)> {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap().to_vec()))
                .collect()
        };
        assert_eq!(read(&contract), read(&packed));
        assert_eq!(contract.count(), 5);
        // Every name and value under 64 bytes: one byte of length each.
        let sizes: usize = read(&packed)
            .iter()
            .map(|(n, v)| 2 + n.len() + v.len())
            .sum();
        assert_eq!(contract.wire_len(), sizes);
        assert_eq!(packed.wire_len(), sizes);
        let kafka = contract.to_kafka().unwrap();
        let from_kafka: Vec<(String, Vec<u8>)> = kafka
            .iter()
            .map(|h| (h.key.to_string(), h.value.unwrap().to_vec()))
            .collect();
        assert_eq!(from_kafka, read(&packed));

        // Longer than the inline room: the same headers, packed.
        let long = "9".repeat(RFC3339_MAX + 1);
        let h = OutHeaders::contract("security", &long, "b", "v", "application/json");
        assert!(matches!(h.0, Repr::Packed { .. }));
        assert_eq!(h.try_get(1).unwrap().value, Some(long.as_bytes()));
        assert_eq!(h.count(), 5);
    }
}
