//! [`ExpiryCache`]: [`expires_at`] for one purpose (ttl, legal limit, legal time),
//! remembered per legal-time day, so most events compute their expiry by an addition.
//!
//! Within one UTC day, the UTC reading of `t + n months` is `t` moved by a whole number of
//! days (the same dates, the same time of day). Within one local day at one offset, the
//! local reading is `t` moved by a constant too — the days to the same date `n` months
//! later, plus the change of offset — as long as that target day has one offset and no
//! fold or gap near it. On the intersection of those intervals the expiry (the earlier
//! reading, then the earlier of ttl and limit) is `t + k` for one `k`: an entry is that
//! interval and `k`, with `k` taken from the uncached computation at the event that filled
//! it. Days where the zone changes its offset (at the event's day or the target's) are
//! never cached: they are computed, every time.
//!
//! A cache is owned by one thread (the wire path's scratch): no lock.
//!
//! Offsets are checked constant by looking them up every [`STEP`] seconds over an interval
//! and at its ends: exact unless a zone changes its offset twice within ten minutes and
//! back, which no zone of the tz database does (the property tests compare the cache with
//! the computation around every change of the tested zones).

use super::{expires_at, LegalTime, Ttl};
use chrono::{DateTime, Datelike, Months, NaiveDate, Offset, TimeZone, Utc};

const DAY: i64 = 86_400;
/// Offsets are sampled this often (seconds) when an interval is checked for a change.
const STEP: i64 = 600;
/// How far around a target day the offset must stay the same: another reading of a local
/// time lies at most one offset difference away, and offsets differ by less than 2 days.
const MARGIN: i64 = 2 * DAY;
const SETS: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// `[lo, hi)` in Unix seconds: the instants this entry answers for.
    lo: i64,
    hi: i64,
    /// The expiry is the event time plus this many seconds; [`COMPUTE`]: computed every
    /// time (a day of a change of offset).
    k: i64,
}

const COMPUTE: i64 = i64::MIN;

const EMPTY: Entry = Entry { lo: 0, hi: 0, k: 0 };

/// [`expires_at`] for one `(ttl, limit_months, legal)`, cached per legal-time day. Gives
/// exactly the same result as [`expires_at`] for every instant.
#[derive(Debug, Clone)]
pub struct ExpiryCache {
    ttl: Ttl,
    limit_months: u32,
    legal: LegalTime,
    /// Direct-mapped on the UTC day, two entries a day (a local midnight splits it).
    sets: [[Entry; 2]; SETS],
    /// Which way of each set the next fill replaces.
    victim: [u8; SETS],
}

impl ExpiryCache {
    pub fn new(ttl: Ttl, limit_months: u32, legal: LegalTime) -> ExpiryCache {
        ExpiryCache {
            ttl,
            limit_months,
            legal,
            sets: [[EMPTY; 2]; SETS],
            victim: [0; SETS],
        }
    }

    /// Whether this cache computes `expires_at(·, ttl, limit_months, legal)`.
    pub fn is_for(&self, ttl: Ttl, limit_months: u32, legal: LegalTime) -> bool {
        self.ttl == ttl && self.limit_months == limit_months && self.legal == legal
    }

    /// `expires_at(t, ttl, limit_months, legal)`.
    pub fn expires_at(&mut self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let nanos = t.timestamp_subsec_nanos();
        if nanos >= 1_000_000_000 {
            // A leap second: not a protobuf `Timestamp`.
            return expires_at(t, self.ttl, self.limit_months, self.legal);
        }
        let (s, n) = self.expires_at_unix(t.timestamp(), nanos)?;
        DateTime::from_timestamp(s, n)
    }

    /// [`ExpiryCache::expires_at`] on Unix seconds and nanoseconds (`nanos` below 10⁹):
    /// the expiry as seconds and nanoseconds, without calendar arithmetic on a hit.
    #[inline]
    pub fn expires_at_unix(&mut self, s: i64, nanos: u32) -> Option<(i64, u32)> {
        let set = (s.div_euclid(DAY) as usize) % SETS;
        for e in &self.sets[set] {
            if e.lo <= s && s < e.hi && e.k != COMPUTE {
                return Some((s + e.k, nanos));
            }
        }
        let t = DateTime::from_timestamp(s, nanos)?;
        let r = self.fill(t, set)?;
        Some((r.timestamp(), r.timestamp_subsec_nanos()))
    }

