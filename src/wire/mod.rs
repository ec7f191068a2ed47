//! The policy applied to the protobuf wire format itself: one validating pass over the
//! input ([`scan`]), then, for each purpose that takes the event, its output written by
//! copying the byte ranges of the fields it keeps into a reused buffer, `retention`
//! appended ([`emit`]). No decoding into owned strings, no per-field allocation.
//!
//! [`Policy::apply`] (decode → copy allowed fields → encode) stays the oracle: the same
//! decisions are taken here from the same compiled plans, and `tests/wire_props.rs`
//! checks that every output decodes to exactly the struct path's, and that both refuse
//! the same records for the same reason. Input that prost refuses is refused here too,
//! with prost's own message (asked of prost on that rare path).
//!
//! ```text
//! let filter = WireFilter::new(&policy)?;          // once
//! let mut out = WireScratch::default();           // once per thread
//! match filter.apply(bytes, now, &mut out) { ... } // per record: out.records()
//! ```

mod emit;
mod framed;
mod scan;

use emit::rfc3339_unix;
pub use emit::{rfc3339, RFC3339_MAX};

use crate::decode::{self, DecodeError};
use crate::encode::{self, OutputFormat};
use crate::policy::table::FieldSpec;
use crate::policy::{about_the_caller, route_kind, DropReason, Invalid, Policy, Version};
use crate::retention::{ExpiryCache, LegalTime, Ttl};
use crate::schema::{self, CdrEvent, Purpose};
use chrono::{DateTime, Duration, Utc};
use emit::Plan;
use scan::{Scan, LEAVES};

/// A table row the wire path does not know: the struct path must be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the wire path has no field for table row `{0}`")]
pub struct UnsupportedRow(pub &'static str);

/// Why a record yields no output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireRefusal {
    /// Not a protobuf `CdrEvent` (or empty): prost's message, as `decode` gives it.
    Undecodable(DecodeError),
    /// Refused by the policy for every purpose (`invalid`, `future_event_time`).
    Refused(DropReason),
}

/// One purpose, compiled for the wire.
#[derive(Debug, Clone)]
struct WirePurpose {
    purpose: Purpose,
    ttl: Ttl,
    limit_months: u32,
    legal_basis: &'static str,
    /// Per column: the plan for a record not about the caller, then about the caller.
    plans: Vec<(crate::policy::table::Column, [Plan; 2])>,
    /// `retention.legal_basis` and `retention.policy_version`, encoded.
    retention_tail: Vec<u8>,
}

/// A [`Policy`] compiled for the wire format.
#[derive(Debug, Clone)]
pub struct WireFilter {
    policy: Policy,
    purposes: Vec<WirePurpose>,
}

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
    expires: schema::Timestamp,
    pub legal_basis: &'static str,
    pub policy_version: &'static str,
    expires_text: [u8; RFC3339_MAX],
    expires_len: usize,
    presence: u64,
}

impl WireRecord {
    fn new(purpose: Purpose) -> WireRecord {
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

    /// The contract's headers, as [`encode::headers`] writes them for protobuf output:
    /// static names, borrowed values.
    pub fn headers(&self) -> [(&'static str, &str); 5] {
        use encode::header;
        [
            (header::PURPOSE, self.purpose.name()),
            (header::EXPIRES_AT, self.expires_at_text()),
            (header::LEGAL_BASIS, self.legal_basis),
            (header::POLICY_VERSION, self.policy_version),
            (header::CONTENT_TYPE, OutputFormat::Protobuf.content_type()),
        ]
    }

    /// Which rows of the table the output holds a value for, in the bit order of
    /// `telemetry::presence` (for the `fields_removed` metric).
    pub fn presence(&self) -> u64 {
        self.presence
    }

    /// Forwarded, expiring at `(seconds, nanos)`, with this CreateTime.
    fn forward(&mut self, (seconds, nanos): Unix, timestamp_ms: i64) {
        self.outcome = Ok(());
        self.expires = schema::Timestamp {
            seconds,
            nanos: nanos as i32,
        };
        self.timestamp_ms = timestamp_ms;
        self.expires_len = rfc3339_unix(seconds, nanos, &mut self.expires_text);
    }
}

/// An instant as Unix seconds and nanoseconds (below 10⁹): ordered like the instants.
type Unix = (i64, u32);

/// The first second of year 1 and of year 10000: event times must lie between.
pub(crate) const MIN_SECS: i64 = -62_135_596_800;
pub(crate) const END_SECS: i64 = 253_402_300_800;

fn unix(t: DateTime<Utc>) -> Unix {
    (t.timestamp(), t.timestamp_subsec_nanos())
}

/// Per-thread state of the wire path: the scan and one output record per purpose, with
/// their buffers. Reuse it from record to record: after the first few records, the fast
/// path allocates nothing.
#[derive(Debug, Default)]
pub struct WireScratch {
    scan: Scan,
    records: Vec<WireRecord>,
    /// One expiry cache per purpose, in configuration order.
    expiry: Vec<ExpiryCache>,
    key: String,
    input_presence: u64,
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
        self.scan.event_time
    }

    /// Which rows of the table the last accepted input held a value for, in the bit
    /// order of `telemetry::presence`.
    pub fn presence(&self) -> u64 {
        self.input_presence
    }
}

/// `ROWS[l]`: the bit of leaf `l` in the order of `table::schema_rows()` (the
/// telemetry's), 0 for a leaf that is not a row.
fn leaf_rows() -> &'static [u64; 48] {
    static ROWS: std::sync::OnceLock<[u64; 48]> = std::sync::OnceLock::new();
    ROWS.get_or_init(|| {
        let rows = crate::policy::table::schema_rows();
        let mut bits = [0u64; 48];
        for (l, leaf) in LEAVES.iter().enumerate() {
            if let Some(i) = rows.iter().position(|r| r.path == leaf.path) {
                bits[l] = 1 << i;
            }
        }
        bits
    })
}

