//! Room: validation — a [`RawConfig`] becomes [`Settings`], every problem reported at
//! once with its key. One function per section (in [`kafka`], [`sections`],
//! [`purposes`]), the cross-section checks here (topic collisions, what the broker can
//! keep), and the one duration rule, [`duration`].
//!
//! Sections are checked in this order, so that is the order problems are listed in:
//! kafka, input, output, policy, purposes, topic collisions, dead_letter, topics,
//! delivery, metrics, then the segment bounds.

mod brokers;
mod kafka;
mod purposes;
mod sections;
mod topics;

use super::error::{ConfigError, Problems};
use super::raw::RawConfig;
use super::secrets::Sources;
use super::{DeadLetterSettings, PurposeSettings, Settings};
use crate::policy::Policy;
use crate::retention::{LegalTime, Ttl};
use chrono::Duration;

/// Validates a parsed configuration with the given sources, reporting every problem at
/// once.
pub(super) fn validate(raw: RawConfig, sources: &Sources<'_>) -> Result<Settings, ConfigError> {
    let mut p = Problems::default();
    let kafka = kafka::kafka(&raw.kafka, sources, &mut p);
    sections::input(&raw.input, &mut p);
    let output_schema_id = sections::output(&raw.output, &mut p);
    let policy = purposes::policy(&raw.policy, &mut p);
    // Checks that need them read the defaults when they are refused (already reported).
    let legal = policy.legal_time.unwrap_or_default();
    let mut effective = raw.clone();
    let purposes = purposes::purposes(
        &raw.purposes,
        &mut effective.purposes,
        policy.version.unwrap_or(crate::policy::Version::IN_FORCE),
        legal,
        &mut p,
    );
    for (key, reason) in topics::collisions(&raw) {
        p.add(&key, reason);
    }
    let dead_letter_ttl =
        sections::dead_letter(&raw.dead_letter, &purposes.settings, legal, &mut p);
    let topics = sections::topics(&raw.topics, &mut p);
    let delivery = sections::delivery(
        &raw.delivery,
        &raw.kafka.group_id,
        sources.hostname.as_deref(),
        &mut p,
    );
    let metrics_listen = sections::metrics(&raw.metrics, &mut p);
    if let (Some(skew), Some(dead_letter_ttl)) = (policy.max_clock_skew, dead_letter_ttl) {
        segment_bounds(&purposes.settings, dead_letter_ttl, skew, legal, &mut p);
    }
    p.into_result()?;

    let delivery = delivery.expect("checked");
    Ok(Settings {
        kafka,
        input_topics: raw.input.topics,
        input_format: raw.input.format,
        input_schema_ids: raw.input.schema_ids,
        output_format: raw.output.format,
        output_schema_id,
        purposes: purposes.settings,
        dead_letter: DeadLetterSettings {
            topic: raw.dead_letter.topic,
            mode: raw.dead_letter.mode,
            ttl: Ttl::Fixed(dead_letter_ttl.expect("checked")),
        },
        topics: topics.expect("checked"),
        guarantee: raw.delivery.guarantee,
        max_in_flight: raw.delivery.max_in_flight,
        shutdown_timeout: delivery.shutdown_timeout,
        transactional_id: delivery.transactional_id,
        transaction_interval: delivery.transaction_interval,
        commit_interval: delivery.commit_interval,
        metrics_listen: metrics_listen.expect("checked"),
        policy: Policy {
            version: policy.version.expect("checked"),
            legal_time: policy.legal_time.expect("checked"),
            purposes: purposes.compiled,
            max_clock_skew: policy.max_clock_skew.expect("checked"),
        },
        effective,
    })
}

/// The one duration rule: `text` must be a fixed duration (not a calendar unit) of at
/// least `min` and, with `max`, at most `max`; otherwise a problem for `key` saying it
/// must be `expected` (a parse error is told as the parser tells it).
fn duration(
    key: &str,
    text: &str,
    min: Duration,
    max: Option<Duration>,
    expected: &str,
    p: &mut Problems,
) -> Option<Duration> {
    match Ttl::parse(text) {
        Ok(Ttl::Fixed(d)) if d >= min && max.is_none_or(|max| d <= max) => Some(d),
        Ok(_) => {
            p.add(key, format!("must be {expected}"));
            None
        }
        Err(e) => {
            p.add(key, format!("{e}: must be {expected}"));
            None
        }
    }
}

/// [`duration`] as the standard library's, for timers.
fn std_duration(
    key: &str,
    text: &str,
    min: Duration,
    max: Option<Duration>,
    expected: &str,
    p: &mut Problems,
) -> Option<std::time::Duration> {
    duration(key, text, min, max, expected, p).and_then(|d| d.to_std().ok())
}

/// Every output topic's ttl must be meetable by some segment size, with Kafka's default
/// broker settings (the running filter re-checks with the broker's own).
fn segment_bounds(
    purposes: &[PurposeSettings],
    dead_letter_ttl: Duration,
    skew: Duration,
    legal: LegalTime,
    p: &mut Problems,
) {
    let broker = crate::retention::bound::BrokerSettings::default();
    let limits = purposes
        .iter()
        .map(|s| {
            (
                format!("purposes.{}.ttl", s.purpose.name()),
                s.ttl.shortest(legal).num_milliseconds(),
            )
        })
        .chain(std::iter::once((
            "dead_letter.ttl".to_string(),
            dead_letter_ttl.num_milliseconds(),
        )));
    for (key, limit) in limits {
        if let Err(e) =
            crate::retention::bound::desired(limit, &broker, skew.num_milliseconds(), false)
        {
            p.add(&key, e.to_string());
        }
    }
}
