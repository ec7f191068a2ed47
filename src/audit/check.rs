//! [`Auditor::check`]: one record against the law, section by section — the contract's
//! headers, the value, the fields in the purpose's column, `retention`, the calendar
//! limit, the Kafka timestamp and the key. Each section appends its findings in that order.

use super::shape::{decode, leaf_paths, Decoded};
use super::{Auditor, Finding, Kind, RecordView, Timestamp, TopicContext};
use crate::encode::header;
use crate::policy::table::Rule;
use crate::policy::{self, about_the_caller, LegalPurpose, Version};
use crate::schema::{self, CdrEvent, Direction, Purpose};
use chrono::{DateTime, Utc};

impl Auditor {
    /// Checks one record; appends its findings to `out`. Returns how long after its
    /// `event_time` the record says it expires (`retention.expires_at`, else the
    /// `cdr-expires-at` header), when both can be read: the expiry distribution of
    /// `report`. A duration, never a value of the record.
    pub fn check(
        &self,
        topic: &TopicContext,
        record: &RecordView<'_>,
        now: DateTime<Utc>,
        out: &mut Vec<Finding>,
    ) -> Option<chrono::Duration> {
        let mut found = Findings { topic, record, out };
        let headers = Headers::read(record, &mut found);
        let legal = headers.check_purpose(topic, &mut found);
        let header_expiry = headers.expiry(&mut found);
        let json = headers.json(&mut found);
        let header_version = headers.version(&mut found);

        let (decoded, canonical) = decode_value(record, json, &mut found)?;
        let event = &decoded.event;
        let retention = event.retention.as_ref();
        let version = header_version
            .or_else(|| retention.and_then(|r| Version::parse(&r.policy_version).ok()))
            .unwrap_or(self.fallback_version);

        let purpose = legal.map(|l| l.purpose);
        self.check_fields(purpose, version, event, &canonical, &mut found);
        let retention_expiry = retention
            .and_then(|r| r.expires_at.as_ref())
            .and_then(schema::to_datetime);
        check_retention(
            retention,
            legal,
            &headers,
            header_expiry,
            retention_expiry,
            &mut found,
        );
        let event_time = event.event_time.as_ref().and_then(schema::to_datetime);
        let replaced = version
            .replaced_on()
            .map(|day| self.legal_time.day_starts(day));
        if event_time.zip(replaced).is_some_and(|(t, end)| t >= end) {
            found.add(Kind::VersionNotInForce, Some(header::POLICY_VERSION));
        }
        if let (Some(t), Some(legal)) = (event_time, legal) {
            let latest = retention_expiry.into_iter().chain(header_expiry).max();
            self.check_limit(topic, t, legal, latest, now, &mut found);
        }
        check_timestamp(record.timestamp, event_time, &mut found);

        // The key.
        if event.event_id.is_empty() || record.key != Some(event.event_id.as_bytes()) {
            found.add(Kind::KeyNotEventId, None);
        }
        let expiry = retention_expiry.or(header_expiry)?;
        Some(expiry - event_time?)
    }

    /// Routing and fields, in the purpose's column. With no purpose known (a topic of no
    /// purpose, a record without `cdr-purpose`): what no purpose may hold — content,
    /// extensions, fields the schema or the table does not know.
    fn check_fields(
        &self,
        purpose: Option<Purpose>,
        version: Version,
        event: &CdrEvent,
        canonical: &serde_json::Value,
        found: &mut Findings<'_>,
    ) {
        let column = match purpose {
            Some(purpose) => match self.column(purpose, version, event, found) {
                Some(column) => Some((purpose, column)),
                None => return,
            },
            None => None,
        };
        let caller = about_the_caller(event.event_type, event.direction);
        let mut paths = Vec::with_capacity(32);
        leaf_paths(canonical, &mut String::new(), &mut paths);
        paths.sort_unstable();
        paths.dedup();
        for path in &paths {
            if path.starts_with("retention.") || path == "retention" {
                continue;
            }
            let Some(row) = version.field(path) else {
                // A field of the schema with no row in the table.
                found.add(Kind::FieldNotAllowed, None);
                continue;
            };
            if row.category == "content" {
                found.add(Kind::Content, Some(row.path));
                continue;
            }
            if row.category == "unknown" {
                found.add(Kind::UnknownField, Some(row.path));
                continue;
            }
            let Some((purpose, column)) = column else {
                continue;
            };
            let allowed = match row.cell(column).rule {
                Rule::Keep => true,
                Rule::KeepIfCaller => caller,
                Rule::Optional => self.keeps_optional(purpose, row.path),
                Rule::Remove => false,
            };
            if !allowed {
                found.add(Kind::FieldNotAllowed, Some(row.path));
            }
        }
    }

