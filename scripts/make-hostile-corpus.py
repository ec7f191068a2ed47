#!/usr/bin/env python3
"""Writes the hostile-input corpus of tests/hostile.rs into tests/corpus/.

Deterministic: run it again and the files are the same. Each file is one Kafka record
value; tests/corpus/expect.tsv says what the filter must do with it: `undecodable`,
`invalid` or `future_event_time` (a dead letter with that reason) or `accepted`
(decoded and judged by the policy: forwarded and/or dropped with a counted reason).
The identifiers below are recognisable fakes, so that a leak is easy to grep for.
"""
import json
import os
import random
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "corpus")
# 2026-11-28T10:00:00Z: an event that may be expired later is still "accepted".
# Notes on some outcomes: the year 1 is in range (then expired: a counted drop); "0000"
# and a leap second parse as JSON but are out of range (invalid); an unknown enum
# *number* is kept by protobuf but refused by the JSON parser; JSON `null` for a map is
# refused by the JSON parser (proto3 JSON would read it as empty).
T = 1795860000
MSISDN = "+33699001122"
IMSI = "208019900112233"
IMEI = "359881234567897"
IP = "192.0.2.77"
SMS = "hostile-sms-text-do-not-leak"


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def vi(field, n):
    return key(field, 0) + varint(n)


def ld(field, data):
    if isinstance(data, str):
        data = data.encode()
    return key(field, 2) + varint(len(data)) + data


def ts(seconds, nanos=0):
    return vi(1, seconds) + (vi(2, nanos) if nanos else b"")


