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

mod compile;
mod emit;
mod fallback;
mod framed;
pub(crate) mod protobuf;
mod record;
mod scan;

use compile::to_rows;
pub use emit::{rfc3339, RFC3339_MAX};
pub(crate) use emit::{rfc3339_unix, NO_DAY};
use record::{unix, Unix, END_SECS, MIN_SECS};
pub use record::{WireRecord, WireScratch};

use crate::decode::DecodeError;
use crate::policy::{
    about_the_caller, check_enums, check_times, route_kind, DropReason, Invalid, Policy, Version,
};
use crate::retention::{ExpiryCache, LegalTime, Ttl};
use crate::schema::Purpose;
use chrono::{DateTime, Duration, Utc};
use emit::CopyPlan;
use scan::Scan;
pub(crate) use scan::{leaf_of, CHARGEABLE, MSG_LEAVES};

/// What the policy's decisions read of an event, whichever reader read it: the wire
/// scan ([`Scan::route`]) or the JSON parser.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Route {
    /// The length of `event_id` (0: missing).
    pub event_id_len: usize,
    pub event_time: Option<crate::schema::Timestamp>,
    /// `timing.answer_time` and `timing.release_time`, when set (checked in range).
    pub answer_time: Option<crate::schema::Timestamp>,
    pub release_time: Option<crate::schema::Timestamp>,
    pub event_type: i32,
    pub direction: i32,
    pub chargeable: bool,
    /// `declared_purposes`: any value at all, and bit v for a value v in 0..=31.
    pub declared_any: bool,
    pub declared: u32,
    /// The leaves whose value is set (non-default; a timestamp: present), by leaf id
    /// ([`leaf_of`]); a supplementary service's field when any element sets it.
    pub set: u64,
}

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
    plans: Vec<(crate::policy::table::Column, [CopyPlan; 2])>,
    /// `retention.legal_basis` and `retention.policy_version`, encoded.
    retention_tail: Vec<u8>,
}

impl WirePurpose {
    /// The plan of a column, for a record about the caller or not.
    #[inline(always)]
    fn plan(&self, column: crate::policy::table::Column, caller: bool) -> &CopyPlan {
        &self
            .plans
            .iter()
            .find(|(c, _)| *c == column)
            .expect("every column of the purpose is compiled")
            .1[usize::from(caller)]
    }
}

/// A [`Policy`] compiled for the wire format.
#[derive(Debug, Clone)]
pub struct WireFilter {
    policy: Policy,
    purposes: Vec<WirePurpose>,
    /// [`Policy::in_force_until`] in Unix seconds: events from then on are dropped
    /// (`not_in_force`).
    until: Option<i64>,
}

/// An instant in nanoseconds since the epoch (exact for every [`Unix`]).
#[inline(always)]
fn nanos_of((seconds, nanos): Unix) -> i128 {
    i128::from(seconds) * 1_000_000_000 + i128::from(nanos)
}

/// A duration in nanoseconds (exact for every chrono `Duration`).
fn duration_nanos(d: Duration) -> i128 {
    i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos())
}

impl WireFilter {
    fn version(&self) -> Version {
        self.policy.version
    }