    #[cold]
    fn fill(&mut self, t: DateTime<Utc>, set: usize) -> Option<DateTime<Utc>> {
        let s = t.timestamp();
        if let Some(e) = self.sets[set].iter().find(|e| e.lo <= s && s < e.hi) {
            debug_assert_eq!(e.k, COMPUTE);
            return expires_at(t, self.ttl, self.limit_months, self.legal);
        }
        let result = expires_at(t, self.ttl, self.limit_months, self.legal);
        // Years 1-9999 only (events): far from chrono's limits, so `t + k` never
        // overflows where the computation would not.
        let in_range = (1..=9999).contains(&t.year());
        let entry = match (self.interval(t), result) {
            (Some((lo, hi)), Some(r)) if in_range && (r - t).subsec_nanos() == 0 => Entry {
                lo,
                hi,
                k: (r - t).num_seconds(),
            },
            // No constant: computed every time, for the rest of this UTC and local day.
            _ => match day_of(self.legal, s) {
                Some((lo, hi)) => Entry { lo, hi, k: COMPUTE },
                None => return result,
            },
        };
        let way = usize::from(self.victim[set]);
        self.sets[set][way] = entry;
        self.victim[set] ^= 1;
        result
    }

    /// The instants around `t` over which the expiry is `t` plus a constant, if found.
    fn interval(&self, t: DateTime<Utc>) -> Option<(i64, i64)> {
        let (mut lo, mut hi) = months_interval(self.legal, t, self.limit_months)?;
        if let Ttl::Months(m) = self.ttl {
            let (a, b) = months_interval(self.legal, t, m)?;
            lo = lo.max(a);
            hi = hi.min(b);
        }
        Some((lo, hi))
    }
}

fn offset_at(legal: LegalTime, s: i64) -> Option<i64> {
    let t = DateTime::from_timestamp(s, 0)?.naive_utc();
    Some(i64::from(
        legal.0.offset_from_utc_datetime(&t).fix().local_minus_utc(),
    ))
}

/// Whether the zone's offset is `off` at every instant of `[lo, hi)` (sampled, see the
/// module's documentation).
fn constant_offset(legal: LegalTime, lo: i64, hi: i64, off: i64) -> bool {
    let mut s = lo;
    while s < hi {
        if offset_at(legal, s) != Some(off) {
            return false;
        }
        s += STEP;
    }
    offset_at(legal, hi - 1) == Some(off)
}

/// `s`'s UTC day, cut at its local midnight (read at `s`'s offset): `[lo, hi)`.
fn day_of(legal: LegalTime, s: i64) -> Option<(i64, i64)> {
    let utc_day = s.div_euclid(DAY);
    let off = offset_at(legal, s)?;
    let local_day = (s + off).div_euclid(DAY);
    let lo = (utc_day * DAY).max(local_day * DAY - off);
    let hi = (utc_day * DAY + DAY).min(local_day * DAY + DAY - off);
    Some((lo, hi))
}

fn date_of(day: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp(day.checked_mul(DAY)?, 0).map(|d| d.date_naive())
}

/// Days from `day` to the same date `months` later (clamped to the month's end).
fn days_to(day: i64, months: u32) -> Option<i64> {
    let date = date_of(day)?;
    let later = date.checked_add_months(Months::new(months))?;
    Some((later - date).num_days())
}

/// The instants around `t` (Unix seconds, `[lo, hi)`) over which
/// `legal.add_months(·, months)` moves every instant by the same amount: `t`'s UTC day,
/// within it `t`'s local day at one offset, and a target local day of one offset with no
/// change of offset within [`MARGIN`]. `None` on a day where it may not.
fn months_interval(legal: LegalTime, t: DateTime<Utc>, months: u32) -> Option<(i64, i64)> {
    let s = t.timestamp();
    let off = offset_at(legal, s)?;
    let local_day = (s + off).div_euclid(DAY);
    let (lo, hi) = day_of(legal, s)?;
    if !constant_offset(legal, lo, hi, off) {
        return None;
    }
    // The target local times of `[lo, hi)`, and the offset they are read at.
    let shift = days_to(local_day, months)? * DAY;
    let (target_lo, target_hi) = (lo + off + shift, hi + off + shift);
    let off2 = offset_at(legal, target_lo - off)?;
    if !constant_offset(
        legal,
        target_lo - off2 - MARGIN,
        target_hi - off2 + MARGIN,
        off2,
    ) {
        return None;
    }
    Some((lo, hi))
}

#[cfg(test)]
mod tests {
    //! The cache against the computation it remembers: for random instants 1970–2100 and for
    //! every instant near a change of offset, a month end or a leap day, in four zones, the
    //! cached expiry is exactly the uncached one.

