//! Room: the configuration as written — the serde sections of the TOML file (after
//! defaults and environment overrides) and their defaults. No checks here: a
//! [`RawConfig`] becomes a [`super::Settings`] only through validation.

use crate::dead_letter::DeadLetterMode;
use crate::decode::InputFormat;
use crate::delivery::Guarantee;
use crate::encode::OutputFormat;
use crate::policy;
use crate::retention::LegalTime;
use crate::retention::TopicsMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The configuration as written (after defaults and environment overrides).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub kafka: KafkaSection,
    pub input: InputSection,
    pub output: OutputSection,
    pub purposes: PurposesSection,
    pub dead_letter: DeadLetterSection,
    pub topics: TopicsSection,
    pub delivery: DeliverySection,
    pub metrics: MetricsSection,
    pub policy: PolicySection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSection {
    pub bootstrap_servers: String,
    pub group_id: String,
    /// Any librdkafka property, passed through to every client (TLS, SASL, timeouts, ...).
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties for the consumer only (`fetch.wait.max.ms`, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub consumer_properties: BTreeMap<String, String>,
    /// librdkafka properties for the producer only (`linger.ms`, `compression.type`, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub producer_properties: BTreeMap<String, String>,
}

impl Default for KafkaSection {
    fn default() -> Self {
        KafkaSection {
            bootstrap_servers: "127.0.0.1:9092".into(),
            group_id: "cdr-purpose-filter".into(),
            properties: BTreeMap::new(),
            consumer_properties: BTreeMap::new(),
            producer_properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputSection {
    pub topics: Vec<String>,
    pub format: InputFormat,
    /// Schema Registry ids accepted in framed records; empty: any. Framed records with
    /// another id are dead-lettered (`unexpected_schema`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema_ids: Vec<u32>,
}

impl Default for InputSection {
    fn default() -> Self {
        InputSection {
            topics: vec!["cdr.raw".into()],
            format: InputFormat::Auto,
            schema_ids: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    pub format: OutputFormat,
    /// `confluent`: the Schema Registry wire format, with `schema_id`.
    pub framing: OutputFraming,
    /// The Schema Registry id of the output schema (required with `framing = "confluent"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<u32>,
}

/// The framing of output values, from `output.framing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFraming {
    /// The bare message or JSON document.
    #[default]
    None,
    /// Magic byte, `output.schema_id`, for protobuf the message index of `CdrEvent`.
    Confluent,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposesSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<PurposeSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<PurposeSection>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PurposeSection {
    /// Output topic; defaults to `cdr.<purpose>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Retention; defaults to the legal limit as a calendar unit (`12mo`, `3mo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Fields (or whole groups) removed on top of the legal table.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Fields the operator expects to keep: refused when the law does not allow them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterSection {
    pub topic: String,
    pub mode: DeadLetterMode,
    /// Retention of dead letters; never longer than the shortest purpose's ttl.
    pub ttl: String,
}

impl Default for DeadLetterSection {
    fn default() -> Self {
        DeadLetterSection {
            topic: "cdr.dead-letter".into(),
            mode: DeadLetterMode::Pointer,
            ttl: "7d".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsSection {
    pub mode: TopicsMode,
    /// Partitions of the topics the filter creates.
    pub partitions: i32,
    /// Replication factor of the topics the filter creates; -1: the broker's default.
    pub replication_factor: i32,
    /// How often the running filter re-checks the topics' settings.
    pub check_interval: String,
}

impl Default for TopicsSection {
    fn default() -> Self {
        TopicsSection {
            mode: TopicsMode::Enforce,
            partitions: 6,
            replication_factor: -1,
            check_interval: "10m".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    pub guarantee: Guarantee,
    /// Input records in flight (sent, not yet acknowledged) before consuming pauses.
    pub max_in_flight: usize,
    /// How long shutdown may take to drain, flush and commit.
    pub shutdown_timeout: String,
    /// Exactly-once: the producer's `transactional.id`, stable per instance (e.g. the pod
    /// name of a StatefulSet). Default: `<group_id>-<hostname>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactional_id: Option<String>,
    /// Exactly-once: the longest a transaction stays open collecting records.
    pub transaction_interval: String,
    /// At-least-once: how often the offsets of acknowledged records are committed (also
    /// on revoke and at shutdown). A crash replays at most about this much input.
    pub commit_interval: String,
}

impl Default for DeliverySection {
    fn default() -> Self {
        DeliverySection {
            guarantee: Guarantee::AtLeastOnce,
            max_in_flight: 2_000,
            shutdown_timeout: "30s".into(),
            transactional_id: None,
            transaction_interval: "100ms".into(),
            commit_interval: "1s".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    pub listen: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: "127.0.0.1:9898".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// The version of R10-14: `R10-14/2021` (in force) or `R10-14/2012` (historical).
    pub version: String,
    /// The legal time zone calendar limits are also counted in (IANA name).
    pub time_zone: String,
    /// How far in the future an `event_time` may be before the event is refused.
    pub max_clock_skew: String,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            version: policy::Version::IN_FORCE.name().into(),
            time_zone: LegalTime::PARIS.name().into(),
            max_clock_skew: "5m".into(),
        }
    }
}