    fn legal_time(&self) -> LegalTime {
        self.policy.legal_time
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
        let scanned = out.scan.run(input);
        out.event_time = out.scan.event_time;
        if scanned.is_err() {
            return self.refused_by_scan(input, prefix, now, out);
        }
        let route = out.scan.route();
        let s = &out.scan;
        let now = unix(now);
        let event_time = self.validate(&route, now).map_err(WireRefusal::Refused)?;
        let timestamp_ms = event_time.0 * 1000 + i64::from(event_time.1 / 1_000_000);
        self.ready(&mut out.records, &mut out.expiry);
        // The loop of `forward_each`, written out: through its closure this path is
        // measurably slower (`cargo bench --bench core`, `core/protobuf_wire_path`).
        let caller = about_the_caller(s.event_type, s.direction);
        let version = self.version();
        let purposes = self.purposes.iter().zip(&mut out.expiry);
        for ((p, cache), r) in purposes.zip(out.records.iter_mut()) {
            r.purpose = p.purpose;
            r.legal_basis = p.legal_basis;
            r.policy_version = version.name();
            let decided = self.decide(p, &route, event_time, now, cache);
            let (column, expires_at) = match decided {
                Ok(d) => d,
                // A purpose's refusal refuses the record, as `Evaluation::refusal` does.
                Err(reason) if reason.is_refusal() => return Err(WireRefusal::Refused(reason)),
                Err(reason) => {
                    r.outcome = Err(reason);
                    continue;
                }
            };
            let plan = p.plan(column, caller);
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

    /// The policy's decisions on an event read by another reader than the scan (the JSON
    /// one): for each purpose that takes it, `write(keep, record)` writes the output
    /// value (retention included) from the leaves of the mask `keep`, or says it cannot
    /// (`false`: then nothing is decided and the caller must use another path). `key`:
    /// the event's `event_id`. On `Ok(true)`, `out` holds what [`WireFilter::apply`] would
    /// have left for the same event.
    pub(crate) fn apply_routed(
        &self,
        route: &Route,
        key: &str,
        now: DateTime<Utc>,
        out: &mut WireScratch,
        mut write: impl FnMut(u64, &mut WireRecord) -> bool,
    ) -> Result<bool, WireRefusal> {
        out.event_time = route.event_time;
        let written = self
            .forward_each(
                route,
                now,
                &mut out.records,
                &mut out.expiry,
                |_, plan, r| write(plan.keep, r),
            )
            .map_err(WireRefusal::Refused)?;
        if written {
            out.input_presence = to_rows(route.set);
            out.key.clear();
            out.key.push_str(key);
        }
        Ok(written)
    }

    /// Validates the event, then for each purpose decides and, when the purpose takes
    /// the event, writes its output with `write` (after [`WireRecord::forward`]: the
    /// expiry is known). `Ok(false)` when `write` could not.
    fn forward_each(
        &self,
        route: &Route,
        now: DateTime<Utc>,
        records: &mut Vec<WireRecord>,
        expiry: &mut Vec<ExpiryCache>,
        mut write: impl FnMut(&WirePurpose, &CopyPlan, &mut WireRecord) -> bool,
    ) -> Result<bool, DropReason> {
        let now = unix(now);
        let event_time = self.validate(route, now)?;
        let timestamp_ms = event_time.0 * 1000 + i64::from(event_time.1 / 1_000_000);
        self.ready(records, expiry);
        let caller = about_the_caller(route.event_type, route.direction);
        let version = self.version();
        let purposes = self.purposes.iter().zip(expiry.iter_mut());
        for ((p, cache), r) in purposes.zip(records.iter_mut()) {
            r.purpose = p.purpose;
            r.legal_basis = p.legal_basis;
            r.policy_version = version.name();
            let decided = self.decide(p, route, event_time, now, cache);
            let (column, expires_at) = match decided {
                Ok(d) => d,
                Err(reason) if reason.is_refusal() => return Err(reason),
                Err(reason) => {
                    r.outcome = Err(reason);
                    continue;
                }
            };
            let plan = p.plan(column, caller);
            r.forward(expires_at, timestamp_ms);
            r.value.clear();
            if !write(p, plan, r) {
                return Ok(false);
            }
            r.presence = to_rows(plan.keep & route.set);
        }
        Ok(true)
    }

    /// One output record and one expiry cache per purpose, made again only when the
    /// purposes (or their limits) differ from the last record's.
    #[inline(always)]
    fn ready(&self, records: &mut Vec<WireRecord>, expiry: &mut Vec<ExpiryCache>) {
        if records.len() != self.purposes.len() {
            *records = self
                .purposes
                .iter()
                .map(|p| WireRecord::new(p.purpose))
                .collect();
        }
        let legal = self.legal_time();
        if expiry.len() != self.purposes.len()
            || !self
                .purposes
                .iter()
                .zip(expiry.iter())
                .all(|(p, c)| c.is_for(p.ttl, p.limit_months, legal))
        {
            *expiry = self
                .purposes
                .iter()
                .map(|p| ExpiryCache::new(p.ttl, p.limit_months, legal))
                .collect();
        }
    }

    /// [`Policy`]'s refusals, on the scanned fields: the event time, in years 1-9999
    /// (`schema::to_datetime` and the year, on the seconds).
    fn validate(&self, s: &Route, now: Unix) -> Result<Unix, DropReason> {
        if s.event_id_len == 0 {
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
        check_times(s.answer_time.as_ref(), s.release_time.as_ref())?;
        check_enums(s.event_type, s.direction)?;
        if nanos_of(t) > nanos_of(now) + duration_nanos(self.policy.max_clock_skew) {
            return Err(DropReason::FutureEventTime);
        }
        Ok(t)
    }

    /// [`Policy`]'s decision for one purpose.
    fn decide(
        &self,
        p: &WirePurpose,
        s: &Route,
        (seconds, nanos): Unix,
        now: Unix,
        cache: &mut ExpiryCache,
    ) -> Result<(crate::policy::table::Column, Unix), DropReason> {
        // `until` is a whole second: an event at or after it, nanoseconds aside.
        if self.until.is_some_and(|end| seconds >= end) {
            return Err(DropReason::NotInForce);
        }
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
        if expires_at.0 > crate::schema::MAX_SECONDS {
            return Err(DropReason::Invalid(Invalid::ExpiryOutOfRange));
        }
        if expires_at <= now {
            return Err(DropReason::Expired);
        }
        Ok((column, expires_at))
    }
}

/// Whether `input` is a protobuf `CdrEvent` prost accepts, by the wire scanner alone
/// (for tests: it must agree with prost on every input).
pub fn scans(input: &[u8]) -> bool {
    Scan::default().run(input).is_ok()
}

/// The scan's [`Route`] of a protobuf event (for tests of the other readers).
#[cfg(test)]
pub(crate) fn route_of(input: &[u8]) -> Option<Route> {
    let mut s = Scan::default();
    s.run(input).ok()?;
    Some(s.route())
}

/// For input of `input.format = auto`: the records the JSON decoder is tried on first.
pub fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().first() == Some(&b'{')
}

#[cfg(test)]
mod tests;
