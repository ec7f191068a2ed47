//! The admin side: the output topics (billing, security, dead letters) and the settings
//! that make the broker delete every record before its legal limit.
//!
//! [`bound`] holds the arithmetic; this module reads the topics and the broker
//! (DescribeConfigs), judges each topic, creates missing ones and corrects drift
//! (IncrementalAlterConfigs, never raising a retention), and re-checks periodically while
//! the filter runs.

pub mod alter;
pub mod render;

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
use rdkafka::types::RDKafkaErrorCode;
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
        return Ok(TopicReport {
            topic: target.topic.clone(),
            role: target.role,
            exists: false,
            rows: desired_rows(&want, true)
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
        });
    };
    let settings = TopicSettings::from_entries(cur);
    let bound_ms = bound::residency_bound_ms(&settings, broker, skew_ms);
    let bound_ok = bound_ms.is_some_and(|b| b <= target.limit_ms);
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
    let compliant = bound_ok && rows.iter().all(|r| r.ok);
    Ok(TopicReport {
        topic: target.topic.clone(),
        role: target.role,
        exists: true,
        rows,
        bound_ms,
        limit_ms: target.limit_ms,
        compliant,
    })
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

/// Reads the broker's and the targets' settings.
pub async fn inspect(
    settings: &Settings,
    admin: &AdminClient<Context>,
) -> Result<Inspection, TopicsError> {
    let metadata = {
        let client = admin.inner();
        tokio::task::block_in_place(|| client.fetch_metadata(None, TIMEOUT))
            .map_err(TopicsError::Metadata)?
    };
    let existing: Vec<String> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| t.name().to_string())
        .collect();
    let opts = AdminOptions::new().request_timeout(Some(TIMEOUT));
    // The broker: tansu and some managed services return nothing; Kafka's defaults then.
    let broker = match metadata.brokers().first() {
        Some(b) => match admin
            .describe_configs(&[ResourceSpecifier::Broker(b.id())], &opts)
            .await
        {
            Ok(mut v) => match v.pop() {
                Some(Ok(r)) => BrokerSettings::from_entries(&entries(&r)),
                _ => BrokerSettings::default(),
            },
            Err(_) => BrokerSettings::default(),
        },
        None => BrokerSettings::default(),
    };
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

/// Creates the missing targets with the desired settings.
async fn create_missing(
    settings: &Settings,
    admin: &AdminClient<Context>,
    inspection: &Inspection,
) -> Result<(), TopicsError> {
    let skew = skew_ms(settings);
    for (t, current) in &inspection.current {
        if current.is_some() {
            continue;
        }
        let d = bound::desired(t.limit_ms, &inspection.broker, skew, false).map_err(|e| {
            TopicsError::Unmeetable {
                topic: t.topic.clone(),
                error: e,
            }
        })?;
        // Brokers before Kafka 3.6 refuse the unknown after.max.ms: try without it.
        let mut last_error = String::new();
        for with_after_max in [true, false] {
            let configs = desired_rows(&d, with_after_max);
            let topic = configs.iter().fold(
                NewTopic::new(
                    &t.topic,
                    settings.topics.partitions,
                    TopicReplication::Fixed(settings.topics.replication_factor),
                ),
                |n, (k, v)| n.set(k, v),
            );
            let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
            let result =
                admin
                    .create_topics(&[topic], &opts)
                    .await
                    .map_err(|e| TopicsError::Create {
                        topic: t.topic.clone(),
                        error: e.to_string(),
                    })?;
            match result.into_iter().next() {
                Some(Ok(_)) => {
                    tracing::info!(topic = %t.topic, role = t.role, retention_ms = d.retention_ms, segment_ms = d.segment_ms, "created output topic");
                    last_error.clear();
                    break;
                }
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                    last_error.clear();
                    break;
                }
                Some(Err((_, code))) => last_error = code.to_string(),
                None => break,
            }
        }
        if !last_error.is_empty() {
            return Err(TopicsError::Create {
                topic: t.topic.clone(),
                error: last_error,
            });
        }
    }
    Ok(())
}

/// The changes that bring existing topics to compliance, never raising a retention.
fn corrections(
    settings: &Settings,
    inspection: &Inspection,
) -> Result<Vec<(String, ConfigPairs)>, TopicsError> {
    let mut changes = Vec::new();
    for report in judge(settings, inspection)? {
        if !report.exists || report.compliant {
            continue;
        }
        let mut set = Vec::new();
        for row in &report.rows {
            if row.ok {
                continue;
            }
            let current = row.current.as_deref().and_then(|v| v.parse::<i64>().ok());
            let desired = row.desired.parse::<i64>().ok();
            let lowers = match (current, desired) {
                // Numeric: only ever lower (an unset or -1 value counts as infinite).
                (Some(c), Some(d)) => c < 0 || c > d,
                _ => true,
            };
            if lowers {
                set.push((row.setting, row.desired.clone()));
            }
        }
        // The bound may still fail with every row "ok" when the topic relies on
        // defaults: then set the numeric settings explicitly.
        if set.is_empty() {
            for row in &report.rows {
                if matches!(row.setting, "retention.ms" | "segment.ms") {
                    let c = row.current.as_deref().and_then(|v| v.parse::<i64>().ok());
                    let d: i64 = row.desired.parse().unwrap_or(i64::MAX);
                    if c.is_none_or(|c| c < 0 || c > d) {
                        set.push((row.setting, row.desired.clone()));
                    }
                }
            }
        }
        if !set.is_empty() {
            changes.push((report.topic.clone(), set));
        }
    }
    Ok(changes)
}