def event(eid="hostile-pb", seconds=T, etype=1, direction=1, extra=b""):
    served = ld(1, IMSI) + ld(2, MSISDN) + ld(4, IP)
    return (
        ld(1, eid)
        + ld(2, ts(seconds))
        + vi(3, etype)
        + vi(4, direction)
        + ld(6, served)
        + ld(7, ld(1, IMEI))
        + ld(8, ld(1, MSISDN) + ld(2, IP))
        + ld(14, vi(1, 1))
        + ld(15, ld(1, SMS))
        + extra
    )


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(7)
    full = event()
    cases = [
        # protobuf
        ("pb-empty.bin", b"", "undecodable"),
        ("pb-truncated-in-string.bin", full[: len(full) - 5], "undecodable"),
        ("pb-truncated-varint.bin", b"\x18\xff\xff", "undecodable"),
        ("pb-truncated-key.bin", b"\x0a\x03ab", "undecodable"),
        ("pb-garbage.bin", b"\xff" + bytes(rng.randrange(256) for _ in range(255)), "undecodable"),
        ("pb-wrong-wire-type-string-as-varint.bin", vi(1, 42) + ld(2, ts(T)), "undecodable"),
        ("pb-wrong-wire-type-message-as-fixed64.bin", ld(1, "x") + key(6, 1) + b"\x00" * 8, "undecodable"),
        ("pb-wrong-wire-type-enum-as-string.bin", ld(1, "x") + ld(3, "VOICE_CALL"), "undecodable"),
        ("pb-invalid-utf8-event-id.bin", ld(1, b"\xff\xfe\xfd") + ld(2, ts(T)), "undecodable"),
        ("pb-invalid-utf8-msisdn.bin", ld(1, "x") + ld(6, ld(2, b"+3369\xc3\x28" + MSISDN.encode())), "undecodable"),
        ("pb-length-past-end.bin", ld(1, "x") + key(15, 2) + varint(1 << 32) + b"abc", "undecodable"),
        ("pb-overlong-varint.bin", key(3, 0) + b"\xff" * 10 + b"\x01", "undecodable"),
        ("pb-field-number-zero.bin", b"\x02\x01a", "undecodable"),
        ("pb-deprecated-group-wire-types.bin", ld(1, "x") + key(99, 3) * 200 + key(99, 4) * 200, "undecodable"),
        ("pb-deeply-nested-unknown-groups.bin", ld(1, "x") + key(99, 3) * 5000, "undecodable"),
        ("pb-unknown-enum-values.bin", event("hostile-enum", etype=99, direction=77, extra=vi(5, 42)), "accepted"),
        ("pb-unknown-fields.bin", event("hostile-unknown", extra=ld(100, MSISDN) + vi(101, 5) + key(102, 5) + b"\x01\x02\x03\x04"), "accepted"),
        ("pb-forged-retention.bin", event("hostile-retention", extra=ld(17, ld(3, "forged basis"))), "accepted"),
        ("pb-missing-event-id.bin", event("")[0:0] + ld(2, ts(T)) + vi(3, 1) + ld(6, ld(2, MSISDN)), "invalid"),
        ("pb-missing-event-time.bin", ld(1, "hostile-no-time") + vi(3, 1) + ld(6, ld(2, MSISDN)), "invalid"),
        ("pb-time-min.bin", event("hostile-min", seconds=-62135596800), "accepted"),
        ("pb-time-before-min.bin", event("hostile-before-min", seconds=-62135596801), "invalid"),
        ("pb-time-max.bin", event("hostile-max", seconds=253402300799), "future_event_time"),
        ("pb-time-i64-max.bin", event("hostile-i64max", seconds=(1 << 63) - 1), "invalid"),
        ("pb-time-i64-min.bin", event("hostile-i64min", seconds=-(1 << 63)), "invalid"),
        ("pb-time-nanos-out-of-range.bin", ld(1, "hostile-nanos") + ld(2, ts(T, 2_000_000_000)) + vi(3, 1), "invalid"),
        ("pb-time-negative-nanos.bin", ld(1, "hostile-negnanos") + ld(2, vi(1, T) + vi(2, -1)) + vi(3, 1), "invalid"),
        ("pb-negative-durations.bin", event("hostile-negdur", extra=ld(10, ld(1, ts(T + 100)) + ld(2, ts(T)) + vi(3, -1)) + ld(14, vi(3, -5))), "accepted"),
        ("pb-repeated-scalar-fields.bin", event("hostile-repeat") + ld(1, "hostile-repeat-2") + vi(3, 2), "accepted"),
        # JSON
        ("json-not-an-object.json", b"[1, 2, 3]", "undecodable"),
        ("json-bare-string.json", json.dumps(MSISDN).encode(), "undecodable"),
        ("json-truncated.json", json.dumps({"eventId": "hostile-j", "served": {"msisdn": MSISDN}}).encode()[:-7], "undecodable"),
        ("json-wrong-types.json", json.dumps({"eventId": 12, "eventTime": True, "served": MSISDN}).encode(), "undecodable"),
        ("json-wrong-type-nested.json", json.dumps({"eventId": "hostile-j", "eventTime": "2026-11-28T10:00:00Z", "timing": {"durationMs": {"n": 1}}, "served": {"msisdn": MSISDN}}).encode(), "undecodable"),
        ("json-duplicate-keys.json", ('{"eventId": "hostile-dup", "eventTime": "2026-11-28T10:00:00Z", "served": {"msisdn": "%s", "msisdn": "%s"}}' % (MSISDN, MSISDN)).encode(), "undecodable"),
        ("json-duplicate-keys-both-styles.json", ('{"eventId": "hostile-dup2", "event_id": "other", "eventTime": "2026-11-28T10:00:00Z"}').encode(), "undecodable"),
        ("json-deep-nesting.json", b'{"eventId": "hostile-deep", "extensions": {"a": ' + b"[" * 100000 + b"]" * 100000 + b"}}", "undecodable"),
        ("json-deep-unknown-field.json", b'{"eventId": "hostile-deep2", "unknownField": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}", "invalid"),
        ("json-invalid-utf8.json", b'{"eventId": "hostile-\xff\xfe", "served": {"msisdn": "' + MSISDN.encode() + b'"}}', "undecodable"),
        ("json-lone-surrogate.json", b'{"eventId": "hostile-\\ud800", "eventTime": "2026-11-28T10:00:00Z"}', "undecodable"),
        ("json-nul-escape.json", b'{"eventId": "hostile-nul\\u0000", "eventTime": "2026-11-28T10:00:00Z", "eventType": "SIGNALLING"}', "accepted"),
        ("json-unknown-enum-name.json", json.dumps({"eventId": "hostile-j", "eventTime": "2026-11-28T10:00:00Z", "eventType": "TELEPORTATION", "served": {"msisdn": MSISDN}}).encode(), "undecodable"),
        ("json-unknown-enum-number.json", json.dumps({"eventId": "hostile-jnum", "eventTime": "2026-11-28T10:00:00Z", "eventType": 99, "direction": 42, "served": {"msisdn": MSISDN}}).encode(), "undecodable"),
        ("json-time-year-zero.json", json.dumps({"eventId": "hostile-y0", "eventTime": "0000-01-01T00:00:00Z"}).encode(), "invalid"),
        ("json-time-year-one.json", json.dumps({"eventId": "hostile-y1", "eventTime": "0001-01-01T00:00:00Z", "served": {"msisdn": MSISDN}}).encode(), "accepted"),
        ("json-time-year-9999.json", json.dumps({"eventId": "hostile-y9999", "eventTime": "9999-12-31T23:59:59.999999999Z", "served": {"msisdn": MSISDN}}).encode(), "future_event_time"),
        ("json-time-not-rfc3339.json", json.dumps({"eventId": "hostile-t", "eventTime": "yesterday at noon"}).encode(), "undecodable"),
        ("json-time-leap-second.json", json.dumps({"eventId": "hostile-leap", "eventTime": "2016-12-31T23:59:60Z"}).encode(), "invalid"),
        ("json-negative-duration.json", json.dumps({"eventId": "hostile-jneg", "eventTime": "2026-11-28T10:00:00Z", "timing": {"durationMs": "-5"}}).encode(), "undecodable"),
        ("json-integer-overflow.json", json.dumps({"eventId": "hostile-jbig", "eventTime": "2026-11-28T10:00:00Z", "timing": {"durationMs": "18446744073709551616"}}).encode(), "undecodable"),
        ("json-port-overflow.json", json.dumps({"eventId": "hostile-jport", "eventTime": "2026-11-28T10:00:00Z", "calling": {"number": MSISDN, "port": 4294967296}}).encode(), "undecodable"),
        ("json-float-as-integer.json", json.dumps({"eventId": "hostile-jfloat", "eventTime": "2026-11-28T10:00:00Z", "timing": {"durationMs": 1.5}}).encode(), "undecodable"),
        ("json-nan-coordinates.json", json.dumps({"eventId": "hostile-nan", "eventTime": "2026-11-28T10:00:00Z", "eventType": "VOICE_CALL", "location": {"latitude": "NaN", "longitude": "-Infinity"}, "served": {"msisdn": MSISDN}, "charging": {"chargeable": True}}).encode(), "accepted"),
        ("json-nulls.json", json.dumps({"eventId": "hostile-nulls", "eventTime": "2026-11-28T10:00:00Z", "served": None, "content": None, "extensions": None}).encode(), "undecodable"),
        ("json-bom.json", b"\xef\xbb\xbf" + json.dumps({"eventId": "hostile-bom", "served": {"msisdn": MSISDN}}).encode(), "undecodable"),
        ("json-huge-strings.json", json.dumps({"eventId": "hostile-huge", "eventTime": "2026-11-28T10:00:00Z", "eventType": "SMS", "direction": "ORIGINATING", "served": {"msisdn": MSISDN, "imsi": IMSI}, "content": {"smsText": SMS + "x" * 200000}, "extensions": {"k" * 1000: "v" * 100000}}).encode(), "accepted"),
        ("json-full-of-identifiers.json", json.dumps({"eventId": "hostile-ids", "eventTime": "2026-11-28T10:00:00Z", "eventType": "SMS", "direction": "ORIGINATING", "served": {"msisdn": MSISDN, "imsi": IMSI, "ueIp": IP}, "terminal": {"imei": IMEI}, "calling": {"number": MSISDN, "ip": IP}, "content": {"smsText": SMS}, "charging": {"chargeable": True}}).encode(), "accepted"),
    ]
    with open(os.path.join(OUT, "expect.tsv"), "w") as manifest:
        manifest.write("# file\texpected outcome (written by scripts/make-hostile-corpus.py)\n")
        for name, data, expect in cases:
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(data)
            manifest.write(f"{name}\t{expect}\n")
    print(f"{len(cases)} files in {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
