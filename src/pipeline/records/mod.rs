//! From one consumed record to the records to produce, or a dead-letter pointer: the wire
//! path ([`Transform::process_wire`]) when it applies, else the struct path, decode →
//! policy → encode ([`Transform::process_struct`]). Shared by both delivery guarantees;
//! no I/O.

use crate::config::Settings;
use crate::dead_letter::Pointer;
use crate::decode;
use crate::encode;
use crate::policy::{Evaluation, Outcome};
use crate::schema::Purpose;
use crate::telemetry::{self, Stats, Tally};
use chrono::{DateTime, Utc};
use std::sync::Arc;

// Output headers without per-header allocations.
mod headers;
// Spent output buffers, reused.
mod spare;
// The wire path (`Transform::process_wire`): its own file.
mod wire;

pub use headers::OutHeaders;
pub use spare::recycle;

/// A record to produce.
#[derive(Debug)]
pub struct Outgoing {
    pub topic: Arc<str>,
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: OutHeaders,
    pub timestamp_ms: i64,
}

/// The position of a consumed record.
#[derive(Debug, Clone)]
pub struct Source {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

pub(crate) fn headers_of<V: AsRef<str>>(pairs: &[(&'static str, V)]) -> OutHeaders {
    OutHeaders::of(pairs)
}

/// The transformation of the pipeline, with its topics resolved once.
pub struct Transform {
    hot: telemetry::Hot,
    /// Benchmark floor: forward every input record unchanged to every purpose topic.
    #[cfg(feature = "bench-passthrough")]
    passthrough: bool,
    settings: Arc<Settings>,
    topics: Vec<(Purpose, Arc<str>)>,
    dead_letter_topic: Arc<str>,
    /// The Schema Registry prefix of every output value (`output.framing`), or empty.
    header: Vec<u8>,
    /// The wire-level fast path for bare protobuf or JSON in and out ([`crate::wire`],
    /// [`crate::json`]), compiled
    /// once from the policy; `None` if the policy cannot be compiled to it (then every
    /// record takes the struct path, which is its oracle).
    wire: Option<crate::wire::WireFilter>,
}

impl Transform {
    pub fn new(settings: Arc<Settings>) -> Transform {
        let topics = settings
            .purposes
            .iter()
            .map(|p| (p.purpose, Arc::from(p.topic.as_str())))
            .collect();
        let dead_letter_topic = Arc::from(settings.dead_letter.topic.as_str());
        let header = settings
            .output_schema_id
            .map(|id| encode::confluent_header(settings.output_format, id))
            .unwrap_or_default();
        Transform {
            header,
            wire: crate::wire::WireFilter::new(&settings.policy).ok(),
            hot: telemetry::Hot::new(
                &settings.input_topics,
                settings.policy.version,
                &settings
                    .purposes
                    .iter()
                    .map(|p| p.topic.as_str())
                    .chain([settings.dead_letter.topic.as_str()])
                    .collect::<Vec<_>>(),
            ),
            #[cfg(feature = "bench-passthrough")]
            passthrough: false,
            settings,
            topics,
            dead_letter_topic,
        }
    }

    /// The benchmark floor: the same consumer and producer code, forwarding each input
    /// record unchanged (no decoding, no policy) to every purpose topic — as many
    /// records as the filter writes at most. Never use it on real data: built only with
    /// the `bench-passthrough` feature.
    #[cfg(feature = "bench-passthrough")]
    pub fn passthrough(settings: Arc<Settings>) -> Transform {
        Transform {
            passthrough: true,
            ..Transform::new(settings)
        }
    }

    /// `run --passthrough` forwards the input record's key with its value, as the filter
    /// writes a key on every output: without one librdkafka's sticky partitioner packs
    /// the records into larger batches, and the pass-through measured up to 1.28 × the
    /// throughput of a floor that copies the key, for less work per record than the
    /// filter does. No-op for the filter.
    #[cfg(feature = "bench-passthrough")]
    pub fn forward_key(&self, key: Option<&[u8]>, out: &mut [Outgoing]) {
        if self.passthrough {
            let key = key.map(|k| String::from_utf8_lossy(k).into_owned());
            for o in out {
                o.key.clone_from(&key);
            }
        }
    }

    /// Whether this is the benchmark floor (`run --passthrough`).
    fn is_passthrough(&self) -> bool {
        #[cfg(feature = "bench-passthrough")]
        if self.passthrough {
            return true;
        }
        false
    }

    pub fn dead_letter_topic(&self) -> &Arc<str> {
        &self.dead_letter_topic
    }

    /// Adds the records' counts tallied since the last call to the Prometheus metrics
    /// (they also reach them every [`telemetry::FLUSH_EVERY`] records by themselves).
    pub fn flush_metrics(&self) {
        self.hot.flush();
    }

    /// The purpose whose output topic this is, by name.
    pub fn purpose_of_topic(&self, topic: &str) -> Option<&'static str> {
        self.topics
            .iter()
            .find(|(_, t)| &**t == topic)
            .map(|(p, _)| p.name())
    }

    fn topic_of(&self, purpose: Purpose) -> Arc<str> {
        self.topics
            .iter()
            .find(|(p, _)| *p == purpose)
            .map(|(_, t)| t.clone())
            .expect("every configured purpose has a topic")
    }

    /// A dead-letter pointer record for a source position.
    pub fn dead_letter(
        &self,
        source: &Source,
        reason: &'static str,
        message: String,
        payload: Option<&[u8]>,
        stats: &Stats,
    ) -> Outgoing {
        self.dead_letter_of_schema(source, reason, message, None, payload, stats)
    }

    /// A dead-letter pointer record, with the schema id of a framed record refused for
    /// it (`unexpected_schema`).
    fn dead_letter_of_schema(
        &self,
        source: &Source,
        reason: &'static str,
        message: String,
        schema_id: Option<u32>,
        payload: Option<&[u8]>,
        stats: &Stats,
    ) -> Outgoing {
        let mut pointer = Pointer::new(
            &source.topic,
            source.partition,
            source.offset,
            reason,
            message,
            self.settings.policy.version(),
        );
        pointer.schema_id = schema_id;
        telemetry::emit(telemetry::events::DeadLettered {
            stats,
            topic: &source.topic,
            partition: source.partition,
            offset: source.offset,
            reason,
            message: &pointer.message,
        });
        Outgoing {
            topic: self.dead_letter_topic.clone(),
            key: None,
            value: pointer.value(self.settings.dead_letter.mode, payload),
            headers: headers_of(&pointer.headers()),
            timestamp_ms: Utc::now().timestamp_millis(),
        }
    }

    /// Appends to `out` the records one consumed record becomes: one per purpose
    /// forwarded, or one dead letter when the record is refused.
    pub fn process(
        &self,
        source: &Source,
        payload: &[u8],
        now: DateTime<Utc>,
        stats: &Stats,
        out: &mut Vec<Outgoing>,
    ) {
        #[cfg(feature = "bench-passthrough")]
        if self.passthrough {
            for (_, topic) in &self.topics {
                out.push(Outgoing {
                    topic: topic.clone(),
                    key: None,
                    value: payload.to_vec(),
                    headers: OutHeaders::default(),
                    timestamp_ms: now.timestamp_millis(),
                });
            }
            return;
        }
        if let Some(filter) = &self.wire {
            if self.wire_applies(payload) {
                return self.process_wire(filter, source, payload, now, stats, out);
            }
        }
        self.process_struct(source, payload, now, stats, out);
    }

    /// [`Transform::process`] on the struct path: decode into a `CdrEvent`, apply the
    /// policy, encode. Every input format and framing; the oracle of the wire path.
    pub fn process_struct(
        &self,
        source: &Source,
        payload: &[u8],
        now: DateTime<Utc>,
        stats: &Stats,
        out: &mut Vec<Outgoing>,
    ) {
        let settings = &self.settings;
        let (refusal, schema_id) =
            match decode::decode_record(payload, settings.input_format, &settings.input_schema_ids)
            {
                Err(e) => (Some(self.undecodable(source, &e, stats)), e.schema_id()),
                Ok(decoded) => (self.filter_decoded(source, decoded, now, stats, out), None),
            };
        if let Some((reason, message)) = refusal {
            out.push(self.dead_letter_of_schema(
                source,
                reason,
                message,
                schema_id,
                Some(payload),
                stats,
            ));
        }
    }

    /// A record the struct path cannot decode, counted: its dead letter's reason and
    /// message.
    fn undecodable(
        &self,
        source: &Source,
        e: &decode::DecodeError,
        stats: &Stats,
    ) -> (&'static str, String) {
        telemetry::emit(telemetry::events::UndecodableConsumed {
            stats,
            topic: &source.topic,
        });
        telemetry::emit(telemetry::events::RecordUndecodable { kind: e.kind() });
        (e.reason(), e.to_string())
    }

    /// A decoded record, counted, through the policy: its outputs appended to `out`, or
    /// why it is refused (dead-lettered).
    fn filter_decoded(
        &self,
        source: &Source,
        decoded: decode::Decoded,
        now: DateTime<Utc>,
        stats: &Stats,
        out: &mut Vec<Outgoing>,
    ) -> Option<(&'static str, String)> {
        let decode::Decoded {
            event,
            detected: format,
            ..
        } = decoded;
        // The record's counts, under one lock.
        let mut tally = self.hot.tally();
        tally.consumed(stats, &source.topic, format.as_str());
        tally.event_age(&event, now);
        // Before the policy moves the kept fields out of the event.
        let input_mask = telemetry::presence(&event);
        let evaluation = self.settings.policy.apply_owned(event, now);
        if let Some(r) = evaluation.refusal() {
            return Some((r.as_str(), r.message().to_string()));
        }
        self.encode_outputs(&evaluation, &mut tally, input_mask, stats, out)
    }

    /// Encodes every output of an evaluation first: a record that cannot be encoded for
    /// one purpose is dead-lettered whole (the reason returned), never half-forwarded.
    fn encode_outputs(
        &self,
        evaluation: &Evaluation,
        tally: &mut Tally<'_>,
        input_mask: u64,
        stats: &Stats,
        out: &mut Vec<Outgoing>,
    ) -> Option<(&'static str, String)> {
        let format = self.settings.output_format;
        let start = out.len();
        let mut failure = None;
        let mut forwarded = Vec::with_capacity(2);
        for (purpose, outcome) in &evaluation.outcomes {
            match outcome {
                Outcome::Forward(r) => {
                    let mut value = Vec::with_capacity(512);
                    match encode::encode_framed(&r.event, format, &self.header, &mut value) {
                        Ok(()) => {
                            forwarded.push((*purpose, &r.event));
                            out.push(Outgoing {
                                topic: self.topic_of(*purpose),
                                key: Some(r.key.clone()),
                                value,
                                headers: headers_of(&encode::headers(r, format)),
                                timestamp_ms: r.timestamp_ms,
                            });
                        }
                        Err(e) => failure = Some(e),
                    }
                }
                Outcome::Drop(reason) => tally.dropped(stats, *purpose, *reason),
            }
        }
        if let Some(e) = failure {
            out.truncate(start);
            return Some(("unencodable", e.to_string()));
        }
        for (p, output) in forwarded {
            tally.produced(stats, p);
            tally.fields_removed(p, input_mask, telemetry::presence(output));
        }
        None
    }
}
