//! Configuration: TOML, overridable by environment variables, parsed then validated once
//! into an immutable [`Settings`]. Every problem is reported with the key that caused it.
//!
//! Environment variables: `CDR_PURPOSE_FILTER_<SECTION>__<KEY>`, e.g.
//! `CDR_PURPOSE_FILTER_PURPOSES__BILLING__TTL=180d`. Kafka client properties:
//! `CDR_PURPOSE_FILTER_KAFKA__PROPERTIES__SASL_PASSWORD` sets `sasl.password` (`_` stands
//! for `.` in a property name); likewise `..._KAFKA__CONSUMER_PROPERTIES__...` and
//! `..._KAFKA__PRODUCER_PROPERTIES__...`. Values stay strings unless the key wants a
//! number, a boolean or a list (`CDR_PURPOSE_FILTER_KAFKA__GROUP_ID=12345` is a string).
//!
//! The file is optional: with neither `--config` nor `CDR_PURPOSE_FILTER_CONFIG`, the
//! configuration is the defaults plus the environment ([`load_from`]).

use crate::decode::InputFormat;
use crate::encode::OutputFormat;
use crate::retention::{self, LegalTime, Ttl};
use crate::policy::{self, table, LegalPurpose, Policy, PurposePolicy};
use crate::schema::Purpose;
use chrono::Duration;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "CDR_PURPOSE_FILTER_";
/// Kafka property maps settable by environment variables, `_` standing for `.`.
const ENV_PROPERTIES_PREFIXES: &[&str] = &[
    "CDR_PURPOSE_FILTER_KAFKA__PROPERTIES__",
    "CDR_PURPOSE_FILTER_KAFKA__CONSUMER_PROPERTIES__",
    "CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__",
];
/// The variable that names the configuration file (like `--config`).
pub const ENV_CONFIG: &str = "CDR_PURPOSE_FILTER_CONFIG";
/// Variables with the prefix that are the command line's, not configuration keys
/// (`--log`'s, `--log-format`'s, `--config`'s).
const ENV_NOT_KEYS: &[&str] = &[
    "CDR_PURPOSE_FILTER_LOG",
    "CDR_PURPOSE_FILTER_LOG_FORMAT",
    ENV_CONFIG,
];

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadLetterMode {
    /// Source topic, partition, offset and reason only: never the payload.
    #[default]
    Pointer,
    /// Also the raw payload: an explicit opt-in, since it copies raw personal data.
    Payload,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicsMode {
    Off,
    Create,
    Verify,
    #[default]
    Enforce,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guarantee {
    #[default]
    AtLeastOnce,
    ExactlyOnce,
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
            max_in_flight: 20_000,
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

/// One problem in a configuration, with the key that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub reason: String,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{}", format_figment(.0))]
    Parse(Box<figment::Error>),
    #[error("{}", format_problems(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems, for tests and for callers that render them themselves.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Invalid(p) => p.clone(),
            ConfigError::Parse(e) => (**e)
                .clone()
                .into_iter()
                .map(|e| Problem {
                    key: e.path.join("."),
                    reason: e.kind.to_string(),
                })
                .collect(),
            ConfigError::Read { path, source } => vec![Problem {
                key: path.clone(),
                reason: source.to_string(),
            }],
        }
    }
}

fn format_problems(problems: &[Problem]) -> String {
    let mut s = format!("invalid configuration ({} problem(s)):", problems.len());
    for p in problems {
        s.push_str(&format!("\n  - {}: {}", p.key, p.reason));
    }
    s
}

fn format_figment(e: &figment::Error) -> String {
    let problems: Vec<Problem> = e
        .clone()
        .into_iter()
        .map(|e| {
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            Problem {
                key: if e.path.is_empty() {
                    "(top level)".into()
                } else {
                    e.path.join(".")
                },
                reason: format!("{}{source}", e.kind),
            }
        })
        .collect();
    format_problems(&problems)
}

