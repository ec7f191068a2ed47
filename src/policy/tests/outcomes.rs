//! The policy's outcomes: routing by version, narrowing, refusals, expiry, the output
//! record, and what never reaches an output.

use super::*;

#[test]
fn terminating_records_never_go_to_billing_under_2021() {
    let p2021 = Policy::legal_maximum_of(Version::R2021);
    let p2012 = Policy::legal_maximum_of(Version::R2012);
    for t in [
        EventType::VoiceCall,
        EventType::Sms,
        EventType::DataSession,
        EventType::SupplementaryService,
    ] {
        let mut e = event(t, Direction::Terminating);
        assert_eq!(
            dropped(&p2021, &e, Purpose::Billing),
            Some(DropReason::NotOriginated),
            "{t:?}"
        );
        assert!(forwarded(&p2021, &e, Purpose::Security).is_some());
        // The 2012 text took them (without the calling party: a third party).
        let out = forwarded(&p2012, &e, Purpose::Billing).unwrap().event;
        assert!(out.calling.is_none(), "{t:?}");
        // Chargeable or not.
        e.charging.as_mut().unwrap().chargeable = false;
        assert_eq!(
            dropped(&p2021, &e, Purpose::Billing),
            Some(DropReason::NotOriginated)
        );
        assert_eq!(
            dropped(&p2012, &e, Purpose::Billing),
            Some(DropReason::NotBillable)
        );
    }
    assert_eq!(DropReason::NotOriginated.as_str(), "not_originated");
    assert!(!DropReason::NotOriginated.is_refusal());
}

#[test]
fn forwarded_calls_and_subscriber_started_sessions_go_to_billing_under_2021() {
    let p = Policy::legal_maximum_of(Version::R2021);
    let f = forwarded(
        &p,
        &event(EventType::VoiceCall, Direction::Forwarded),
        Purpose::Billing,
    )
    .unwrap();
    assert!(
        f.event.calling.is_none(),
        "the original caller is a third party"
    );
    assert!(f.event.called.is_some());
    for t in [EventType::DataSession, EventType::SupplementaryService] {
        let out = forwarded(&p, &event(t, Direction::None), Purpose::Billing).unwrap();
        // The subscriber who started it is the caller: kept.
        assert!(out.event.calling.is_some(), "{t:?}");
    }
    // A voice call with no direction does not say who originated it.
    assert_eq!(
        dropped(
            &p,
            &event(EventType::VoiceCall, Direction::None),
            Purpose::Billing
        ),
        Some(DropReason::NotOriginated)
    );
}

#[test]
fn supplementary_services_take_the_telephony_column() {
    for version in Version::ALL {
        let p = Policy::legal_maximum_of(version);
        let out = forwarded(
            &p,
            &event(EventType::SupplementaryService, Direction::Originating),
            Purpose::Billing,
        )
        .unwrap()
        .event;
        assert!(out.location.as_ref().is_some_and(|l| !l.cell_id.is_empty()));
        assert!(out.called.is_some(), "recipients (R10-14 II)");
        assert!(out.charging.as_ref().is_some_and(|c| c.amount_minor != 0));
        let data = forwarded(
            &p,
            &event(EventType::DataSession, Direction::Originating),
            Purpose::Billing,
        )
        .unwrap()
        .event;
        assert!(data.location.is_none() && data.called.is_none());
    }
}