    use super::super::{expires_at, LegalTime, Ttl};
    use super::ExpiryCache;
    use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Utc};
    use proptest::prelude::*;

    fn zones() -> [LegalTime; 4] {
        [
            LegalTime::PARIS,
            LegalTime::UTC,
            LegalTime::parse("America/Cayenne").unwrap(),
            LegalTime::parse("Indian/Reunion").unwrap(),
        ]
    }

    /// (ttl, legal limit): the defaults, a calendar ttl shorter than the limit (Jan 31 +
    /// 1 month), and fixed ttls.
    fn ttls() -> [(Ttl, u32); 5] {
        [
            (Ttl::Months(12), 12),
            (Ttl::Months(3), 3),
            (Ttl::Months(1), 3),
            (Ttl::Fixed(Duration::days(364)), 12),
            (Ttl::Fixed(Duration::hours(2135)), 3),
        ]
    }

    /// Every instant through the cache (reused, so later ones hit), each compared with
    /// [`expires_at`].
    fn check(legal: LegalTime, instants: &[DateTime<Utc>]) {
        for (ttl, limit) in ttls() {
            let mut cache = ExpiryCache::new(ttl, limit, legal);
            for &t in instants {
                assert_eq!(
                    cache.expires_at(t),
                    expires_at(t, ttl, limit, legal),
                    "{legal} {ttl} limit {limit}mo at {t:?}"
                );
            }
        }
    }

    /// The instants where the zone's offset changes, 1970–2100 (found hourly, then to the
    /// second).
    fn changes(legal: LegalTime) -> Vec<i64> {
        let off = |s: i64| {
            legal
                .0
                .offset_from_utc_datetime(&DateTime::from_timestamp(s, 0).unwrap().naive_utc())
                .fix()
                .local_minus_utc()
        };
        let start = Utc
            .with_ymd_and_hms(1970, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        let end = Utc
            .with_ymd_and_hms(2101, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        let mut found = Vec::new();
        let mut s = start;
        while s < end {
            if off(s) != off(s + 3600) {
                let (mut a, mut b) = (s, s + 3600);
                while b - a > 1 {
                    let m = (a + b) / 2;
                    if off(m) == off(a) {
                        a = m
                    } else {
                        b = m
                    }
                }
                found.push(b);
            }
            s += 3600;
        }
        found
    }

    #[test]
    fn around_every_change_of_offset() {
        for legal in zones() {
            let changes = changes(legal);
            if legal == LegalTime::PARIS {
                // Two a year since 1976.
                assert!(changes.len() > 200, "{}", changes.len());
            }
            let mut instants = Vec::new();
            for c in changes {
                // The gap or fold hour second by second-ish, and the days around it.
                for d in (-3 * 3600..3 * 3600).step_by(599) {
                    instants.push(DateTime::from_timestamp(c + d, 0).unwrap());
                }
                for d in (-3 * 86_400..3 * 86_400).step_by(7_777) {
                    instants.push(DateTime::from_timestamp(c + d, 123_456_789).unwrap());
                }
            }
            // Instants whose target day (3 or 12 months later) is a change: start from the
            // change and go back.
            check(legal, &instants);
            let back: Vec<_> = instants
                .iter()
                .filter_map(|t| {
                    let d = t.date_naive();
                    let back3 = d.checked_sub_months(chrono::Months::new(3))?;
                    let back12 = d.checked_sub_months(chrono::Months::new(12))?;
                    Some([
                        *t - Duration::days((d - back3).num_days()),
                        *t - Duration::days((d - back12).num_days()),
                    ])
                })
                .flatten()
                .collect();
            check(legal, &back);
        }
    }

    #[test]
    fn month_ends_and_leap_days() {
        let mut instants = Vec::new();
        for year in 1970..=2100 {
            for (m, d) in [
                (1, 31),
                (2, 28),
                (3, 31),
                (5, 31),
                (8, 31),
                (10, 31),
                (11, 30),
                (12, 31),
            ] {
                let date = NaiveDate::from_ymd_opt(year, m, d).unwrap();
                for h in [0, 1, 2, 12, 21, 22, 23] {
                    let t = date.and_hms_opt(h, 59, 59).unwrap().and_utc();
                    instants.push(t);
                }
            }
            if let Some(leap) = NaiveDate::from_ymd_opt(year, 2, 29) {
                for h in 0..24 {
                    instants.push(leap.and_hms_opt(h, 30, 0).unwrap().and_utc());
                }
            }
        }
        assert!(instants.iter().any(|t| t.month() == 2 && t.day() == 29));
        for legal in zones() {
            check(legal, &instants);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random instants 1970–2100, each with neighbours (so the cache hits).
        #[test]
        fn random_instants(
            base in 0i64..4_133_980_800,
            nanos in 0u32..1_000_000_000,
            steps in proptest::collection::vec(-200_000i64..200_000, 1..40),
        ) {
            for legal in zones() {
                let instants: Vec<_> = std::iter::once(0)
                    .chain(steps.iter().copied())
                    .filter_map(|d| DateTime::from_timestamp(base + d, nanos))
                    .collect();
                check(legal, &instants);
            }
        }
    }
}