/// `topics apply`: creates missing targets, corrects drifted ones; returns the reports
/// after the changes.
pub async fn apply(
    settings: &Settings,
    admin: &AdminClient<Context>,
) -> Result<Vec<TopicReport>, TopicsError> {
    let inspection = inspect(settings, admin).await?;
    create_missing(settings, admin, &inspection).await?;
    let changes = corrections(settings, &inspection)?;
    for (topic, set) in &changes {
        let list: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tracing::warn!(%topic, "correcting topic settings: {}", list.join(", "));
    }
    let client = admin.inner();
    tokio::task::block_in_place(|| alter::set_topic_configs(client, &changes, TIMEOUT)).map_err(
        |errors| {
            TopicsError::Alter(
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        },
    )?;
    let after = inspect(settings, admin).await?;
    judge(settings, &after)
}

/// Publishes the verdicts as metrics and in the health flag.
pub fn publish(reports: &[TopicReport], health: &crate::health::Health) {
    for r in reports {
        gauge!(COMPLIANT, "topic" => r.topic.clone()).set(if r.compliant { 1.0 } else { 0.0 });
        let bound = r
            .bound_ms
            .map(|b| b as f64 / 1000.0)
            .unwrap_or(f64::INFINITY);
        gauge!(RESIDENCY_BOUND, "topic" => r.topic.clone()).set(bound);
    }
    *health
        .non_compliant_topics
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = reports
        .iter()
        .filter(|r| !r.compliant)
        .map(|r| r.topic.clone())
        .collect();
    health
        .topics_verified
        .store(reports.iter().all(|r| r.compliant), Ordering::SeqCst);
}

/// At start, per `topics.mode`.
pub async fn prepare(settings: &Settings, context: Context) -> Result<(), TopicsError> {
    let health = context.health.clone();
    if settings.topics.mode == TopicsMode::Off {
        health.topics_verified.store(true, Ordering::SeqCst);
        return Ok(());
    }
    let admin = admin(settings, context)?;
    let reports = match settings.topics.mode {
        TopicsMode::Off => unreachable!("handled above"),
        TopicsMode::Create => {
            let inspection = inspect(settings, &admin).await?;
            create_missing(settings, &admin, &inspection).await?;
            judge(settings, &inspect(settings, &admin).await?)?
        }
        TopicsMode::Verify => judge(settings, &inspect(settings, &admin).await?)?,
        TopicsMode::Enforce => apply(settings, &admin).await?,
    };
    publish(&reports, &health);
    let bad: Vec<String> = reports
        .iter()
        .filter(|r| !r.compliant)
        .map(|r| format!("{} ({})", r.topic, r.problems()))
        .collect();
    if bad.is_empty() {
        tracing::info!(topics = reports.len(), "output topics compliant");
    } else if settings.topics.mode == TopicsMode::Verify {
        return Err(TopicsError::NotCompliant(bad.join("; ")));
    } else {
        tracing::warn!("output topics not compliant: {}", bad.join("; "));
    }
    Ok(())
}

/// While running: re-checks every `topics.check_interval`, publishes the verdicts, logs
/// each change of verdict once (naming the setting that drifted), and in `enforce` mode
/// corrects the drift.
pub async fn watch(
    settings: std::sync::Arc<Settings>,
    context: Context,
    shutdown: CancellationToken,
) {
    if settings.topics.mode == TopicsMode::Off {
        return;
    }
    let admin = match admin(&settings, context.clone()) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("topic checks disabled: {e}");
            return;
        }
    };
    let mut last: BTreeMap<String, bool> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(settings.topics.check_interval) => {}
        }
        let result = match settings.topics.mode {
            TopicsMode::Enforce => apply(&settings, &admin).await,
            _ => match inspect(&settings, &admin).await {
                Ok(i) => judge(&settings, &i),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(reports) => {
                publish(&reports, &context.health);
                for r in &reports {
                    let was = last.insert(r.topic.clone(), r.compliant);
                    if was != Some(r.compliant) {
                        if r.compliant {
                            tracing::info!(topic = %r.topic, "topic compliant");
                        } else {
                            tracing::error!(topic = %r.topic, "topic not compliant: {}", r.problems());
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("topic check failed: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests;
