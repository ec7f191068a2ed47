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

mod check;
mod progress;
pub mod reader;
pub mod report;
mod shape;

pub use shape::unframe;

use crate::policy::Version;
use crate::retention::LegalTime;
use crate::schema::Purpose;
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
    /// The version the record names no longer applied at its `event_time`: R10-14/2012
    /// on a communication from 21 October 2021 on (the start of that day in UTC or in the
    /// legal time zone, whichever comes first).
    VersionNotInForce,
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
    pub const ALL: [Kind; 17] = [
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
        Kind::VersionNotInForce,
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
            Kind::VersionNotInForce => "version_not_in_force",
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
}