    /// The column of the table the record's fields are read in: the routed one, else
    /// (a `NotRouted` finding) the one its event type takes.
    fn column(
        &self,
        purpose: Purpose,
        version: Version,
        event: &CdrEvent,
        found: &mut Findings<'_>,
    ) -> Option<policy::table::Column> {
        // The column the event type takes, whoever originated it.
        let by_type = policy::route_kind(
            Version::R2012,
            purpose,
            event.event_type,
            Direction::Originating as i32,
            true,
        )
        .ok();
        // `charging.chargeable` is visible only where the column keeps it.
        let chargeable_visible = by_type.is_some_and(|c| {
            version
                .field(CHARGEABLE)
                .is_some_and(|f| f.cell(c).rule == Rule::Keep)
                && !self.removes(purpose, CHARGEABLE)
        });
        let chargeable =
            !chargeable_visible || event.charging.as_ref().is_some_and(|c| c.chargeable);
        match policy::route_kind(
            version,
            purpose,
            event.event_type,
            event.direction,
            chargeable,
        ) {
            Ok(c) => Some(c),
            Err(_) => {
                found.add(Kind::NotRouted, None);
                by_type
            }
        }
    }

    /// Expiry and residency against the calendar limit of `event_time`.
    fn check_limit(
        &self,
        topic: &TopicContext,
        event_time: DateTime<Utc>,
        legal: LegalPurpose,
        latest_expiry: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        found: &mut Findings<'_>,
    ) {
        let Some(limit) = self.legal_time.add_months(event_time, legal.limit_months) else {
            return;
        };
        if latest_expiry.is_some_and(|e| e > limit) {
            found.add(Kind::ExpiryPastLimit, None);
        }
        if now > limit + chrono::Duration::milliseconds(topic.slack_ms) {
            found.add(Kind::RetentionFailure, None);
        }
    }
}

/// Where one record's findings go.
struct Findings<'a> {
    topic: &'a TopicContext,
    record: &'a RecordView<'a>,
    out: &'a mut Vec<Finding>,
}

impl Findings<'_> {
    fn add(&mut self, kind: Kind, detail: Option<&'static str>) {
        self.out.push(Finding {
            topic: self.topic.topic.clone(),
            partition: self.record.partition,
            offset: self.record.offset,
            kind,
            detail,
        })
    }
}

/// The contract's headers of a record, each the first of its name.
struct Headers<'a> {
    values: [Option<&'a [u8]>; 5],
}

impl<'a> Headers<'a> {
    /// Headers: exactly the contract's five, each once.
    fn read(record: &RecordView<'a>, found: &mut Findings<'_>) -> Headers<'a> {
        let mut values: [Option<&[u8]>; 5] = [None; 5];
        let mut seen = [0u32; 5];
        for (name, value) in &record.headers {
            match HEADERS.iter().position(|h| h == name) {
                Some(i) => {
                    seen[i] += 1;
                    if seen[i] == 1 {
                        values[i] = Some(value.unwrap_or_default());
                    } else {
                        found.add(Kind::ExtraHeader, Some(HEADERS[i]));
                    }
                }
                // The name of a header outside the contract is not repeated: it could
                // carry anything.
                None => found.add(Kind::ExtraHeader, None),
            }
        }
        for (i, h) in HEADERS.iter().enumerate() {
            if values[i].is_none() && *h != header::POLICY_VERSION {
                found.add(Kind::MissingHeader, Some(h));
            }
        }
        Headers { values }
    }

    fn text(&self, i: usize) -> Option<&'a str> {
        self.values[i].and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The purpose: the topic's, else the header's; the legal basis header agrees.
    fn check_purpose(
        &self,
        topic: &TopicContext,
        found: &mut Findings<'_>,
    ) -> Option<LegalPurpose> {
        let header_purpose = self.text(H_PURPOSE).and_then(purpose_named);
        if let (Some(_), Some(tp)) = (self.values[H_PURPOSE], topic.purpose) {
            if header_purpose != Some(tp) {
                found.add(Kind::HeaderMismatch, Some(header::PURPOSE));
            }
        } else if self.values[H_PURPOSE].is_some() && header_purpose.is_none() {
            found.add(Kind::HeaderMismatch, Some(header::PURPOSE));
        }
        let legal = topic.purpose.or(header_purpose).map(legal_purpose);
        if let (Some(v), Some(l)) = (self.text(H_LEGAL_BASIS), legal) {
            if v != l.legal_basis {
                found.add(Kind::HeaderMismatch, Some(header::LEGAL_BASIS));
            }
        } else if self.values[H_LEGAL_BASIS].is_some() && legal.is_some() {
            found.add(Kind::HeaderMismatch, Some(header::LEGAL_BASIS));
        }
        legal
    }

    /// `cdr-expires-at`, when present and readable.
    fn expiry(&self, found: &mut Findings<'_>) -> Option<DateTime<Utc>> {
        self.values[H_EXPIRES_AT]?;
        let parsed = self
            .text(H_EXPIRES_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc());
        if parsed.is_none() {
            found.add(Kind::HeaderMismatch, Some(header::EXPIRES_AT));
        }
        parsed
    }

    /// Whether `content-type` says JSON (`Some(true)`), protobuf, or nothing usable.
    fn json(&self, found: &mut Findings<'_>) -> Option<bool> {
        match self.text(H_CONTENT_TYPE) {
            Some("application/json") => Some(true),
            Some("application/x-protobuf") => Some(false),
            Some(_) | None if self.values[H_CONTENT_TYPE].is_some() => {
                found.add(Kind::HeaderMismatch, Some(header::CONTENT_TYPE));
                None
            }
            _ => None,
        }
    }

    /// The version the record names.
    fn version(&self, found: &mut Findings<'_>) -> Option<Version> {
        if self.values[H_POLICY_VERSION].is_none() {
            found.add(Kind::MissingVersion, None);
            return None;
        }
        match self.text(H_POLICY_VERSION).map(Version::parse) {
            Some(Ok(v)) => Some(v),
            _ => {
                found.add(Kind::UnknownVersion, None);
                None
            }
        }
    }
}

