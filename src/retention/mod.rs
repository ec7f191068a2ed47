//! Row 0 of the layers: retention periods and record expiry, and (in [`bound`]) how long
//! a record can live in a Kafka topic. Pure arithmetic, no I/O.
//!
//! Retention periods and record expiry (reading 3 of `r10-14.md`: calendar limits, and
//! "Legal time" in `r10-14-2021.md`).
//!
//! "Un an" and "trois mois" are calendar periods counted from the communication, in UTC
//! *and* in the operator's legal time zone: a record's calendar limit is the **earlier** of
//! the two readings. A ttl given in days or hours must fit the *shortest* such period in
//! both readings to hold for every record (in UTC 365 days for a year and 89 days for three
//! months; in Paris time one hour less, across the spring change), and a record's expiry is
//! never later than its calendar limit, whatever the ttl says.

pub mod bound;
pub mod mode;

pub use mode::TopicsMode;

use chrono::offset::LocalResult;
use chrono::{DateTime, Duration, Months, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;

/// The legal time zone in which calendar limits are also counted (`policy.time_zone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegalTime(pub Tz);

/// Why a time-zone name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IANA time-zone name (e.g. \"Europe/Paris\", \"America/Cayenne\", \"Indian/Reunion\")")]
pub struct TimeZoneError(pub String);

impl Default for LegalTime {
    fn default() -> Self {
        LegalTime::PARIS
    }
}

impl LegalTime {
    /// Metropolitan France: the default.
    pub const PARIS: LegalTime = LegalTime(Tz::Europe__Paris);
    /// UTC only (both readings agree).
    pub const UTC: LegalTime = LegalTime(Tz::UTC);

    /// Parses an IANA name (`Europe/Paris`).
    pub fn parse(name: &str) -> Result<LegalTime, TimeZoneError> {
        name.trim()
            .parse::<Tz>()
            .map(LegalTime)
            .map_err(|_| TimeZoneError(name.to_string()))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// `t` + `months` calendar months: the earlier of the UTC reading and the local one
    /// (the same wall-clock time, `months` later, in this zone). `None` past the range.
    pub fn add_months(self, t: DateTime<Utc>, months: u32) -> Option<DateTime<Utc>> {
        let utc = t.checked_add_months(Months::new(months))?;
        let local = t.with_timezone(&self.0).naive_local();
        let target = local.checked_add_months(Months::new(months))?;
        Some(utc.min(self.earliest_instant(target)?))
    }

    /// The earliest instant a local wall-clock time can mean: the first of two when the
    /// clocks go back; in a gap (clocks go forward), the reading with the later offset.
    fn earliest_instant(self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.0.from_local_datetime(&local) {
            LocalResult::Single(d) => Some(d.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
            LocalResult::None => {
                let day = Duration::days(1);
                [
                    local.checked_sub_signed(day)?,
                    local.checked_add_signed(day)?,
                ]
                .iter()
                .map(|near| {
                    let off = self.0.offset_from_utc_datetime(near).fix();
                    local.checked_sub_signed(Duration::seconds(off.local_minus_utc().into()))
                })
                .collect::<Option<Vec<_>>>()?
                .into_iter()
                .min()
                .map(|n| n.and_utc())
            }
        }
    }

    /// The largest amount by which this zone's offset from UTC grows between two instants
    /// (one hour in Paris: the spring change), over 2012 – 2100: a calendar period read in
    /// local time can be that much shorter than the same dates in UTC. A bound, counted
    /// from the smallest and largest offsets seen, sampled twice a day.
    pub fn largest_offset_gain(self) -> Duration {
        let start = NaiveDate::from_ymd_opt(2012, 1, 1)
            .expect("valid date")
            .and_hms_opt(0, 0, 0)
            .expect("midnight");
        let (mut lo, mut hi) = (i32::MAX, i32::MIN);
        for half_days in 0..(89 * 366 * 2) {
            let t = start + Duration::hours(12 * half_days);
            let off = self.0.offset_from_utc_datetime(&t).fix().local_minus_utc();
            lo = lo.min(off);
            hi = hi.max(off);
        }
        Duration::seconds(i64::from(hi - lo))
    }

    /// The shortest calendar period of `months` months in both readings
    /// (Paris: 12 → 364 days 23 hours, 3 → 88 days 23 hours; UTC: 365 days, 89 days).
    pub fn shortest_period(self, months: u32) -> Duration {
        Duration::days(i64::from(shortest_period_days(months))) - self.largest_offset_gain()
    }
}

impl fmt::Display for LegalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `88 days 23 hours`, `365 days`, `1 hour 30 minutes`: a length for people.
pub fn human(d: Duration) -> String {
    let mut parts = Vec::new();
    let mut s = d.num_seconds();
    for (unit, secs) in [
        ("day", 86_400),
        ("hour", 3_600),
        ("minute", 60),
        ("second", 1),
    ] {
        let n = s / secs;
        s %= secs;
        if n > 0 {
            parts.push(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
        }
    }
    if parts.is_empty() {
        "0 seconds".into()
    } else {
        parts.join(" ")
    }
}

/// A retention period as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// A fixed length (`365d`, `2160h`, `5m`, `30s`, `2w`).
    Fixed(Duration),
    /// Calendar months (`3mo`; `1y` is 12 months).
    Months(u32),
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlParseError {
    #[error("empty duration")]
    Empty,
    #[error(
        "`{0}` is not a number followed by a unit (ms, s, m, h, d, w, mo, y), e.g. \"365d\" or \"3mo\""
    )]
    Syntax(String),
    #[error("`{0}` is too large")]
    Overflow(String),
}

impl Ttl {
    /// Parses `"365d"`, `"2160h"`, `"3mo"`, `"1y"`, `"5m"` (minutes), `"30s"`, `"2w"`.
    pub fn parse(text: &str) -> Result<Ttl, TtlParseError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(TtlParseError::Empty);
        }
        let split = t
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| TtlParseError::Syntax(t.to_string()))?;
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(TtlParseError::Syntax(t.to_string()));
        }
        let n: i64 = num
            .parse()
            .map_err(|_| TtlParseError::Overflow(t.to_string()))?;
        let overflow = || TtlParseError::Overflow(t.to_string());
        let months = |m: i64| u32::try_from(m).map(Ttl::Months).map_err(|_| overflow());
        let fixed = |secs_per_unit: i64| {
            n.checked_mul(secs_per_unit)
                .and_then(Duration::try_seconds)
                .map(Ttl::Fixed)
                .ok_or_else(overflow)
        };
        match unit.trim() {
            "ms" => Duration::try_milliseconds(n)
                .map(Ttl::Fixed)
                .ok_or_else(overflow),
            "s" => fixed(1),
            "m" | "min" => fixed(60),
            "h" => fixed(3_600),
            "d" => fixed(86_400),
            "w" => fixed(7 * 86_400),
            "mo" => months(n),
            "y" => months(n.checked_mul(12).ok_or_else(overflow)?),
            _ => Err(TtlParseError::Syntax(t.to_string())),
        }
    }

    /// Adds this period to an instant (calendar months: the earlier of the UTC and the
    /// legal-time readings); `None` past the representable range.
    pub fn add_to(self, t: DateTime<Utc>, legal: LegalTime) -> Option<DateTime<Utc>> {
        match self {
            Ttl::Fixed(d) => t.checked_add_signed(d),
            Ttl::Months(m) => legal.add_months(t, m),
        }
    }

    /// True for a zero-length period.
    pub fn is_zero(self) -> bool {
        match self {
            Ttl::Fixed(d) => d <= Duration::zero(),
            Ttl::Months(m) => m == 0,
        }
    }

    /// The shortest this period can be, as a fixed length: a calendar ttl counts its
    /// shortest period in both readings (Paris: `3mo` → 88 days 23 hours).
    pub fn shortest(self, legal: LegalTime) -> Duration {
        match self {
            Ttl::Fixed(d) => d,
            Ttl::Months(m) => legal.shortest_period(m),
        }
    }

    /// The longest this period can be, as a fixed length (a month counts 31 days).
    pub fn longest(self) -> Duration {
        match self {
            Ttl::Fixed(d) => d,
            Ttl::Months(m) => Duration::days(i64::from(longest_period_days(m))),
        }
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ttl::Months(m) if m % 12 == 0 && m > 0 => write!(f, "{}y", m / 12),
            Ttl::Months(m) => write!(f, "{m}mo"),
            Ttl::Fixed(d) => {
                let s = d.num_seconds();
                if d.subsec_nanos() != 0 {
                    write!(f, "{}ms", d.num_milliseconds())
                } else if s % 86_400 == 0 {
                    write!(f, "{}d", s / 86_400)
                } else if s % 3_600 == 0 {
                    write!(f, "{}h", s / 3_600)
                } else if s % 60 == 0 {
                    write!(f, "{}m", s / 60)
                } else {
                    write!(f, "{s}s")
                }
            }
        }
    }
}