/// Reads a configuration file, applies environment overrides and validates it.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    load_from(Some(path))
}

/// Like [`load`]; without a file, the defaults plus the environment.
pub fn load_from(path: Option<&Path>) -> Result<Settings, ConfigError> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?,
        None => String::new(),
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    let raw = parse(&text, &env)?;
    Settings::validate(raw)
}

/// The environment overrides, as a figment provider over a given list of variables (so
/// tests need not touch the process environment).
struct EnvOverrides(Dict);

impl EnvOverrides {
    fn new(env: &[(String, String)]) -> EnvOverrides {
        let mut root = Dict::new();
        for (k, v) in env {
            if !k.starts_with(ENV_PREFIX)
                || ENV_PROPERTIES_PREFIXES.iter().any(|p| k.starts_with(p))
                || ENV_NOT_KEYS.contains(&k.as_str())
            {
                continue;
            }
            let path: Vec<String> = k[ENV_PREFIX.len()..]
                .to_ascii_lowercase()
                .split("__")
                .map(str::to_string)
                .collect();
            // A string unless it is a list or a table: `extract_lossy` reads "6" or
            // "true" where a number or a boolean is wanted, and a string key keeps
            // "12345" as it was written.
            let value = match v.parse::<Value>() {
                Ok(parsed @ (Value::Array(..) | Value::Dict(..))) => parsed,
                _ => Value::from(v.clone()),
            };
            let mut dict = &mut root;
            for part in &path[..path.len() - 1] {
                let entry = dict
                    .entry(part.clone())
                    .or_insert_with(|| Value::from(Dict::new()));
                if entry.as_dict().is_none() {
                    *entry = Value::from(Dict::new());
                }
                dict = match entry {
                    Value::Dict(_, d) => d,
                    _ => unreachable!("just made a dict"),
                };
            }
            dict.insert(path[path.len() - 1].clone(), value);
        }
        EnvOverrides(root)
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {ENV_PREFIX}*"))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// Parses TOML text with environment overrides (given as a list, for tests).
pub fn parse(toml_text: &str, env: &[(String, String)]) -> Result<RawConfig, ConfigError> {
    let mut raw: RawConfig = Figment::from(Serialized::defaults(RawConfig::default()))
        .merge(Toml::string(toml_text))
        .merge(EnvOverrides::new(env))
        .extract_lossy()
        .map_err(|e| ConfigError::Parse(Box::new(e)))?;
    // Kafka properties from the environment: `_` stands for `.` in their names.
    for (k, v) in env {
        for (prefix, props) in ENV_PROPERTIES_PREFIXES.iter().zip([
            &mut raw.kafka.properties,
            &mut raw.kafka.consumer_properties,
            &mut raw.kafka.producer_properties,
        ]) {
            if let Some(name) = k.strip_prefix(prefix) {
                props.insert(name.to_ascii_lowercase().replace('_', "."), v.clone());
            }
        }
    }
    Ok(raw)
}

/// The validated dead-letter settings.
#[derive(Debug, Clone)]
pub struct DeadLetterSettings {
    pub topic: String,
    pub mode: DeadLetterMode,
    pub ttl: Ttl,
}

/// The validated topic-management settings.
#[derive(Debug, Clone)]
pub struct TopicsSettings {
    pub mode: TopicsMode,
    pub partitions: i32,
    pub replication_factor: i32,
    pub check_interval: std::time::Duration,
}

/// A validated purpose.
#[derive(Debug, Clone)]
pub struct PurposeSettings {
    pub purpose: Purpose,
    pub topic: String,
    pub ttl: Ttl,
}

/// The validated, immutable configuration the filter runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kafka: KafkaSection,
    pub input_topics: Vec<String>,
    pub input_format: InputFormat,
    /// Schema ids accepted in framed input; empty: any.
    pub input_schema_ids: Vec<u32>,
    pub output_format: OutputFormat,
    /// `Some(schema id)` with `output.framing = "confluent"`.
    pub output_schema_id: Option<u32>,
    pub purposes: Vec<PurposeSettings>,
    pub dead_letter: DeadLetterSettings,
    pub topics: TopicsSettings,
    pub guarantee: Guarantee,
    pub max_in_flight: usize,
    pub shutdown_timeout: std::time::Duration,
    pub transactional_id: String,
    pub transaction_interval: std::time::Duration,
    pub commit_interval: std::time::Duration,
    pub metrics_listen: SocketAddr,
    pub policy: Policy,
    /// The configuration as read, defaults filled in (for `config check`).
    pub effective: RawConfig,
}

/// Kafka's legal topic names.
fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a topic name cannot be empty".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters; Kafka allows 249",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("`{name}` is not a valid topic name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "`{name}` contains {c:?}; Kafka topic names use ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Property names the filter sets itself: overriding them would break delivery
/// guarantees, so they are refused rather than silently ignored.
const OWNED_PROPERTIES: &[(&str, &str)] = &[
    (
        "enable.auto.commit",
        "offsets are committed by the filter after outputs are acknowledged",
    ),
    (
        "enable.auto.offset.store",
        "offsets are stored only after outputs are acknowledged",
    ),
    ("enable.idempotence", "the producer is always idempotent"),
    (
        "enable.gapless.guarantee",
        "it turns a delivery gap into a fatal producer error; the filter re-sends failed outputs itself",
    ),
    (
        "transactional.id",
        "set per instance when delivery.guarantee = \"exactly-once\"",
    ),
    ("isolation.level", "set by the filter"),
    ("group.id", "use kafka.group_id"),
    ("bootstrap.servers", "use kafka.bootstrap_servers"),
];

impl Settings {
    /// Validates a parsed configuration, reporting every problem at once.
    pub fn validate(raw: RawConfig) -> Result<Settings, ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, reason: String| {
            problems.push(Problem {
                key: key.to_string(),
                reason,
            })
        };

        if raw.kafka.bootstrap_servers.trim().is_empty() {
            problem(
                "kafka.bootstrap_servers",
                "must name at least one broker (host:port)".into(),
            );
        }
        if raw.kafka.group_id.trim().is_empty() {
            problem("kafka.group_id", "must not be empty".into());
        }
        for (section, props) in [
            ("properties", &raw.kafka.properties),
            ("consumer_properties", &raw.kafka.consumer_properties),
            ("producer_properties", &raw.kafka.producer_properties),
        ] {
            for (name, why) in OWNED_PROPERTIES {
                if props.contains_key(*name) {
                    problem(
                        &format!("kafka.{section}.\"{name}\""),
                        format!("is set by the filter and cannot be overridden: {why}"),
                    );
                }
            }
        }
        // Secrets kept elsewhere (`${env:NAME}`, `${file:/path}`) are read once, here;
        // `effective` keeps the reference, so `config check` never shows the value.
        let mut kafka = raw.kafka.clone();
        for (section, props) in [
            ("properties", &mut kafka.properties),
            ("consumer_properties", &mut kafka.consumer_properties),
            ("producer_properties", &mut kafka.producer_properties),
        ] {
            for (name, value) in props.iter_mut() {
                match resolve_reference(value, |n| std::env::var(n).ok()) {
                    Ok(Some(resolved)) => *value = resolved,
                    Ok(None) => {}
                    Err(e) => problem(&format!("kafka.{section}.\"{name}\""), e),
                }
            }
        }

        if raw.input.topics.is_empty() {
            problem("input.topics", "must list at least one topic".into());
        }
        for (i, t) in raw.input.topics.iter().enumerate() {
            if let Err(e) = check_topic_name(t) {
                problem(&format!("input.topics[{i}]"), e);
            }
        }
        if let Err(e) = check_topic_name(&raw.dead_letter.topic) {
            problem("dead_letter.topic", e);
        }
        if !raw.input.schema_ids.is_empty()
            && matches!(raw.input.format, InputFormat::Json | InputFormat::Protobuf)
        {
            problem(
                "input.schema_ids",
                "applies to Schema Registry framed records only: input.format must be \
                 \"auto\", \"confluent-protobuf\" or \"confluent-json\""
                    .into(),
            );
        }
        let output_schema_id = match (raw.output.framing, raw.output.schema_id) {
            (OutputFraming::Confluent, None) => {
                problem(
                    "output.schema_id",
                    "is required with output.framing = \"confluent\": the id the Schema \
                     Registry gave the output schema (see `cdr-purpose-filter schema`)"
                        .into(),
                );
                None
            }
            (OutputFraming::None, Some(_)) => {
                problem(
                    "output.schema_id",
                    "is only used with output.framing = \"confluent\"".into(),
                );
                None
            }
            (OutputFraming::Confluent, Some(id)) if id > i32::MAX as u32 => {
                problem(
                    "output.schema_id",
                    format!("{id} is not a Schema Registry id (at most {})", i32::MAX),
                );
                None
            }
            (_, id) => id,
        };

        let version = match policy::Version::parse(&raw.policy.version) {
            Ok(v) => Some(v),
            Err(e) => {
                problem("policy.version", e.to_string());
                None
            }
        };
        let legal_time = match LegalTime::parse(&raw.policy.time_zone) {
            Ok(z) => Some(z),
            Err(e) => {
                problem("policy.time_zone", e.to_string());
                None
            }
        };
        // Checks that need them read the defaults when they are refused (already reported).
        let table_version = version.unwrap_or(policy::Version::IN_FORCE);
        let legal = legal_time.unwrap_or_default();

        let mut effective = raw.clone();
        let mut purposes = Vec::new();
        let mut compiled = Vec::new();
        // Default ttls are the calendar units: they fit the limit in every legal time zone.
        let sections = [
            (
                policy::BILLING,
                raw.purposes.billing.as_ref(),
                "cdr.billing",
                "12mo",
            ),
            (
                policy::SECURITY,
                raw.purposes.security.as_ref(),
                "cdr.security",
                "3mo",
            ),
        ];
        if sections.iter().all(|(_, s, _, _)| s.is_none()) {
            problem(
                "purposes",
                "no purpose is configured: add [purposes.billing] and/or [purposes.security]"
                    .into(),
            );
        }
        for (legal_purpose, section, default_topic, default_ttl) in sections {
            let Some(section) = section else { continue };
            let name = legal_purpose.purpose.name();
            let key = |k: &str| format!("purposes.{name}.{k}");
            let topic = section
                .topic
                .clone()
                .unwrap_or_else(|| default_topic.into());
            if let Err(e) = check_topic_name(&topic) {
                problem(&key("topic"), e);
            }
            let ttl_text = section
                .ttl
                .clone()
                .unwrap_or_else(|| default_ttl.to_string());
            let ttl = match Ttl::parse(&ttl_text) {
                Ok(ttl) => match retention::check_ttl(ttl, legal_purpose.limit_months, legal) {
                    Ok(()) => Some(ttl),
                    Err(e) => {
                        problem(
                            &key("ttl"),
                            format!("{e} ({} limit: {})", name, legal_purpose.legal_basis),
                        );
                        None
                    }
                },
                Err(e) => {
                    problem(&key("ttl"), e.to_string());
                    None
                }
            };
            let removed = check_removals(table_version, legal_purpose, section, &mut problem);
            let kept = check_keeps(
                table_version,
                legal_purpose,
                section,
                &removed,
                &mut problem,
            );
            if let Some(ttl) = ttl {
                purposes.push(PurposeSettings {
                    purpose: legal_purpose.purpose,
                    topic: topic.clone(),
                    ttl,
                });
                compiled.push(PurposePolicy::new(
                    table_version,
                    legal_purpose,
                    ttl,
                    removed,
                    kept,
                ));
            }
            let eff = match legal_purpose.purpose {
                Purpose::Billing => effective.purposes.billing.as_mut(),
                _ => effective.purposes.security.as_mut(),
            };
            if let Some(eff) = eff {
                eff.topic = Some(topic);
                eff.ttl = Some(ttl_text);
            }
        }
        for (key, reason) in topic_collisions(&raw) {
            problem(&key, reason);
        }

        let metrics_listen = match raw.metrics.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                problem(
                    "metrics.listen",
                    format!("`{}` is not an address:port ({e})", raw.metrics.listen),
                );
                None
            }
        };
        let max_clock_skew = match Ttl::parse(&raw.policy.max_clock_skew) {
            Ok(Ttl::Fixed(d)) if d >= Duration::zero() && d <= Duration::days(1) => Some(d),
            Ok(_) => {
                problem(
                    "policy.max_clock_skew",
                    "must be a fixed duration between 0s and 1d, e.g. \"5m\"".into(),
                );
                None
            }
            Err(e) => {
                problem("policy.max_clock_skew", e.to_string());
                None
            }
        };

