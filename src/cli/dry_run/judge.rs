//! What `run` does with one record, per purpose, decided without Kafka: dry-run's answer.
//!
//! The same stages as the struct path of `run` (`pipeline::records::Transform`): decode
//! (with `input.schema_ids`), the policy, then every forwarded output encoded in the
//! configured `output.format` and `output.framing`. And the same record-level decisions:
//! a record that cannot be decoded, that the policy refuses (`invalid`,
//! `future_event_time`) or whose output cannot be encoded for one purpose is one dead
//! letter, never half-forwarded. `tests/dry_run_vs_run.rs` checks, record by record, that
//! `run` writes exactly what this says.

use crate::config::Settings;
use crate::decode::{self, InputFormat};
use crate::encode::{self, OutputFormat};
use crate::policy::{DropReason, Outcome, OutputRecord};
use crate::schema::{CdrEvent, Purpose};
use chrono::{DateTime, Utc};

/// One purpose's answer for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The event's `event_id`; `None` when the record did not decode or has none.
    pub event_id: Option<String>,
    pub purpose: Purpose,
    pub verdict: Verdict,
}

/// What `run` does for a purpose.
// A forward is the common case; boxing it would cost an allocation per line.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The record `run` writes to the purpose's topic.
    Forward(Forward),
    /// Not taken, for a counted reason (`cdr_records_dropped_total`).
    Drop(DropReason),
    /// The record goes to the dead-letter topic instead (one pointer for the record).
    DeadLetter(DeadLetter),
}

/// A record as `run` produces it.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    pub topic: String,
    pub key: String,
    /// The value, byte for byte (Schema Registry prefix included with
    /// `output.framing = "confluent"`).
    pub value: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    pub timestamp_ms: i64,
    pub expires_at: DateTime<Utc>,
    /// The output event (for the `record` of dry-run's line).
    pub event: CdrEvent,
}

/// A dead letter as `run` writes it: the pointer's reason, message and schema id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub reason: &'static str,
    pub message: String,
    pub schema_id: Option<u32>,
}

impl Verdict {
    /// The `outcome` of dry-run's line.
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::Forward(_) => "forward",
            Verdict::Drop(_) => "drop",
            Verdict::DeadLetter(_) => "dead_letter",
        }
    }
}

/// The configuration's stages, resolved once.
pub struct Judge<'a> {
    settings: &'a Settings,
    /// The `output.framing` prefix of every value, or empty.
    header: Vec<u8>,
}

impl<'a> Judge<'a> {
    pub fn new(settings: &'a Settings) -> Judge<'a> {
        let header = settings
            .output_schema_id
            .map(|id| encode::confluent_header(settings.output_format, id))
            .unwrap_or_default();
        Judge { settings, header }
    }

    pub fn output_format(&self) -> OutputFormat {
        self.settings.output_format
    }

    /// One line per configured purpose, in configuration order, for the record `bytes`
    /// read as `format`, at `now`.
    pub fn judge(&self, bytes: &[u8], format: InputFormat, now: DateTime<Utc>) -> Vec<Line> {
        let settings = self.settings;
        let event = match decode::decode_record(bytes, format, &settings.input_schema_ids) {
            Ok(decoded) => decoded.event,
            Err(e) => {
                let letter = DeadLetter {
                    reason: e.reason(),
                    message: e.to_string(),
                    schema_id: e.schema_id(),
                };
                return self.all_dead(None, &letter);
            }
        };
        let id = Some(event.event_id.clone()).filter(|id| !id.is_empty());
        let evaluation = settings.policy.apply_owned(event, now);
        if let Some(r) = evaluation.refusal() {
            let letter = DeadLetter {
                reason: r.as_str(),
                message: r.message().to_string(),
                schema_id: None,
            };
            return self.all_dead(id, &letter);
        }
        let mut lines = Vec::with_capacity(evaluation.outcomes.len());
        let mut failure = None;
        for (purpose, outcome) in evaluation.outcomes {
            let verdict = match outcome {
                Outcome::Drop(reason) => Verdict::Drop(reason),
                Outcome::Forward(r) => {
                    let (forward, error) = self.forward(purpose, r);
                    if let Some(e) = error {
                        // The last failure names the dead letter, as in `run`.
                        failure = Some(e);
                    }
                    Verdict::Forward(forward)
                }
            };
            lines.push(Line {
                event_id: id.clone(),
                purpose,
                verdict,
            });
        }
        // An output one purpose cannot be encoded for: the record is dead-lettered whole
        // (the purposes the policy dropped stay counted drops, as `run` counts them).
        if let Some(e) = failure {
            let letter = DeadLetter {
                reason: "unencodable",
                message: e.to_string(),
                schema_id: None,
            };
            for line in &mut lines {
                if matches!(line.verdict, Verdict::Forward(_)) {
                    line.verdict = Verdict::DeadLetter(letter.clone());
                }
            }
        }
        lines
    }

    /// The output record of a purpose that takes the event, as `run` would write it, and
    /// the error when it cannot be encoded.
    fn forward(&self, purpose: Purpose, r: OutputRecord) -> (Forward, Option<encode::EncodeError>) {
        let format = self.settings.output_format;
        let mut value = Vec::new();
        let error = encode::encode_framed(&r.event, format, &self.header, &mut value).err();
        let headers = encode::headers(&r, format)
            .into_iter()
            .map(|(k, v)| (k, v.into_owned()))
            .collect();
        let forward = Forward {
            topic: self
                .settings
                .topic_of(purpose)
                .unwrap_or_default()
                .to_string(),
            key: r.key,
            value,
            headers,
            timestamp_ms: r.timestamp_ms,
            expires_at: r.expires_at,
            event: r.event,
        };
        (forward, error)
    }

    /// Every purpose: the record is dead-lettered.
    fn all_dead(&self, event_id: Option<String>, letter: &DeadLetter) -> Vec<Line> {
        self.settings
            .policy
            .purposes
            .iter()
            .map(|p| Line {
                event_id: event_id.clone(),
                purpose: p.legal.purpose,
                verdict: Verdict::DeadLetter(letter.clone()),
            })
            .collect()
    }
}
