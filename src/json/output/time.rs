//! Timestamps as `schema::Timestamp`'s serde writes them.

use crate::schema::Timestamp;

/// The first and last second of years 1–9999, the range JSON timestamps are written in.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

/// A timestamp as `schema::Timestamp`'s serde writes it (RFC 3339 UTC, `Z`, 0, 3, 6 or
/// 9 fractional digits), for years 1–9999 and nanoseconds in range; `None` otherwise.
pub(in crate::json) fn rfc3339(ts: &Timestamp, buf: &mut [u8; 32]) -> Option<usize> {
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&ts.seconds) || !(0..1_000_000_000).contains(&ts.nanos)
    {
        return None;
    }
    let days = ts.seconds.div_euclid(86_400);
    let sod = ts.seconds.rem_euclid(86_400) as u32;
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
    fn put(buf: &mut [u8], at: usize, mut v: u32, width: usize) {
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    put(buf, 0, year, 4);
    buf[4] = b'-';
    put(buf, 5, month, 2);
    buf[7] = b'-';
    put(buf, 8, day, 2);
    buf[10] = b'T';
    put(buf, 11, sod / 3_600, 2);
    buf[13] = b':';
    put(buf, 14, sod / 60 % 60, 2);
    buf[16] = b':';
    put(buf, 17, sod % 60, 2);
    let nanos = ts.nanos as u32;
    let mut n = 19;
    if nanos != 0 {
        buf[n] = b'.';
        n += 1;
        let (v, width) = if nanos % 1_000_000 == 0 {
            (nanos / 1_000_000, 3)
        } else if nanos % 1_000 == 0 {
            (nanos / 1_000, 6)
        } else {
            (nanos, 9)
        };
        put(buf, n, v, width);
        n += width;
    }
    buf[n] = b'Z';
    Some(n + 1)
}
