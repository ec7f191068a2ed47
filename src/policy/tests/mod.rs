//! The policy, row by row and rule by rule.

use super::*;
use crate::gen::Generator;
use crate::schema::{Charging, Content, Direction, EventType};
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

/// Within the period of both versions' tables: R10-14/2012 covers communications before
/// 21 October 2021, R10-14/2021 has no start.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 10, 15, 12, 0, 0).unwrap()
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

/// A policy of one version with the given purposes, Paris legal time.
fn policy_of(version: Version, purposes: Vec<PurposePolicy>) -> Policy {
    Policy {
        version,
        legal_time: LegalTime::PARIS,
        purposes,
        max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
    }
}

/// Billing's verdict for a chargeable event, spelled out from the references by hand
/// (r10-14.md "Event routing"; r10-14-2021.md "The differences that matter", 1).
fn expected_billing(version: Version, t: EventType, d: Direction) -> Result<Column, DropReason> {
    let column = match t {
        EventType::VoiceCall | EventType::Sms | EventType::SupplementaryService => {
            Column::BillingTelephony
        }
        EventType::DataSession => Column::BillingOther,
        _ => return Err(DropReason::NotBillable),
    };
    if version == Version::R2021 {
        let originated = match d {
            Direction::Originating | Direction::Forwarded => true,
            Direction::Terminating => false,
            _ => matches!(t, EventType::DataSession | EventType::SupplementaryService),
        };
        if !originated {
            return Err(DropReason::NotOriginated);
        }
    }
    Ok(column)
}

/// "About the caller" (r10-14.md): ORIGINATING, or DATA_SESSION / SUPPLEMENTARY_SERVICE
/// with no direction.
fn expected_about_the_caller(t: EventType, d: Direction) -> bool {
    d == Direction::Originating
        || (d == Direction::None
            && matches!(t, EventType::DataSession | EventType::SupplementaryService))
}

#[test]
fn every_row_every_type_every_direction_every_purpose_in_both_versions() {
    let mut checked = 0;
    for version in Version::ALL {
        let policy = Policy::legal_maximum_of(version);
        for t in TYPES {
            for d in DIRECTIONS {
                let e = event(t, d);
                for purpose in [Purpose::Billing, Purpose::Security] {
                    let column = match purpose {
                        Purpose::Security => Ok(Column::Security),
                        _ => expected_billing(version, t, d),
                    };
                    let column = match column {
                        Ok(c) => c,
                        Err(reason) => {
                            assert_eq!(
                                dropped(&policy, &e, purpose),
                                Some(reason),
                                "{version} {t:?} {d:?} {purpose:?}"
                            );
                            continue;
                        }
                    };
                    let out = forwarded(&policy, &e, purpose).unwrap_or_else(|| {
                        panic!("{version} {t:?} {d:?} {purpose:?} must be forwarded")
                    });
                    for f in version
                        .fields()
                        .iter()
                        .filter(|f| f.path != "declared_purposes")
                    {
                        let expected = match f.cell(column).rule {
                            Rule::Keep => true,
                            Rule::KeepIfCaller => expected_about_the_caller(t, d),
                            Rule::Optional | Rule::Remove => false,
                        };
                        assert!(f.is_present(&e), "fixture lacks {}", f.path);
                        assert_eq!(
                            f.is_present(&out.event),
                            expected,
                            "{version}: {} for {t:?} {d:?} {purpose:?} ({column:?})",
                            f.path
                        );
                        checked += 1;
                    }
                    assert!(out.event.content.is_none());
                    assert!(out.event.extensions.is_empty());
                    assert_eq!(out.policy_version, version.name());
                }
            }
        }
    }
    assert!(checked > 2000, "{checked}");
}

