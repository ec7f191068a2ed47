//! Room: the environment provider — `CDR_PURPOSE_FILTER_<SECTION>__<KEY>` variables
//! override configuration keys (`__` separates the levels), and
//! `CDR_PURPOSE_FILTER_KAFKA__{,CONSUMER_,PRODUCER_}PROPERTIES__<NAME>` set Kafka client
//! properties, `_` standing for `.` in the name. The variables are passed in as a list:
//! nothing here reads the process environment.

use super::raw::RawConfig;
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "CDR_PURPOSE_FILTER_";
/// Kafka property maps settable by environment variables, `_` standing for `.`.
const ENV_PROPERTIES_PREFIXES: &[&str] = &[
    "CDR_PURPOSE_FILTER_KAFKA__PROPERTIES__",
    "CDR_PURPOSE_FILTER_KAFKA__CONSUMER_PROPERTIES__",
    "CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__",
];
/// The variable that names the configuration file (like `--config`).
pub const ENV_CONFIG: &str = "CDR_PURPOSE_FILTER_CONFIG";
/// Variables with the prefix that are the command line's, not configuration keys
/// (`--log`'s, `--log-format`'s, `--config`'s).
const ENV_NOT_KEYS: &[&str] = &[
    "CDR_PURPOSE_FILTER_LOG",
    "CDR_PURPOSE_FILTER_LOG_FORMAT",
    ENV_CONFIG,
];

/// The environment overrides, as a figment provider over a given list of variables (so
/// tests need not touch the process environment).
pub(super) struct EnvOverrides(Dict, Vec<String>);

impl EnvOverrides {
    pub(super) fn new(env: &[(String, String)]) -> EnvOverrides {
        let mut root = Dict::new();
        let mut names = Vec::new();
        for (k, v) in env {
            if !k.starts_with(ENV_PREFIX)
                || ENV_PROPERTIES_PREFIXES.iter().any(|p| k.starts_with(p))
                || ENV_NOT_KEYS.contains(&k.as_str())
            {
                continue;
            }
            names.push(k.clone());
            let path: Vec<String> = k[ENV_PREFIX.len()..]
                .to_ascii_lowercase()
                .split("__")
                .map(str::to_string)
                .collect();
            // A string unless it is a list or a table: `extract_lossy` reads "6" or
            // "true" where a number or a boolean is wanted, and a string key keeps
            // "12345" as it was written.
            let value = match v.parse::<Value>() {
                Ok(parsed @ (Value::Array(..) | Value::Dict(..))) => parsed,
                _ => Value::from(v.clone()),
            };
            let mut dict = &mut root;
            for part in &path[..path.len() - 1] {
                let entry = dict
                    .entry(part.clone())
                    .or_insert_with(|| Value::from(Dict::new()));
                if entry.as_dict().is_none() {
                    *entry = Value::from(Dict::new());
                }
                dict = match entry {
                    Value::Dict(_, d) => d,
                    _ => unreachable!("just made a dict"),
                };
            }
            dict.insert(path[path.len() - 1].clone(), value);
        }
        EnvOverrides(root, names)
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        // A problem names the variable that set the key (or the enclosing key: a list or
        // a table given whole).
        let names = self.1.clone();
        Metadata::named(format!("environment variable {ENV_PREFIX}*")).interpolater(
            move |_: &Profile, keys: &[&str]| {
                let name = |n: usize| format!("{ENV_PREFIX}{}", keys[..n].join("__"));
                (1..=keys.len())
                    .rev()
                    .find_map(|n| {
                        let want = name(n);
                        names
                            .iter()
                            .find(|v| v.eq_ignore_ascii_case(&want))
                            .cloned()
                    })
                    .unwrap_or_else(|| name(keys.len()).to_ascii_uppercase())
            },
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// The Kafka properties set by environment variables, written into `raw` (they are not
/// keys of the provider: their names hold dots, spelt `_` in a variable's name).
pub(super) fn apply_properties(raw: &mut RawConfig, env: &[(String, String)]) {
    for (k, v) in env {
        for (prefix, props) in ENV_PROPERTIES_PREFIXES.iter().zip([
            &mut raw.kafka.properties,
            &mut raw.kafka.consumer_properties,
            &mut raw.kafka.producer_properties,
        ]) {
            if let Some(name) = k.strip_prefix(prefix) {
                props.insert(name.to_ascii_lowercase().replace('_', "."), v.clone());
            }
        }
    }
}
