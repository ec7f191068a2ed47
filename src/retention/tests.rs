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
