//! The field table of CPCE R10-14 (version `R10-14/2012`), expressed once, as data.
//!
//! Both the filter ([`super::Policy::apply`]) and `policy show` read this table, so what
//! the compliance team reads is what the code does. Each row is one leaf field of
//! `CdrEvent`, its category in R10-13 I / R10-14, and one rule per column with the legal
//! reference that justifies keeping or removing it.
//!
//! The filter builds every output record by *copying* the fields a row allows into an
//! empty event (an allowlist): a field that has no row here — a new schema field, an
//! unknown field, the input key or headers — can never reach an output.

use crate::schema::CdrEvent;

/// The version name of this table; a later text gets a table of its own beside it.
pub const POLICY_VERSION: &str = "R10-14/2012";

/// What a column does with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Keep,
    /// Kept only when the record is about the calling party (direction = ORIGINATING):
    /// reading 2, "origin vs user in billing".
    KeepIfOriginating,
    Remove,
}

impl Rule {
    pub fn symbol(self) -> &'static str {
        match self {
            Rule::Keep => "Y",
            Rule::KeepIfOriginating => "Y if ORIGINATING",
            Rule::Remove => "N",
        }
    }
}

/// The columns of the table: billing splits by service (R10-14 II adds data for
/// telephony only), security is one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    BillingTelephony,
    BillingOther,
    Security,
}

impl Column {
    pub const ALL: [Column; 3] = [
        Column::BillingTelephony,
        Column::BillingOther,
        Column::Security,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::BillingTelephony => "Billing, telephony",
            Column::BillingOther => "Billing, other",
            Column::Security => "Security",
        }
    }
}

/// A cell: the rule and the text that justifies it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Cell {
    pub rule: Rule,
    pub basis: &'static str,
}

/// One row of the table.
#[derive(Clone, Copy)]
pub struct FieldSpec {
    /// Dotted path, as in the contract (`served.imsi`).
    pub path: &'static str,
    /// Category in R10-13 I / R10-14 (`a (user)`, `b`, `content`, ...).
    pub category: &'static str,
    pub billing_telephony: Cell,
    pub billing_other: Cell,
    pub security: Cell,
    /// Required by the contract: an operator may not remove it.
    pub required: bool,
    pub(crate) access: Access,
}

impl FieldSpec {
    pub fn cell(&self, column: Column) -> Cell {
        match column {
            Column::BillingTelephony => self.billing_telephony,
            Column::BillingOther => self.billing_other,
            Column::Security => self.security,
        }
    }

    /// The field group (`served`, `network`, ...) used in metrics labels.
    pub fn group(&self) -> &'static str {
        self.path.split('.').next().unwrap_or(self.path)
    }
}

impl std::fmt::Debug for FieldSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldSpec")
            .field("path", &self.path)
            .finish()
    }
}

impl FieldSpec {
    /// True when `event` holds a non-default value for this field.
    pub fn is_present(&self, event: &CdrEvent) -> bool {
        (self.access.present)(event)
    }
}

const fn keep(basis: &'static str) -> Cell {
    Cell {
        rule: Rule::Keep,
        basis,
    }
}
const fn origin(basis: &'static str) -> Cell {
    Cell {
        rule: Rule::KeepIfOriginating,
        basis,
    }
}
const fn remove(basis: &'static str) -> Cell {
    Cell {
        rule: Rule::Remove,
        basis,
    }
}

/// How a row reads and copies its field.
#[derive(Clone, Copy)]
pub(crate) struct Access {
    /// Copies the field from the source into the output event.
    pub(crate) copy: fn(&CdrEvent, &mut CdrEvent),
    /// Moves the field from the source into the output event (the source keeps a
    /// default): for the last purpose of an event, no copy of its strings.
    pub(crate) take: fn(&mut CdrEvent, &mut CdrEvent),
    /// True when the event holds a non-default value for the field.
    pub(crate) present: fn(&CdrEvent) -> bool,
}

/// A top-level field.
macro_rules! top {
    ($f:ident) => {
        Access {
            copy: |s: &CdrEvent, d: &mut CdrEvent| d.$f = s.$f.clone(),
            take: |s: &mut CdrEvent, d: &mut CdrEvent| d.$f = std::mem::take(&mut s.$f),
            present: |s: &CdrEvent| is_set(&s.$f),
        }
    };
}

/// A field of a nested message: the sub-message is created in the output only when the
/// source holds a non-default value, so an output never carries empty shells.
macro_rules! nested {
    ($m:ident . $f:ident) => {
        Access {
            copy: |s: &CdrEvent, d: &mut CdrEvent| {
                if let Some(src) = &s.$m {
                    if is_set(&src.$f) {
                        d.$m.get_or_insert_with(Default::default).$f = src.$f.clone();
                    }
                }
            },
            take: |s: &mut CdrEvent, d: &mut CdrEvent| {
                if let Some(src) = s.$m.as_mut() {
                    if is_set(&src.$f) {
                        d.$m.get_or_insert_with(Default::default).$f = std::mem::take(&mut src.$f);
                    }
                }
            },
            present: |s: &CdrEvent| s.$m.as_ref().is_some_and(|m| is_set(&m.$f)),
        }
    };
}