/// Every start day in a four-year leap cycle: enough to see every month length and both
/// kinds of February (the Gregorian 400-year rule only removes leap days).
fn leap_cycle_days() -> impl Iterator<Item = DateTime<Utc>> {
    let start = NaiveDate::from_ymd_opt(2001, 1, 1).expect("valid date");
    (0..4 * 366).map(move |i| {
        (start + Duration::days(i))
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
    })
}

fn period_days(months: u32) -> impl Iterator<Item = i64> {
    leap_cycle_days().map(move |t| {
        let end = t.checked_add_months(Months::new(months)).expect("in range");
        (end - t).num_days()
    })
}

/// The shortest calendar period of `months` months, in whole days (12 → 365, 3 → 89).
pub fn shortest_period_days(months: u32) -> u32 {
    period_days(months).min().unwrap_or(0) as u32
}

/// The longest calendar period of `months` months, in whole days (12 → 366, 3 → 92).
pub fn longest_period_days(months: u32) -> u32 {
    period_days(months).max().unwrap_or(0) as u32
}

/// Why a ttl does not fit a legal limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlLimitError {
    #[error("a ttl must be longer than zero")]
    Zero,
    #[error(
        "{ttl} is longer than the shortest calendar period of {months} months read in UTC and in \
         {legal} legal time ({shortest}{arithmetic}): a record of a short period would outlive its \
         legal limit; use the calendar unit {calendar}, or at most {days}d"
    )]
    FixedTooLong {
        ttl: Ttl,
        months: u32,
        legal: LegalTime,
        /// `88 days 23 hours`.
        shortest: String,
        /// How it is counted: ` = 89 days less the 1 hour daylight-saving change`.
        arithmetic: String,
        /// `3mo`, `12mo` (or `1y`).
        calendar: String,
        /// The longest whole number of days that fits.
        days: i64,
    },
    #[error("{ttl} is past the legal limit of {months} months; use at most {months}mo")]
    CalendarTooLong { ttl: Ttl, months: u32 },
}

