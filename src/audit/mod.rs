//! `audit`: proves what an output topic holds by checking every record against the law,
//! independently of the filter that wrote it.
//!
//! The checks ([`Auditor::check`]) are pure: one record as read from Kafka (key, value,
//! timestamp, headers) and the audit's clock give the findings. They share the policy
//! *tables* with the filter ([`Version::fields`], [`policy::route_kind`]) but never its
//! output path: the record is decoded, turned into its canonical JSON, and every present
//! leaf field is looked up by its *path* in the table of the version the record names,
//! the way `policy show` prints it. A bug in the filter's copy functions is caught, not
//! repeated. [`reader`] reads the topics; [`report`] renders and counts the findings.
//!
//! A finding names a topic, partition, offset, a kind and at most a field path or a
//! contract header name: never a value of the record.

pub mod reader;
pub mod report;
mod shape;

pub use shape::unframe;
use shape::{decode, leaf_paths};

use crate::encode::header;
use crate::policy::table::Rule;
use crate::policy::{self, about_the_caller, LegalPurpose, Version};
use crate::retention::LegalTime;
use crate::schema::{self, Direction, Purpose};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

/// What is wrong with a record. The names are stable (metrics labels, JSON output).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The value is not a `cdr.v1.CdrEvent` in the format its `content-type` names.
    Undecodable,
    /// A field the version's table does not allow for this purpose and event.
    FieldNotAllowed,
    /// A content field (SMS text, URL, DNS query, ...): never allowed.
    Content,
    /// A field the schema does not know (protobuf unknown fields, unknown JSON keys) or
    /// vendor `extensions`: never allowed.
    UnknownField,
    /// The purpose may not take this event at all under the version (routing).
    NotRouted,
    /// `retention` is missing or disagrees with the headers or the topic's purpose.
    RetentionMismatch,
    /// A contract header holds a value it may not (wrong purpose or legal basis, an
    /// unknown content type, an unreadable expiry).
    HeaderMismatch,
    /// A header the contract does not list, or a contract header written twice.
    ExtraHeader,
    /// A contract header is missing (`cdr-policy-version`: see `MissingVersion`).
    MissingHeader,
    /// No `cdr-policy-version` header.
    MissingVersion,
    /// A `cdr-policy-version` this build does not know.
    UnknownVersion,
    /// `expires_at` is later than the calendar limit of `event_time`.
    ExpiryPastLimit,
    /// The Kafka timestamp is not `event_time` in milliseconds.
    TimestampNotEventTime,
    /// The Kafka timestamp is not a CreateTime.
    TimestampTypeNotCreateTime,
    /// Still in the topic after its legal limit plus the topic's residency slack.
    RetentionFailure,
    /// The key is not the `event_id`.
    KeyNotEventId,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Undecodable,
        Kind::FieldNotAllowed,
        Kind::Content,
        Kind::UnknownField,
        Kind::NotRouted,
        Kind::RetentionMismatch,
        Kind::HeaderMismatch,
        Kind::ExtraHeader,
        Kind::MissingHeader,
        Kind::MissingVersion,
        Kind::UnknownVersion,
        Kind::ExpiryPastLimit,
        Kind::TimestampNotEventTime,
        Kind::TimestampTypeNotCreateTime,
        Kind::RetentionFailure,
        Kind::KeyNotEventId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Undecodable => "undecodable",
            Kind::FieldNotAllowed => "field_not_allowed",
            Kind::Content => "content",
            Kind::UnknownField => "unknown_field",
            Kind::NotRouted => "not_routed",
            Kind::RetentionMismatch => "retention_mismatch",
            Kind::HeaderMismatch => "header_mismatch",
            Kind::ExtraHeader => "extra_header",
            Kind::MissingHeader => "missing_header",
            Kind::MissingVersion => "missing_version",
            Kind::UnknownVersion => "unknown_version",
            Kind::ExpiryPastLimit => "expiry_past_limit",
            Kind::TimestampNotEventTime => "timestamp_not_event_time",
            Kind::TimestampTypeNotCreateTime => "timestamp_type_not_create_time",
            Kind::RetentionFailure => "retention_failure",
            Kind::KeyNotEventId => "key_not_event_id",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding. `detail` is a field path of the table, a contract header name or the
/// names of `retention`'s fields — never a value of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(serialize_with = "serialize_str")]
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'static str>,
}

fn serialize_str<S: serde::Serializer>(s: &Arc<str>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

/// A record's Kafka timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    NotAvailable,
    CreateTime(i64),
    LogAppendTime(i64),
}

