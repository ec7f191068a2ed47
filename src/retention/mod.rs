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
pub mod cache;
pub mod mode;

pub use cache::ExpiryCache;
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

    /// The first instant of `day`, in UTC or in this zone, whichever comes first (a day
    /// whose local midnight falls in a daylight-saving gap starts at the gap's end).
    pub fn day_starts(self, day: NaiveDate) -> DateTime<Utc> {
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        let utc = midnight.and_utc();
        let local = (0..3)
            .find_map(|h| {
                self.0
                    .from_local_datetime(&(midnight + Duration::hours(h)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc));
        local.map_or(utc, |l| l.min(utc))
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
    /// from the smallest and largest offsets seen, sampled twice a day (65,000 lookups):
    /// computed once per zone and remembered, since validation, `check_ttl` and every
    /// topic re-check ask again.
    pub fn largest_offset_gain(self) -> Duration {
        static GAINS: std::sync::OnceLock<
            std::sync::Mutex<std::collections::HashMap<Tz, Duration>>,
        > = std::sync::OnceLock::new();
        let gains = GAINS.get_or_init(Default::default);
        if let Some(g) = gains.lock().unwrap_or_else(|e| e.into_inner()).get(&self.0) {
            return *g;
        }
        let gain = self.sample_offset_gain();
        gains
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.0, gain);
        gain
    }

    /// [`LegalTime::largest_offset_gain`], computed.
    fn sample_offset_gain(self) -> Duration {
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
    #[error("`{0}` is not a number followed by a unit (ms, s, m, h, d, w, mo, y)")]
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
mod tests;
