//! The policy, row by row and rule by rule.

use super::*;
use crate::gen::Generator;
use crate::schema::{Charging, Content};
use chrono::TimeZone;
use table::Column;

const TYPES: [EventType; 5] = [
    EventType::VoiceCall,
    EventType::Sms,
    EventType::DataSession,
    EventType::Signalling,
    EventType::SupplementaryService,
];
const DIRECTIONS: [Direction; 4] = [
    Direction::Originating,
    Direction::Terminating,
    Direction::Forwarded,
    Direction::None,
];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

fn event(t: EventType, d: Direction) -> CdrEvent {
    let mut e = Generator::new(42, now()).full_event(t, d, now() - Duration::hours(1));
    e.charging.as_mut().unwrap().chargeable = true;
    e.declared_purposes = vec![];
    e.content = Some(Content {
        sms_text: "sms".into(),
        ussd_string: "*#06#".into(),
        url: "https://example.org/".into(),
        dns_query: "example.org".into(),
        sni: "example.org".into(),
    });
    e
}

fn forwarded(policy: &Policy, e: &CdrEvent, purpose: Purpose) -> Option<OutputRecord> {
    policy
        .apply(e, now())
        .outcomes
        .into_iter()
        .find(|(p, _)| *p == purpose)
        .and_then(|(_, o)| match o {
            Outcome::Forward(r) => Some(r),
            Outcome::Drop(_) => None,
        })
}

fn dropped(policy: &Policy, e: &CdrEvent, purpose: Purpose) -> Option<DropReason> {
    policy
        .apply(e, now())
        .outcomes
        .into_iter()
        .find(|(p, _)| *p == purpose)
        .and_then(|(_, o)| match o {
            Outcome::Drop(r) => Some(r),
            Outcome::Forward(_) => None,
        })
}

/// The column an event type falls in for billing, per the routing rule.
fn billing_column(t: EventType) -> Option<Column> {
    match t {
        EventType::VoiceCall | EventType::Sms => Some(Column::BillingTelephony),
        EventType::DataSession | EventType::SupplementaryService => Some(Column::BillingOther),
        _ => None,
    }
}

