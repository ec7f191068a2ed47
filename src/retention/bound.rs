//! The residency bound: how long a record can live in a topic at worst, and the topic
//! settings that keep that bound under the purpose's ttl. Pure arithmetic, no I/O.
//!
//! Kafka deletes whole segments, by the timestamp of their newest record, on a periodic
//! check. A record therefore lives at most
//!
//! ```text
//! retention.ms + segment.ms + log.retention.check.interval.ms + file.delete.delay.ms
//!   (+ remote.log.manager.task.interval.ms with tiered storage) + the allowed clock skew
//! ```
//!
//! after its timestamp (its `event_time`): `segment.ms` because the segment it is in only
//! rolls (and so becomes deletable) that long after it opened; the check interval because
//! deletion waits for the next check; the delete delay because a deleted segment is
//! removed from disk that much later; the skew because an `event_time` may be that far
//! ahead of the broker's clock.

use std::collections::BTreeMap;

/// Kafka's default `log.retention.check.interval.ms` (5 minutes), used when the broker's
/// value cannot be read.
pub const DEFAULT_CHECK_INTERVAL_MS: i64 = 300_000;
/// Kafka's default `file.delete.delay.ms` (1 minute).
pub const DEFAULT_FILE_DELETE_DELAY_MS: i64 = 60_000;
/// Kafka's default `remote.log.manager.task.interval.ms` (30 seconds).
pub const DEFAULT_REMOTE_TASK_INTERVAL_MS: i64 = 30_000;
/// The smallest segment the filter asks for (1 minute): smaller ones cost the broker
/// a file per minute per partition.
pub const MIN_SEGMENT_MS: i64 = 60_000;
/// The largest segment the filter asks for (1 day).
pub const MAX_SEGMENT_MS: i64 = 86_400_000;
/// The shortest retention the filter asks for (1 minute).
pub const MIN_RETENTION_MS: i64 = 60_000;

/// The broker-level settings that enter the bound, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSettings {
    pub check_interval_ms: i64,
    /// False when the broker did not return its configuration and Kafka's default is used.
    pub check_interval_from_broker: bool,
    pub remote_task_interval_ms: i64,
}

impl Default for BrokerSettings {
    /// Kafka's defaults: what the bound assumes when the broker's are unreadable.
    fn default() -> Self {
        BrokerSettings {
            check_interval_ms: DEFAULT_CHECK_INTERVAL_MS,
            check_interval_from_broker: false,
            remote_task_interval_ms: DEFAULT_REMOTE_TASK_INTERVAL_MS,
        }
    }
}

impl BrokerSettings {
    /// From a broker's DescribeConfigs entries; Kafka's defaults for what is missing.
    pub fn from_entries(entries: &BTreeMap<String, String>) -> BrokerSettings {
        // A negative interval is no interval Kafka accepts: taken as unbounded (the
        // verdict then says the ttl cannot be met), never as a shorter bound.
        let num = |k: &str| {
            entries
                .get(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .map(|v| if v < 0 { i64::MAX } else { v })
        };
        BrokerSettings {
            check_interval_ms: num("log.retention.check.interval.ms")
                .unwrap_or(DEFAULT_CHECK_INTERVAL_MS),
            check_interval_from_broker: num("log.retention.check.interval.ms").is_some(),
            remote_task_interval_ms: num("remote.log.manager.task.interval.ms")
                .unwrap_or(DEFAULT_REMOTE_TASK_INTERVAL_MS),
        }
    }
}

/// The topic settings that enter the bound, as a topic has them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicSettings {
    /// `retention.ms`; -1 (infinite) or absent means no bound.
    pub retention_ms: Option<i64>,
    pub segment_ms: Option<i64>,
    pub file_delete_delay_ms: Option<i64>,
    pub remote_storage: bool,
    /// `cleanup.policy` without `delete` (`compact`): records are never deleted by time,
    /// whatever `retention.ms` says.
    pub compact_only: bool,
}

impl TopicSettings {
    pub fn from_entries(entries: &BTreeMap<String, String>) -> TopicSettings {
        let num = |k: &str| entries.get(k).and_then(|v| v.parse::<i64>().ok());
        TopicSettings {
            retention_ms: num("retention.ms"),
            segment_ms: num("segment.ms"),
            file_delete_delay_ms: num("file.delete.delay.ms"),
            remote_storage: entries
                .get("remote.storage.enable")
                .is_some_and(|v| v == "true"),
            // A list (`compact,delete`); absent, the broker's default (`delete`).
            compact_only: entries.get("cleanup.policy").is_some_and(|v| {
                !v.trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .any(|p| p.trim().eq_ignore_ascii_case("delete"))
            }),
        }
    }
}

