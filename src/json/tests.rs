use super::*;

#[test]
fn plain_prefix_stops_at_the_first_special_byte() {
    for special in [b'"', b'\\', 0x00, 0x1f, 0x80, 0xff, 0xc3] {
        for len in 0..40 {
            for at in 0..=len {
                let mut b = vec![b'a'; len];
                if at < len {
                    b[at] = special;
                }
                // Specials after the first too: only the first counts.
                b.extend_from_slice(b"\"\\\x01");
                let expected = if at < len { at } else { len };
                assert_eq!(plain_prefix(&b), expected, "{special:#x} at {at} of {len}");
            }
        }
    }
    assert_eq!(plain_prefix(b" ~!#[]{}:,0123456789"), 20);
}

#[test]
fn same_compares_bytes() {
    assert!(same(b"eventId", b"eventId"));
    assert!(!same(b"eventId", b"eventIdx"));
    assert!(!same(b"eventId", b"eventIe"));
    assert!(same(b"", b""));
}

#[test]
fn timestamps_are_written_as_schema_serde_writes_them() {
    use crate::schema::{to_datetime, Timestamp};
    let mut seconds = vec![
        -62_135_596_800,
        -62_135_596_801,
        253_402_300_799,
        253_402_300_800,
        0,
        -1,
        951_782_400,
        951_868_799,
        4_107_542_400,
        1_795_856_400,
    ];
    let mut x: i64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seconds.push(x.rem_euclid(253_402_300_800 + 62_135_596_801) - 62_135_596_801);
    }
    for s in seconds {
        for nanos in [0, 1, 999_999_999, 5_000_000, 123_456_000, 1_000_000_000, -1] {
            let ts = Timestamp { seconds: s, nanos };
            let mut buf = [0u8; crate::wire::RFC3339_MAX];
            let got = output::rfc3339(&ts, &mut buf).map(|n| buf[..n].to_vec());
            let want = to_datetime(&ts)
                .filter(|d| (1..=9999).contains(&chrono::Datelike::year(d)))
                .map(|d| serde_json::to_value(crate::schema::to_timestamp(d)).unwrap())
                .map(|v| v.as_str().unwrap().as_bytes().to_vec());
            assert_eq!(got, want, "{s} {nanos}");
        }
    }
}
