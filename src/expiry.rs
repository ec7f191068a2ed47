//! Retention periods and record expiry (reading 3 of `r10-14.md`: calendar limits).
//!
//! "Un an" and "trois mois" are calendar periods counted from the communication. A ttl
//! given in days or hours must fit the *shortest* such period to hold for every record
//! (365 days for a year, 89 days for three months), and a record's expiry is never later
//! than `event_time` + the calendar limit, whatever the ttl says.

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use std::fmt;

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

    /// Adds this period to an instant; `None` past the representable range.
    pub fn add_to(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Ttl::Fixed(d) => t.checked_add_signed(d),
            Ttl::Months(m) => t.checked_add_months(Months::new(m)),
        }
    }

    /// True for a zero-length period.
    pub fn is_zero(self) -> bool {
        match self {
            Ttl::Fixed(d) => d <= Duration::zero(),
            Ttl::Months(m) => m == 0,
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
        "{ttl} is longer than the shortest calendar period of {months} months ({shortest} days): \
         a record of a short period would outlive its legal limit; use at most {shortest}d or {months}mo"
    )]
    FixedTooLong {
        ttl: Ttl,
        months: u32,
        shortest: u32,
    },
    #[error("{ttl} is past the legal limit of {months} months; use at most {months}mo")]
    CalendarTooLong { ttl: Ttl, months: u32 },
}

/// Checks that a ttl never exceeds a legal limit of `months` calendar months, for any
/// event time.
pub fn check_ttl(ttl: Ttl, months: u32) -> Result<(), TtlLimitError> {
    if ttl.is_zero() {
        return Err(TtlLimitError::Zero);
    }
    match ttl {
        Ttl::Fixed(d) => {
            let shortest = shortest_period_days(months);
            if d > Duration::days(i64::from(shortest)) {
                return Err(TtlLimitError::FixedTooLong {
                    ttl,
                    months,
                    shortest,
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

/// `min(event_time + ttl, event_time + legal limit)`; `None` past the representable range.
pub fn expires_at(event_time: DateTime<Utc>, ttl: Ttl, limit_months: u32) -> Option<DateTime<Utc>> {
    let by_ttl = ttl.add_to(event_time)?;
    let by_law = event_time.checked_add_months(Months::new(limit_months))?;
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
        assert_eq!(check_ttl(Ttl::parse("365d").unwrap(), 12), Ok(()));
        assert_eq!(check_ttl(Ttl::parse("8760h").unwrap(), 12), Ok(()));
        let err = check_ttl(Ttl::parse("366d").unwrap(), 12).unwrap_err();
        assert!(err.to_string().contains("365 days"), "{err}");
        assert_eq!(check_ttl(Ttl::parse("89d").unwrap(), 3), Ok(()));
        let err = check_ttl(Ttl::parse("90d").unwrap(), 3).unwrap_err();
        assert!(err.to_string().contains("89 days"), "{err}");
        assert!(
            check_ttl(Ttl::parse("2160h").unwrap(), 3).is_err(),
            "90 days"
        );
    }

    #[test]
    fn calendar_ttls_must_fit_the_limit() {
        assert_eq!(check_ttl(Ttl::parse("1y").unwrap(), 12), Ok(()));
        assert_eq!(check_ttl(Ttl::parse("3mo").unwrap(), 3), Ok(()));
        assert!(matches!(
            check_ttl(Ttl::parse("4mo").unwrap(), 3),
            Err(TtlLimitError::CalendarTooLong { .. })
        ));
        assert!(matches!(
            check_ttl(Ttl::parse("13mo").unwrap(), 12),
            Err(TtlLimitError::CalendarTooLong { .. })
        ));
        assert_eq!(
            check_ttl(Ttl::parse("0d").unwrap(), 12),
            Err(TtlLimitError::Zero)
        );
    }

    #[test]
    fn leap_day_plus_a_year_is_the_28th_of_february() {
        let t = at(2024, 2, 29, 10);
        assert_eq!(
            expires_at(t, Ttl::Months(12), 12),
            Some(at(2025, 2, 28, 10))
        );
        // 365 days from the 29th of February 2024 lands on the 28th of February 2025 too.
        assert_eq!(
            expires_at(t, Ttl::Fixed(Duration::days(365)), 12),
            Some(at(2025, 2, 28, 10))
        );
    }

    #[test]
    fn a_year_across_a_leap_day_is_366_days_but_365d_expires_earlier() {
        let t = at(2023, 3, 1, 0);
        let by_law = expires_at(t, Ttl::Months(12), 12).unwrap();
        assert_eq!(by_law, at(2024, 3, 1, 0));
        assert_eq!((by_law - t).num_days(), 366);
        let by_ttl = expires_at(t, Ttl::Fixed(Duration::days(365)), 12).unwrap();
        assert_eq!(by_ttl, at(2024, 2, 29, 0));
    }

    #[test]
    fn thirty_first_plus_three_months_clamps_to_month_end() {
        // 31 January + 3 months = 30 April: 89 days, the shortest three months.
        let t = at(2023, 1, 31, 12);
        let e = expires_at(t, Ttl::Months(3), 3).unwrap();
        assert_eq!(e, at(2023, 4, 30, 12));
        assert_eq!((e - t).num_days(), 89);
        // 30 November + 3 months = 28 February (non-leap) and 29 February (leap).
        assert_eq!(
            expires_at(at(2022, 11, 30, 0), Ttl::Months(3), 3),
            Some(at(2023, 2, 28, 0))
        );
        assert_eq!(
            expires_at(at(2023, 11, 30, 0), Ttl::Months(3), 3),
            Some(at(2024, 2, 29, 0))
        );
    }

    #[test]
    fn the_calendar_limit_caps_a_day_ttl() {
        // 1 July + 3 months = 1 October, 92 days. An 89-day ttl expires before the limit;
        // a (refused) 92-day ttl would be capped by it for a 31 January start.
        let t = at(2023, 7, 1, 0);
        assert_eq!(
            (expires_at(t, Ttl::Months(3), 3).unwrap() - t).num_days(),
            92
        );
        assert_eq!(
            expires_at(t, Ttl::Fixed(Duration::days(89)), 3),
            Some(at(2023, 9, 28, 0))
        );
        let jan31 = at(2023, 1, 31, 0);
        assert_eq!(
            expires_at(jan31, Ttl::Fixed(Duration::days(92)), 3),
            Some(at(2023, 4, 30, 0))
        );
    }

    #[test]
    fn end_of_year() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            rfc3339(expires_at(t, Ttl::Months(12), 12).unwrap()),
            "2027-12-31T23:59:59Z"
        );
        assert_eq!(
            rfc3339(expires_at(t, Ttl::Months(3), 3).unwrap()),
            "2027-03-31T23:59:59Z"
        );
    }

    #[test]
    fn rfc3339_has_fraction_only_when_present() {
        assert_eq!(rfc3339(at(2027, 2, 28, 10)), "2027-02-28T10:00:00Z");
        let t = at(2027, 2, 28, 10) + Duration::milliseconds(250);
        assert_eq!(rfc3339(t), "2027-02-28T10:00:00.250Z");
    }
}
