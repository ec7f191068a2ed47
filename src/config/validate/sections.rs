//! Room: validation of the plain sections — `[input]`, `[output]`, `[dead_letter]`,
//! `[topics]`, `[delivery]`, `[metrics]` — one function each.

use super::topics::check_topic_name;
use super::{duration, std_duration};
use crate::config::error::Problems;
use crate::config::raw::{
    DeadLetterSection, DeliverySection, InputSection, MetricsSection, OutputFraming, OutputSection,
    TopicsSection,
};
use crate::config::{PurposeSettings, TopicsSettings};
use crate::decode::InputFormat;
use crate::retention::{LegalTime, Ttl};
use chrono::Duration;
use std::net::SocketAddr;

/// Checks `[input]`.
pub(super) fn input(raw: &InputSection, p: &mut Problems) {
    if raw.topics.is_empty() {
        p.add("input.topics", "must list at least one topic");
    }
    for (i, t) in raw.topics.iter().enumerate() {
        if let Err(e) = check_topic_name(t) {
            p.add(&format!("input.topics[{i}]"), e);
        }
    }
    if !raw.schema_ids.is_empty() && matches!(raw.format, InputFormat::Json | InputFormat::Protobuf)
    {
        p.add(
            "input.schema_ids",
            "applies to Schema Registry framed records only: input.format must be \
             \"auto\", \"confluent-protobuf\" or \"confluent-json\"",
        );
    }
}

/// Checks `[output]`; the Schema Registry id framed outputs carry.
pub(super) fn output(raw: &OutputSection, p: &mut Problems) -> Option<u32> {
    match (raw.framing, raw.schema_id) {
        (OutputFraming::Confluent, None) => {
            p.add(
                "output.schema_id",
                "is required with output.framing = \"confluent\": the id the Schema \
                 Registry gave the output schema (see `cdr-purpose-filter schema`)",
            );
            None
        }
        (OutputFraming::None, Some(_)) => {
            p.add(
                "output.schema_id",
                "is only used with output.framing = \"confluent\"",
            );
            None
        }
        (OutputFraming::Confluent, Some(id)) if id > i32::MAX as u32 => {
            p.add(
                "output.schema_id",
                format!("{id} is not a Schema Registry id (at most {})", i32::MAX),
            );
            None
        }
        (_, id) => id,
    }
}

/// Checks `[dead_letter]`: its topic, and a ttl no longer than any purpose's (dead
/// letters must not outlive the records they point to); the ttl.
pub(super) fn dead_letter(
    raw: &DeadLetterSection,
    purposes: &[PurposeSettings],
    legal: LegalTime,
    p: &mut Problems,
) -> Option<Duration> {
    if let Err(e) = check_topic_name(&raw.topic) {
        p.add("dead_letter.topic", e);
    }
    let min = Duration::minutes(1);
    let ttl = duration(
        "dead_letter.ttl",
        &raw.ttl,
        min,
        None,
        &format!("a fixed duration of at least {}", Ttl::Fixed(min)),
        p,
    )?;
    for s in purposes {
        if ttl > s.ttl.shortest(legal) {
            p.add(
                "dead_letter.ttl",
                format!(
                    "{} is longer than the {} ttl {}: dead letters must not outlive the records they point to",
                    Ttl::Fixed(ttl),
                    s.purpose.name(),
                    s.ttl
                ),
            );
        }
    }
    Some(ttl)
}

/// Checks `[topics]`.
pub(super) fn topics(raw: &TopicsSection, p: &mut Problems) -> Option<TopicsSettings> {
    let min = Duration::seconds(10);
    let check_interval = std_duration(
        "topics.check_interval",
        &raw.check_interval,
        min,
        None,
        &format!("a fixed duration of at least {}", Ttl::Fixed(min)),
        p,
    );
    if raw.partitions < 1 {
        p.add("topics.partitions", "must be at least 1");
    }
    if raw.replication_factor == 0 || raw.replication_factor < -1 {
        p.add(
            "topics.replication_factor",
            "must be -1 (the broker's default) or at least 1",
        );
    }
    Some(TopicsSettings {
        mode: raw.mode,
        partitions: raw.partitions,
        replication_factor: raw.replication_factor,
        check_interval: check_interval?,
    })
}

/// `[delivery]`'s durations and transactional id.
pub(super) struct Delivery {
    pub shutdown_timeout: std::time::Duration,
    pub transactional_id: String,
    pub transaction_interval: std::time::Duration,
    pub commit_interval: std::time::Duration,
}

/// Checks `[delivery]`; the default transactional id is `<group_id>-<hostname>`.
pub(super) fn delivery(
    raw: &DeliverySection,
    group_id: &str,
    hostname: Option<&str>,
    p: &mut Problems,
) -> Option<Delivery> {
    let one_ms = Duration::milliseconds(1);
    let shutdown_timeout = std_duration(
        "delivery.shutdown_timeout",
        &raw.shutdown_timeout,
        one_ms,
        None,
        "a fixed duration longer than 0, e.g. \"30s\"",
        p,
    );
    let transaction_interval = std_duration(
        "delivery.transaction_interval",
        &raw.transaction_interval,
        one_ms,
        Some(Duration::seconds(60)),
        "a fixed duration between 1ms and 60s, e.g. \"100ms\"",
        p,
    );
    let commit_interval = std_duration(
        "delivery.commit_interval",
        &raw.commit_interval,
        one_ms,
        Some(Duration::seconds(300)),
        "a fixed duration between 1ms and 300s, e.g. \"1s\"",
        p,
    );
    let transactional_id = raw
        .transactional_id
        .clone()
        .unwrap_or_else(|| format!("{group_id}-{}", hostname.unwrap_or("instance")));
    if transactional_id.trim().is_empty() {
        p.add("delivery.transactional_id", "must not be empty");
    }
    if raw.max_in_flight == 0 {
        p.add("delivery.max_in_flight", "must be at least 1");
    }
    Some(Delivery {
        shutdown_timeout: shutdown_timeout?,
        transactional_id,
        transaction_interval: transaction_interval?,
        commit_interval: commit_interval?,
    })
}

/// Checks `[metrics]`; the address to listen on.
pub(super) fn metrics(raw: &MetricsSection, p: &mut Problems) -> Option<SocketAddr> {
    match raw.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(e) => {
            p.add(
                "metrics.listen",
                format!("`{}` is not an address:port ({e})", raw.listen),
            );
            None
        }
    }
}
