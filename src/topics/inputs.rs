//! The input topics, watched while the filter runs: one that does not exist is named by
//! `/readyz` and by `cdr_input_topic_missing{topic}`, and logged once when it goes
//! missing and once when it is back. The consumer itself picks a created topic up at its
//! next metadata refresh (`topic.metadata.refresh.interval.ms`, 10 s by default:
//! [`crate::kafka::CLIENT_DEFAULTS`]); this watch only says what is missing.

use crate::config::Settings;
use crate::kafka::{self, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the input topics are looked up.
pub const INPUT_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The topic names the watch can look up: regular expressions (`^…`) subscribe to
/// whatever matches, and none of them is missing.
fn named(settings: &Settings) -> Vec<String> {
    settings
        .input_topics
        .iter()
        .filter(|t| !t.starts_with('^'))
        .cloned()
        .collect()
}

/// Looks the input topics up every [`INPUT_CHECK_INTERVAL`] until shutdown; publishes
/// the missing ones to the context's health and the metric.
pub async fn watch_inputs(settings: Arc<Settings>, context: Context, shutdown: CancellationToken) {
    let topics = named(&settings);
    if topics.is_empty() {
        return;
    }
    // A consumer without a group: metadata only. Never creates a topic by looking it up
    // (unless the configuration allows it for every client).
    let mut config = kafka::base_config(&*settings);
    if config.get("allow.auto.create.topics").is_none() {
        config.set("allow.auto.create.topics", "false");
    }
    let client: Arc<BaseConsumer<Context>> =
        match kafka::create(&*settings, &config, context.clone()) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::error!("input topic checks disabled: {e}");
                return;
            }
        };
    let mut last: BTreeMap<String, bool> = BTreeMap::new();
    loop {
        let (c, names) = (client.clone(), topics.clone());
        let looked = tokio::task::spawn_blocking(move || missing(&c, &names)).await;
        if let Ok(found) = looked {
            for (topic, is_missing) in found {
                let was = last.insert(topic.clone(), is_missing);
                crate::telemetry::emit(crate::telemetry::events::InputTopicChecked {
                    topic: &topic,
                    missing: is_missing,
                    changed: was != Some(is_missing),
                    first: was.is_none(),
                    every: INPUT_CHECK_INTERVAL,
                });
            }
            let now_missing: Vec<String> = last
                .iter()
                .filter(|(_, m)| **m)
                .map(|(t, _)| t.clone())
                .collect();
            *context
                .health
                .missing_input_topics
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = now_missing;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INPUT_CHECK_INTERVAL) => {}
        }
    }
}

/// Each topic the brokers answered for, and whether it is missing (unknown, or without
/// partitions). A topic whose lookup failed (no broker answered) keeps its last verdict.
fn missing(client: &BaseConsumer<Context>, topics: &[String]) -> Vec<(String, bool)> {
    topics
        .iter()
        .filter_map(|t| {
            let md = client
                .fetch_metadata(Some(t), Duration::from_secs(5))
                .ok()?;
            let found = md.topics().iter().find(|m| m.name() == t);
            let is_missing = match found {
                None => true,
                Some(m) => m.error().is_some() || m.partitions().is_empty(),
            };
            Some((t.clone(), is_missing))
        })
        .collect()
}