/// Checks that a ttl never exceeds a legal limit of `months` calendar months, for any
/// event time, in UTC and in `legal` time.
pub fn check_ttl(ttl: Ttl, months: u32, legal: LegalTime) -> Result<(), TtlLimitError> {
    if ttl.is_zero() {
        return Err(TtlLimitError::Zero);
    }
    match ttl {
        Ttl::Fixed(d) => {
            let shortest = legal.shortest_period(months);
            if d > shortest {
                let days = shortest_period_days(months);
                let gain = legal.largest_offset_gain();
                let arithmetic = if gain > Duration::zero() {
                    format!(
                        " = {days} days less the {} daylight-saving change",
                        human(gain)
                    )
                } else {
                    String::new()
                };
                let calendar = if months % 12 == 0 {
                    format!("{months}mo (or {}y)", months / 12)
                } else {
                    format!("{months}mo")
                };
                return Err(TtlLimitError::FixedTooLong {
                    ttl,
                    months,
                    legal,
                    shortest: human(shortest),
                    arithmetic,
                    calendar,
                    days: shortest.num_days(),
                });
            }
        }
        Ttl::Months(m) if m > months => {
            return Err(TtlLimitError::CalendarTooLong { ttl, months });
        }
        Ttl::Months(_) => {}
    }
    Ok(())
}

/// `min(event_time + ttl, event_time + legal limit)`, calendar periods read in UTC and in
/// legal time (the earlier); `None` past the representable range.
pub fn expires_at(
    event_time: DateTime<Utc>,
    ttl: Ttl,
    limit_months: u32,
    legal: LegalTime,
) -> Option<DateTime<Utc>> {
    let by_ttl = ttl.add_to(event_time, legal)?;
    let by_law = legal.add_months(event_time, limit_months)?;
    Some(by_ttl.min(by_law))
}

