//! The admin side: the output topics (billing, security, dead letters) and the settings
//! that make the broker delete every record before its legal limit.
//!
//! [`bound`] holds the arithmetic; this module reads the topics and the broker
//! (DescribeConfigs), judges each topic, creates missing ones and corrects drift
//! (IncrementalAlterConfigs, never raising a retention), and re-checks periodically while
//! the filter runs.

pub mod alter;
mod inputs;
mod manage;
pub mod render;

pub use inputs::{watch_inputs, INPUT_CHECK_INTERVAL};
pub use manage::{apply, prepare, publish, watch};

/// The residency-bound arithmetic lives with the other retention arithmetic (row 0).
pub use crate::retention::bound;
/// How the filter manages its output topics: a retention setting (row 0).
pub use crate::retention::mode::{self, TopicsMode};

use crate::config::Settings;
use crate::kafka::{self, Context};
use bound::{BrokerSettings, Desired, TopicSettings};
use metrics::gauge;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::error::KafkaError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::telemetry::{COMPLIANT, RESIDENCY_BOUND};

const TIMEOUT: Duration = Duration::from_secs(30);
/// Settings this module reads from each topic.
const AFTER_MAX: &str = "message.timestamp.after.max.ms";

/// An output topic and the longest a record may live in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub topic: String,
    /// `billing`, `security` or `dead-letter`.
    pub role: &'static str,
    /// The purpose's ttl (dead letters: their own, capped by the shortest purpose), ms.
    pub limit_ms: i64,
}

/// `retention` bound for a ttl: a calendar ttl counts its shortest period in both readings
/// of the legal time (`3mo` in Paris: 88 days 23 hours).
pub fn ttl_ms(ttl: crate::retention::Ttl, legal: crate::retention::LegalTime) -> i64 {
    ttl.shortest(legal).num_milliseconds()
}

/// The topics the filter writes, with their limits.
pub fn targets(settings: &Settings) -> Vec<Target> {
    let mut t: Vec<Target> = settings
        .purposes
        .iter()
        .map(|p| Target {
            topic: p.topic.clone(),
            role: p.purpose.name(),
            limit_ms: ttl_ms(p.ttl, settings.policy.legal_time),
        })
        .collect();
    let shortest = t.iter().map(|t| t.limit_ms).min().unwrap_or(i64::MAX);
    t.push(Target {
        topic: settings.dead_letter.topic.clone(),
        role: "dead-letter",
        limit_ms: ttl_ms(settings.dead_letter.ttl, settings.policy.legal_time).min(shortest),
    });
    t
}

/// The clock skew counted in the bound, ms.
fn skew_ms(settings: &Settings) -> i64 {
    settings.policy.max_clock_skew.num_milliseconds()
}

/// One setting of one topic: what it is, what the filter wants, and whether it is fine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub setting: &'static str,
    pub current: Option<String>,
    pub desired: String,
    pub ok: bool,
}

/// The verdict on one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicReport {
    pub topic: String,
    pub role: &'static str,
    pub exists: bool,
    pub rows: Vec<Row>,
    /// Worst-case residency with the current settings (None: unbounded or missing).
    pub bound_ms: Option<i64>,
    pub limit_ms: i64,
    pub compliant: bool,
    /// The broker did not return `log.retention.check.interval.ms`: the bound assumes
    /// Kafka's default (5 minutes).
    pub check_interval_assumed: bool,
}

impl TopicReport {
    /// The settings that are wrong, for log lines.
    pub fn problems(&self) -> String {
        if !self.exists {
            return "missing".into();
        }
        let mut p: Vec<String> = self
            .rows
            .iter()
            .filter(|r| !r.ok)
            .map(|r| {
                format!(
                    "{}={} (want {})",
                    r.setting,
                    r.current.as_deref().unwrap_or("unset"),
                    r.desired
                )
            })
            .collect();
        match self.bound_ms {
            None => p.push("residency unbounded".into()),
            Some(b) if b > self.limit_ms => p.push(format!(
                "residency bound {b} ms > limit {} ms",
                self.limit_ms
            )),
            _ => {}
        }
        p.join(", ")
    }
}

/// What the broker holds: the broker's settings and each target's current configuration.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub broker: BrokerSettings,
    pub current: Vec<(Target, Option<BTreeMap<String, String>>)>,
}

