//! The wire path's outputs: one [`WireRecord`] per purpose, in a per-thread
//! [`WireScratch`] reused from record to record.

use super::emit::{rfc3339_unix, NO_DAY};
use super::scan::Scan;
use super::RFC3339_MAX;
use crate::encode::{self, OutputFormat};
use crate::policy::DropReason;
use crate::retention::ExpiryCache;
use crate::schema::{self, Purpose};
use chrono::{DateTime, Utc};

/// The decision and output for one purpose, in configuration order. Reused.
#[derive(Debug, Clone)]
pub struct WireRecord {
    pub purpose: Purpose,
    /// `Ok`: forwarded, `value` holds the record; `Err`: dropped for this reason.
    pub outcome: Result<(), DropReason>,
    /// The encoded output event (retention included).
    pub value: Vec<u8>,
    /// `event_time` in milliseconds: the Kafka CreateTime.
    pub timestamp_ms: i64,
    /// `retention.expires_at`: [`WireRecord::expires_at`].
    pub(super) expires: schema::Timestamp,
    pub legal_basis: &'static str,
    pub policy_version: &'static str,
    pub(super) expires_text: [u8; RFC3339_MAX],
    pub(super) expires_len: usize,
    /// The day whose date `expires_text` starts with (written again only when it changes).
    expires_day: i64,
    pub(super) presence: u64,
}

impl WireRecord {
    pub(super) fn new(purpose: Purpose) -> WireRecord {
        WireRecord {
            purpose,
            outcome: Err(DropReason::NotDeclared),
            value: Vec::new(),
            timestamp_ms: 0,
            expires: schema::Timestamp::default(),
            legal_basis: "",
            policy_version: "",
            expires_text: [0; RFC3339_MAX],
            expires_len: 0,
            expires_day: NO_DAY,
            presence: 0,
        }
    }

    /// The record's expiry (`retention.expires_at`).
    pub fn expires_at(&self) -> DateTime<Utc> {
        schema::to_datetime(&self.expires).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The `cdr-expires-at` header value (as [`crate::retention::rfc3339`]).
    pub fn expires_at_text(&self) -> &str {
        std::str::from_utf8(&self.expires_text[..self.expires_len]).unwrap_or("")
    }

    /// The contract's headers, as [`encode::headers`] writes them for `format`: static
    /// names, borrowed values.
    pub fn headers(&self, format: OutputFormat) -> [(&'static str, &str); 5] {
        use encode::header;
        [
            (header::PURPOSE, self.purpose.name()),
            (header::EXPIRES_AT, self.expires_at_text()),
            (header::LEGAL_BASIS, self.legal_basis),
            (header::POLICY_VERSION, self.policy_version),
            (header::CONTENT_TYPE, format.content_type()),
        ]
    }

    /// Which rows of the table the output holds a value for, in the bit order of
    /// `telemetry::presence` (for the `fields_removed` metric).
    pub fn presence(&self) -> u64 {
        self.presence
    }

    /// Forwarded, expiring at `(seconds, nanos)`, with this CreateTime.
    pub(super) fn forward(&mut self, (seconds, nanos): Unix, timestamp_ms: i64) {
        self.outcome = Ok(());
        self.expires = schema::Timestamp {
            seconds,
            nanos: nanos as i32,
        };
        self.timestamp_ms = timestamp_ms;
        self.expires_len = rfc3339_unix(
            seconds,
            nanos,
            &mut self.expires_text,
            &mut self.expires_day,
        );
    }
}

/// An instant as Unix seconds and nanoseconds (below 10⁹): ordered like the instants.
pub(super) type Unix = (i64, u32);

/// The first second of year 1 and of year 10000: event times must lie between.
pub(crate) const MIN_SECS: i64 = -62_135_596_800;
pub(crate) const END_SECS: i64 = 253_402_300_800;

pub(super) fn unix(t: DateTime<Utc>) -> Unix {
    (t.timestamp(), t.timestamp_subsec_nanos())
}

/// Per-thread state of the wire path: the scan and one output record per purpose, with
/// their buffers. Reuse it from record to record: after the first few records, the fast
/// path allocates nothing.
#[derive(Debug, Default)]
pub struct WireScratch {
    pub(super) scan: Scan,
    pub(super) records: Vec<WireRecord>,
    /// One expiry cache per purpose, in configuration order.
    pub(super) expiry: Vec<ExpiryCache>,
    pub(super) key: String,
    pub(super) input_presence: u64,
    /// The last record's `event_time`, whichever reader read it.
    pub(super) event_time: Option<schema::Timestamp>,
    /// Records the scanner refused that prost decoded: handled by the struct path. Always
    /// 0 unless the scanner has a bug (the differential tests check it).
    pub disagreements: u64,
}

impl WireScratch {
    /// The decisions of the last [`WireFilter::apply`], one per purpose.
    pub fn records(&self) -> &[WireRecord] {
        &self.records
    }

    /// The output key (`event_id`) of the last accepted record.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The last scanned record's `event_time`, if it had one (for the event-age metric).
    pub fn event_time(&self) -> Option<schema::Timestamp> {
        self.event_time
    }

    /// Which rows of the table the last accepted input held a value for, in the bit
    /// order of `telemetry::presence`.
    pub fn presence(&self) -> u64 {
        self.input_presence
    }
}