#[test]
fn optional_fields_are_removed_unless_the_operator_keeps_them() {
    let e = event(EventType::VoiceCall, Direction::Originating);
    for version in Version::ALL {
        let default = Policy::legal_maximum_of(version);
        let out = forwarded(&default, &e, Purpose::Billing).unwrap().event;
        assert!(!version.field("terminal.imeisv").unwrap().is_present(&out));
        let loc = out.location.unwrap();
        assert!(!loc.cell_id.is_empty());
        assert_eq!((loc.latitude, loc.longitude), (0.0, 0.0), "{version}");

        let kept = version.select("location");
        let with = policy_of(
            version,
            vec![PurposePolicy::new(
                version,
                BILLING,
                Ttl::Months(12),
                vec![],
                kept,
            )],
        );
        let loc = forwarded(&with, &e, Purpose::Billing)
            .unwrap()
            .event
            .location
            .unwrap();
        assert!(loc.latitude != 0.0 && loc.longitude != 0.0, "{version}");
    }
    // R10-14/2012: imeisv is optional; kept on demand.
    let v = Version::R2012;
    let with = policy_of(
        v,
        vec![PurposePolicy::new(
            v,
            BILLING,
            Ttl::Months(12),
            vec![],
            vec![v.field("terminal.imeisv").unwrap()],
        )],
    );
    let out = forwarded(&with, &e, Purpose::Billing).unwrap().event;
    assert!(v.field("terminal.imeisv").unwrap().is_present(&out));
}

#[test]
fn security_keeps_the_rating_group() {
    for version in Version::ALL {
        let p = Policy::legal_maximum_of(version);
        let e = event(EventType::DataSession, Direction::Originating);
        let out = forwarded(&p, &e, Purpose::Security).unwrap().event;
        let c = out.charging.unwrap();
        assert_eq!(c.rating_group, e.charging.as_ref().unwrap().rating_group);
        assert!(!c.chargeable && c.amount_minor == 0 && c.currency.is_empty());
    }
}

#[test]
fn expiry_counts_calendar_months_in_paris_legal_time() {
    // r10-14-2021.md: an event at 2027-01-30T23:30Z with 3mo expires no later than
    // 2027-04-29T22:30Z (30 April 00:30 Paris time).
    let t = Utc.with_ymd_and_hms(2027, 1, 30, 23, 30, 0).unwrap();
    let now = t + Duration::hours(1);
    let mut e = event(EventType::VoiceCall, Direction::Originating);
    e.event_time = Some(schema::to_timestamp(t));
    let expiry_of = |p: &Policy| {
        p.apply(&e, now)
            .outcomes
            .into_iter()
            .find_map(|(p, o)| match o {
                Outcome::Forward(r) if p == Purpose::Security => Some(r.expires_at),
                _ => None,
            })
    };
    assert_eq!(
        expiry_of(&Policy::legal_maximum()),
        Some(Utc.with_ymd_and_hms(2027, 4, 29, 22, 30, 0).unwrap())
    );
    // In UTC alone it is 25 hours later.
    let utc = Policy {
        legal_time: LegalTime::UTC,
        ..Policy::legal_maximum()
    };
    assert_eq!(
        expiry_of(&utc),
        Some(Utc.with_ymd_and_hms(2027, 4, 30, 23, 30, 0).unwrap())
    );
}

#[test]
fn billing_needs_a_chargeable_event() {
    let policy = Policy::legal_maximum();
    for t in TYPES {
        let mut e = event(t, Direction::Originating);
        e.charging.as_mut().unwrap().chargeable = false;
        assert_eq!(
            dropped(&policy, &e, Purpose::Billing),
            Some(DropReason::NotBillable)
        );
        assert!(forwarded(&policy, &e, Purpose::Security).is_some());
        e.charging = None;
        assert_eq!(
            dropped(&policy, &e, Purpose::Billing),
            Some(DropReason::NotBillable)
        );
    }
}

#[test]
fn signalling_never_goes_to_billing_even_if_chargeable() {
    let policy = Policy::legal_maximum();
    let mut e = event(EventType::Signalling, Direction::None);
    e.charging = Some(Charging {
        chargeable: true,
        ..Default::default()
    });
    assert_eq!(
        dropped(&policy, &e, Purpose::Billing),
        Some(DropReason::NotBillable)
    );
    // A type unknown to this schema version is not routed at all: refused (see
    // `an_event_type_or_direction_the_schema_does_not_know_refuses_the_event`).
}

