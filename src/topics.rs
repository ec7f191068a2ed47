//! The admin side: the output topics (billing, security, dead letters) and the settings
//! that make the broker delete records in time.
//!
//! At start, per `topics.mode`: `off` does nothing, `create` creates missing topics with
//! the desired settings, `verify` refuses to start when one is missing, `enforce` creates
//! them. (The full residency-bound check and drift correction build on this module.)

use crate::config::{Settings, TopicsMode};
use crate::expiry::{self, Ttl};
use crate::kafka::{self, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Default retention of the dead-letter topic: 7 days.
pub const DEAD_LETTER_RETENTION: chrono::Duration = chrono::Duration::days(7);

/// A topic as the filter wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub configs: Vec<(&'static str, String)>,
}

/// `retention.ms` for a ttl: a calendar ttl counts its shortest period, so the broker
/// deletes every record before its calendar limit.
pub fn retention_ms(ttl: Ttl) -> i64 {
    match ttl {
        Ttl::Fixed(d) => d.num_milliseconds(),
        Ttl::Months(m) => i64::from(expiry::shortest_period_days(m)) * 86_400_000,
    }
}

/// The desired output topics.
pub fn desired(settings: &Settings) -> Vec<TopicSpec> {
    let base = |retention: i64| {
        vec![
            ("cleanup.policy", "delete".to_string()),
            ("message.timestamp.type", "CreateTime".to_string()),
            ("retention.ms", retention.to_string()),
        ]
    };
    let mut specs: Vec<TopicSpec> = settings
        .purposes
        .iter()
        .map(|p| TopicSpec {
            name: p.topic.clone(),
            configs: base(retention_ms(p.ttl)),
        })
        .collect();
    let shortest = settings
        .purposes
        .iter()
        .map(|p| retention_ms(p.ttl))
        .min()
        .unwrap_or(i64::MAX);
    specs.push(TopicSpec {
        name: settings.dead_letter.topic.clone(),
        configs: base(DEAD_LETTER_RETENTION.num_milliseconds().min(shortest)),
    });
    specs
}

/// Why topics could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("kafka admin client")]
    Client(#[source] KafkaError),
    #[error("cannot list topics")]
    Metadata(#[source] KafkaError),
    #[error("cannot create topic {topic}: {error}")]
    Create { topic: String, error: String },
    #[error("topics.mode = \"verify\" and these output topics do not exist: {0}")]
    Missing(String),
}

/// Prepares the output topics at start, according to `topics.mode`.
pub async fn prepare(settings: &Settings, context: Context) -> Result<(), TopicsError> {
    if settings.topics.mode == TopicsMode::Off {
        return Ok(());
    }
    let admin: AdminClient<Context> = kafka::base_config(settings)
        .create_with_context(context)
        .map_err(TopicsError::Client)?;
    let wanted = desired(settings);
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(TopicsError::Metadata)?;
    let missing: Vec<&TopicSpec> = wanted
        .iter()
        .filter(|t| {
            !metadata
                .topics()
                .iter()
                .any(|m| m.name() == t.name && m.error().is_none())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if settings.topics.mode == TopicsMode::Verify {
        let names: Vec<&str> = missing.iter().map(|t| t.name.as_str()).collect();
        return Err(TopicsError::Missing(names.join(", ")));
    }
    let new: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|t| {
            t.configs.iter().fold(
                NewTopic::new(
                    &t.name,
                    settings.topics.partitions,
                    TopicReplication::Fixed(settings.topics.replication_factor),
                ),
                |n, (k, v)| n.set(k, v),
            )
        })
        .collect();
    let results = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(TopicsError::Client)?;
    for r in results {
        match r {
            Ok(topic) => tracing::info!(%topic, "created output topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(TopicsError::Create {
                    topic,
                    error: code.to_string(),
                })
            }
        }
    }
    Ok(())
}