/// A mask over leaf ids to a mask over rows.
fn to_rows(mut leaves: u64) -> u64 {
    let bits = leaf_rows();
    let mut m = 0;
    while leaves != 0 {
        m |= bits[leaves.trailing_zeros() as usize];
        leaves &= leaves - 1;
    }
    m
}

/// Every field set: what a row's copy function moves tells whether it copies at all.
fn probe() -> CdrEvent {
    use crate::schema::*;
    let s = || "x".to_string();
    let ts = Some(Timestamp {
        seconds: 1,
        nanos: 1,
    });
    CdrEvent {
        event_id: s(),
        event_time: ts,
        event_type: 1,
        direction: 1,
        declared_purposes: vec![1],
        served: Some(Subscriber {
            imsi: s(),
            msisdn: s(),
            account_id: s(),
            ue_ip: s(),
        }),
        terminal: Some(Terminal {
            imei: s(),
            imeisv: s(),
        }),
        calling: Some(Party {
            number: s(),
            ip: s(),
            port: 1,
        }),
        called: Some(Party {
            number: s(),
            ip: s(),
            port: 1,
        }),
        timing: Some(Timing {
            answer_time: ts,
            release_time: ts,
            duration_ms: 1,
        }),
        network: Some(Network {
            recording_entity: s(),
            cause_for_term: s(),
            rat_type: s(),
            basic_service: s(),
            call_reference: s(),
            charging_id: s(),
            apn: s(),
            bytes_uplink: 1,
            bytes_downlink: 1,
        }),
        supplementary_services: vec![SupplementaryService {
            code: s(),
            provider: s(),
        }],
        location: Some(Location {
            mcc: s(),
            mnc: s(),
            lac: s(),
            cell_id: s(),
            latitude: 1.0,
            longitude: 1.0,
        }),
        charging: Some(Charging {
            chargeable: true,
            tariff_class: s(),
            amount_minor: 1,
            currency: s(),
            rating_group: 1,
        }),
        content: Some(Content {
            sms_text: s(),
            ussd_string: s(),
            url: s(),
            dns_query: s(),
            sni: s(),
        }),
        extensions: [(s(), s())].into_iter().collect(),
        retention: None,
    }
}