        let shutdown_timeout = match Ttl::parse(&raw.delivery.shutdown_timeout) {
            Ok(Ttl::Fixed(d)) if d > Duration::zero() => d.to_std().ok(),
            Ok(_) => {
                problem(
                    "delivery.shutdown_timeout",
                    "must be a fixed duration longer than 0, e.g. \"30s\"".into(),
                );
                None
            }
            Err(e) => {
                problem("delivery.shutdown_timeout", e.to_string());
                None
            }
        };
        let transaction_interval = match Ttl::parse(&raw.delivery.transaction_interval) {
            Ok(Ttl::Fixed(d)) if d > Duration::zero() && d <= Duration::seconds(60) => {
                d.to_std().ok()
            }
            Ok(_) => {
                problem(
                    "delivery.transaction_interval",
                    "must be a fixed duration between 1ms and 60s, e.g. \"100ms\"".into(),
                );
                None
            }
            Err(e) => {
                problem("delivery.transaction_interval", e.to_string());
                None
            }
        };
        let commit_interval = match Ttl::parse(&raw.delivery.commit_interval) {
            Ok(Ttl::Fixed(d)) if d > Duration::zero() && d <= Duration::seconds(300) => {
                d.to_std().ok()
            }
            Ok(_) => {
                problem(
                    "delivery.commit_interval",
                    "must be a fixed duration between 1ms and 300s, e.g. \"1s\"".into(),
                );
                None
            }
            Err(e) => {
                problem("delivery.commit_interval", e.to_string());
                None
            }
        };
        let transactional_id = raw.delivery.transactional_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|| "instance".into());
            format!("{}-{host}", raw.kafka.group_id)
        });
        if transactional_id.trim().is_empty() {
            problem("delivery.transactional_id", "must not be empty".into());
        }
        let fixed =
            |key: &str, text: &str, min: Duration, problem: &mut dyn FnMut(&str, String)| {
                match Ttl::parse(text) {
                    Ok(Ttl::Fixed(d)) if d >= min => Some(d),
                    Ok(_) => {
                        problem(
                            key,
                            format!("must be a fixed duration of at least {}", Ttl::Fixed(min)),
                        );
                        None
                    }
                    Err(e) => {
                        problem(key, e.to_string());
                        None
                    }
                }
            };
        let check_interval = fixed(
            "topics.check_interval",
            &raw.topics.check_interval,
            Duration::seconds(10),
            &mut problem,
        )
        .and_then(|d| d.to_std().ok());
        let dead_letter_ttl = fixed(
            "dead_letter.ttl",
            &raw.dead_letter.ttl,
            Duration::minutes(1),
            &mut problem,
        )
        .map(Ttl::Fixed);
        if let Some(Ttl::Fixed(dl)) = dead_letter_ttl {
            for p in &purposes {
                if dl > p.ttl.shortest(legal) {
                    problem(
                        "dead_letter.ttl",
                        format!(
                            "{} is longer than the {} ttl {}: dead letters must not outlive the records they point to",
                            Ttl::Fixed(dl),
                            p.purpose.name(),
                            p.ttl
                        ),
                    );
                }
            }
        }
        // Every output topic's ttl must be meetable by some segment size, with Kafka's
        // default broker settings (the running filter re-checks with the broker's own).
        if let (Some(skew), Some(Ttl::Fixed(dl))) = (max_clock_skew, dead_letter_ttl) {
            let broker = crate::retention::bound::BrokerSettings::default();
            let limits = purposes
                .iter()
                .map(|p| {
                    (
                        format!("purposes.{}.ttl", p.purpose.name()),
                        crate::topics::ttl_ms(p.ttl, legal),
                    )
                })
                .chain(std::iter::once((
                    "dead_letter.ttl".to_string(),
                    dl.num_milliseconds(),
                )));
            for (key, limit) in limits {
                if let Err(e) =
                    crate::retention::bound::desired(limit, &broker, skew.num_milliseconds(), false)
                {
                    problem(&key, e.to_string());
                }
            }
        }
        if raw.delivery.max_in_flight == 0 {
            problem("delivery.max_in_flight", "must be at least 1".into());
        }
        if raw.topics.partitions < 1 {
            problem("topics.partitions", "must be at least 1".into());
        }
        if raw.topics.replication_factor == 0 || raw.topics.replication_factor < -1 {
            problem(
                "topics.replication_factor",
                "must be -1 (the broker's default) or at least 1".into(),
            );
        }

        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        Ok(Settings {
            kafka,
            input_topics: raw.input.topics,
            input_format: raw.input.format,
            input_schema_ids: raw.input.schema_ids,
            output_format: raw.output.format,
            output_schema_id,
            purposes,
            dead_letter: DeadLetterSettings {
                topic: raw.dead_letter.topic,
                mode: raw.dead_letter.mode,
                ttl: dead_letter_ttl.expect("checked"),
            },
            topics: TopicsSettings {
                mode: raw.topics.mode,
                partitions: raw.topics.partitions,
                replication_factor: raw.topics.replication_factor,
                check_interval: check_interval.expect("checked"),
            },
            guarantee: raw.delivery.guarantee,
            max_in_flight: raw.delivery.max_in_flight,
            shutdown_timeout: shutdown_timeout.expect("checked"),
            transactional_id,
            transaction_interval: transaction_interval.expect("checked"),
            commit_interval: commit_interval.expect("checked"),
            metrics_listen: metrics_listen.expect("checked"),
            policy: Policy {
                version: version.expect("checked"),
                legal_time: legal_time.expect("checked"),
                purposes: compiled,
                max_clock_skew: max_clock_skew.expect("checked"),
            },
            effective,
        })
    }

    /// The topic of a purpose.
    pub fn topic_of(&self, purpose: Purpose) -> Option<&str> {
        self.purposes
            .iter()
            .find(|p| p.purpose == purpose)
            .map(|p| p.topic.as_str())
    }

    /// Whether a Kafka property's value must never be printed: a secret by its name, or
    /// a value read from `${env:}` or `${file:}`.
    pub fn is_secret_property(&self, name: &str) -> bool {
        let k = &self.effective.kafka;
        is_secret(name)
            || [
                &k.properties,
                &k.consumer_properties,
                &k.producer_properties,
            ]
            .iter()
            .any(|props| {
                props.get(name).is_some_and(|v| {
                    let v = v.trim();
                    v.starts_with("${") && v.ends_with('}')
                })
            })
    }

    /// The values that must never be printed (see [`Settings::is_secret_property`]).
    pub fn secret_values(&self) -> Vec<&str> {
        let k = &self.kafka;
        [
            &k.properties,
            &k.consumer_properties,
            &k.producer_properties,
        ]
        .iter()
        .flat_map(|props| props.iter())
        .filter(|(name, v)| !v.is_empty() && self.is_secret_property(name))
        .map(|(_, v)| v.as_str())
        .collect()
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn effective_toml(&self) -> String {
        let mut shown = self.effective.clone();
        let k = &mut shown.kafka;
        for props in [
            &mut k.properties,
            &mut k.consumer_properties,
            &mut k.producer_properties,
        ] {
            for (k, v) in props.iter_mut() {
                if is_secret(k) {
                    *v = "********".into();
                }
            }
        }
        toml::to_string_pretty(&shown).expect("the configuration serializes to TOML")
    }
}

