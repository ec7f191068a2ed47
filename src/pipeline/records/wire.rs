//! [`Transform::process_wire`]: [`Transform::process`] on the wire path
//! ([`crate::wire`]) for protobuf input and output — the same records, dead
//! letters and metrics, without decoding the event into owned strings.

use super::{headers_of, Outgoing, Source, Transform};
use crate::decode::InputFormat;
use crate::encode::OutputFormat;
use crate::framing::{self, BodyKind};
use crate::schema::CdrEvent;
use crate::telemetry::{self, Stats};
use crate::wire::{self, WireFilter, WireRefusal, WireScratch};
use chrono::{DateTime, Utc};
use std::cell::RefCell;

thread_local! {
    /// The wire path's reused buffers, one set per thread.
    static SCRATCH: RefCell<WireScratch> = RefCell::new(WireScratch::default());
}

impl Transform {
    /// Whether [`Transform::process_wire`] takes the wire path for this record (protobuf
    /// in and out, bare or Schema Registry framed); otherwise it is [`Transform::process`].
    pub fn wire_applies(&self, payload: &[u8]) -> bool {
        let settings = &self.settings;
        // JSON and the benchmark floor take the struct path.
        !self.is_passthrough()
            && settings.output_format == OutputFormat::Protobuf
            && match settings.input_format {
                InputFormat::Protobuf | InputFormat::ConfluentProtobuf => true,
                InputFormat::Auto if framing::is_framed(payload) => {
                    framing::guess_kind(payload) == BodyKind::Protobuf
                }
                InputFormat::Auto => !wire::looks_like_json(payload),
                _ => false,
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
        SCRATCH.with_borrow_mut(|scratch| {
            let settings = &self.settings;
            let (format, ids) = (settings.input_format, &settings.input_schema_ids);
            let mut schema_id = None;
            let result = filter.apply_record(payload, format, ids, &self.header, now, scratch);
            let refusal = match result {
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
                    self.consumed(stats, source, scratch, now);
                    Some((r.as_str(), r.message().to_string()))
                }
                Ok(()) => {
                    self.consumed(stats, source, scratch, now);
                    let input_mask = scratch.presence();
                    for r in scratch.records() {
                        match r.outcome {
                            Err(reason) => self.hot.dropped(stats, r.purpose, reason),
                            Ok(()) => {
                                out.push(Outgoing {
                                    topic: self.topic_of(r.purpose),
                                    key: Some(scratch.key().to_string()),
                                    value: r.value.clone(),
                                    headers: headers_of(&r.headers()),
                                    timestamp_ms: r.timestamp_ms,
                                });
                                self.hot.produced(stats, r.purpose);
                                self.hot
                                    .fields_removed_masks(r.purpose, input_mask, r.presence());
                            }
                        }
                    }
                    None
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
        })
    }

    fn consumed(&self, stats: &Stats, source: &Source, scratch: &WireScratch, now: DateTime<Utc>) {
        self.hot.consumed(stats, &source.topic, "protobuf");
        // An event holding only its time: no allocation.
        let timed = CdrEvent {
            event_time: scratch.event_time(),
            ..CdrEvent::default()
        };
        self.hot.event_age(&timed, now);
    }
}
