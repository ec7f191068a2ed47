//! Timestamps as `schema::Timestamp`'s serde writes them.

use crate::schema::Timestamp;
use crate::wire::{rfc3339_unix, NO_DAY, RFC3339_MAX};

/// The first and last second of years 1–9999, the range JSON timestamps are written in.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

/// A timestamp as `schema::Timestamp`'s serde writes it (RFC 3339 UTC, `Z`, 0, 3, 6 or
/// 9 fractional digits), for years 1–9999 and nanoseconds in range; `None` otherwise.
/// The digits are the wire path's (`wire::rfc3339_unix`), which writes the
/// `cdr-expires-at` header the same way.
pub(in crate::json) fn rfc3339(ts: &Timestamp, buf: &mut [u8; RFC3339_MAX]) -> Option<usize> {
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&ts.seconds) || !(0..1_000_000_000).contains(&ts.nanos)
    {
        return None;
    }
    let mut no_day = NO_DAY;
    Some(rfc3339_unix(ts.seconds, ts.nanos as u32, buf, &mut no_day))
}