/// Judges one topic.
pub fn evaluate(
    target: &Target,
    current: Option<&BTreeMap<String, String>>,
    broker: &BrokerSettings,
    skew_ms: i64,
) -> Result<TopicReport, bound::Unmeetable> {
    let remote = current
        .and_then(|c| c.get("remote.storage.enable"))
        .is_some_and(|v| v == "true");
    let want = bound::desired(target.limit_ms, broker, skew_ms, remote)?;
    let Some(cur) = current else {
        return Ok(missing_topic(target, &want, broker));
    };
    let settings = TopicSettings::from_entries(cur);
    let bound_ms = bound::residency_bound_ms(&settings, broker, skew_ms);
    let bound_ok = bound_ms.is_some_and(|b| b <= target.limit_ms);
    let rows = rows(cur, &want, bound_ok);
    let compliant = bound_ok && rows.iter().all(|r| r.ok);
    Ok(TopicReport {
        topic: target.topic.clone(),
        role: target.role,
        exists: true,
        rows,
        bound_ms,
        limit_ms: target.limit_ms,
        compliant,
        check_interval_assumed: !broker.check_interval_from_broker,
    })
}

/// The report of a topic that does not exist: every setting to create it with.
fn missing_topic(target: &Target, want: &Desired, broker: &BrokerSettings) -> TopicReport {
    TopicReport {
        topic: target.topic.clone(),
        role: target.role,
        exists: false,
        rows: desired_rows(want, true)
            .into_iter()
            .map(|(setting, desired)| Row {
                setting,
                current: None,
                desired,
                ok: false,
            })
            .collect(),
        bound_ms: None,
        limit_ms: target.limit_ms,
        compliant: false,
        check_interval_assumed: !broker.check_interval_from_broker,
    }
}

/// Each setting of an existing topic, current against desired. A setting beyond the
/// desired value is fine when the residency bound already meets the limit (`bound_ok`).
fn rows(cur: &BTreeMap<String, String>, want: &Desired, bound_ok: bool) -> Vec<Row> {
    let num = |k: &str| cur.get(k).and_then(|v| v.parse::<i64>().ok());
    let at_most = |k: &str, max: i64| num(k).is_some_and(|v| (0..=max).contains(&v));
    let mut rows = vec![
        Row {
            setting: "cleanup.policy",
            current: cur.get("cleanup.policy").cloned(),
            desired: "delete".into(),
            ok: cur.get("cleanup.policy").is_some_and(|v| v == "delete"),
        },
        Row {
            setting: "message.timestamp.type",
            current: cur.get("message.timestamp.type").cloned(),
            desired: "CreateTime".into(),
            // Absent means the broker default, which is CreateTime unless changed.
            ok: cur
                .get("message.timestamp.type")
                .is_none_or(|v| v == "CreateTime"),
        },
        Row {
            setting: "retention.ms",
            current: cur.get("retention.ms").cloned(),
            desired: want.retention_ms.to_string(),
            ok: bound_ok || at_most("retention.ms", want.retention_ms),
        },
        Row {
            setting: "segment.ms",
            current: cur.get("segment.ms").cloned(),
            desired: want.segment_ms.to_string(),
            ok: bound_ok || at_most("segment.ms", want.segment_ms),
        },
        Row {
            setting: "file.delete.delay.ms",
            current: cur.get("file.delete.delay.ms").cloned(),
            desired: want.file_delete_delay_ms.to_string(),
            ok: bound_ok
                || cur.get("file.delete.delay.ms").is_none()
                || at_most("file.delete.delay.ms", want.file_delete_delay_ms),
        },
    ];
    // Only brokers that know the setting (Kafka 3.6+) report it.
    if cur.contains_key(AFTER_MAX) {
        rows.push(Row {
            setting: AFTER_MAX,
            current: cur.get(AFTER_MAX).cloned(),
            desired: want.after_max_ms.to_string(),
            ok: at_most(AFTER_MAX, want.after_max_ms),
        });
    }
    rows
}

fn desired_rows(d: &Desired, with_after_max: bool) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("cleanup.policy", "delete".to_string()),
        ("message.timestamp.type", "CreateTime".to_string()),
        ("retention.ms", d.retention_ms.to_string()),
        ("segment.ms", d.segment_ms.to_string()),
        ("file.delete.delay.ms", d.file_delete_delay_ms.to_string()),
    ];
    if with_after_max {
        rows.push((AFTER_MAX, d.after_max_ms.to_string()));
    }
    rows
}

