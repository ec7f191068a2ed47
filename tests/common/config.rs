//! The topics of one test and the filter's configuration over them: a typed
//! [`RawConfig`] (the configuration as written), edited field by field and written as
//! TOML — never generated text patched with string replacements.

use super::broker::{brokers, unique};
use cdr_purpose_filter::config::{PurposeSection, RawConfig, TopicsMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The topics (and consumer group) of one test.
pub struct Topics {
    pub input: String,
    pub billing: String,
    pub security: String,
    pub dead_letter: String,
    pub group: String,
}

impl Topics {
    /// Names no other test (or earlier run) uses, from `name`.
    pub fn new(name: &str) -> Topics {
        Topics {
            input: unique(&format!("{name}.raw")),
            billing: unique(&format!("{name}.billing")),
            security: unique(&format!("{name}.security")),
            dead_letter: unique(&format!("{name}.dlq")),
            group: unique(&format!("{name}.group")),
        }
    }

    /// Fixed names (on a mock cluster of a test's own).
    pub fn named(input: &str, billing: &str, security: &str, dlq: &str, group: &str) -> Topics {
        Topics {
            input: input.into(),
            billing: billing.into(),
            security: security.into(),
            dead_letter: dlq.into(),
            group: group.into(),
        }
    }

    /// The filter on these topics through `bootstrap`: both purposes, metrics on a free
    /// port, a fast fetch (`fetch.wait.max.ms` 10); the rest by default.
    pub fn on(&self, bootstrap: &str) -> RawConfig {
        let mut c = RawConfig::default();
        c.kafka.bootstrap_servers = bootstrap.to_string();
        c.kafka.group_id = self.group.clone();
        set(&mut c.kafka.consumer_properties, "fetch.wait.max.ms", "10");
        c.input.topics = vec![self.input.clone()];
        c.purposes.billing = Some(purpose(&self.billing));
        c.purposes.security = Some(purpose(&self.security));
        c.dead_letter.topic = self.dead_letter.clone();
        c.metrics.listen = "127.0.0.1:0".into();
        c
    }

    /// The tests' configuration: [`Topics::on`] the test broker, the topics created by
    /// the filter (3 partitions, replication 1), a short group session (6 s) and
    /// shutdown (20 s).
    pub fn raw(&self) -> RawConfig {
        let mut c = self.on(&brokers());
        let consumer = &mut c.kafka.consumer_properties;
        set(consumer, "session.timeout.ms", "6000");
        c.topics.mode = TopicsMode::Create;
        c.topics.partitions = 3;
        c.topics.replication_factor = 1;
        c.delivery.shutdown_timeout = "20s".into();
        c
    }

    /// [`Topics::raw`] written to `DIR/filter.toml`.
    pub fn config(&self, dir: &Path) -> PathBuf {
        write(dir, &self.raw())
    }

    /// [`Topics::raw`], changed by `edit`, written to `DIR/filter.toml`.
    pub fn config_with(&self, dir: &Path, edit: impl FnOnce(&mut RawConfig)) -> PathBuf {
        let mut c = self.raw();
        edit(&mut c);
        write(dir, &c)
    }
}

/// An output purpose on `topic`, the rest by default.
fn purpose(topic: &str) -> PurposeSection {
    PurposeSection {
        topic: Some(topic.to_string()),
        ..PurposeSection::default()
    }
}

/// Sets a librdkafka property in one of the `kafka.*properties` tables.
pub fn set(props: &mut BTreeMap<String, String>, key: &str, value: &str) {
    props.insert(key.to_string(), value.to_string());
}

/// Writes a configuration to `DIR/filter.toml` as TOML.
pub fn write(dir: &Path, config: &RawConfig) -> PathBuf {
    let path = dir.join("filter.toml");
    let text = toml::to_string(config).expect("a configuration serializes to TOML");
    std::fs::write(&path, text).unwrap();
    path
}
