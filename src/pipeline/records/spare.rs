//! The key and value buffers of outputs already handed to the producer (which copies
//! them), kept per thread for the next outputs: the wire path then writes a record's
//! outputs without allocating.

use std::cell::RefCell;

/// At most this many buffers of each kind are kept per thread.
const KEEP: usize = 16;
/// Larger buffers are freed rather than kept.
const MAX_CAPACITY: usize = 64 * 1024;

thread_local! {
    static VALUES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static KEYS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// An empty value buffer: a spent one when there is one.
pub(crate) fn value() -> Vec<u8> {
    VALUES
        .with_borrow_mut(|v| v.pop())
        .map(|mut b| {
            b.clear();
            b
        })
        .unwrap_or_default()
}

/// `text` in a key buffer: a spent one when there is one.
pub(crate) fn key(text: &str) -> String {
    let mut k = KEYS.with_borrow_mut(|k| k.pop()).unwrap_or_default();
    k.clear();
    k.push_str(text);
    k
}

/// Gives back the buffers of an output the producer has copied.
pub fn recycle(key: Option<String>, value: Vec<u8>) {
    if value.capacity() > 0 && value.capacity() <= MAX_CAPACITY {
        VALUES.with_borrow_mut(|v| {
            if v.len() < KEEP {
                v.push(value);
            }
        });
    }
    if let Some(k) = key.filter(|k| k.capacity() > 0 && k.capacity() <= MAX_CAPACITY) {
        KEYS.with_borrow_mut(|ks| {
            if ks.len() < KEEP {
                ks.push(k);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spent_buffers_are_given_again_empty_and_bounded() {
        let mut v = value();
        v.extend_from_slice(b"spent value");
        let ptr = v.as_ptr();
        recycle(Some(key("spent key")), v);
        let again = value();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr, "the same buffer");
        assert_eq!(key("k2"), "k2");
        // A large buffer is not kept; no more than KEEP are.
        recycle(None, Vec::with_capacity(MAX_CAPACITY + 1));
        assert!(VALUES.with_borrow(|v| v.is_empty()));
        for _ in 0..KEEP + 4 {
            recycle(None, Vec::with_capacity(8));
        }
        assert_eq!(VALUES.with_borrow(Vec::len), KEEP);
    }
}
