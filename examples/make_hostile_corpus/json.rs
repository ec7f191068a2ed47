//! The JSON records of the corpus: hostile *text* (duplicate keys, broken UTF-8, deep
//! nesting, values out of range), written as such — in the spacing of Python's
//! `json.dumps`, which first wrote them.

use super::{Case, IMSI, MSISDN, SMS};

fn json(name: &'static str, text: &str, expect: &'static str) -> Case {
    Case {
        name,
        bytes: text.as_bytes().to_vec(),
        expect,
    }
}

/// The JSON files, in the order of `expect.tsv`.
pub fn cases() -> Vec<Case> {
    vec![
        json("json-not-an-object.json", r#"[1, 2, 3]"#, "undecodable"),
        json("json-bare-string.json", r#""+33699001122""#, "undecodable"),
        json(
            "json-truncated.json",
            r#"{"eventId": "hostile-j", "served": {"msisdn": "+3369900"#,
            "undecodable",
        ),
        json(
            "json-wrong-types.json",
            r#"{"eventId": 12, "eventTime": true, "served": "+33699001122"}"#,
            "undecodable",
        ),
        json(
            "json-wrong-type-nested.json",
            r#"{"eventId": "hostile-j", "eventTime": "2026-11-28T10:00:00Z", "timing": {"durationMs": {"n": 1}}, "served": {"msisdn": "+33699001122"}}"#,
            "undecodable",
        ),
        json(
            "json-duplicate-keys.json",
            r#"{"eventId": "hostile-dup", "eventTime": "2026-11-28T10:00:00Z", "served": {"msisdn": "+33699001122", "msisdn": "+33699001122"}}"#,
            "undecodable",
        ),
        json(
            "json-duplicate-keys-both-styles.json",
            r#"{"eventId": "hostile-dup2", "event_id": "other", "eventTime": "2026-11-28T10:00:00Z"}"#,
            "undecodable",
        ),
        Case {
            name: "json-deep-nesting.json",
            bytes: [
                &br#"{"eventId": "hostile-deep", "extensions": {"a": "#[..],
                &b"[".repeat(100_000),
                &b"]".repeat(100_000),
                b"}}",
            ]
            .concat(),
            expect: "undecodable",
        },
        Case {
            name: "json-deep-unknown-field.json",
            bytes: [
                &br#"{"eventId": "hostile-deep2", "unknownField": "#[..],
                &br#"{"a":"#.repeat(5000),
                b"1",
                &b"}".repeat(5000),
                b"}",
            ]
            .concat(),
            expect: "invalid",
        },
        Case {
            name: "json-invalid-utf8.json",
            bytes: [
                &b"{\"eventId\": \"hostile-\xff\xfe\", \"served\": {\"msisdn\": \""[..],
                MSISDN.as_bytes(),
                b"\"}}",
            ]
            .concat(),
            expect: "undecodable",
        },
        json(
            "json-lone-surrogate.json",
            r#"{"eventId": "hostile-\ud800", "eventTime": "2026-11-28T10:00:00Z"}"#,
            "undecodable",
        ),
        json(
            "json-nul-escape.json",
            r#"{"eventId": "hostile-nul\u0000", "eventTime": "2026-11-28T10:00:00Z", "eventType": "SIGNALLING"}"#,
            "accepted",
        ),
        json(
            "json-unknown-enum-name.json",
            r#"{"eventId": "hostile-j", "eventTime": "2026-11-28T10:00:00Z", "eventType": "TELEPORTATION", "served": {"msisdn": "+33699001122"}}"#,
            "undecodable",
        ),
        json(
            "json-unknown-enum-number.json",
            r#"{"eventId": "hostile-jnum", "eventTime": "2026-11-28T10:00:00Z", "eventType": 99, "direction": 42, "served": {"msisdn": "+33699001122"}}"#,
            "undecodable",
        ),
        json(
            "json-time-year-zero.json",
            r#"{"eventId": "hostile-y0", "eventTime": "0000-01-01T00:00:00Z"}"#,
            "invalid",
        ),
        json(
            "json-time-year-one.json",
            r#"{"eventId": "hostile-y1", "eventTime": "0001-01-01T00:00:00Z", "served": {"msisdn": "+33699001122"}}"#,
            "accepted",
        ),
        json(
            "json-time-year-9999.json",
            r#"{"eventId": "hostile-y9999", "eventTime": "9999-12-31T23:59:59.999999999Z", "served": {"msisdn": "+33699001122"}}"#,
            "future_event_time",
        ),
        json(
            "json-time-not-rfc3339.json",
            r#"{"eventId": "hostile-t", "eventTime": "yesterday at noon"}"#,
            "undecodable",
        ),
        json(
            "json-time-leap-second.json",
            r#"{"eventId": "hostile-leap", "eventTime": "2016-12-31T23:59:60Z"}"#,
            "accepted",
        ),
        json(
            "json-answer-time-leap-second.json",
            r#"{"eventId": "hostile-answer-leap", "eventTime": "2026-11-28T10:00:00Z", "eventType": "VOICE_CALL", "direction": "ORIGINATING", "served": {"msisdn": "+33699001122"}, "timing": {"answerTime": "2016-12-31T23:59:60Z", "releaseTime": "2016-12-31T23:59:60.5+00:00", "durationMs": "1500"}, "charging": {"chargeable": true}}"#,
            "accepted",
        ),
        json(
            "json-answer-time-year-zero.json",
            r#"{"eventId": "hostile-answer-y0", "eventTime": "2026-11-28T10:00:00Z", "eventType": "VOICE_CALL", "direction": "ORIGINATING", "served": {"msisdn": "+33699001122"}, "timing": {"answerTime": "0000-06-01T00:00:00Z"}, "charging": {"chargeable": true}}"#,
            "invalid",
        ),
        json(
            "json-negative-duration.json",
            r#"{"eventId": "hostile-jneg", "eventTime": "2026-11-28T10:00:00Z", "timing": {"durationMs": "-5"}}"#,
            "undecodable",
        ),
        json(
            "json-integer-overflow.json",
            r#"{"eventId": "hostile-jbig", "eventTime": "2026-11-28T10:00:00Z", "timing": {"durationMs": "18446744073709551616"}}"#,
            "undecodable",
        ),
        json(
            "json-port-overflow.json",
            r#"{"eventId": "hostile-jport", "eventTime": "2026-11-28T10:00:00Z", "calling": {"number": "+33699001122", "port": 4294967296}}"#,
            "undecodable",
        ),
        json(
            "json-float-as-integer.json",
            r#"{"eventId": "hostile-jfloat", "eventTime": "2026-11-28T10:00:00Z", "timing": {"durationMs": 1.5}}"#,
            "undecodable",
        ),
        json(
            "json-nan-coordinates.json",
            r#"{"eventId": "hostile-nan", "eventTime": "2026-11-28T10:00:00Z", "eventType": "VOICE_CALL", "location": {"latitude": "NaN", "longitude": "-Infinity"}, "served": {"msisdn": "+33699001122"}, "charging": {"chargeable": true}}"#,
            "accepted",
        ),
        json(
            "json-nulls.json",
            r#"{"eventId": "hostile-nulls", "eventTime": "2026-11-28T10:00:00Z", "served": null, "content": null, "extensions": null}"#,
            "undecodable",
        ),
        Case {
            name: "json-bom.json",
            bytes: [
                &b"\xef\xbb\xbf"[..],
                br#"{"eventId": "hostile-bom", "served": {"msisdn": "+33699001122"}}"#,
            ]
            .concat(),
            expect: "undecodable",
        },
        json(
            "json-huge-strings.json",
            &format!(
                r#"{{"eventId": "hostile-huge", "eventTime": "2026-11-28T10:00:00Z", "eventType": "SMS", "direction": "ORIGINATING", "served": {{"msisdn": "{MSISDN}", "imsi": "{IMSI}"}}, "content": {{"smsText": "{SMS}{}"}}, "extensions": {{"{}": "{}"}}}}"#,
                "x".repeat(200_000),
                "k".repeat(1000),
                "v".repeat(100_000)
            ),
            "accepted",
        ),
        json(
            "json-full-of-identifiers.json",
            r#"{"eventId": "hostile-ids", "eventTime": "2026-11-28T10:00:00Z", "eventType": "SMS", "direction": "ORIGINATING", "served": {"msisdn": "+33699001122", "imsi": "208019900112233", "ueIp": "192.0.2.77"}, "terminal": {"imei": "359881234567897"}, "calling": {"number": "+33699001122", "ip": "192.0.2.77"}, "content": {"smsText": "hostile-sms-text-do-not-leak"}, "charging": {"chargeable": true}}"#,
            "accepted",
        ),
    ]
}