#[test]
fn declared_purposes_narrow() {
    let policy = Policy::legal_maximum();
    let mut e = event(EventType::VoiceCall, Direction::Originating);
    e.declared_purposes = vec![Purpose::Security as i32];
    assert_eq!(
        dropped(&policy, &e, Purpose::Billing),
        Some(DropReason::NotDeclared)
    );
    let out = forwarded(&policy, &e, Purpose::Security).unwrap();
    assert!(
        out.event.declared_purposes.is_empty(),
        "routing data is removed"
    );
    e.declared_purposes = vec![Purpose::Billing as i32];
    assert!(forwarded(&policy, &e, Purpose::Billing).is_some());
    assert_eq!(
        dropped(&policy, &e, Purpose::Security),
        Some(DropReason::NotDeclared)
    );
    e.declared_purposes = vec![Purpose::Billing as i32, Purpose::Security as i32];
    assert!(forwarded(&policy, &e, Purpose::Billing).is_some());
    assert!(forwarded(&policy, &e, Purpose::Security).is_some());
}

#[test]
fn only_configured_purposes_are_used() {
    let v = Version::IN_FORCE;
    let policy = policy_of(
        v,
        vec![PurposePolicy::new(
            v,
            SECURITY,
            Ttl::Months(3),
            vec![],
            vec![],
        )],
    );
    let ev = policy.apply(&event(EventType::VoiceCall, Direction::Originating), now());
    assert_eq!(ev.outcomes.len(), 1);
    assert_eq!(ev.outcomes[0].0, Purpose::Security);
}

#[test]
fn refusals_apply_to_every_purpose() {
    let policy = Policy::legal_maximum();
    let mut e = event(EventType::Sms, Direction::Originating);
    e.event_id.clear();
    let ev = policy.apply(&e, now());
    assert_eq!(
        ev.refusal(),
        Some(DropReason::Invalid(Invalid::MissingEventId))
    );
    assert!(ev
        .outcomes
        .iter()
        .all(|(_, o)| *o == Outcome::Drop(DropReason::Invalid(Invalid::MissingEventId))));

    let mut e = event(EventType::Sms, Direction::Originating);
    e.event_time = None;
    assert_eq!(
        policy.apply(&e, now()).refusal(),
        Some(DropReason::Invalid(Invalid::MissingEventTime))
    );

    for (seconds, nanos) in [
        (i64::MAX, 0),
        (-62_135_596_801, 0),
        (0, -1),
        (0, 1_000_000_000),
    ] {
        e.event_time = Some(schema::Timestamp { seconds, nanos });
        assert_eq!(
            policy.apply(&e, now()).refusal(),
            Some(DropReason::Invalid(Invalid::EventTimeOutOfRange)),
            "{seconds} {nanos}"
        );
    }
}

#[test]
fn answer_and_release_times_out_of_range_refuse_the_event_whatever_is_kept() {
    let policy = Policy::legal_maximum();
    let bad = [
        (253_402_300_800, 0),
        (-62_135_596_801, 0),
        (1_795_860_000, -1),
        (1_795_860_000, 1_000_000_000),
    ];
    for (seconds, nanos) in bad {
        let ts = Some(schema::Timestamp { seconds, nanos });
        let mut e = event(EventType::VoiceCall, Direction::Originating);
        e.timing.get_or_insert_with(Default::default).answer_time = ts;
        assert_eq!(
            policy.apply(&e, now()).refusal(),
            Some(DropReason::Invalid(Invalid::AnswerTimeOutOfRange)),
            "{seconds} {nanos}"
        );
        let mut e = event(EventType::VoiceCall, Direction::Originating);
        e.timing.get_or_insert_with(Default::default).release_time = ts;
        let ev = policy.apply(&e, now());
        assert_eq!(
            ev.refusal(),
            Some(DropReason::Invalid(Invalid::ReleaseTimeOutOfRange)),
            "{seconds} {nanos}"
        );
        assert!(ev
            .refusal()
            .unwrap()
            .message()
            .contains("timing.release_time"));
    }
    // The edges of the range are kept.
    for (seconds, nanos) in [(253_402_300_799, 999_999_999), (-62_135_596_800, 0)] {
        let mut e = event(EventType::VoiceCall, Direction::Originating);
        e.timing.get_or_insert_with(Default::default).answer_time =
            Some(schema::Timestamp { seconds, nanos });
        assert_eq!(policy.apply(&e, now()).refusal(), None, "{seconds} {nanos}");
    }
}