/// `--allow-insecure-secret-files`: accept `${file:}` secrets that other users can read.
static ALLOW_INSECURE_SECRET_FILES: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Set by `--allow-insecure-secret-files`, before any configuration is loaded.
pub fn allow_insecure_secret_files(allow: bool) {
    ALLOW_INSECURE_SECRET_FILES.store(allow, std::sync::atomic::Ordering::SeqCst);
}

/// A secret file other users can read (group or world read permission) is refused,
/// unless `--allow-insecure-secret-files`.
fn check_secret_file(path: &str) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(m) => m.permissions().mode() & 0o777,
            Err(e) => return Err(format!("cannot read the secret file {path}: {e}")),
        };
        if mode & 0o044 != 0
            && !ALLOW_INSECURE_SECRET_FILES.load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(format!(
                "the secret file {path} is readable by other users (mode {mode:o}); make it \
                 readable by its owner only (chmod 600; defaultMode 0400 for a Kubernetes \
                 secret volume), or pass --allow-insecure-secret-files"
            ));
        }
    }
    Ok(())
}

/// A property value that says where a secret is kept instead of holding it:
/// `${env:NAME}`, an environment variable, or `${file:/path}`, a file's content without
/// its trailing newline (as Kubernetes mounts secrets). `Ok(None)` for a plain value.
/// Errors name the variable or the file, never a value.
pub fn resolve_reference(
    value: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let Some(inner) = value
        .trim()
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
    else {
        return Ok(None);
    };
    if let Some(name) = inner.strip_prefix("env:") {
        if name.is_empty() {
            return Err("`${env:}` names no environment variable".into());
        }
        return env(name)
            .map(Some)
            .ok_or_else(|| format!("environment variable {name} (from `{value}`) is not set"));
    }
    if let Some(path) = inner.strip_prefix("file:") {
        check_secret_file(path)?;
        return match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = text.strip_suffix('\n').unwrap_or(&text);
                Ok(Some(text.strip_suffix('\r').unwrap_or(text).to_string()))
            }
            Err(e) => Err(format!("cannot read the secret file {path}: {e}")),
        };
    }
    Err(format!(
        "`{value}` is neither `${{env:NAME}}` nor `${{file:/path}}`"
    ))
}