/// A field of each element of `supplementary_services`.
macro_rules! each_service {
    ($f:ident) => {
        Access {
            copy: |s: &CdrEvent, d: &mut CdrEvent| {
                if s.supplementary_services.is_empty() {
                    return;
                }
                d.supplementary_services
                    .resize_with(s.supplementary_services.len(), Default::default);
                for (src, dst) in s
                    .supplementary_services
                    .iter()
                    .zip(d.supplementary_services.iter_mut())
                {
                    dst.$f = src.$f.clone();
                }
            },
            take: |s: &mut CdrEvent, d: &mut CdrEvent| {
                if s.supplementary_services.is_empty() {
                    return;
                }
                d.supplementary_services
                    .resize_with(s.supplementary_services.len(), Default::default);
                for (src, dst) in s
                    .supplementary_services
                    .iter_mut()
                    .zip(d.supplementary_services.iter_mut())
                {
                    dst.$f = std::mem::take(&mut src.$f);
                }
            },
            present: |s: &CdrEvent| s.supplementary_services.iter().any(|x| is_set(&x.$f)),
        }
    };
}

/// A field no purpose keeps: there is no code that could copy it.
macro_rules! never {
    ($f:ident) => {
        Access {
            copy: copy_nothing,
            take: take_nothing,
            present: |s: &CdrEvent| is_set(&s.$f),
        }
    };
    ($m:ident . $f:ident) => {
        Access {
            copy: copy_nothing,
            take: take_nothing,
            present: |s: &CdrEvent| s.$m.as_ref().is_some_and(|m| is_set(&m.$f)),
        }
    };
}

fn copy_nothing(_: &CdrEvent, _: &mut CdrEvent) {}
fn take_nothing(_: &mut CdrEvent, _: &mut CdrEvent) {}

/// True for a non-default (proto3: present) value.
fn is_set<T: Default + PartialEq>(v: &T) -> bool {
    *v != T::default()
}

const C_BILL: &str = "R10-14 I, III (R10-13 I c: date, time, duration, technical data)";
const C_SEC: &str = "R10-14 IV b (technical data, date, time, duration)";
const USER_BILL: &str = "R10-14 I (data identifying the user)";
const USER_SEC: &str = "R10-14 IV a, c (origin or recipient of the communication)";
const ACCOUNT_SEC: &str = "R10-14 IV: the billing account is neither origin nor recipient";
const TERM_BILL: &str = "R10-14 I (R10-13 I b: terminal equipment)";
const TERM_SEC: &str = "R10-14 IV: terminal identity is not listed";
const ORIG_BILL: &str =
    "R10-14 I (the user) — reading 2: a third party who called the user is not kept for billing";
const ORIG_SEC: &str = "R10-14 IV a (origin of the communication)";
const RCPT_TEL: &str = "R10-14 II (recipients, telephony)";
const RCPT_OTHER: &str = "R10-14 I: recipients are allowed for telephony only (II)";
const RCPT_SEC: &str = "R10-14 IV c (recipients of the communication)";
const SS_BILL: &str = "R10-14 I (R10-13 I d: supplementary services and their providers)";
const SS_SEC: &str = "R10-14 IV d (supplementary services and their providers)";
const LOC_TEL: &str = "R10-14 II (location of the communication, telephony)";
const LOC_OTHER: &str = "R10-14 I: location is allowed for telephony only (II)";
const LOC_SEC: &str = "R10-14 IV: location is not listed";
const BILL_TEL: &str = "R10-14 II (data that establishes the bill, telephony)";
const BILL_OTHER: &str = "R10-14 I: bill data is allowed for telephony only (II)";
const BILL_SEC: &str = "R10-14 IV: bill data is not listed";
const RG_SEC: &str = "R10-14 IV: rating is bill data, not listed";
const CONTENT: &str = "L34-1: never the content of a communication or what was consulted";
const UNKNOWN: &str = "L34-1: not in the table; unknown and vendor fields are never kept";
const ROUTING: &str = "routing only: narrows the purposes, then removed";

macro_rules! row {
    ($path:literal, $cat:literal, $bt:expr, $bo:expr, $sec:expr, $copy:expr) => {
        row!($path, $cat, $bt, $bo, $sec, $copy, false)
    };
    ($path:literal, $cat:literal, $bt:expr, $bo:expr, $sec:expr, $access:expr, $req:expr) => {
        FieldSpec {
            path: $path,
            category: $cat,
            billing_telephony: $bt,
            billing_other: $bo,
            security: $sec,
            required: $req,
            access: $access,
        }
    };
}