#[test]
fn an_event_type_or_direction_the_schema_does_not_know_refuses_the_event() {
    let policy = Policy::legal_maximum();
    let mut e = event(EventType::VoiceCall, Direction::Originating);
    e.event_type = 99;
    assert_eq!(
        policy.apply(&e, now()).refusal(),
        Some(DropReason::Invalid(Invalid::UnknownEventType))
    );
    let mut e = event(EventType::VoiceCall, Direction::Originating);
    e.direction = 42;
    assert_eq!(
        policy.apply(&e, now()).refusal(),
        Some(DropReason::Invalid(Invalid::UnknownDirection))
    );
    // Unset (0) is a value the schema knows.
    let mut e = event(EventType::VoiceCall, Direction::Originating);
    e.direction = 0;
    assert_eq!(policy.apply(&e, now()).refusal(), None);
}

#[test]
fn an_expiry_after_the_year_9999_refuses_the_event() {
    // A clock set in 9999: the billing expiry (12 months) would be in year 10000, which
    // no `Timestamp` carries; the security one (3 months) still fits.
    let policy = Policy::legal_maximum();
    let now = chrono::Utc.with_ymd_and_hms(9999, 6, 1, 0, 0, 0).unwrap();
    let mut e = event(EventType::VoiceCall, Direction::Originating);
    e.event_time = Some(schema::to_timestamp(now));
    let ev = policy.apply(&e, now);
    assert_eq!(
        ev.refusal(),
        Some(DropReason::Invalid(Invalid::ExpiryOutOfRange))
    );
    e.event_time = Some(schema::to_timestamp(
        chrono::Utc.with_ymd_and_hms(9998, 12, 1, 0, 0, 0).unwrap(),
    ));
    assert_eq!(policy.apply(&e, now).refusal(), None);
}

#[test]
fn future_event_times_beyond_the_skew_are_refused() {
    let policy = Policy::legal_maximum();
    let mut e = event(EventType::VoiceCall, Direction::Originating);
    e.event_time = Some(schema::to_timestamp(now() + Duration::minutes(5)));
    assert_eq!(policy.apply(&e, now()).refusal(), None, "at the skew limit");
    e.event_time = Some(schema::to_timestamp(
        now() + Duration::minutes(5) + Duration::milliseconds(1),
    ));
    let ev = policy.apply(&e, now());
    assert_eq!(ev.refusal(), Some(DropReason::FutureEventTime));
    assert!(ev.refusal().unwrap().is_refusal());
}

#[test]
fn expired_records_are_dropped_per_purpose() {
    let policy = Policy::legal_maximum();
    let mut e = event(EventType::VoiceCall, Direction::Originating);
    // 100 days old: past three months, within a year.
    e.event_time = Some(schema::to_timestamp(now() - Duration::days(100)));
    assert_eq!(
        dropped(&policy, &e, Purpose::Security),
        Some(DropReason::Expired)
    );
    assert!(forwarded(&policy, &e, Purpose::Billing).is_some());
    assert_eq!(
        policy.apply(&e, now()).refusal(),
        None,
        "expiry is not a refusal"
    );
    // Exactly at the limit: expired.
    e.event_time = Some(schema::to_timestamp(now() - Duration::days(365)));
    assert_eq!(
        dropped(&policy, &e, Purpose::Billing),
        Some(DropReason::Expired)
    );
}

