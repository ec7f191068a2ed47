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