/// RFC 3339 in UTC with a `Z`, fractional seconds only when present
/// (`2027-02-28T10:00:00Z`): the format of the `cdr-expires-at` header.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
    }

    #[test]
    fn parses_every_unit() {
        assert_eq!(Ttl::parse("365d"), Ok(Ttl::Fixed(Duration::days(365))));
        assert_eq!(Ttl::parse("2160h"), Ok(Ttl::Fixed(Duration::hours(2160))));
        assert_eq!(Ttl::parse("5m"), Ok(Ttl::Fixed(Duration::minutes(5))));
        assert_eq!(Ttl::parse("30s"), Ok(Ttl::Fixed(Duration::seconds(30))));
        assert_eq!(
            Ttl::parse("100ms"),
            Ok(Ttl::Fixed(Duration::milliseconds(100)))
        );
        assert_eq!(Ttl::parse("2w"), Ok(Ttl::Fixed(Duration::days(14))));
        assert_eq!(Ttl::parse("3mo"), Ok(Ttl::Months(3)));
        assert_eq!(Ttl::parse("1y"), Ok(Ttl::Months(12)));
        assert_eq!(Ttl::parse(" 89d "), Ok(Ttl::Fixed(Duration::days(89))));
    }

    #[test]
    fn refuses_bad_syntax() {
        assert_eq!(Ttl::parse(""), Err(TtlParseError::Empty));
        assert!(matches!(Ttl::parse("d"), Err(TtlParseError::Syntax(_))));
        assert!(matches!(Ttl::parse("365"), Err(TtlParseError::Syntax(_))));
        assert!(matches!(
            Ttl::parse("3 months"),
            Err(TtlParseError::Syntax(_))
        ));
        assert!(matches!(Ttl::parse("-3d"), Err(TtlParseError::Syntax(_))));
        assert!(matches!(
            Ttl::parse("99999999999999999999d"),
            Err(TtlParseError::Overflow(_))
        ));
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(Ttl::parse("2160h").unwrap().to_string(), "90d");
        for s in ["365d", "25h", "5m", "30s", "100ms", "3mo", "1y", "18mo"] {
            assert_eq!(Ttl::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn shortest_and_longest_calendar_periods() {
        assert_eq!(shortest_period_days(12), 365);
        assert_eq!(longest_period_days(12), 366);
        assert_eq!(shortest_period_days(3), 89);
        assert_eq!(longest_period_days(3), 92);
    }

    #[test]
    fn day_ttls_must_fit_the_shortest_period() {
        assert_eq!(
            check_ttl(Ttl::parse("365d").unwrap(), 12, LegalTime::UTC),
            Ok(())
        );
        assert_eq!(
            check_ttl(Ttl::parse("8760h").unwrap(), 12, LegalTime::UTC),
            Ok(())
        );
        let err = check_ttl(Ttl::parse("366d").unwrap(), 12, LegalTime::UTC).unwrap_err();
        assert!(err.to_string().contains("365 days"), "{err}");
        assert_eq!(
            check_ttl(Ttl::parse("89d").unwrap(), 3, LegalTime::UTC),
            Ok(())
        );
        let err = check_ttl(Ttl::parse("90d").unwrap(), 3, LegalTime::UTC).unwrap_err();
        assert!(err.to_string().contains("89 days"), "{err}");
        assert!(
            check_ttl(Ttl::parse("2160h").unwrap(), 3, LegalTime::UTC).is_err(),
            "90 days"
        );
    }

    #[test]
    fn calendar_ttls_must_fit_the_limit() {
        assert_eq!(
            check_ttl(Ttl::parse("1y").unwrap(), 12, LegalTime::UTC),
            Ok(())
        );
        assert_eq!(
            check_ttl(Ttl::parse("3mo").unwrap(), 3, LegalTime::UTC),
            Ok(())
        );
        assert!(matches!(
            check_ttl(Ttl::parse("4mo").unwrap(), 3, LegalTime::UTC),
            Err(TtlLimitError::CalendarTooLong { .. })
        ));
        assert!(matches!(
            check_ttl(Ttl::parse("13mo").unwrap(), 12, LegalTime::UTC),
            Err(TtlLimitError::CalendarTooLong { .. })
        ));
        assert_eq!(
            check_ttl(Ttl::parse("0d").unwrap(), 12, LegalTime::UTC),
            Err(TtlLimitError::Zero)
        );
    }

    #[test]
    fn leap_day_plus_a_year_is_the_28th_of_february() {
        let t = at(2024, 2, 29, 10);
        assert_eq!(
            expires_at(t, Ttl::Months(12), 12, LegalTime::UTC),
            Some(at(2025, 2, 28, 10))
        );
        // 365 days from the 29th of February 2024 lands on the 28th of February 2025 too.
        assert_eq!(
            expires_at(t, Ttl::Fixed(Duration::days(365)), 12, LegalTime::UTC),
            Some(at(2025, 2, 28, 10))
        );
    }

    #[test]
    fn a_year_across_a_leap_day_is_366_days_but_365d_expires_earlier() {
        let t = at(2023, 3, 1, 0);
        let by_law = expires_at(t, Ttl::Months(12), 12, LegalTime::UTC).unwrap();
        assert_eq!(by_law, at(2024, 3, 1, 0));
        assert_eq!((by_law - t).num_days(), 366);
        let by_ttl = expires_at(t, Ttl::Fixed(Duration::days(365)), 12, LegalTime::UTC).unwrap();
        assert_eq!(by_ttl, at(2024, 2, 29, 0));
    }

    #[test]
    fn thirty_first_plus_three_months_clamps_to_month_end() {
        // 31 January + 3 months = 30 April: 89 days, the shortest three months.
        let t = at(2023, 1, 31, 12);
        let e = expires_at(t, Ttl::Months(3), 3, LegalTime::UTC).unwrap();
        assert_eq!(e, at(2023, 4, 30, 12));
        assert_eq!((e - t).num_days(), 89);
        // 30 November + 3 months = 28 February (non-leap) and 29 February (leap).
        assert_eq!(
            expires_at(at(2022, 11, 30, 0), Ttl::Months(3), 3, LegalTime::UTC),
            Some(at(2023, 2, 28, 0))
        );
        assert_eq!(
            expires_at(at(2023, 11, 30, 0), Ttl::Months(3), 3, LegalTime::UTC),
            Some(at(2024, 2, 29, 0))
        );
    }

    #[test]
    fn the_calendar_limit_caps_a_day_ttl() {
        // 1 July + 3 months = 1 October, 92 days. An 89-day ttl expires before the limit;
        // a (refused) 92-day ttl would be capped by it for a 31 January start.
        let t = at(2023, 7, 1, 0);
        assert_eq!(
            (expires_at(t, Ttl::Months(3), 3, LegalTime::UTC).unwrap() - t).num_days(),
            92
        );
        assert_eq!(
            expires_at(t, Ttl::Fixed(Duration::days(89)), 3, LegalTime::UTC),
            Some(at(2023, 9, 28, 0))
        );
        let jan31 = at(2023, 1, 31, 0);
        assert_eq!(
            expires_at(jan31, Ttl::Fixed(Duration::days(92)), 3, LegalTime::UTC),
            Some(at(2023, 4, 30, 0))
        );
    }

    #[test]
    fn end_of_year() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            rfc3339(expires_at(t, Ttl::Months(12), 12, LegalTime::UTC).unwrap()),
            "2027-12-31T23:59:59Z"
        );
        assert_eq!(
            rfc3339(expires_at(t, Ttl::Months(3), 3, LegalTime::UTC).unwrap()),
            "2027-03-31T23:59:59Z"
        );
    }

    fn paris(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn paris_three_months_is_the_earlier_local_reading() {
        // r10-14-2021.md: 2027-01-30T23:30Z is 31 January 00:30 in Paris; three months
        // later is 30 April 00:30 Paris time = 2027-04-29T22:30Z, 25 h before the UTC reading.
        let t = paris(2027, 1, 30, 23, 30);
        let limit = LegalTime::PARIS.add_months(t, 3).unwrap();
        assert_eq!(limit, paris(2027, 4, 29, 22, 30));
        assert_eq!(
            LegalTime::UTC.add_months(t, 3),
            Some(paris(2027, 4, 30, 23, 30))
        );
        assert_eq!(
            expires_at(t, Ttl::Months(3), 3, LegalTime::PARIS),
            Some(paris(2027, 4, 29, 22, 30))
        );
        // An 89-day ttl would pass the Paris limit; the limit caps it.
        assert_eq!(
            expires_at(t, Ttl::Fixed(Duration::days(89)), 3, LegalTime::PARIS),
            Some(paris(2027, 4, 29, 22, 30))
        );
        assert_eq!(limit - t, Duration::days(88) + Duration::hours(23));
    }

    #[test]
    fn paris_one_year_across_the_spring_change() {
        // 2027-03-27T23:30Z is 28 March 00:30 CET, before the change of that night;
        // one year later 28 March 2028 00:30 is CEST (+2): 2028-03-27T22:30Z, 1 h earlier
        // than the UTC reading, and 365 days less one hour after the event.
        let t = paris(2027, 3, 27, 23, 30);
        let limit = expires_at(t, Ttl::Months(12), 12, LegalTime::PARIS).unwrap();
        assert_eq!(limit, paris(2028, 3, 27, 22, 30));
        assert!(limit < expires_at(t, Ttl::Months(12), 12, LegalTime::UTC).unwrap());
        // Across the autumn change the UTC reading is the earlier one.
        let t = paris(2027, 10, 30, 12, 0);
        let limit = expires_at(t, Ttl::Months(12), 12, LegalTime::PARIS).unwrap();
        assert_eq!(limit, paris(2028, 10, 30, 12, 0));
    }

    #[test]
    fn a_local_time_in_the_spring_gap_reads_as_the_earlier_instant() {
        // 26 December 2027 02:30 CET + 3 months = 26 March 2028 02:30, a time Paris skips
        // (the clocks go from 02:00 to 03:00 that night).
        let t = paris(2027, 12, 26, 1, 30);
        let limit = LegalTime::PARIS.add_months(t, 3).unwrap();
        // Read with the summer offset (+2): 00:30Z, the earlier of the two readings.
        assert_eq!(limit, paris(2028, 3, 26, 0, 30));
    }

    #[test]
    fn shortest_periods_in_legal_time() {
        let p = LegalTime::PARIS;
        assert_eq!(p.largest_offset_gain(), Duration::hours(1));
        assert_eq!(
            p.shortest_period(3),
            Duration::days(88) + Duration::hours(23)
        );
        assert_eq!(
            p.shortest_period(12),
            Duration::days(364) + Duration::hours(23)
        );
        assert_eq!(LegalTime::UTC.shortest_period(3), Duration::days(89));
        for name in ["America/Cayenne", "Indian/Reunion"] {
            let z = LegalTime::parse(name).unwrap();
            assert_eq!(z.shortest_period(12), Duration::days(365), "{name}");
        }
        assert!(LegalTime::parse("Europe/Lutece").is_err());
    }

    #[test]
    fn day_ttls_must_fit_the_shortest_period_in_paris() {
        let p = LegalTime::PARIS;
        let err = check_ttl(Ttl::parse("89d").unwrap(), 3, p).unwrap_err();
        assert_eq!(
            err.to_string(),
            "89d is longer than the shortest calendar period of 3 months read in UTC and in \
             Europe/Paris legal time (88 days 23 hours = 89 days less the 1 hour daylight-saving \
             change): a record of a short period would outlive its legal limit; use the calendar \
             unit 3mo, or at most 88d"
        );
        let err = check_ttl(Ttl::parse("365d").unwrap(), 12, p).unwrap_err();
        assert!(err.to_string().contains("364 days 23 hours"), "{err}");
        assert!(
            err.to_string().contains("12mo (or 1y), or at most 364d"),
            "{err}"
        );
        assert_eq!(check_ttl(Ttl::parse("88d").unwrap(), 3, p), Ok(()));
        assert_eq!(check_ttl(Ttl::parse("2135h").unwrap(), 3, p), Ok(()));
        assert!(check_ttl(Ttl::parse("2136h").unwrap(), 3, p).is_err());
        assert_eq!(check_ttl(Ttl::parse("3mo").unwrap(), 3, p), Ok(()));
        assert_eq!(check_ttl(Ttl::parse("1y").unwrap(), 12, p), Ok(()));
    }

    #[test]
    fn human_lengths() {
        assert_eq!(
            human(Duration::days(88) + Duration::hours(23)),
            "88 days 23 hours"
        );
        assert_eq!(human(Duration::hours(1)), "1 hour");
        assert_eq!(human(Duration::zero()), "0 seconds");
    }

    #[test]
    fn rfc3339_has_fraction_only_when_present() {
        assert_eq!(rfc3339(at(2027, 2, 28, 10)), "2027-02-28T10:00:00Z");
        let t = at(2027, 2, 28, 10) + Duration::milliseconds(250);
        assert_eq!(rfc3339(t), "2027-02-28T10:00:00.250Z");
    }
}