#[test]
fn the_output_record_carries_key_timestamp_and_retention() {
    let policy = Policy::legal_maximum();
    let t = Utc.with_ymd_and_hms(2021, 10, 15, 10, 0, 0).unwrap() + Duration::milliseconds(123);
    let mut e = event(EventType::VoiceCall, Direction::Originating);
    e.event_time = Some(schema::to_timestamp(t));
    e.retention = Some(Retention {
        legal_basis: "forged".into(),
        ..Default::default()
    });
    let b = forwarded(&policy, &e, Purpose::Billing).unwrap();
    assert_eq!(b.key, e.event_id);
    assert_eq!(b.timestamp_ms, t.timestamp_millis());
    assert_eq!(
        b.expires_at,
        Utc.with_ymd_and_hms(2022, 10, 15, 10, 0, 0).unwrap() + Duration::milliseconds(123)
    );
    assert_eq!(b.legal_basis, "CPCE R10-14 III");
    let r = b.event.retention.unwrap();
    assert_eq!(r.purpose, Purpose::Billing as i32);
    assert_eq!(r.legal_basis, "CPCE R10-14 III");
    assert_eq!(r.policy_version, "R10-14/2021");
    assert_eq!(r.expires_at, Some(schema::to_timestamp(b.expires_at)));
    let s = forwarded(&policy, &e, Purpose::Security).unwrap();
    assert_eq!(
        s.expires_at,
        // Paris: 12:00 CEST → 12:00 CET (11:00Z); UTC's reading comes first.
        Utc.with_ymd_and_hms(2022, 1, 15, 10, 0, 0).unwrap() + Duration::milliseconds(123)
    );
    assert_eq!(s.event.retention.unwrap().legal_basis, "CPCE R10-14 IV");
}

#[test]
fn a_shorter_ttl_shortens_expiry() {
    let v = Version::IN_FORCE;
    let policy = policy_of(
        v,
        vec![PurposePolicy::new(
            v,
            SECURITY,
            Ttl::Fixed(Duration::days(30)),
            vec![],
            vec![],
        )],
    );
    let e = event(EventType::VoiceCall, Direction::Originating);
    let r = forwarded(&policy, &e, Purpose::Security).unwrap();
    assert_eq!(
        r.expires_at,
        now() - Duration::hours(1) + Duration::days(30)
    );
}

#[test]
fn operator_removals_narrow_the_output() {
    let v = Version::R2012;
    let removed = vec![v.field("terminal.imei").unwrap()]
        .into_iter()
        .chain(v.select("location"))
        .collect();
    let kept = vec![v.field("terminal.imeisv").unwrap()];
    let policy = policy_of(
        v,
        vec![PurposePolicy::new(
            v,
            BILLING,
            Ttl::Months(12),
            removed,
            kept,
        )],
    );
    let e = event(EventType::VoiceCall, Direction::Originating);
    let out = forwarded(&policy, &e, Purpose::Billing).unwrap().event;
    assert!(!v.field("terminal.imei").unwrap().is_present(&out));
    assert!(v.field("terminal.imeisv").unwrap().is_present(&out));
    assert!(out.location.is_none());
    assert!(v.field("charging.amount_minor").unwrap().is_present(&out));
}

#[test]
fn content_never_reaches_an_output() {
    let policy = Policy::legal_maximum();
    for t in TYPES {
        let mut e = event(t, Direction::Originating);
        e.content = Some(Content {
            sms_text: "secret text".into(),
            ussd_string: "*#06#".into(),
            url: "https://x.example/".into(),
            dns_query: "x.example".into(),
            sni: "x.example".into(),
        });
        for (_, o) in policy.apply(&e, now()).outcomes {
            if let Outcome::Forward(r) = o {
                assert!(r.event.content.is_none());
                let bytes = prost::Message::encode_to_vec(&r.event);
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains("secret text") && !text.contains("x.example"));
            }
        }
    }
}

#[test]
fn unknown_protobuf_fields_never_reach_an_output() {
    let policy = Policy::legal_maximum();
    let e = event(EventType::VoiceCall, Direction::Originating);
    let mut bytes = prost::Message::encode_to_vec(&e);
    // Field 99, length-delimited, holding a marker: unknown to this schema.
    let marker = b"UNKNOWN-FIELD-MARKER";
    bytes.extend_from_slice(&[0x9a, 0x06, marker.len() as u8]);
    bytes.extend_from_slice(marker);
    let (decoded, _) = crate::decode::decode(&bytes, crate::decode::InputFormat::Protobuf).unwrap();
    for (_, o) in policy.apply(&decoded, now()).outcomes {
        let Outcome::Forward(r) = o else {
            panic!("forwarded")
        };
        let out = prost::Message::encode_to_vec(&r.event);
        assert!(!out.windows(marker.len()).any(|w| w == marker));
    }
}