/// The worst-case residency in ms, or `None` when records are never deleted by time.
pub fn residency_bound_ms(
    topic: &TopicSettings,
    broker: &BrokerSettings,
    skew_ms: i64,
) -> Option<i64> {
    if topic.compact_only {
        return None;
    }
    let retention = topic.retention_ms.filter(|r| *r >= 0)?;
    // Kafka's default segment.ms is 7 days.
    let segment = topic.segment_ms.unwrap_or(7 * 86_400_000);
    let delete_delay = topic
        .file_delete_delay_ms
        .unwrap_or(DEFAULT_FILE_DELETE_DELAY_MS);
    let remote = if topic.remote_storage {
        broker.remote_task_interval_ms
    } else {
        0
    };
    retention
        .checked_add(segment)?
        .checked_add(broker.check_interval_ms)?
        .checked_add(delete_delay)?
        .checked_add(remote)?
        .checked_add(skew_ms)
}

/// The settings the filter wants on a topic whose records must be gone within `limit_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub retention_ms: i64,
    pub segment_ms: i64,
    pub file_delete_delay_ms: i64,
    /// `message.timestamp.after.max.ms`: future timestamps would extend a record's life.
    pub after_max_ms: i64,
}

/// Why no topic settings can meet a ttl.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a ttl of {limit_ms} ms cannot be met: log.retention.check.interval.ms {check_ms} + \
     file.delete.delay.ms {delete_ms} + clock skew {skew_ms} + the smallest segment.ms \
     {min_segment} + the smallest retention.ms {min_retention} = {needed} ms > {limit_ms} ms"
)]
pub struct Unmeetable {
    pub limit_ms: i64,
    pub check_ms: i64,
    pub delete_ms: i64,
    pub skew_ms: i64,
    pub min_segment: i64,
    pub min_retention: i64,
    pub needed: i64,
}

