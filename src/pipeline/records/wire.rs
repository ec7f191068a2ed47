//! [`Transform::process_wire`]: [`Transform::process`] on the wire path
//! ([`crate::wire`]) — the same records, dead letters and metrics, without decoding the
//! event into owned strings. Protobuf in as it is; JSON in through
//! [`crate::json::JsonScratch`] (its canonical protobuf bytes); JSON out written from the
//! filtered bytes by [`crate::json::write_json`]; JSON in and out without protobuf at all
//! (the policy decided on the parsed event, each output written from it; through
//! protobuf when that writer gives up). Schema Registry framed protobuf in, and
//! `output.framing` with protobuf out, too (the body a slice, the prefix written into the
//! reused buffer).

use super::{spare, OutHeaders, Outgoing, Source, Transform};
use crate::decode::InputFormat;
use crate::encode::OutputFormat;
use crate::framing::{self, BodyKind};
use crate::json::{self, JsonScratch};
use crate::schema::CdrEvent;
use crate::telemetry::{self, Stats};
use crate::wire::{self, WireFilter, WireRefusal, WireScratch};
use chrono::{DateTime, Utc};
use std::cell::RefCell;

/// What the wire path wrote into its records' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// The filtered protobuf event (or framed): JSON output is written from it.
    Protobuf,
    /// The output's JSON already.
    Json,
}

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
    /// The hot path: written out in one function on purpose (the core bench measures it).
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
        let settings = &self.settings;
        // The `output.framing` prefix (only with protobuf output here), or nothing.
        let prefix = &self.header;
        let json_out = settings.output_format == OutputFormat::Json;
        JSON.with_borrow_mut(|json| {
            SCRATCH.with_borrow_mut(|scratch| {
                let (result, written) = if json_in {
                    // What the fast parser leaves (and an empty event, refused by the
                    // policy's own words) is the struct path's.
                    if !json.parse(payload) || json.is_empty_event() {
                        self.hot.tally().json_slow_path(stats);
                        return self.process_struct(source, payload, now, stats, out);
                    }
                    let direct = if json_out {
                        // JSON to JSON: decided and written from the parsed event.
                        let route = json.route();
                        let mut times = json::Times::default();
                        let key = json.event_id(payload);
                        let write = |keep, r: &mut _| {
                            json.write_output(payload, &route, keep, r, &mut times)
                        };
                        match filter.apply_routed(&route, key, now, scratch, write) {
                            Ok(true) => Some(Ok(())),
                            Ok(false) => None,
                            Err(e) => Some(Err(e)),
                        }
                    } else {
                        None
                    };
                    match direct {
                        Some(result) => (result, Written::Json),
                        None => {
                            // Through the event's protobuf bytes.
                            json.write_protobuf(payload);
                            let pb = json.protobuf();
                            (
                                filter.apply_prefixed(pb, prefix, now, scratch),
                                Written::Protobuf,
                            )
                        }
                    }
                } else {
                    let (input_format, ids) = (settings.input_format, &settings.input_schema_ids);
                    let result =
                        filter.apply_record(payload, input_format, ids, prefix, now, scratch);
                    (result, Written::Protobuf)
                };
                let label = if json_in { "json" } else { "protobuf" };
                self.process_scanned(
                    source, payload, result, written, label, now, stats, scratch, out,
                )
            })
        })
    }

    /// The wire path's `result` on a record (`payload`; its outputs in `scratch`, as
    /// `written`): the outgoing records, or the dead letter, which carries the payload.
    /// The hot path: its parts are inlined (the core bench measures it).
    #[allow(clippy::too_many_arguments)]
    fn process_scanned(
        &self,
        source: &Source,
        payload: &[u8],
        result: Result<(), WireRefusal>,
        written: Written,
        label: &'static str,
        now: DateTime<Utc>,
        stats: &Stats,
        scratch: &mut WireScratch,
        out: &mut Vec<Outgoing>,
    ) {
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
                telemetry::emit(telemetry::events::RecordUndecodable { kind: e.kind() });
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
                self.forwarded(&mut tally, stats, scratch, written, out)
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

    /// The outgoing records of a record the policy took, counted in `tally`; or, when one
    /// of its outputs cannot be written, why it is dead-lettered whole (as on the struct
    /// path), nothing of it in `out`.
    #[inline(always)]
    fn forwarded(
        &self,
        tally: &mut telemetry::Tally<'_>,
        stats: &Stats,
        scratch: &WireScratch,
        written: Written,
        out: &mut Vec<Outgoing>,
    ) -> Option<(&'static str, String)> {
        let format = self.settings.output_format;
        let input_mask = scratch.presence();
        // Every output written first: a record one purpose's output cannot be
        // written for is dead-lettered whole, as on the struct path.
        let start = out.len();
        let mut failure = None;
        for r in scratch.records() {
            match r.outcome {
                Err(reason) => tally.dropped(stats, r.purpose, reason),
                Ok(()) => {
                    let value = match (format, written) {
                        (OutputFormat::Protobuf, _) | (_, Written::Json) => {
                            let mut v = spare::value();
                            v.extend_from_slice(&r.value);
                            v
                        }
                        (OutputFormat::Json, Written::Protobuf) => {
                            let mut v = spare::value();
                            if let Err(e) = json::write_json(&r.value, &mut v) {
                                failure = Some(e);
                                continue;
                            }
                            v
                        }
                    };
                    out.push(Outgoing {
                        topic: self.topic_of(r.purpose),
                        key: Some(spare::key(scratch.key())),
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
