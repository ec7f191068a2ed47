//! Room: how a refused configuration is told — [`Problem`] (a key and why),
//! [`ConfigError`], their formatting, and the collector validation reports into.

use std::fmt;

/// One problem in a configuration, with the key that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The OS error is the source: shown once, after this, in the error's chain.
    #[error("cannot read configuration file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{}", format_figment(.0))]
    Parse(Box<figment::Error>),
    #[error("{}", format_problems(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems, for tests and for callers that render them themselves.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Invalid(p) => p.clone(),
            ConfigError::Parse(e) => (**e)
                .clone()
                .into_iter()
                .map(|e| Problem {
                    key: e.path.join("."),
                    reason: kind_text(&e.kind),
                })
                .collect(),
            ConfigError::Read { path, source } => vec![Problem {
                key: path.clone(),
                reason: source.to_string(),
            }],
        }
    }
}

/// Every problem found so far, in the order the checks ran (validation reports all of
/// them at once rather than stopping at the first).
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem with `key`.
    pub(crate) fn add(&mut self, key: &str, reason: impl Into<String>) {
        self.0.push(Problem {
            key: key.to_string(),
            reason: reason.into(),
        });
    }

    /// `Err` with every problem, or `Ok` when there was none.
    pub(crate) fn into_result(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(self.0))
        }
    }
}

fn format_problems(problems: &[Problem]) -> String {
    let mut s = format!("invalid configuration ({} problem(s)):", problems.len());
    for p in problems {
        s.push_str(&format!("\n  - {}: {}", p.key, p.reason));
    }
    s
}

fn format_figment(e: &figment::Error) -> String {
    let problems: Vec<Problem> = e
        .clone()
        .into_iter()
        .map(|e| {
            let source = match &e.metadata {
                // The variable itself, not the prefix: the key's path, and the unknown
                // key's name for an unknown key.
                Some(m) if m.name.starts_with("environment variable") => {
                    let mut keys = e.path.clone();
                    if let figment::error::Kind::UnknownField(found, _) = &e.kind {
                        if keys.last() != Some(found) {
                            keys.push(found.clone());
                        }
                    }
                    let profile = e.profile.clone().unwrap_or_default();
                    format!(
                        " (from environment variable {})",
                        m.interpolate(&profile, &keys)
                    )
                }
                Some(m) => format!(" (from {})", m.name),
                None => String::new(),
            };
            Problem {
                key: if e.path.is_empty() {
                    "(top level)".into()
                } else {
                    e.path.join(".")
                },
                reason: format!("{}{source}", kind_text(&e.kind)),
            }
        })
        .collect();
    format_problems(&problems)
}

/// Why figment refused a value, in words: its own text for an unknown value or key
/// wraps the list of names, each in backticks, in another pair of backticks.
fn kind_text(kind: &figment::error::Kind) -> String {
    use figment::error::{Kind, OneOf};
    match kind {
        Kind::UnknownVariant(found, expected) => {
            format!("unknown value `{found}`: expected {}", OneOf(expected))
        }
        Kind::UnknownField(found, []) => format!("unknown key `{found}`"),
        Kind::UnknownField(found, expected) => {
            format!("unknown key `{found}`: expected {}", OneOf(expected))
        }
        kind => kind.to_string(),
    }
}

/// A configuration that cannot be read or is refused: the user's to fix.
impl crate::error::Classify for ConfigError {
    fn fault(&self) -> crate::error::Fault {
        crate::error::Fault::User
    }
}
