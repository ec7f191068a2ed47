//! The privacy corpus: recognisable values (MSISDNs, IMSI, IMEI, IP addresses, SMS text,
//! URLs, a vendor field, a password) put into events, so that a test can search any
//! output — logs, metrics, records, reports — for every one of them.

use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::schema::{CdrEvent, Direction, EventType};
use chrono::{DateTime, Utc};

/// Field path → a value recognisable anywhere (in bytes, logs or labels).
pub const CANARIES: &[(&str, &str)] = &[
    ("served.imsi", "208159876543210"),
    ("served.msisdn", "+33611223344"),
    ("served.account_id", "ACCT-CANARY-7731"),
    ("served.ue_ip", "198.51.100.23"),
    ("terminal.imei", "359881111222233"),
    ("terminal.imeisv", "3598811112222301"),
    ("calling.number", "+33655667788"),
    ("calling.ip", "203.0.113.45"),
    ("called.number", "+33699887766"),
    ("called.ip", "203.0.113.99"),
    ("location.cell_id", "CELL-CANARY-991"),
    ("content.sms_text", "canary sms: meet me at the usual place"),
    ("content.ussd_string", "*#06#canary#"),
    ("content.url", "https://canary.example/private/path"),
    ("content.dns_query", "canary-dns.example"),
    ("content.sni", "canary-sni.example"),
];
pub const VENDOR: &str = "vendor-canary-secret";
pub const PASSWORD: &str = "canary-password-0xC0FFEE";

pub fn canary(path: &str) -> &'static str {
    CANARIES.iter().find(|(p, _)| *p == path).unwrap().1
}

/// Puts the canaries into an event.
pub fn fill(e: &mut CdrEvent) {
    let served = e.served.get_or_insert_with(Default::default);
    served.imsi = canary("served.imsi").into();
    served.msisdn = canary("served.msisdn").into();
    served.account_id = canary("served.account_id").into();
    served.ue_ip = canary("served.ue_ip").into();
    let terminal = e.terminal.get_or_insert_with(Default::default);
    terminal.imei = canary("terminal.imei").into();
    terminal.imeisv = canary("terminal.imeisv").into();
    let calling = e.calling.get_or_insert_with(Default::default);
    calling.number = canary("calling.number").into();
    calling.ip = canary("calling.ip").into();
    let called = e.called.get_or_insert_with(Default::default);
    called.number = canary("called.number").into();
    called.ip = canary("called.ip").into();
    e.location.get_or_insert_with(Default::default).cell_id = canary("location.cell_id").into();
    let content = e.content.get_or_insert_with(Default::default);
    content.sms_text = canary("content.sms_text").into();
    content.ussd_string = canary("content.ussd_string").into();
    content.url = canary("content.url").into();
    content.dns_query = canary("content.dns_query").into();
    content.sni = canary("content.sni").into();
    e.extensions.insert("vendor.canary".into(), VENDOR.into());
}

/// One event of every type and direction, chargeable, two hours old, full of canaries.
pub fn events(g: &mut Generator, now: DateTime<Utc>) -> Vec<CdrEvent> {
    let mut events = Vec::new();
    for event_type in [
        EventType::VoiceCall,
        EventType::Sms,
        EventType::DataSession,
        EventType::Signalling,
        EventType::SupplementaryService,
    ] {
        for direction in [
            Direction::Originating,
            Direction::Terminating,
            Direction::Forwarded,
            Direction::None,
        ] {
            let mut e = g.full_event(event_type, direction, now - chrono::Duration::hours(2));
            e.charging.get_or_insert_with(Default::default).chargeable = true;
            fill(&mut e);
            events.push(e);
        }
    }
    events
}
