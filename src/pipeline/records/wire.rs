//! [`Transform::process_wire`]: [`Transform::process`] on the wire path
//! ([`crate::wire`]) — the same records, dead letters and metrics, without decoding the
//! event into owned strings. Protobuf in as it is; JSON in through
//! [`crate::json::JsonScratch`] (its canonical protobuf bytes); JSON out written from the
//! filtered bytes by [`crate::json::write_json`]. Schema Registry framed protobuf in, and
//! `output.framing` with protobuf out, too (the body a slice, the prefix written into the
//! reused buffer).

use super::{OutHeaders, Outgoing, Source, Transform};
use crate::decode::InputFormat;
use crate::encode::OutputFormat;
use crate::framing::{self, BodyKind};
use crate::json::{self, JsonScratch};
use crate::schema::CdrEvent;
use crate::telemetry::{self, Stats};
use crate::wire::{self, WireFilter, WireRefusal, WireScratch};
use chrono::{DateTime, Utc};
use std::cell::RefCell;

thread_local! {
    /// The wire path's reused buffers, one set per thread.
    static SCRATCH: RefCell<WireScratch> = RefCell::new(WireScratch::default());
    /// The JSON input path's reused buffers, one set per thread.
    static JSON: RefCell<JsonScratch> = RefCell::new(JsonScratch::default());
}

impl Transform {
    /// Whether [`Transform::process_wire`] takes the wire path for this record (protobuf,
    /// bare or Schema Registry framed, or bare JSON in; protobuf, bare or framed, or bare
    /// JSON out); otherwise it is [`Transform::process`].
    pub fn wire_applies(&self, payload: &[u8]) -> bool {
        // Framed JSON, in or out, takes the struct path; so does the benchmark floor.
        !self.is_passthrough()
            && (self.header.is_empty() || self.settings.output_format == OutputFormat::Protobuf)
            && match self.settings.input_format {
                InputFormat::Protobuf | InputFormat::Json | InputFormat::ConfluentProtobuf => true,
                InputFormat::Auto if framing::is_framed(payload) => {
                    framing::guess_kind(payload) == BodyKind::Protobuf
                }
                InputFormat::Auto => true,
                InputFormat::ConfluentJson => false,
            }
    }

    /// [`Transform::process`], on the wire path when [`Transform::wire_applies`]:
    /// `filter` must be compiled from this transform's `settings.policy`.
    pub fn process_wire(
        &self,
        filter: &WireFilter,
        source: &Source,
        payload: &[u8],
        now: DateTime<Utc>,
        stats: &Stats,
        out: &mut Vec<Outgoing>,
    ) {
        if !self.wire_applies(payload) {
            return self.process_struct(source, payload, now, stats, out);
        }
        let json_in = match self.settings.input_format {
            InputFormat::Json => true,
            InputFormat::Auto => wire::looks_like_json(payload),
            _ => false,
        };
        JSON.with_borrow_mut(|json| {
            let input = if json_in {
                // What the fast parser leaves (and an empty event, refused by the
                // policy's own words) is the struct path's.
                if !json.fast(payload) || json.protobuf().is_empty() {
                    self.hot.tally().json_slow_path(stats);
                    return self.process_struct(source, payload, now, stats, out);
                }
                json.protobuf()
            } else {
                payload
            };
            let label = if json_in { "json" } else { "protobuf" };
            SCRATCH.with_borrow_mut(|scratch| {
                self.process_scanned(
                    filter, source, payload, input, label, now, stats, scratch, out,
                )
            })
        })
    }

    /// The wire path on `input` (protobuf: the payload, or the JSON payload's canonical
    /// bytes); dead letters carry the `payload`.
    #[allow(clippy::too_many_arguments)]
    fn process_scanned(
        &self,
        filter: &WireFilter,
        source: &Source,
        payload: &[u8],
        input: &[u8],
        label: &'static str,
        now: DateTime<Utc>,
        stats: &Stats,
        scratch: &mut WireScratch,
        out: &mut Vec<Outgoing>,
    ) {
        let settings = &self.settings;
        let format = settings.output_format;
        // The `output.framing` prefix (only with protobuf output here), or nothing.
        let prefix = &self.header;
        let result = if label == "json" {
            filter.apply_prefixed(input, prefix, now, scratch)
        } else {
            let (input_format, ids) = (settings.input_format, &settings.input_schema_ids);
            filter.apply_record(input, input_format, ids, prefix, now, scratch)
        };
        let mut schema_id = None;
        let refusal = match result {
            Err(WireRefusal::Undecodable(_)) if label == "json" => {
                // Never for the bytes of a decoded JSON event; the struct path decides.
                self.hot.tally().json_slow_path(stats);
                return self.process_struct(source, payload, now, stats, out);
            }
            Err(WireRefusal::Undecodable(e)) => {
                telemetry::emit(telemetry::events::UndecodableConsumed {
                    stats,
                    topic: &source.topic,
                });
                telemetry::emit(telemetry::events::DecodeError { kind: e.kind() });
                schema_id = e.schema_id();
                Some((e.reason(), e.to_string()))
            }
            Err(WireRefusal::Refused(r)) => {
                self.consumed(&mut self.hot.tally(), stats, source, scratch, now, label);
                Some((r.as_str(), r.message().to_string()))
            }
            Ok(()) => {
                // The record's counts, under one lock.
                let mut tally = self.hot.tally();
                self.consumed(&mut tally, stats, source, scratch, now, label);
                let input_mask = scratch.presence();
                // Every output written first: a record one purpose's output cannot be
                // written for is dead-lettered whole, as on the struct path.
                let start = out.len();
                let mut failure = None;
                for r in scratch.records() {
                    match r.outcome {
                        Err(reason) => tally.dropped(stats, r.purpose, reason),
                        Ok(()) => {
                            let value = match format {
                                OutputFormat::Protobuf => r.value.clone(),
                                OutputFormat::Json => {
                                    let mut v = Vec::new();
                                    if let Err(e) = json::write_json(&r.value, &mut v) {
                                        failure = Some(e);
                                        continue;
                                    }
                                    v
                                }
                            };
                            out.push(Outgoing {
                                topic: self.topic_of(r.purpose),
                                key: Some(scratch.key().to_string()),
                                value,
                                headers: OutHeaders::inline(&r.headers(format)),
                                timestamp_ms: r.timestamp_ms,
                            });
                        }
                    }
                }
                match failure {
                    Some(e) => {
                        out.truncate(start);
                        Some(("unencodable", e.to_string()))
                    }
                    None => {
                        for r in scratch.records().iter().filter(|r| r.outcome.is_ok()) {
                            tally.produced(stats, r.purpose);
                            tally.fields_removed(r.purpose, input_mask, r.presence());
                        }
                        None
                    }
                }
            }
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

    #[allow(clippy::too_many_arguments)]
    fn consumed(
        &self,
        tally: &mut telemetry::Tally<'_>,
        stats: &Stats,
        source: &Source,
        scratch: &WireScratch,
        now: DateTime<Utc>,
        label: &'static str,
    ) {
        tally.consumed(stats, &source.topic, label);
        // An event holding only its time: no allocation.
        let timed = CdrEvent {
            event_time: scratch.event_time(),
            ..CdrEvent::default()
        };
        tally.event_age(&timed, now);
    }
}