/// One record as read from a topic.
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: Timestamp,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// What the audit knows of a topic.
#[derive(Debug, Clone)]
pub struct TopicContext {
    pub topic: Arc<str>,
    /// The purpose the configuration writes to this topic; `None` for a topic the
    /// configuration does not name (the record's `cdr-purpose` header then says it).
    pub purpose: Option<Purpose>,
    /// How long after its retention a record may still be in this topic by design
    /// (segment roll, deletion check, delete delay, clock skew), ms.
    pub slack_ms: i64,
}

/// The configuration an audit reads: the version to fall back on when a record names
/// none, the legal time zone, and the optional fields each purpose keeps.
#[derive(Debug, Clone)]
pub struct Auditor {
    pub fallback_version: Version,
    pub legal_time: LegalTime,
    /// Per purpose: the optional (rule O) fields the configuration keeps.
    pub kept: Vec<(Purpose, Vec<&'static str>)>,
    /// Per purpose: the fields the configuration removes on top of the table (used only
    /// to know whether `charging.chargeable` must be visible).
    pub removed: Vec<(Purpose, Vec<&'static str>)>,
}

impl Auditor {
    /// The auditor of a validated configuration.
    pub fn from_settings(settings: &crate::config::Settings) -> Auditor {
        let p = &settings.policy;
        Auditor {
            fallback_version: p.version,
            legal_time: p.legal_time,
            kept: p
                .purposes
                .iter()
                .map(|pp| (pp.legal.purpose, pp.kept.iter().map(|f| f.path).collect()))
                .collect(),
            removed: p
                .purposes
                .iter()
                .map(|pp| {
                    (
                        pp.legal.purpose,
                        pp.removed.iter().map(|f| f.path).collect(),
                    )
                })
                .collect(),
        }
    }

    fn keeps_optional(&self, purpose: Purpose, path: &str) -> bool {
        self.kept
            .iter()
            .any(|(p, paths)| *p == purpose && paths.contains(&path))
    }

    fn removes(&self, purpose: Purpose, path: &str) -> bool {
        self.removed
            .iter()
            .any(|(p, paths)| *p == purpose && paths.contains(&path))
    }

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
        let mut found = |kind: Kind, detail: Option<&'static str>| {
            out.push(Finding {
                topic: topic.topic.clone(),
                partition: record.partition,
                offset: record.offset,
                kind,
                detail,
            })
        };

        // Headers: exactly the contract's five, each once.
        let mut values: [Option<&[u8]>; 5] = [None; 5];
        let mut seen = [0u32; 5];
        for (name, value) in &record.headers {
            match HEADERS.iter().position(|h| h == name) {
                Some(i) => {
                    seen[i] += 1;
                    if seen[i] == 1 {
                        values[i] = Some(value.unwrap_or_default());
                    } else {
                        found(Kind::ExtraHeader, Some(HEADERS[i]));
                    }
                }
                // The name of a header outside the contract is not repeated: it could
                // carry anything.
                None => found(Kind::ExtraHeader, None),
            }
        }
        let text = |i: usize| values[i].and_then(|v| std::str::from_utf8(v).ok());
        for (i, h) in HEADERS.iter().enumerate() {
            if values[i].is_none() && *h != header::POLICY_VERSION {
                found(Kind::MissingHeader, Some(h));
            }
        }

        // The purpose: the topic's, else the header's.
        let header_purpose = text(H_PURPOSE).and_then(purpose_named);
        if let (Some(v), Some(tp)) = (values[H_PURPOSE], topic.purpose) {
            if std::str::from_utf8(v).ok().and_then(purpose_named) != Some(tp) {
                found(Kind::HeaderMismatch, Some(header::PURPOSE));
            }
        } else if values[H_PURPOSE].is_some() && header_purpose.is_none() {
            found(Kind::HeaderMismatch, Some(header::PURPOSE));
        }
        let legal = topic.purpose.or(header_purpose).map(legal_purpose);
        if let (Some(v), Some(l)) = (text(H_LEGAL_BASIS), legal) {
            if v != l.legal_basis {
                found(Kind::HeaderMismatch, Some(header::LEGAL_BASIS));
            }
        } else if values[H_LEGAL_BASIS].is_some() && legal.is_some() {
            found(Kind::HeaderMismatch, Some(header::LEGAL_BASIS));
        }
        let header_expiry = match values[H_EXPIRES_AT] {
            None => None,
            Some(_) => match text(H_EXPIRES_AT)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.to_utc())
            {
                Some(t) => Some(t),
                None => {
                    found(Kind::HeaderMismatch, Some(header::EXPIRES_AT));
                    None
                }
            },
        };
        let json = match text(H_CONTENT_TYPE) {
            Some("application/json") => Some(true),
            Some("application/x-protobuf") => Some(false),
            Some(_) | None if values[H_CONTENT_TYPE].is_some() => {
                found(Kind::HeaderMismatch, Some(header::CONTENT_TYPE));
                None
            }
            _ => None,
        };

