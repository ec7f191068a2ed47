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

/// The parsed event's route (routing values and set leaves, which decide the purposes
/// and the `fields_removed` metric on the JSON to JSON path) is the scan's route of its
/// protobuf bytes: generated events, and the same with values at their defaults, nulls,
/// escapes and empty sub-messages.
#[test]
fn the_parsed_route_is_the_scans() {
    use chrono::TimeZone;
    let mut g = crate::gen::Generator::new(
        23,
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 11, 0, 0)
            .unwrap(),
    );
    let mut docs: Vec<Vec<u8>> = (0..300)
        .map(|_| serde_json::to_vec(&g.next_event()).unwrap())
        .collect();
    docs.extend(
        [
            r#"{"eventId":"a","direction":"ORIGINATING","served":{"imsi":"","msisdn":"1"}}"#,
            r#"{"eventId":"a\u0062","eventType":0,"served":{},"timing":{"answerTime":null}}"#,
            r#"{"event_id":"x","declaredPurposes":["BILLING"],"charging":{"chargeable":false}}"#,
            r#"{"charging":{"chargeable":true,"amountMinor":"-5"},"location":{"latitude":0}}"#,
            r#"{"supplementaryServices":[{},{"code":"","provider":"p"}],"extensions":{"k":""}}"#,
            r#"{"timing":{"releaseTime":"1970-01-01T00:00:00Z","durationMs":"0"}}"#,
            r#"{"content":{"smsText":"s"},"calling":{"port":0},"called":{"port":5}}"#,
        ]
        .map(|d| d.as_bytes().to_vec()),
    );
    let mut scratch = JsonScratch::default();
    let mut checked = 0;
    for doc in &docs {
        if !scratch.fast(doc) {
            continue;
        }
        let want = crate::wire::route_of(scratch.protobuf()).expect("its own bytes scan");
        assert!(scratch.parse(doc));
        assert_eq!(scratch.route(), want, "{}", String::from_utf8_lossy(doc));
        checked += 1;
    }
    assert_eq!(checked, docs.len(), "every document took the fast parser");
}

/// Realistic events (the generator's: every type, content and extensions present) are
/// written by the JSON to JSON writer itself, for both versions of the table: none is
/// left to the path through protobuf.
#[test]
fn generated_events_take_the_direct_writer() {
    use crate::policy::{Policy, Version};
    use crate::wire::{WireFilter, WireScratch};
    use chrono::TimeZone;
    // A time both versions cover (R10-14/2012: communications before 21 October 2021).
    let now = chrono::Utc
        .with_ymd_and_hms(2021, 10, 15, 12, 0, 0)
        .unwrap();
    let mut g = crate::gen::Generator::new(31, now - chrono::Duration::hours(1));
    let docs: Vec<Vec<u8>> = (0..500)
        .map(|_| serde_json::to_vec(&g.next_event()).unwrap())
        .collect();
    for version in Version::ALL {
        let policy = Policy::legal_maximum_of(version);
        let filter = WireFilter::new(&policy).unwrap();
        let (mut json, mut out) = (JsonScratch::default(), WireScratch::default());
        let mut written = 0;
        for doc in &docs {
            assert!(json.parse(doc));
            let route = json.route();
            let mut times = super::Times::default();
            let key = json.event_id(doc);
            let write = |keep, r: &mut _| json.write_output(doc, &route, keep, r, &mut times);
            match filter.apply_routed(&route, key, now, &mut out, write) {
                Ok(taken) => assert!(taken, "{}", String::from_utf8_lossy(doc)),
                Err(e) => panic!("{e:?}"),
            }
            written += out.records().iter().filter(|r| r.outcome.is_ok()).count();
        }
        assert!(written > 500, "{}: {written} outputs", version.name());
    }
}