/// Topic settings as (name, value) pairs.
pub type ConfigPairs = Vec<(&'static str, String)>;

/// The desired configuration of every target, with Kafka's default broker settings (for
/// manifests rendered without a broker).
pub fn desired_configs(settings: &Settings) -> Result<Vec<(Target, ConfigPairs)>, TopicsError> {
    let broker = BrokerSettings::default();
    targets(settings)
        .into_iter()
        .map(|t| {
            let d = bound::desired(t.limit_ms, &broker, skew_ms(settings), false).map_err(|e| {
                TopicsError::Unmeetable {
                    topic: t.topic.clone(),
                    error: e,
                }
            })?;
            Ok((t, desired_rows(&d, true)))
        })
        .collect()
}

/// Why the topics could not be read or prepared.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("kafka admin client")]
    Client(#[source] kafka::ClientConfigError),
    #[error("cannot list topics")]
    Metadata(#[source] KafkaError),
    #[error(transparent)]
    Unreachable(#[from] kafka::reach::Unreachable),
    #[error("cannot read the configuration of {resource}: {error}")]
    Describe { resource: String, error: String },
    #[error("cannot create topic {topic}: {error}")]
    Create { topic: String, error: String },
    #[error("cannot correct topic settings: {0}")]
    Alter(String),
    #[error("topic {topic}: {error}")]
    Unmeetable {
        topic: String,
        error: bound::Unmeetable,
    },
    #[error("topics.mode = \"verify\" and the output topics are not compliant: {0}")]
    NotCompliant(String),
}

/// A refused client property or a retention the brokers cannot meet is the
/// configuration's to fix; the rest happened at run time.
impl crate::error::Classify for TopicsError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            TopicsError::Client(_) | TopicsError::Unmeetable { .. } => Fault::User,
            TopicsError::Unreachable(_) => Fault::Unavailable,
            TopicsError::Metadata(_)
            | TopicsError::Describe { .. }
            | TopicsError::Create { .. }
            | TopicsError::Alter(_)
            | TopicsError::NotCompliant(_) => Fault::World,
        }
    }
}

/// An admin client with the filter's client settings.
pub fn admin(settings: &Settings, context: Context) -> Result<AdminClient<Context>, TopicsError> {
    kafka::create(settings, &kafka::base_config(settings), context).map_err(TopicsError::Client)
}

fn entries(r: &rdkafka::admin::ConfigResource) -> BTreeMap<String, String> {
    r.entries
        .iter()
        .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
        .collect()
}

/// The broker's settings: tansu and some managed services return nothing; Kafka's
/// defaults then.
async fn broker_settings(
    admin: &AdminClient<Context>,
    metadata: &rdkafka::metadata::Metadata,
    opts: &AdminOptions,
) -> BrokerSettings {
    match metadata.brokers().first() {
        Some(b) => match admin
            .describe_configs(&[ResourceSpecifier::Broker(b.id())], opts)
            .await
        {
            Ok(mut v) => match v.pop() {
                Some(Ok(r)) => BrokerSettings::from_entries(&entries(&r)),
                _ => BrokerSettings::default(),
            },
            Err(_) => BrokerSettings::default(),
        },
        None => BrokerSettings::default(),
    }
}

/// Reads the broker's and the targets' settings.
pub async fn inspect(
    settings: &Settings,
    admin: &AdminClient<Context>,
) -> Result<Inspection, TopicsError> {
    let metadata = {
        let client = admin.inner();
        tokio::task::block_in_place(|| {
            kafka::reach::first_metadata(client, None, &settings.kafka.bootstrap_servers)
        })
        .map_err(|e| match e {
            Ok(unreachable) => TopicsError::Unreachable(unreachable),
            Err(e) => TopicsError::Metadata(e),
        })?
    };
    let existing: Vec<String> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| t.name().to_string())
        .collect();
    let opts = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let broker = broker_settings(admin, &metadata, &opts).await;
    let mut current = Vec::new();
    for target in targets(settings) {
        if !existing.contains(&target.topic) {
            current.push((target, None));
            continue;
        }
        let result = admin
            .describe_configs(&[ResourceSpecifier::Topic(&target.topic)], &opts)
            .await
            .map_err(|e| TopicsError::Describe {
                resource: target.topic.clone(),
                error: e.to_string(),
            })?;
        let config = match result.into_iter().next() {
            Some(Ok(r)) => entries(&r),
            Some(Err(code)) => {
                return Err(TopicsError::Describe {
                    resource: target.topic.clone(),
                    error: code.to_string(),
                })
            }
            None => BTreeMap::new(),
        };
        current.push((target, Some(config)));
    }
    Ok(Inspection { broker, current })
}

/// Judges every target.
pub fn judge(
    settings: &Settings,
    inspection: &Inspection,
) -> Result<Vec<TopicReport>, TopicsError> {
    inspection
        .current
        .iter()
        .map(|(t, c)| {
            evaluate(t, c.as_ref(), &inspection.broker, skew_ms(settings)).map_err(|e| {
                TopicsError::Unmeetable {
                    topic: t.topic.clone(),
                    error: e,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