/// The leaves a list of rows copies (rows whose copy function copies nothing — content,
/// extensions, `declared_purposes`, rows written `never!` — copy nothing here either).
fn leaves_of(rows: &[&'static FieldSpec], full: &CdrEvent) -> Result<u64, UnsupportedRow> {
    let mut mask = 0u64;
    for row in rows {
        let i = LEAVES
            .iter()
            .position(|l| l.path == row.path)
            .ok_or(UnsupportedRow(row.path))?;
        let mut out = CdrEvent::default();
        (row.access.copy)(full, &mut out);
        if row.is_present(&out) {
            mask |= 1 << i;
        }
    }
    Ok(mask)
}

impl WireFilter {
    /// Compiles the policy's purposes (their plans after removals and keeps) for the
    /// wire. Fails only for a table row this module does not know (a new schema field):
    /// use the struct path then.
    pub fn new(policy: &Policy) -> Result<WireFilter, UnsupportedRow> {
        let full = probe();
        let purposes = policy
            .purposes
            .iter()
            .map(|p| {
                let plans = p
                    .column_plans()
                    .map(|(column, always, if_caller)| {
                        let always = leaves_of(always, &full)?;
                        let if_caller = leaves_of(if_caller, &full)?;
                        Ok((
                            column,
                            [
                                Plan::from_leaves(always),
                                Plan::from_leaves(always | if_caller),
                            ],
                        ))
                    })
                    .collect::<Result<Vec<_>, UnsupportedRow>>()?;
                let mut retention_tail = Vec::new();
                emit::string_field(3, p.legal.legal_basis, &mut retention_tail);
                emit::string_field(4, policy.version.name(), &mut retention_tail);
                Ok(WirePurpose {
                    purpose: p.legal.purpose,
                    ttl: p.ttl,
                    limit_months: p.legal.limit_months,
                    legal_basis: p.legal.legal_basis,
                    plans,
                    retention_tail,
                })
            })
            .collect::<Result<Vec<_>, UnsupportedRow>>()?;
        Ok(WireFilter {
            policy: policy.clone(),
            purposes,
        })
    }

    fn version(&self) -> Version {
        self.policy.version
    }

    fn legal_time(&self) -> LegalTime {
        self.policy.legal_time
    }

    fn max_clock_skew(&self) -> Duration {
        self.policy.max_clock_skew
    }

    /// Applies the policy to one protobuf record. On `Ok`, `out.records()` holds one
    /// decision per purpose (forwarded records with their value) and `out.key()` the
    /// key; on `Err`, the record is refused for every purpose, as the struct path
    /// (`decode::decode(.., Protobuf)` then [`Policy::apply`]) would refuse it.
    pub fn apply(
        &self,
        input: &[u8],
        now: DateTime<Utc>,
        out: &mut WireScratch,
    ) -> Result<(), WireRefusal> {
        self.apply_prefixed(input, &[], now, out)
    }

    /// [`WireFilter::apply`], each output value starting with `prefix` (the Schema
    /// Registry header of `output.framing`, or nothing).
    pub fn apply_prefixed(
        &self,
        input: &[u8],
        prefix: &[u8],
        now: DateTime<Utc>,
        out: &mut WireScratch,
    ) -> Result<(), WireRefusal> {
        if input.is_empty() {
            return Err(WireRefusal::Undecodable(DecodeError::Empty));
        }
        if out.scan.run(input).is_err() {
            return self.refused_by_scan(input, prefix, now, out);
        }
        let s = &out.scan;
        let event_time = self.validate(s, now).map_err(WireRefusal::Refused)?;
        let now = unix(now);
        let timestamp_ms = event_time.0 * 1000 + i64::from(event_time.1 / 1_000_000);
        if out.records.len() != self.purposes.len() {
            out.records = self
                .purposes
                .iter()
                .map(|p| WireRecord::new(p.purpose))
                .collect();
        }
        let legal = self.legal_time();
        if out.expiry.len() != self.purposes.len()
            || !self
                .purposes
                .iter()
                .zip(&out.expiry)
                .all(|(p, c)| c.is_for(p.ttl, p.limit_months, legal))
        {
            out.expiry = self
                .purposes
                .iter()
                .map(|p| ExpiryCache::new(p.ttl, p.limit_months, legal))
                .collect();
        }
        let caller = about_the_caller(s.event_type, s.direction);
        let version = self.version();
        let purposes = self.purposes.iter().zip(&mut out.expiry);
        for ((p, cache), r) in purposes.zip(out.records.iter_mut()) {
            r.purpose = p.purpose;
            r.legal_basis = p.legal_basis;
            r.policy_version = version.name();
            let decided = self.decide(p, s, event_time, now, cache);
            let (column, expires_at) = match decided {
                Ok(d) => d,
                Err(reason) => {
                    r.outcome = Err(reason);
                    continue;
                }
            };
            let plan = &p
                .plans
                .iter()
                .find(|(c, _)| *c == column)
                .expect("every column of the purpose is compiled")
                .1[usize::from(caller)];
            emit::event(plan, input, s, prefix, &mut r.value);
            r.forward(expires_at, timestamp_ms);
            emit::retention(
                p.purpose as i32,
                &r.expires,
                &p.retention_tail,
                &mut r.value,
            );
            r.presence = to_rows(plan.keep & s.set);
        }
        out.input_presence = to_rows(s.set);
        let key = &input[s.event_id.start as usize..s.event_id.end as usize];
        out.key.clear();
        out.key
            .push_str(std::str::from_utf8(key).expect("validated by the scan"));
        Ok(())
    }

    /// [`Policy`]'s refusals, on the scanned fields: the event time, in years 1-9999
    /// (`schema::to_datetime` and the year, on the seconds).
    fn validate(&self, s: &Scan, now: DateTime<Utc>) -> Result<Unix, DropReason> {
        if s.event_id.len() == 0 {
            return Err(DropReason::Invalid(Invalid::MissingEventId));
        }
        let ts = s
            .event_time
            .as_ref()
            .ok_or(DropReason::Invalid(Invalid::MissingEventTime))?;
        let t = u32::try_from(ts.nanos)
            .ok()
            .filter(|n| *n < 1_000_000_000 && (MIN_SECS..END_SECS).contains(&ts.seconds))
            .map(|n| (ts.seconds, n))
            .ok_or(DropReason::Invalid(Invalid::EventTimeOutOfRange))?;
        if t > unix(now + self.max_clock_skew()) {
            return Err(DropReason::FutureEventTime);
        }
        Ok(t)
    }

    /// [`Policy`]'s decision for one purpose.
    fn decide(
        &self,
        p: &WirePurpose,
        s: &Scan,
        (seconds, nanos): Unix,
        now: Unix,
        cache: &mut ExpiryCache,
    ) -> Result<(crate::policy::table::Column, Unix), DropReason> {
        let purpose = p.purpose as i32;
        let named = (0..32).contains(&purpose) && s.declared & (1 << purpose) != 0;
        if s.declared_any && !named {
            return Err(DropReason::NotDeclared);
        }
        let column = route_kind(
            self.version(),
            p.purpose,
            s.event_type,
            s.direction,
            s.chargeable,
        )?;
        // `retention::expires_at`, remembered per legal-time day.
        let expires_at = cache
            .expires_at_unix(seconds, nanos)
            .ok_or(DropReason::Invalid(Invalid::EventTimeOutOfRange))?;
        if expires_at <= now {
            return Err(DropReason::Expired);
        }
        Ok((column, expires_at))
    }

    /// The scan refused the record: prost's message; if prost accepts it after all (a
    /// bug of the scanner), the struct path decides.
    #[cold]
    fn refused_by_scan(
        &self,
        input: &[u8],
        prefix: &[u8],
        now: DateTime<Utc>,
        out: &mut WireScratch,
    ) -> Result<(), WireRefusal> {
        let (event, _) = match decode::decode(input, decode::InputFormat::Protobuf) {
            Err(e) => return Err(WireRefusal::Undecodable(e)),
            Ok(e) => e,
        };
        out.disagreements += 1;
        tracing::error!("the wire scanner refused a record prost decodes; struct path used");
        self.apply_struct(event, prefix, now, out)
    }

    /// The struct path into the wire path's outputs.
    fn apply_struct(
        &self,
        event: CdrEvent,
        prefix: &[u8],
        now: DateTime<Utc>,
        out: &mut WireScratch,
    ) -> Result<(), WireRefusal> {
        out.input_presence = crate::telemetry::presence(&event);
        let evaluation = self.policy.apply_owned(event, now);
        if let Some(r) = evaluation.refusal() {
            return Err(WireRefusal::Refused(r));
        }
        out.records = evaluation
            .outcomes
            .into_iter()
            .map(|(purpose, o)| {
                let mut r = WireRecord::new(purpose);
                match o {
                    crate::policy::Outcome::Drop(reason) => r.outcome = Err(reason),
                    crate::policy::Outcome::Forward(f) => {
                        encode::encode_framed(
                            &f.event,
                            OutputFormat::Protobuf,
                            prefix,
                            &mut r.value,
                        )
                        .expect("protobuf encoding never fails");
                        r.legal_basis = f.legal_basis;
                        r.policy_version = f.policy_version;
                        r.forward(unix(f.expires_at), f.timestamp_ms);
                        r.presence = crate::telemetry::presence(&f.event);
                        out.key.clear();
                        out.key.push_str(&f.key);
                    }
                }
                r
            })
            .collect();
        Ok(())
    }
}

/// Whether `input` is a protobuf `CdrEvent` prost accepts, by the wire scanner alone
/// (for tests: it must agree with prost on every input).
pub fn scans(input: &[u8]) -> bool {
    Scan::default().run(input).is_ok()
}

/// For input of `input.format = auto`: the records the JSON decoder is tried on first.
pub fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().first() == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_both_tables_is_a_leaf() {
        for version in Version::ALL {
            for row in version.fields() {
                assert!(
                    LEAVES.iter().any(|l| l.path == row.path),
                    "{}: {}",
                    version.name(),
                    row.path
                );
            }
            assert_eq!(version.fields().len(), LEAVES.len());
        }
    }

    #[test]
    fn the_event_years_in_seconds() {
        use chrono::TimeZone;
        let first = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!((first.timestamp(), end.timestamp()), (MIN_SECS, END_SECS));
    }

    #[test]
    fn varint_lengths() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut b = Vec::new();
            emit::varint(v, &mut b);
            assert_eq!(b.len(), emit::varint_len(v), "{v}");
        }
    }
}