/// The timestamps the JSON parser reads without chrono are read as chrono reads them;
/// the others are left to chrono. Every date of years 0–9999 seen from its days, times
/// and fractions of each width, and texts near the form (impossible dates, leap seconds,
/// other separators, offsets, widths).
#[test]
fn timestamps_read_without_chrono_are_chronos() {
    let chrono_reads = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| crate::schema::to_timestamp(t.to_utc()))
    };
    let mut texts: Vec<String> = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for _ in 0..40_000 {
        let (y, mo, d) = (next(10_000), next(14), next(33));
        let (h, mi, s) = (next(25), next(61), next(62));
        let width = next(11) as usize;
        let mut t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if width > 0 {
            let digits: String = (0..width)
                .map(|_| char::from(b'0' + next(10) as u8))
                .collect();
            t = format!("{t}.{digits}");
        }
        let t = format!("{t}Z");
        // Of the form: read without chrono exactly when chrono reads it, leap seconds
        // and fractions of more than nine digits (chrono truncates them) apart.
        if s != 60 && width <= 9 {
            assert_eq!(
                input::utc_rfc3339(t.as_bytes()).is_some(),
                chrono_reads(&t).is_some(),
                "{t}"
            );
        }
        texts.push(t);
    }
    // Every year's leap day (or its absence) and last second.
    for y in 0..10_000 {
        for t in [
            format!("{y:04}-02-29T00:00:00Z"),
            format!("{y:04}-12-31T23:59:59.9Z"),
        ] {
            let fast = input::utc_rfc3339(t.as_bytes());
            assert_eq!(fast.is_some(), chrono_reads(&t).is_some(), "{t}");
            texts.push(t);
        }
    }
    texts.extend(
        [
            "2026-11-28T10:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2024-02-29T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "1900-02-29T12:00:00Z",
            "2000-02-29T12:00:00Z",
            "2016-12-31T23:59:60Z",
            "2026-11-28t10:00:00Z",
            "2026-11-28 10:00:00Z",
            "2026-11-28T10:00:00z",
            "2026-11-28T10:00:00.Z",
            "2026-11-28T10:00:00+00:00",
            "2026-11-28T10:00:00.5+02:00",
            "2026-11-28T10:00:00.1234567891Z",
            "2026-11-28T10:00Z",
            "+2026-11-28T10:00:00Z",
            "2026-1-28T10:00:00Z",
            "2026-11-28T10:00:0aZ",
            "Z",
            "",
        ]
        .map(String::from),
    );
    let mut fast = 0;
    for t in &texts {
        if let Some(ts) = input::utc_rfc3339(t.as_bytes()) {
            assert_eq!(Some(ts), chrono_reads(t), "{t}");
            fast += 1;
        }
    }
    // Most random texts of the form hold a date that exists.
    assert!(fast > 10_000, "{fast} read without chrono");
}

/// One scratch reused from record to record reads each as a fresh one does, also after
/// a record the parser gave up on halfway through a sub-message.
#[test]
fn a_reused_scratch_forgets_the_last_record() {
    use chrono::TimeZone;
    let mut g = crate::gen::Generator::new(
        41,
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 11, 0, 0)
            .unwrap(),
    );
    let mut docs = Vec::new();
    for _ in 0..50 {
        docs.push(serde_json::to_vec(&g.next_event()).unwrap());
        docs.push(
            br#"{"served":{"imsi":"1","msisdn":"2"},"timing":{"durationMs":"5","x":1}}"#.to_vec(),
        );
        docs.push(br#"{"eventId":"a","served":{},"timing":{},"charging":null}"#.to_vec());
    }
    let mut reused = JsonScratch::default();
    for doc in &docs {
        let mut fresh = JsonScratch::default();
        let (a, b) = (reused.fast(doc), fresh.fast(doc));
        assert_eq!(a, b, "{}", String::from_utf8_lossy(doc));
        if a {
            assert_eq!(reused.protobuf(), fresh.protobuf());
            assert_eq!(reused.route(), fresh.route());
        }
    }
}

/// Short decimals read without serde_json have the bits serde_json reads: random
/// coordinates-like numbers of every length up to 18 digits, signs, zeros.
#[test]
fn short_decimals_are_serde_jsons_bits() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut texts: Vec<String> = [
        "0.0",
        "-0.0",
        "0.5",
        "-0.000",
        "48.856614",
        "2.352222",
        "-21.115141",
        "55.536384",
        "999999999999999999.0",
        "0.000000000000000001",
        "1.7976931348623157",
        "123456789.123456789",
        "00.5",
        "1.",
        ".5",
        "1e5",
        "1.5e3",
        "-",
        "1.2.3",
    ]
    .map(String::from)
    .to_vec();
    for _ in 0..100_000 {
        let int_len = 1 + next(10) as usize;
        let frac_len = 1 + next(12) as usize;
        let mut t = String::new();
        if next(2) == 0 {
            t.push('-');
        }
        for i in 0..int_len {
            let d = if i == 0 && int_len > 1 {
                1 + next(9)
            } else {
                next(10)
            };
            t.push(char::from(b'0' + d as u8));
        }
        t.push('.');
        for _ in 0..frac_len {
            t.push(char::from(b'0' + next(10) as u8));
        }
        texts.push(t);
    }
    let mut fast = 0;
    for t in &texts {
        if let Some(v) = input::short_decimal(t.as_bytes()) {
            let want: f64 = serde_json::from_str(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(v.to_bits(), want.to_bits(), "{t}");
            fast += 1;
        }
    }
    assert!(fast > 90_000, "{fast} read without serde_json");
}
