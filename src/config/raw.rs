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
///
/// TOML; every key can be overridden by an environment variable
/// `CDR_PURPOSE_FILTER_<SECTION>__<KEY>` (e.g. `CDR_PURPOSE_FILTER_PURPOSES__BILLING__TTL=180d`,
/// `CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS=broker:9092`). For a librdkafka property
/// whose name has dots, `_` stands for `.`:
/// `CDR_PURPOSE_FILTER_KAFKA__PROPERTIES__SASL_PASSWORD` sets `sasl.password`. Unknown keys
/// are errors; a problem from the environment names its variable (`(from environment
/// variable CDR_PURPOSE_FILTER_DELIVERY__MAX_IN_FLIGHT)`). `config check` prints the
/// effective configuration with secrets masked, and has librdkafka check every client
/// setting (a refused property: exit 2, named by the key and section it was set in —
/// `kafka.producer_properties."linger.ms" refused by librdkafka (librdkafka's name for it:
/// queue.buffering.max.ms): value out of range (allowed 0..900000); the value is not shown`). Masked: the
/// properties librdkafka itself treats as sensitive (`sasl.username`, `sasl.password`,
/// `sasl.oauthbearer.config`, `ssl.key.password`, `ssl.keystore.password`, `ssl.key.pem`,
/// ...), names that look like secrets (`…password`, `…passphrase`, `…secret`, `…token`,
/// `sasl.jaas.config`), and every value read from `${env:NAME}` or `${file:/path}` — also
/// in the client configuration logged at debug. A `${file:}` secret that other users can
/// read (group or world read permission) is refused, naming the file: make it owner-only
/// (`chmod 600`; `defaultMode: 0400` for a Kubernetes secret volume) or pass
/// `--allow-insecure-secret-files`. The annotated example is
/// [deploy/config.example.toml](../deploy/config.example.toml).
///
/// The file is optional: with neither `--config` nor `CDR_PURPOSE_FILTER_CONFIG`, the
/// configuration is the defaults plus the environment — a container needs no file:
///
/// ```sh
/// CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS=kafka:9092 \
/// CDR_PURPOSE_FILTER_KAFKA__GROUP_ID=12345 \
/// CDR_PURPOSE_FILTER_PURPOSES__BILLING__TOPIC=cdr.billing \
/// CDR_PURPOSE_FILTER_PURPOSES__SECURITY__TTL=88d \
/// CDR_PURPOSE_FILTER_INPUT__TOPICS='["cdr.raw"]' \
/// CDR_PURPOSE_FILTER_KAFKA__CONSUMER_PROPERTIES__FETCH_WAIT_MAX_MS=100 \
/// CDR_PURPOSE_FILTER_METRICS__LISTEN=0.0.0.0:9898 \
/// cdr-purpose-filter run
/// ```
///
/// A value stays a string unless the key wants a number, a boolean or a list (written as
/// TOML: `'["a", "b"]'`): `GROUP_ID=12345` is the group `"12345"`. Setting any key of a
/// purpose (`..._PURPOSES__BILLING__TOPIC`) enables that purpose. `kafka.consumer_properties`
/// and `kafka.producer_properties` follow the same `_` → `.` rule as `kafka.properties`
/// (`CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__LINGER_MS=5` sets `linger.ms`).
///
/// Durations are a whole number and a unit: `ms`, `s`, `m` (or `min`), `h`, `d`, `w`;
/// retentions (`ttl`) also take the calendar units `mo` and `y`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// The Kafka clients: brokers, consumer group, librdkafka properties.
    pub kafka: KafkaSection,
    /// What the filter consumes.
    pub input: InputSection,
    /// How the output values are written.
    pub output: OutputSection,
    /// The purposes the law allows, one section each; a purpose without a section is off.
    pub purposes: PurposesSection,
    /// Where records the filter cannot forward go, and how.
    pub dead_letter: DeadLetterSection,
    /// The output topics' settings, which make the broker delete every record before its
    /// legal limit (see [retention.md](retention.md)).
    pub topics: TopicsSection,
    /// The delivery guarantee and its bounds (see [guarantees.md](guarantees.md)).
    pub delivery: DeliverySection,
    /// The HTTP endpoints of `run`.
    pub metrics: MetricsSection,
    /// The text of the law applied, and how time is read.
    pub policy: PolicySection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSection {
    /// The brokers, comma-separated: `host`, `host:port`, `[ipv6]:port` or `[ipv6]` (port
    /// 9092 when none is given), optionally prefixed by `PLAINTEXT://`, `SSL://`,
    /// `SASL_PLAINTEXT://` or `SASL_SSL://` (which must be the clients'
    /// `security.protocol`). A port that is not a number from 1 to 65535, another prefix,
    /// an unbracketed IPv6 address, a host name with characters other than letters,
    /// digits, `.`, `-`, `_`, an empty entry or host, or `user:password@` (not echoed:
    /// credentials go in `sasl.*`) is refused, naming the entry (librdkafka would read
    /// `host:abc` as port 0).
    ///
    /// Example: `"broker-1:9092,broker-2:9092"`
    pub bootstrap_servers: String,
    /// The consumer group; run more instances in the same group to scale out.
    ///
    /// Example: `"cdr-purpose-filter-paris"`
    pub group_id: String,
    /// Any librdkafka property, passed through to every client (TLS, SASL/SCRAM,
    /// timeouts). A value may be `${env:NAME}` (an environment variable) or
    /// `${file:/path}` (a file's content without its trailing newline: a mounted secret),
    /// read once at start. Set by the filter unless given here (or in a client's own
    /// section; `config check` lists those in force): `socket.timeout.ms` 5000,
    /// `topic.metadata.refresh.interval.ms` 10000, and for the consumer
    /// `session.timeout.ms` 10000 — a frozen broker turns `/readyz` 503 within seconds,
    /// a created input topic is consumed within about 10 s (docs/runbook.md). The
    /// properties the filter owns (`enable.auto.commit`,
    /// `enable.auto.offset.store`, `enable.idempotence`, `enable.gapless.guarantee`,
    /// `transactional.id`, `isolation.level`, `group.id`, `bootstrap.servers`) are refused.
    ///
    /// Example: `{ "security.protocol" = "SASL_SSL" }`
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties for the consumer only. Set by the filter unless given here:
    /// `fetch.queue.backoff.ms` 20 (librdkafka's 1,000 ms stalls a partition whose queue
    /// reached its bound), and at least once `queued.max.messages.kbytes` 16384 (bounded
    /// memory).
    ///
    /// Default: `{}`
    /// Example: `{ "fetch.wait.max.ms" = "100" }`
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub consumer_properties: BTreeMap<String, String>,
    /// librdkafka properties for the producer only (`linger.ms`, `compression.type`, ...).
    /// Set by the filter unless given here (at least once): `message.timeout.ms` 0
    /// (retried until delivered), `queue.buffering.max.kbytes` 32768 (bounded memory).
    ///
    /// Default: `{}`
    /// Example: `{ "compression.type" = "zstd" }`
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
    /// The input topics.
    ///
    /// Example: `["cdr.raw.voice", "cdr.raw.data"]`
    pub topics: Vec<String>,
    /// The format of the input values: `json`, `protobuf`, `confluent-protobuf`,
    /// `confluent-json` (the Schema Registry wire format), or `auto` (per record: a JSON
    /// object starts with `{`, a framed record with the magic byte `0x00`, anything else
    /// is protobuf).
    ///
    /// Example: `"confluent-protobuf"`
    pub format: InputFormat,
    /// Schema Registry ids accepted in framed records; empty: any. A framed record with
    /// another id is dead-lettered `unexpected_schema`, the id in the pointer. Refused
    /// with `json` and `protobuf`; records without a framing header are not concerned
    /// (`auto`).
    ///
    /// Default: `[]`
    /// Example: `[77, 78]`
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
    /// The format of the output values: `protobuf`, or `json` (canonical proto3 JSON).
    ///
    /// Example: `"json"`
    pub format: OutputFormat,
    /// `none`, or `confluent`: every value carries the Schema Registry prefix (the magic
    /// byte, `schema_id`, and for protobuf the message index of `CdrEvent`).
    ///
    /// Example: `"confluent"`
    pub framing: OutputFraming,
    /// The Schema Registry id of the output schema: required with
    /// `framing = "confluent"`, refused without it.
    ///
    /// Default: none
    /// Example: `77`
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
    /// Billing (R10-14 III, at most one year); omit the section to disable it. At least
    /// one purpose is required.
    ///
    /// Default: none (disabled)
    /// Example: `{ topic = "cdr.billing", ttl = "12mo" }`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<PurposeSection>,
    /// Network security (R10-14 IV, at most three months); omit the section to disable
    /// it. At least one purpose is required.
    ///
    /// Default: none (disabled)
    /// Example: `{ topic = "cdr.security", ttl = "3mo" }`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<PurposeSection>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PurposeSection {
    /// The purpose's output topic. Two purposes, the dead-letter topic and the inputs
    /// never share a topic: a collision is refused, naming both keys.
    ///
    /// Default: `"cdr.<purpose>"`: `"cdr.billing"`, `"cdr.security"`
    /// Example: `"cdr.billing.v2"`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// How long the purpose's records are kept (a duration, or calendar `mo`, `y`): the
    /// expiry written in each record and the topic's retention. Refused past the legal
    /// limit in legal time (`365d`, `89d` are refused in Paris time: use `12mo`, `3mo`,
    /// or `364d`, `88d`).
    ///
    /// Default: the legal limit in calendar units: `"12mo"` (billing), `"3mo"` (security)
    /// Example: `"180d"`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Fields (`terminal.imei`) or groups (`location`) removed on top of the legal table.
    ///
    /// Default: `[]`
    /// Example: `["terminal.imei", "location"]`
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Optional fields (verdict O) to keep, e.g. `["location"]` for the coordinates;
    /// naming a field the table keeps only documents it; refused when the text removes
    /// the field.
    ///
    /// Default: `[]`
    /// Example: `["location.latitude", "location.longitude"]`
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterSection {
    /// The dead-letter topic.
    ///
    /// Example: `"cdr.dead-letter.paris"`
    pub topic: String,
    /// `pointer`: a dead letter says where the record was and why, never its content;
    /// `payload` (explicit opt-in): the raw record as the value — a copy of raw personal
    /// data, so keep that topic's retention short.
    ///
    /// Example: `"payload"`
    pub mode: DeadLetterMode,
    /// The retention of dead letters (a duration); never longer than the shortest
    /// purpose's ttl.
    ///
    /// Example: `"2d"`
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
    /// What the filter does with the output topics' settings: `off`; `create` (create
    /// missing topics); `verify` (refuse to start unless every topic is compliant);
    /// `enforce` (create, and correct drifted settings). In every mode but `off` it
    /// re-checks them every `check_interval` while running.
    ///
    /// Example: `"verify"`
    pub mode: TopicsMode,
    /// Partitions of the topics the filter creates.
    ///
    /// Example: `12`
    pub partitions: i32,
    /// Replication factor of the topics the filter creates; -1: the broker's default.
    ///
    /// Example: `3`
    pub replication_factor: i32,
    /// How often the running filter re-checks the topics' settings (a duration).
    ///
    /// Example: `"1m"`
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
    /// `at-least-once` (an input offset is committed once every output of its record is
    /// acknowledged) or `exactly-once` (outputs and offsets commit in one transaction).
    ///
    /// Example: `"exactly-once"`
    pub guarantee: Guarantee,
    /// Input records in flight (sent, not yet acknowledged) before consuming pauses
    /// (back-pressure). One instance moves at most about this many records per produce
    /// round trip, and a round trip includes the producer's `linger.ms`: throughput ≤
    /// `max_in_flight` / (`linger.ms` + the broker's acknowledgement). Raise it when the
    /// consumer lag grows while the filter's CPU stays low (a distant or slow cluster, a
    /// longer `linger.ms`: at 100 ms and the default, at most about 100,000 records/s).
    /// Each record in flight holds its outputs in librdkafka's queue, about 2 KiB: peak RSS
    /// grew from 151 MiB at 2,000 to 173 at 10,000 and 207 at 50,000 (1,000,000 protobuf
    /// events; docs/performance.md has the measured pairs).
    ///
    /// Example: `20000`
    pub max_in_flight: usize,
    /// How long shutdown may take to drain, flush and commit on SIGTERM (a duration);
    /// past it the filter exits 1 saying what was not done.
    ///
    /// Example: `"60s"`
    pub shutdown_timeout: String,
    /// Exactly-once: the producer's `transactional.id`. Keep it stable per instance (the
    /// pod name of a StatefulSet) so that a restarted instance fences its previous
    /// incarnation.
    ///
    /// Default: `"<group_id>-<hostname>"`
    /// Example: `"cdr-purpose-filter-0"`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactional_id: Option<String>,
    /// Exactly-once: the longest a transaction stays open collecting records (a duration;
    /// at most `max_in_flight` records per transaction).
    ///
    /// Example: `"250ms"`
    pub transaction_interval: String,
    /// At-least-once: how often the offsets of acknowledged records are committed (a
    /// duration; also on revoke and at shutdown; librdkafka's auto-commit is off). A crash
    /// replays at most about this much input.
    ///
    /// Example: `"5s"`
    pub commit_interval: String,
}

impl Default for DeliverySection {
    fn default() -> Self {
        DeliverySection {
            guarantee: Guarantee::AtLeastOnce,
            max_in_flight: 10_000,
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
    /// The address of `/metrics`, `/healthz` and `/readyz` (`host:port`). In a container,
    /// listen on every interface, or the probes and scrapes from outside are refused.
    ///
    /// Example: `"0.0.0.0:9898"`
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
    /// The text applied: `R10-14/2021` (in force) or `R10-14/2012` (historical: records of
    /// 2012 – 20 October 2021, audits, replays; never on live traffic: it drops every
    /// communication from 21 October 2021 on, `not_in_force`); anything else is refused
    /// naming the known ones.
    ///
    /// Example: `"R10-14/2012"`
    pub version: String,
    /// The legal time zone (IANA name): a record's calendar limit is the earlier of the
    /// UTC and the local readings.
    ///
    /// Example: `"America/Cayenne"`
    pub time_zone: String,
    /// How far in the future an `event_time` may be (a duration) before the event is
    /// refused (`future_event_time`).
    ///
    /// Example: `"1m"`
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