/// The properties librdkafka itself treats as sensitive (`_RK_SENSITIVE` in
/// rdkafka_conf.c, librdkafka 2.12): it never prints their values either.
pub const LIBRDKAFKA_SENSITIVE: &[&str] = &[
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl_key",
    "ssl.ca.pem",
    "ssl.keystore.password",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
];

/// Property names whose values are never printed: librdkafka's sensitive properties, and
/// any name that looks like one (a Java `sasl.jaas.config`, a `…passphrase`, a token).
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    LIBRDKAFKA_SENSITIVE.contains(&n.as_str())
        || [
            "password",
            "passphrase",
            "secret",
            "key.pem",
            "token",
            "sasl.jaas",
            "credential",
        ]
        .iter()
        .any(|s| n.contains(s))
        || n.ends_with(".key")
}

/// Every pair of topics that would be the same topic: two purposes (billing records —
/// location, IMEI, bill data — would reach security readers, and one retention would
/// apply to both), a purpose and the dead-letter topic, an output and an input (the
/// filter would read its own output). Effective names are compared, defaults included.
fn topic_collisions(raw: &RawConfig) -> Vec<(String, String)> {
    let mut named: Vec<(String, String)> = Vec::new();
    for (purpose, section, default) in [
        ("billing", raw.purposes.billing.as_ref(), "cdr.billing"),
        ("security", raw.purposes.security.as_ref(), "cdr.security"),
    ] {
        if let Some(section) = section {
            let topic = section.topic.clone().unwrap_or_else(|| default.into());
            named.push((format!("purposes.{purpose}.topic"), topic));
        }
    }
    named.push(("dead_letter.topic".into(), raw.dead_letter.topic.clone()));
    let outputs = named.len();
    for (i, t) in raw.input.topics.iter().enumerate() {
        named.push((format!("input.topics[{i}]"), t.clone()));
    }
    let mut problems = Vec::new();
    for (i, (key_a, topic_a)) in named.iter().enumerate().take(outputs) {
        for (key_b, topic_b) in &named[i + 1..] {
            if topic_a != topic_b {
                continue;
            }
            let why = if key_b.starts_with("input.") {
                "the filter would read its own output"
            } else if key_b == "dead_letter.topic" {
                "dead letters and filtered records must not share a topic or its retention"
            } else {
                "each purpose needs its own topic: one purpose's records would reach the other's \
                 readers and share its retention"
            };
            problems.push((key_a.clone(), format!("`{topic_a}` is also {key_b}: {why}")));
        }
    }
    problems
}