/// The table. Order is the order of the contract.
#[rustfmt::skip]
pub static FIELDS: &[FieldSpec] = &[
    row!("event_id", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(event_id), true),
    row!("event_time", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(event_time), true),
    row!("event_type", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(event_type), true),
    row!("direction", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), top!(direction)),
    row!("served.imsi", "a (user)", keep(USER_BILL), keep(USER_BILL), keep(USER_SEC), nested!(served.imsi)),
    row!("served.msisdn", "a (user)", keep(USER_BILL), keep(USER_BILL), keep(USER_SEC), nested!(served.msisdn)),
    row!("served.ue_ip", "a (user)", keep(USER_BILL), keep(USER_BILL), keep(USER_SEC), nested!(served.ue_ip)),
    row!("served.account_id", "a (user)", keep(USER_BILL), keep(USER_BILL), remove(ACCOUNT_SEC), nested!(served.account_id)),
    row!("terminal.imei", "b", keep(TERM_BILL), keep(TERM_BILL), remove(TERM_SEC), nested!(terminal.imei)),
    row!("terminal.imeisv", "b", keep(TERM_BILL), keep(TERM_BILL), remove(TERM_SEC), nested!(terminal.imeisv)),
    row!("calling.number", "origin", origin(ORIG_BILL), origin(ORIG_BILL), keep(ORIG_SEC), nested!(calling.number)),
    row!("calling.ip", "origin", origin(ORIG_BILL), origin(ORIG_BILL), keep(ORIG_SEC), nested!(calling.ip)),
    row!("calling.port", "origin", origin(ORIG_BILL), origin(ORIG_BILL), keep(ORIG_SEC), nested!(calling.port)),
    row!("called.number", "e (recipient)", keep(RCPT_TEL), remove(RCPT_OTHER), keep(RCPT_SEC), nested!(called.number)),
    row!("called.ip", "e (recipient)", keep(RCPT_TEL), remove(RCPT_OTHER), keep(RCPT_SEC), nested!(called.ip)),
    row!("called.port", "e (recipient)", keep(RCPT_TEL), remove(RCPT_OTHER), keep(RCPT_SEC), nested!(called.port)),
    row!("timing.answer_time", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(timing.answer_time)),
    row!("timing.release_time", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(timing.release_time)),
    row!("timing.duration_ms", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(timing.duration_ms)),
    row!("network.recording_entity", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.recording_entity)),
    row!("network.cause_for_term", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.cause_for_term)),
    row!("network.rat_type", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.rat_type)),
    row!("network.basic_service", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.basic_service)),
    row!("network.call_reference", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.call_reference)),
    row!("network.charging_id", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.charging_id)),
    row!("network.apn", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.apn)),
    row!("network.bytes_uplink", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.bytes_uplink)),
    row!("network.bytes_downlink", "c", keep(C_BILL), keep(C_BILL), keep(C_SEC), nested!(network.bytes_downlink)),
    row!("supplementary_services.code", "d", keep(SS_BILL), keep(SS_BILL), keep(SS_SEC), each_service!(code)),
    row!("supplementary_services.provider", "d", keep(SS_BILL), keep(SS_BILL), keep(SS_SEC), each_service!(provider)),
    row!("location.mcc", "location", keep(LOC_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.mcc)),
    row!("location.mnc", "location", keep(LOC_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.mnc)),
    row!("location.lac", "location", keep(LOC_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.lac)),
    row!("location.cell_id", "location", keep(LOC_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.cell_id)),
    row!("location.latitude", "location", keep(LOC_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.latitude)),
    row!("location.longitude", "location", keep(LOC_TEL), remove(LOC_OTHER), remove(LOC_SEC), nested!(location.longitude)),
    row!("charging.chargeable", "bill data", keep(BILL_TEL), remove(BILL_OTHER), remove(BILL_SEC), nested!(charging.chargeable)),
    row!("charging.tariff_class", "bill data", keep(BILL_TEL), remove(BILL_OTHER), remove(BILL_SEC), nested!(charging.tariff_class)),
    row!("charging.amount_minor", "bill data", keep(BILL_TEL), remove(BILL_OTHER), remove(BILL_SEC), nested!(charging.amount_minor)),
    row!("charging.currency", "bill data", keep(BILL_TEL), remove(BILL_OTHER), remove(BILL_SEC), nested!(charging.currency)),
    row!("charging.rating_group", "c/d", keep(SS_BILL), keep(SS_BILL), remove(RG_SEC), nested!(charging.rating_group)),
    row!("content.sms_text", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.sms_text)),
    row!("content.ussd_string", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.ussd_string)),
    row!("content.url", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.url)),
    row!("content.dns_query", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.dns_query)),
    row!("content.sni", "content", remove(CONTENT), remove(CONTENT), remove(CONTENT), never!(content.sni)),
    row!("extensions", "unknown", remove(UNKNOWN), remove(UNKNOWN), remove(UNKNOWN), never!(extensions)),
    row!("declared_purposes", "routing", remove(ROUTING), remove(ROUTING), remove(ROUTING), never!(declared_purposes)),
];

/// Looks a row up by its exact path.
pub fn field(path: &str) -> Option<&'static FieldSpec> {
    FIELDS.iter().find(|f| f.path == path)
}

/// The rows a configuration name selects: an exact path (`terminal.imei`) or a whole
/// group (`location`). Empty when the name matches nothing.
pub fn select(name: &str) -> Vec<&'static FieldSpec> {
    FIELDS
        .iter()
        .filter(|f| f.path == name || f.group() == name)
        .collect()
}