/// The value, decoded, and its canonical JSON; `None` (an `Undecodable` finding) when it
/// cannot be read.
fn decode_value(
    record: &RecordView<'_>,
    json: Option<bool>,
    found: &mut Findings<'_>,
) -> Option<(Decoded, serde_json::Value)> {
    let value = record.value.unwrap_or_default();
    let Some(decoded) = decode(value, json) else {
        found.add(Kind::Undecodable, None);
        return None;
    };
    let canonical = match serde_json::to_value(&decoded.event) {
        Ok(v) => v,
        // An enum number or a timestamp proto3 JSON cannot express.
        Err(_) => {
            found.add(Kind::Undecodable, None);
            return None;
        }
    };
    if decoded.unknown {
        found.add(Kind::UnknownField, None);
    }
    Some((decoded, canonical))
}

/// `retention` agrees with the headers and the purpose.
fn check_retention(
    retention: Option<&schema::Retention>,
    legal: Option<LegalPurpose>,
    headers: &Headers<'_>,
    header_expiry: Option<DateTime<Utc>>,
    retention_expiry: Option<DateTime<Utc>>,
    found: &mut Findings<'_>,
) {
    let Some(r) = retention else {
        found.add(Kind::RetentionMismatch, Some("retention"));
        return;
    };
    let purpose_ok = legal.is_none_or(|l| r.purpose == l.purpose as i32);
    let basis_ok = legal.is_none_or(|l| r.legal_basis == l.legal_basis);
    let version_ok = match headers.text(H_POLICY_VERSION) {
        Some(h) => r.policy_version == h,
        // Missing or unreadable header: already a finding.
        None => true,
    };
    let expiry_ok = retention_expiry.is_some()
        && (header_expiry.is_none() || header_expiry == retention_expiry);
    for (ok, name) in [
        (purpose_ok, "retention.purpose"),
        (basis_ok, "retention.legal_basis"),
        (version_ok, "retention.policy_version"),
        (expiry_ok, "retention.expires_at"),
    ] {
        if !ok {
            found.add(Kind::RetentionMismatch, Some(name));
        }
    }
}

/// The Kafka timestamp is `event_time`'s CreateTime.
fn check_timestamp(
    timestamp: Timestamp,
    event_time: Option<DateTime<Utc>>,
    found: &mut Findings<'_>,
) {
    match timestamp {
        Timestamp::CreateTime(ms) => {
            if event_time.map(|t| t.timestamp_millis()) != Some(ms) {
                found.add(Kind::TimestampNotEventTime, None);
            }
        }
        // The CreateTime is lost: only the type is a finding.
        Timestamp::LogAppendTime(_) | Timestamp::NotAvailable => {
            found.add(Kind::TimestampTypeNotCreateTime, None)
        }
    }
}

const CHARGEABLE: &str = "charging.chargeable";

/// The contract's headers, in its order.
const HEADERS: [&str; 5] = [
    header::PURPOSE,
    header::EXPIRES_AT,
    header::LEGAL_BASIS,
    header::POLICY_VERSION,
    header::CONTENT_TYPE,
];
const H_PURPOSE: usize = 0;
const H_EXPIRES_AT: usize = 1;
const H_LEGAL_BASIS: usize = 2;
const H_POLICY_VERSION: usize = 3;
const H_CONTENT_TYPE: usize = 4;

fn purpose_named(name: &str) -> Option<Purpose> {
    match name {
        "billing" => Some(Purpose::Billing),
        "security" => Some(Purpose::Security),
        _ => None,
    }
}

fn legal_purpose(p: Purpose) -> LegalPurpose {
    match p {
        Purpose::Security => policy::SECURITY,
        _ => policy::BILLING,
    }
}
