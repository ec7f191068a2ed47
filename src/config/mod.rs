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
//!
//! Rooms: [`raw`] (the sections as written), [`env`](mod@env) (the environment provider),
//! [`secrets`] (`${env:}`/`${file:}` references, masking), `validate` (one function per
//! section), [`error`] (problems and their formatting); this module: [`Settings`] and the
//! entry points. Only [`load`]/[`load_from`] and the convenience [`Settings::validate`]
//! read the process environment, secret files and the host name (through
//! [`Sources::process`]); [`parse`] and [`Settings::validate_with`] read only what they
//! are given.

pub mod env;
pub mod error;
pub mod raw;
pub mod secrets;
mod validate;

pub use crate::dead_letter::DeadLetterMode;
pub use crate::delivery::Guarantee;
pub use crate::retention::TopicsMode;
pub use env::{ENV_CONFIG, ENV_PREFIX};
pub use error::{ConfigError, Problem};
pub use raw::{
    DeadLetterSection, DeliverySection, InputSection, KafkaSection, MetricsSection, OutputFraming,
    OutputSection, PolicySection, PurposeSection, PurposesSection, RawConfig, TopicsSection,
};
pub use secrets::{
    allow_insecure_secret_files, is_secret, resolve_reference, Sources, LIBRDKAFKA_SENSITIVE,
};

use crate::decode::InputFormat;
use crate::encode::OutputFormat;
use crate::policy::Policy;
use crate::retention::Ttl;
use crate::schema::Purpose;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use std::net::SocketAddr;
use std::path::Path;

/// Reads a configuration file, applies environment overrides and validates it.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    load_from(Some(path))
}

/// Like [`load`]; without a file, the defaults plus the environment. Reads the process
/// environment, secret files and the host name, and passes them in
/// ([`Sources::process`]).
pub fn load_from(path: Option<&Path>) -> Result<Settings, ConfigError> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?,
        None => String::new(),
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    let raw = parse_named(&text, &env, path)?;
    Settings::validate_with(raw, &Sources::process())
}

/// Parses TOML text with environment overrides (given as a list, for tests).
pub fn parse(toml_text: &str, env: &[(String, String)]) -> Result<RawConfig, ConfigError> {
    parse_named(toml_text, env, None)
}

/// TOML read from a file, named by its path in the problems it has (figment names text
/// "TOML source string").
struct TomlFile<'a> {
    text: &'a str,
    path: &'a Path,
}

impl figment::Provider for TomlFile<'_> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::from(
            format!("file {}", self.path.display()),
            figment::Source::File(self.path.to_path_buf()),
        )
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        figment::Provider::data(&Toml::string(self.text))
    }
}

/// [`parse`], the text read from `path` when there is one.
fn parse_named(
    toml_text: &str,
    env: &[(String, String)],
    path: Option<&Path>,
) -> Result<RawConfig, ConfigError> {
    let base = Figment::from(Serialized::defaults(RawConfig::default()));
    let base = match path {
        Some(path) => base.merge(TomlFile {
            text: toml_text,
            path,
        }),
        None => base.merge(Toml::string(toml_text)),
    };
    let mut raw: RawConfig = base
        .merge(env::EnvOverrides::new(env))
        .extract_lossy()
        .map_err(|e| ConfigError::Parse(Box::new(e)))?;
    env::apply_properties(&mut raw, env);
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

impl Settings {
    /// Validates a parsed configuration, reporting every problem at once; secret
    /// references and the default transactional id are read from the process
    /// ([`Sources::process`]). [`Settings::validate_with`] takes the sources.
    pub fn validate(raw: RawConfig) -> Result<Settings, ConfigError> {
        Settings::validate_with(raw, &Sources::process())
    }

    /// Validates a parsed configuration with the given environment, secret files and host
    /// name, reporting every problem at once.
    pub fn validate_with(raw: RawConfig, sources: &Sources<'_>) -> Result<Settings, ConfigError> {
        validate::validate(raw, sources)
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
            .any(|props| props.get(name).is_some_and(|v| secrets::is_reference(v)))
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
        secrets::mask(&mut shown.kafka);
        toml::to_string_pretty(&shown).expect("the configuration serializes to TOML")
    }
}

#[cfg(test)]
mod tests;

/// The Kafka clients read their part of the configuration through this (they sit below
/// `config` in the layers and never see the rest of `Settings`).
impl crate::kafka::ClientSettings for Settings {
    fn bootstrap_servers(&self) -> &str {
        &self.kafka.bootstrap_servers
    }
    fn group_id(&self) -> &str {
        &self.kafka.group_id
    }
    fn properties(&self) -> &std::collections::BTreeMap<String, String> {
        &self.kafka.properties
    }
    fn consumer_properties(&self) -> &std::collections::BTreeMap<String, String> {
        &self.kafka.consumer_properties
    }
    fn producer_properties(&self) -> &std::collections::BTreeMap<String, String> {
        &self.kafka.producer_properties
    }
    fn is_secret_property(&self, name: &str) -> bool {
        Settings::is_secret_property(self, name)
    }
    fn secret_values(&self) -> Vec<&str> {
        Settings::secret_values(self)
    }
}