fn check_removals(
    version: policy::Version,
    legal: LegalPurpose,
    section: &PurposeSection,
    problem: &mut impl FnMut(&str, String),
) -> Vec<&'static table::FieldSpec> {
    let name = legal.purpose.name();
    let mut removed = Vec::new();
    for (i, field) in section.remove.iter().enumerate() {
        let key = format!("purposes.{name}.remove[{i}]");
        let rows = version.select(field);
        if rows.is_empty() {
            problem(
                &key,
                format!("`{field}` is not a field or group of the table (see `policy show`)"),
            );
            continue;
        }
        for row in rows {
            if row.required {
                problem(
                    &key,
                    format!(
                        "`{}` is required by the output contract and cannot be removed",
                        row.path
                    ),
                );
            } else if !removed
                .iter()
                .any(|r: &&table::FieldSpec| r.path == row.path)
            {
                removed.push(row);
            }
        }
    }
    removed
}

/// Checks `keep`: a field the text removes for this purpose is refused (a configuration
/// narrows, never widens); an optional field (rule O) is turned on — the returned rows.
/// Naming a field the table keeps anyway only documents the operator's expectation.
fn check_keeps(
    version: policy::Version,
    legal: LegalPurpose,
    section: &PurposeSection,
    removed: &[&'static table::FieldSpec],
    problem: &mut impl FnMut(&str, String),
) -> Vec<&'static table::FieldSpec> {
    let name = legal.purpose.name();
    let columns = policy::columns_of(legal.purpose);
    let mut kept = Vec::new();
    for (i, field) in section.keep.iter().enumerate() {
        let key = format!("purposes.{name}.keep[{i}]");
        let rows = version.select(field);
        if rows.is_empty() {
            problem(
                &key,
                format!("`{field}` is not a field or group of the table (see `policy show`)"),
            );
            continue;
        }
        for row in rows {
            let allowed = columns.iter().any(|c| row.cell(*c).rule.allows());
            if !allowed {
                let basis = row.cell(columns[0]).basis;
                problem(
                    &key,
                    format!(
                        "`{}` may not be kept for {name}: {basis} ({}). \
                         A configuration may narrow the table, never widen it",
                        row.path,
                        version.name()
                    ),
                );
            } else if removed.iter().any(|r| r.path == row.path) {
                problem(&key, format!("`{}` is both kept and removed", row.path));
            } else if columns
                .iter()
                .any(|c| row.cell(*c).rule == table::Rule::Optional)
                && !kept.iter().any(|k: &&table::FieldSpec| k.path == row.path)
            {
                kept.push(row);
            }
        }
    }
    kept
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

#[cfg(test)]
mod tests;