/// The tables' rows, as the references describe them, spelled out once more by hand.
#[test]
fn the_tables_match_the_references() {
    use Rule::{Keep as Y, KeepIfCaller as C, Optional as O, Remove as N};
    // Rows the two versions agree on.
    let common: &[(&str, [Rule; 3])] = &[
        ("event_id", [Y, Y, Y]),
        ("direction", [Y, Y, Y]),
        ("served.imsi", [Y, Y, Y]),
        ("served.msisdn", [Y, Y, Y]),
        ("served.ue_ip", [Y, Y, Y]),
        ("served.account_id", [Y, Y, N]),
        ("terminal.imei", [Y, Y, N]),
        ("calling.number", [C, C, Y]),
        ("calling.ip", [C, C, Y]),
        ("calling.port", [C, C, Y]),
        ("called.number", [Y, N, Y]),
        ("called.port", [Y, N, Y]),
        ("timing.duration_ms", [Y, Y, Y]),
        ("network.apn", [Y, Y, Y]),
        ("supplementary_services.provider", [Y, Y, Y]),
        ("location.cell_id", [Y, N, N]),
        ("location.latitude", [O, N, N]),
        ("location.longitude", [O, N, N]),
        ("charging.chargeable", [Y, N, N]),
        ("charging.amount_minor", [Y, N, N]),
        // A technical characteristic (R10-13 I c / V 1°): kept wherever c is.
        ("charging.rating_group", [Y, Y, Y]),
        ("content.sms_text", [N, N, N]),
        ("content.sni", [N, N, N]),
        ("extensions", [N, N, N]),
        ("declared_purposes", [N, N, N]),
    ];
    let imeisv: [(Version, [Rule; 3]); 2] = [
        (Version::R2012, [O, O, N]),
        // R10-13 IV 3° lists the terminal identification number, not the software version.
        (Version::R2021, [N, N, N]),
    ];
    for (version, sv) in imeisv {
        for (path, rules) in common.iter().chain([("terminal.imeisv", sv)].iter()) {
            let f = version
                .field(path)
                .unwrap_or_else(|| panic!("{version}: no row {path}"));
            for (c, r) in Column::ALL.iter().zip(rules) {
                assert_eq!(f.cell(*c).rule, *r, "{version} {path} {c:?}");
            }
        }
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
            assert!(!version.select(g).is_empty(), "{g}");
        }
        assert_eq!(version.select("content").len(), 5);
        assert_eq!(version.select("network").len(), 9);
        assert_eq!(version.select("location").len(), 6);
    }
}

#[test]
fn both_tables_list_the_same_paths_in_the_same_order() {
    let a: Vec<_> = Version::R2012.fields().iter().map(|f| f.path).collect();
    let b: Vec<_> = Version::R2021.fields().iter().map(|f| f.path).collect();
    assert_eq!(a, b);
    assert_eq!(
        table::schema_rows()
            .iter()
            .map(|f| f.path)
            .collect::<Vec<_>>(),
        a
    );
    // Each version is its own table, with its own references.
    assert!(Version::R2021
        .fields()
        .iter()
        .any(|f| f.billing_telephony.basis.contains("R10-13 IV")));
    assert!(!Version::R2012
        .fields()
        .iter()
        .any(|f| f.billing_telephony.basis.contains("R10-13 IV")));
}

#[test]
fn the_rating_group_has_the_verdict_of_its_category_in_every_column() {
    for version in Version::ALL {
        let rg = version.field("charging.rating_group").unwrap();
        let same: Vec<_> = version
            .fields()
            .iter()
            .filter(|f| f.category == rg.category && f.path != rg.path)
            .collect();
        assert!(same.len() > 5, "{version}: {}", rg.category);
        for c in Column::ALL {
            for f in &same {
                assert_eq!(
                    f.cell(c).rule,
                    rg.cell(c).rule,
                    "{version} {} {c:?}",
                    f.path
                );
            }
        }
    }
}

#[test]
fn every_row_that_keeps_copies_and_every_legal_reference_is_named() {
    let e = event(EventType::VoiceCall, Direction::Originating);
    for version in Version::ALL {
        for f in version.fields() {
            let keeps = Column::ALL.iter().any(|c| f.cell(*c).rule.allows());
            let mut out = CdrEvent::default();
            (f.access.copy)(&e, &mut out);
            assert_eq!(f.is_present(&out), keeps, "{version} {}", f.path);
            for c in Column::ALL {
                let basis = f.cell(c).basis;
                assert!(
                    basis.contains("R10-14")
                        || basis.contains("L34-1")
                        || basis.contains("routing"),
                    "{version} {} {c:?}: {basis}",
                    f.path
                );
            }
        }
    }
}

mod outcomes;