/// The desired settings for a topic whose records must be gone within `limit_ms` of their
/// timestamp: a segment of a fiftieth of the ttl (between 1 minute and 1 day), and the
/// retention that leaves room for segment, check, delete delay and skew.
pub fn desired(
    limit_ms: i64,
    broker: &BrokerSettings,
    skew_ms: i64,
    remote: bool,
) -> Result<Desired, Unmeetable> {
    let delete_ms = DEFAULT_FILE_DELETE_DELAY_MS;
    let remote_ms = if remote {
        broker.remote_task_interval_ms
    } else {
        0
    };
    // Broker-supplied values can be absurd: an overflow is a verdict (unmeetable), never a
    // panic or a wrap.
    let overhead = broker
        .check_interval_ms
        .checked_add(delete_ms)
        .and_then(|o| o.checked_add(skew_ms))
        .and_then(|o| o.checked_add(remote_ms))
        .unwrap_or(i64::MAX);
    let needed = overhead
        .checked_add(MIN_SEGMENT_MS)
        .and_then(|n| n.checked_add(MIN_RETENTION_MS))
        .unwrap_or(i64::MAX);
    if needed > limit_ms || broker.check_interval_ms < 0 || remote_ms < 0 {
        return Err(Unmeetable {
            limit_ms,
            check_ms: broker.check_interval_ms,
            delete_ms,
            skew_ms,
            min_segment: MIN_SEGMENT_MS,
            min_retention: MIN_RETENTION_MS,
            needed,
        });
    }
    let segment_ms = (limit_ms / 50)
        .clamp(MIN_SEGMENT_MS, MAX_SEGMENT_MS)
        .min(limit_ms - overhead - MIN_RETENTION_MS);
    Ok(Desired {
        retention_ms: limit_ms - overhead - segment_ms,
        segment_ms,
        file_delete_delay_ms: delete_ms,
        after_max_ms: skew_ms,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn absurd_broker_values_are_a_verdict_not_a_panic() {
        let day = 86_400_000;
        for value in ["9223372036854775807", "9223372036854000000", "-1"] {
            let entries = BTreeMap::from([
                (
                    "log.retention.check.interval.ms".to_string(),
                    value.to_string(),
                ),
                (
                    "remote.log.manager.task.interval.ms".to_string(),
                    value.to_string(),
                ),
            ]);
            let broker = BrokerSettings::from_entries(&entries);
            for remote in [false, true] {
                let e = desired(365 * day, &broker, 300_000, remote).unwrap_err();
                assert!(e.needed > 365 * day, "{value}: {e}");
            }
            let topic = TopicSettings {
                retention_ms: Some(day),
                segment_ms: Some(day),
                file_delete_delay_ms: None,
                remote_storage: true,
                compact_only: false,
            };
            assert_eq!(
                residency_bound_ms(&topic, &broker, 300_000),
                None,
                "{value}"
            );
        }
    }

    use super::*;

    const DAY: i64 = 86_400_000;
    const SKEW: i64 = 300_000;

    #[test]
    fn the_desired_settings_meet_the_limit_exactly() {
        let broker = BrokerSettings::default();
        for limit in [365 * DAY, 89 * DAY, 7 * DAY, DAY, 3_600_000] {
            let d = desired(limit, &broker, SKEW, false).unwrap();
            let topic = TopicSettings {
                retention_ms: Some(d.retention_ms),
                segment_ms: Some(d.segment_ms),
                file_delete_delay_ms: Some(d.file_delete_delay_ms),
                remote_storage: false,
                compact_only: false,
            };
            assert_eq!(
                residency_bound_ms(&topic, &broker, SKEW),
                Some(limit),
                "{limit}"
            );
            assert!(d.segment_ms >= MIN_SEGMENT_MS && d.segment_ms <= MAX_SEGMENT_MS);
            assert!(d.retention_ms >= MIN_RETENTION_MS);
        }
    }

    #[test]
    fn billing_365_days_arithmetic() {
        let d = desired(365 * DAY, &BrokerSettings::default(), SKEW, false).unwrap();
        assert_eq!(
            d.segment_ms, DAY,
            "a fiftieth of a year is more than a day: capped"
        );
        assert_eq!(d.retention_ms, 364 * DAY - 300_000 - 60_000 - 300_000);
        assert_eq!(d.after_max_ms, SKEW);
    }

    #[test]
    fn kafka_defaults_are_unbounded_or_far_too_long() {
        let broker = BrokerSettings::default();
        // retention.ms = -1: never deleted by time.
        let infinite = TopicSettings {
            retention_ms: Some(-1),
            ..Default::default()
        };
        assert_eq!(residency_bound_ms(&infinite, &broker, SKEW), None);
        // The defaults (7 days retention, 7 days segments) live up to 14 days and more.
        let default = TopicSettings {
            retention_ms: Some(7 * DAY),
            ..Default::default()
        };
        assert_eq!(
            residency_bound_ms(&default, &broker, SKEW),
            Some(14 * DAY + 300_000 + 60_000 + SKEW)
        );
    }

    #[test]
    fn the_broker_check_interval_counts_and_falls_back_to_the_default() {
        let mut entries = BTreeMap::new();
        let fallback = BrokerSettings::from_entries(&entries);
        assert_eq!(fallback.check_interval_ms, DEFAULT_CHECK_INTERVAL_MS);
        assert!(!fallback.check_interval_from_broker);
        entries.insert(
            "log.retention.check.interval.ms".to_string(),
            "60000".to_string(),
        );
        let read = BrokerSettings::from_entries(&entries);
        assert_eq!(read.check_interval_ms, 60_000);
        assert!(read.check_interval_from_broker);
        let t = TopicSettings {
            retention_ms: Some(DAY),
            segment_ms: Some(DAY),
            ..Default::default()
        };
        assert_eq!(
            residency_bound_ms(&t, &fallback, 0).unwrap()
                - residency_bound_ms(&t, &read, 0).unwrap(),
            240_000
        );
        // A longer check interval shortens the desired retention by as much.
        let d1 = desired(89 * DAY, &read, SKEW, false).unwrap();
        let d2 = desired(89 * DAY, &fallback, SKEW, false).unwrap();
        assert_eq!(d1.retention_ms - d2.retention_ms, 240_000);
    }

    #[test]
    fn tiered_storage_counts_in_the_bound() {
        let broker = BrokerSettings::default();
        let mut t = TopicSettings {
            retention_ms: Some(DAY),
            segment_ms: Some(DAY),
            ..Default::default()
        };
        let local = residency_bound_ms(&t, &broker, 0).unwrap();
        t.remote_storage = true;
        assert_eq!(
            residency_bound_ms(&t, &broker, 0).unwrap() - local,
            DEFAULT_REMOTE_TASK_INTERVAL_MS
        );
        let d = desired(7 * DAY, &broker, SKEW, true).unwrap();
        t = TopicSettings {
            retention_ms: Some(d.retention_ms),
            segment_ms: Some(d.segment_ms),
            file_delete_delay_ms: Some(d.file_delete_delay_ms),
            remote_storage: true,
            compact_only: false,
        };
        assert_eq!(residency_bound_ms(&t, &broker, SKEW), Some(7 * DAY));
    }

    #[test]
    fn an_unmeetable_ttl_is_explained() {
        let e = desired(600_000, &BrokerSettings::default(), SKEW, false).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.needed, 300_000 + 60_000 + 300_000 + 60_000 + 60_000);
        assert!(msg.contains("780000 ms > 600000 ms"), "{msg}");
        assert!(
            msg.contains("log.retention.check.interval.ms 300000"),
            "{msg}"
        );
    }
}