        // The version the record names.
        let header_version = match values[H_POLICY_VERSION] {
            None => {
                found(Kind::MissingVersion, None);
                None
            }
            Some(_) => match text(H_POLICY_VERSION).map(Version::parse) {
                Some(Ok(v)) => Some(v),
                _ => {
                    found(Kind::UnknownVersion, None);
                    None
                }
            },
        };

        // The value.
        let value = record.value.unwrap_or_default();
        let Some(decoded) = decode(value, json) else {
            found(Kind::Undecodable, None);
            return None;
        };
        let event = &decoded.event;
        let canonical = match serde_json::to_value(event) {
            Ok(v) => v,
            // An enum number or a timestamp proto3 JSON cannot express.
            Err(_) => {
                found(Kind::Undecodable, None);
                return None;
            }
        };
        if decoded.unknown {
            found(Kind::UnknownField, None);
        }
        let retention = event.retention.as_ref();
        let version = header_version
            .or_else(|| retention.and_then(|r| Version::parse(&r.policy_version).ok()))
            .unwrap_or(self.fallback_version);

        // Routing and fields, in the purpose's column.
        if let Some(legal) = legal {
            let purpose = legal.purpose;
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
            let column = match policy::route_kind(
                version,
                purpose,
                event.event_type,
                event.direction,
                chargeable,
            ) {
                Ok(c) => Some(c),
                Err(_) => {
                    found(Kind::NotRouted, None);
                    by_type
                }
            };
            if let Some(column) = column {
                let caller = about_the_caller(event.event_type, event.direction);
                let mut paths = Vec::with_capacity(32);
                leaf_paths(&canonical, &mut String::new(), &mut paths);
                paths.sort_unstable();
                paths.dedup();
                for path in &paths {
                    if path.starts_with("retention.") || path == "retention" {
                        continue;
                    }
                    let Some(row) = version.field(path) else {
                        // A field of the schema with no row in the table.
                        found(Kind::FieldNotAllowed, None);
                        continue;
                    };
                    if row.category == "content" {
                        found(Kind::Content, Some(row.path));
                        continue;
                    }
                    if row.category == "unknown" {
                        found(Kind::UnknownField, Some(row.path));
                        continue;
                    }
                    let allowed = match row.cell(column).rule {
                        Rule::Keep => true,
                        Rule::KeepIfCaller => caller,
                        Rule::Optional => self.keeps_optional(purpose, row.path),
                        Rule::Remove => false,
                    };
                    if !allowed {
                        found(Kind::FieldNotAllowed, Some(row.path));
                    }
                }
            }
        }

        // `retention` agrees with the headers and the purpose.
        let retention_expiry = retention
            .and_then(|r| r.expires_at.as_ref())
            .and_then(schema::to_datetime);
        match retention {
            None => found(Kind::RetentionMismatch, Some("retention")),
            Some(r) => {
                let purpose_ok = legal.is_none_or(|l| r.purpose == l.purpose as i32);
                let basis_ok = legal.is_none_or(|l| r.legal_basis == l.legal_basis);
                let version_ok = match text(H_POLICY_VERSION) {
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
                        found(Kind::RetentionMismatch, Some(name));
                    }
                }
            }
        }

        // Expiry and residency against the calendar limit of event_time.
        let event_time = event.event_time.as_ref().and_then(schema::to_datetime);
        if let (Some(t), Some(legal)) = (event_time, legal) {
            if let Some(limit) = self.legal_time.add_months(t, legal.limit_months) {
                let latest = retention_expiry.into_iter().chain(header_expiry).max();
                if latest.is_some_and(|e| e > limit) {
                    found(Kind::ExpiryPastLimit, None);
                }
                if now > limit + chrono::Duration::milliseconds(topic.slack_ms) {
                    found(Kind::RetentionFailure, None);
                }
            }
        }

        // The Kafka timestamp.
        match record.timestamp {
            Timestamp::CreateTime(ms) => {
                if event_time.map(|t| t.timestamp_millis()) != Some(ms) {
                    found(Kind::TimestampNotEventTime, None);
                }
            }
            // The CreateTime is lost: only the type is a finding.
            Timestamp::LogAppendTime(_) | Timestamp::NotAvailable => {
                found(Kind::TimestampTypeNotCreateTime, None)
            }
        }

        // The key.
        if event.event_id.is_empty() || record.key != Some(event.event_id.as_bytes()) {
            found(Kind::KeyNotEventId, None);
        }
        let expiry = retention_expiry.or(header_expiry)?;
        Some(expiry - event_time?)
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