#[test]
fn every_row_every_type_every_direction_every_purpose() {
    let policy = Policy::legal_maximum();
    let mut checked = 0;
    for t in TYPES {
        for d in DIRECTIONS {
            let e = event(t, d);
            for purpose in [Purpose::Billing, Purpose::Security] {
                let column = match purpose {
                    Purpose::Security => Some(Column::Security),
                    _ => billing_column(t),
                };
                let Some(column) = column else {
                    assert_eq!(
                        dropped(&policy, &e, purpose),
                        Some(DropReason::NotBillable),
                        "{t:?} {d:?} {purpose:?}"
                    );
                    continue;
                };
                let out = forwarded(&policy, &e, purpose)
                    .unwrap_or_else(|| panic!("{t:?} {d:?} {purpose:?} must be forwarded"));
                for f in FIELDS.iter().filter(|f| f.path != "declared_purposes") {
                    let expected = match f.cell(column).rule {
                        Rule::Keep => true,
                        Rule::KeepIfOriginating => d == Direction::Originating,
                        Rule::Remove => false,
                    };
                    assert!(f.is_present(&e), "fixture lacks {}", f.path);
                    assert_eq!(
                        f.is_present(&out.event),
                        expected,
                        "{} for {t:?} {d:?} {purpose:?} ({column:?})",
                        f.path
                    );
                    checked += 1;
                }
                assert!(out.event.content.is_none());
                assert!(out.event.extensions.is_empty());
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}

/// The table's rows, as the reference describes them, spelled out once more by hand.
#[test]
fn the_table_matches_the_reference() {
    use Rule::{Keep as Y, KeepIfOriginating as O, Remove as N};
    let expect: &[(&str, [Rule; 3])] = &[
        ("event_id", [Y, Y, Y]),
        ("direction", [Y, Y, Y]),
        ("served.msisdn", [Y, Y, Y]),
        ("served.account_id", [Y, Y, N]),
        ("terminal.imei", [Y, Y, N]),
        ("calling.number", [O, O, Y]),
        ("calling.ip", [O, O, Y]),
        ("called.number", [Y, N, Y]),
        ("called.port", [Y, N, Y]),
        ("timing.duration_ms", [Y, Y, Y]),
        ("network.apn", [Y, Y, Y]),
        ("supplementary_services.provider", [Y, Y, Y]),
        ("location.cell_id", [Y, N, N]),
        ("location.latitude", [Y, N, N]),
        ("charging.chargeable", [Y, N, N]),
        ("charging.amount_minor", [Y, N, N]),
        ("charging.rating_group", [Y, Y, N]),
        ("content.sms_text", [N, N, N]),
        ("content.sni", [N, N, N]),
        ("extensions", [N, N, N]),
        ("declared_purposes", [N, N, N]),
    ];
    for (path, rules) in expect {
        let f = table::field(path).unwrap_or_else(|| panic!("no row {path}"));
        for (c, r) in Column::ALL.iter().zip(rules) {
            assert_eq!(f.cell(*c).rule, *r, "{path} {c:?}");
        }
    }
    // Every content field and every group is in the table.
    for g in [
        "served",
        "terminal",
        "calling",
        "called",
        "timing",
        "network",
        "location",
        "charging",
        "content",
        "supplementary_services",
    ] {
        assert!(!table::select(g).is_empty(), "{g}");
    }
    assert_eq!(table::select("content").len(), 5);
    assert_eq!(table::select("network").len(), 9);
    assert_eq!(table::select("location").len(), 6);
}

#[test]
fn every_row_that_keeps_copies_and_every_legal_reference_is_named() {
    let e = event(EventType::VoiceCall, Direction::Originating);
    for f in FIELDS {
        let keeps = Column::ALL.iter().any(|c| f.cell(*c).rule != Rule::Remove);
        let mut out = CdrEvent::default();
        (f.access.copy)(&e, &mut out);
        assert_eq!(f.is_present(&out), keeps, "{}", f.path);
        for c in Column::ALL {
            let basis = f.cell(c).basis;
            assert!(
                basis.contains("R10-14") || basis.contains("L34-1") || basis.contains("routing"),
                "{} {c:?}: {basis}",
                f.path
            );
        }
    }
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
    let mut e = event(EventType::VoiceCall, Direction::Originating);
    e.event_type = 99; // unknown to this schema version
    assert_eq!(
        dropped(&policy, &e, Purpose::Billing),
        Some(DropReason::NotBillable)
    );
    assert!(forwarded(&policy, &e, Purpose::Security).is_some());
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
    let policy = Policy {
        purposes: vec![PurposePolicy::new(SECURITY, Ttl::Months(3), vec![])],
        max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
    };
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
    let t = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap() + Duration::milliseconds(123);
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
        Utc.with_ymd_and_hms(2027, 11, 28, 10, 0, 0).unwrap() + Duration::milliseconds(123)
    );
    assert_eq!(b.legal_basis, "CPCE R10-14 III");
    let r = b.event.retention.unwrap();
    assert_eq!(r.purpose, Purpose::Billing as i32);
    assert_eq!(r.legal_basis, "CPCE R10-14 III");
    assert_eq!(r.policy_version, "R10-14/2012");
    assert_eq!(r.expires_at, Some(schema::to_timestamp(b.expires_at)));
    let s = forwarded(&policy, &e, Purpose::Security).unwrap();
    assert_eq!(
        s.expires_at,
        Utc.with_ymd_and_hms(2027, 2, 28, 10, 0, 0).unwrap() + Duration::milliseconds(123)
    );
    assert_eq!(s.event.retention.unwrap().legal_basis, "CPCE R10-14 IV");
}

#[test]
fn a_shorter_ttl_shortens_expiry() {
    let policy = Policy {
        purposes: vec![PurposePolicy::new(
            SECURITY,
            Ttl::Fixed(Duration::days(30)),
            vec![],
        )],
        max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
    };
    let e = event(EventType::VoiceCall, Direction::Originating);
    let r = forwarded(&policy, &e, Purpose::Security).unwrap();
    assert_eq!(
        r.expires_at,
        now() - Duration::hours(1) + Duration::days(30)
    );
}

#[test]
fn operator_removals_narrow_the_output() {
    let removed = vec![table::field("terminal.imei").unwrap()]
        .into_iter()
        .chain(table::select("location"))
        .collect();
    let policy = Policy {
        purposes: vec![PurposePolicy::new(BILLING, Ttl::Months(12), removed)],
        max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
    };
    let e = event(EventType::VoiceCall, Direction::Originating);
    let out = forwarded(&policy, &e, Purpose::Billing).unwrap().event;
    assert!(!table::field("terminal.imei").unwrap().is_present(&out));
    assert!(table::field("terminal.imeisv").unwrap().is_present(&out));
    assert!(out.location.is_none());
    assert!(table::field("charging.amount_minor")
        .unwrap()
        .is_present(&out));
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
    let security_only = Policy {
        purposes: vec![PurposePolicy::new(SECURITY, Ttl::Months(3), vec![])],
        max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
    };
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