#[test]
fn the_policy_is_pure_given_now() {
    let policy = Policy::legal_maximum();
    let e = event(EventType::DataSession, Direction::None);
    assert_eq!(policy.apply(&e, now()), policy.apply(&e, now()));
}

#[test]
fn apply_owned_gives_the_same_outcomes_as_apply() {
    let policy = Policy::legal_maximum();
    let mut g = Generator::new(9, now());
    let mut events: Vec<CdrEvent> = (0..3000).map(|_| g.next_event()).collect();
    for t in TYPES {
        for d in DIRECTIONS {
            events.push(event(t, d));
        }
    }
    let v = Version::IN_FORCE;
    let security_only = policy_of(
        v,
        vec![PurposePolicy::new(
            v,
            SECURITY,
            Ttl::Months(3),
            vec![],
            vec![],
        )],
    );
    let mut forwarded_twice = 0;
    for e in &events {
        for p in [&policy, &security_only] {
            let borrowed = p.apply(e, now());
            assert_eq!(p.apply_owned(e.clone(), now()), borrowed, "{}", e.event_id);
            if borrowed
                .outcomes
                .iter()
                .filter(|(_, o)| matches!(o, Outcome::Forward(_)))
                .count()
                == 2
            {
                forwarded_twice += 1;
            }
        }
    }
    assert!(
        forwarded_twice > 1000,
        "both purposes forward often: {forwarded_twice}"
    );
}

/// R10-14/2012 covers communications up to 20 October 2021: from the start of 21 October
/// (in UTC or in the legal time zone, whichever comes first) every purpose drops the event
/// (`not_in_force`), counted, not dead-lettered. The text in force has no such end.
#[test]
fn the_2012_text_takes_no_communication_from_21_october_2021_on() {
    let cayenne = LegalTime::parse("America/Cayenne").unwrap();
    for (legal, start) in [
        // CEST, UTC+2: Paris's midnight comes first.
        (LegalTime::PARIS, "2021-10-20T22:00:00Z"),
        (LegalTime::UTC, "2021-10-21T00:00:00Z"),
        // UTC-3: UTC's midnight comes first.
        (cayenne, "2021-10-21T00:00:00Z"),
    ] {
        let start: DateTime<Utc> = start.parse().unwrap();
        let mut p2012 = Policy::legal_maximum_of(Version::R2012);
        p2012.legal_time = legal;
        let mut p2021 = Policy::legal_maximum_of(Version::R2021);
        p2021.legal_time = legal;
        assert_eq!(p2012.in_force_until(), Some(start), "{}", legal.name());
        assert_eq!(p2021.in_force_until(), None);
        let now = start + Duration::days(30);
        for (t, applies) in [
            (start - Duration::nanoseconds(1), true),
            (start, false),
            (now - Duration::hours(1), false),
        ] {
            let mut e = event(EventType::VoiceCall, Direction::Originating);
            e.event_time = Some(schema::to_timestamp(t));
            let outcomes = p2012.apply(&e, now).outcomes;
            assert_eq!(outcomes.len(), 2);
            for (purpose, o) in outcomes {
                match o {
                    Outcome::Forward(r) => {
                        assert!(applies, "{} {t} {purpose:?}", legal.name());
                        assert_eq!(r.policy_version, "R10-14/2012");
                    }
                    Outcome::Drop(r) => {
                        assert!(!applies, "{} {t} {purpose:?}: {r:?}", legal.name());
                        assert_eq!(r, DropReason::NotInForce);
                    }
                }
            }
            // The text in force takes the same event whenever it is.
            let outcomes = p2021.apply(&e, now).outcomes;
            assert!(outcomes
                .iter()
                .all(|(_, o)| matches!(o, Outcome::Forward(_))));
        }
    }
    assert_eq!(DropReason::NotInForce.as_str(), "not_in_force");
    assert!(!DropReason::NotInForce.is_refusal());
}
