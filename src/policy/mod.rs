//! The purpose policy — pure, no I/O, no clock of its own. Its tables and routing decide
//! on both paths of a record: the wire path ([`crate::wire`]) compiles them into copy
//! plans over the protobuf bytes; the struct path (its fallback and oracle) applies them
//! to a decoded `CdrEvent` here.
//!
//! `Policy::apply(event, now)` decides, for each configured purpose, whether the event is
//! forwarded (and builds the output record: key, timestamp, expiry, legal basis, and the
//! event reduced to the fields that purpose may keep) or dropped, with a reason.
//! The table it reads is the configured version's ([`Version::fields`]), and its routing is
//! [`route`].

mod route;
pub mod table;
pub mod version;

pub use route::{about_the_caller, drop_reasons, route, route_kind};
pub use version::Version;

use crate::retention::{self, LegalTime, Ttl};
use crate::schema::{self, CdrEvent, Purpose, Retention};
use chrono::{DateTime, Datelike, Duration, Utc};
use table::{Column, FieldSpec, Rule};

/// The legal definition of a purpose: its limit and its basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegalPurpose {
    pub purpose: Purpose,
    /// The longest retention, in calendar months.
    pub limit_months: u32,
    /// The `cdr-legal-basis` header.
    pub legal_basis: &'static str,
}

pub const BILLING: LegalPurpose = LegalPurpose {
    purpose: Purpose::Billing,
    limit_months: 12,
    legal_basis: "CPCE R10-14 III",
};

pub const SECURITY: LegalPurpose = LegalPurpose {
    purpose: Purpose::Security,
    limit_months: 3,
    legal_basis: "CPCE R10-14 IV",
};

/// Why an event is not forwarded to a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The event lacks a required field or holds one out of range: refused.
    Invalid(Invalid),
    /// `event_time` is later than now + the allowed clock skew: refused.
    FutureEventTime,
    /// The record's expiry is already past.
    Expired,
    /// Billing only: the event bills nothing (reading 1, necessity).
    NotBillable,
    /// `declared_purposes` does not name this purpose.
    NotDeclared,
    /// Billing under R10-14/2021 only: a subscriber of the operator did not originate the
    /// communication (TERMINATING, or voice/SMS with no direction).
    NotOriginated,
    /// Under a version that no longer applies (R10-14/2012): the communication is from
    /// the day the text in force replaced it (21 October 2021, legal time) or later.
    NotInForce,
}

/// What makes an event invalid. Carries no value of the event: safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalid {
    MissingEventId,
    MissingEventTime,
    /// `event_time` is not a timestamp both canonical forms carry
    /// ([`schema::is_canonical`]).
    EventTimeOutOfRange,
    /// `timing.answer_time` is not one either.
    AnswerTimeOutOfRange,
    /// `timing.release_time` is not one either.
    ReleaseTimeOutOfRange,
    /// The record's expiry would be after 9999-12-31, which no `Timestamp` carries.
    ExpiryOutOfRange,
    /// `event_type` is a number the schema does not know (protobuf input only).
    UnknownEventType,
    /// `direction` is a number the schema does not know (protobuf input only).
    UnknownDirection,
}

impl Invalid {
    pub fn message(self) -> &'static str {
        match self {
            Invalid::MissingEventId => "event_id is missing",
            Invalid::MissingEventTime => "event_time is missing",
            Invalid::EventTimeOutOfRange => {
                "event_time is outside 0001-01-01..9999-12-31 or its nanoseconds outside 0..999999999"
            }
            Invalid::AnswerTimeOutOfRange => {
                "timing.answer_time is outside 0001-01-01..9999-12-31 or its nanoseconds outside 0..999999999"
            }
            Invalid::ReleaseTimeOutOfRange => {
                "timing.release_time is outside 0001-01-01..9999-12-31 or its nanoseconds outside 0..999999999"
            }
            Invalid::ExpiryOutOfRange => "the record's expiry would be after 9999-12-31",
            Invalid::UnknownEventType => "event_type is a number the schema does not know",
            Invalid::UnknownDirection => "direction is a number the schema does not know",
        }
    }
}

/// The refusal of the other timestamps an event may hold, `timing.answer_time` then
/// `timing.release_time`: each, when set, must be one both canonical forms carry
/// ([`schema::is_canonical`]). Every path checks them here, after `event_time`.
pub fn check_times(
    answer_time: Option<&schema::Timestamp>,
    release_time: Option<&schema::Timestamp>,
) -> Result<(), DropReason> {
    if answer_time.is_some_and(|t| !schema::is_canonical(t)) {
        return Err(DropReason::Invalid(Invalid::AnswerTimeOutOfRange));
    }
    if release_time.is_some_and(|t| !schema::is_canonical(t)) {
        return Err(DropReason::Invalid(Invalid::ReleaseTimeOutOfRange));
    }
    Ok(())
}

/// The refusal of an `event_type` or `direction` number the schema does not know: the
/// law routes by them, the canonical JSON cannot write them and `audit` could not check
/// the record, so no path forwards such an event (JSON input refuses them as it reads).
pub fn check_enums(event_type: i32, direction: i32) -> Result<(), DropReason> {
    if schema::EventType::try_from(event_type).is_err() {
        return Err(DropReason::Invalid(Invalid::UnknownEventType));
    }
    if schema::Direction::try_from(direction).is_err() {
        return Err(DropReason::Invalid(Invalid::UnknownDirection));
    }
    Ok(())
}

impl DropReason {
    /// The reason's name in dry-run output, metrics and dead letters.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Invalid(_) => "invalid",
            DropReason::FutureEventTime => "future_event_time",
            DropReason::Expired => "expired",
            DropReason::NotBillable => "not_billable",
            DropReason::NotDeclared => "not_declared",
            DropReason::NotOriginated => "not_originated",
            DropReason::NotInForce => "not_in_force",
        }
    }

    /// A refusal is a bad record (dead-lettered); other drops are normal policy outcomes.
    pub fn is_refusal(self) -> bool {
        matches!(self, DropReason::Invalid(_) | DropReason::FutureEventTime)
    }

    /// A message with no personal data, for logs and dead letters.
    pub fn message(self) -> &'static str {
        match self {
            DropReason::Invalid(i) => i.message(),
            DropReason::FutureEventTime => "event_time is later than now + max_clock_skew",
            DropReason::Expired => "the record's expiry is already past",
            DropReason::NotBillable => {
                "not necessary to billing: not chargeable, or an event type billing never takes"
            }
            DropReason::NotDeclared => "declared_purposes does not name this purpose",
            DropReason::NotOriginated => {
                "billing (R10-14/2021 I): no subscriber of the operator originated the communication"
            }
            DropReason::NotInForce => {
                "the configured version (R10-14/2012) covers communications before 21 October 2021 \
                 only; the text in force since is R10-14/2021"
            }
        }
    }
}

/// One forwarded record, ready to encode and send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord {
    pub purpose: Purpose,
    /// `event_id`: the output key.
    pub key: String,
    /// `event_time` in milliseconds since the epoch: the Kafka CreateTime.
    pub timestamp_ms: i64,
    pub expires_at: DateTime<Utc>,
    pub legal_basis: &'static str,
    pub policy_version: &'static str,
    /// The event reduced to what the purpose may keep, with `retention` filled in.
    pub event: CdrEvent,
}

/// The decision for one (event, purpose).
// Not boxed: a forward is the common case, and a box would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Forward(OutputRecord),
    Drop(DropReason),
}

/// The decisions for one event, one per configured purpose, in configuration order.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub outcomes: Vec<(Purpose, Outcome)>,
}

impl Evaluation {
    /// The refusal, if the event was refused (it then goes to the dead-letter topic).
    pub fn refusal(&self) -> Option<DropReason> {
        self.outcomes.iter().find_map(|(_, o)| match o {
            Outcome::Drop(r) if r.is_refusal() => Some(*r),
            _ => None,
        })
    }
}

/// The copy plan of one column once the operator's removals and kept optional fields are
/// applied.
#[derive(Debug, Clone, Default)]
struct ColumnPlan {
    always: Vec<&'static FieldSpec>,
    if_caller: Vec<&'static FieldSpec>,
}

impl ColumnPlan {
    fn new(
        column: Column,
        table: &'static [FieldSpec],
        removed: &[&'static FieldSpec],
        kept: &[&'static FieldSpec],
    ) -> ColumnPlan {
        let mut plan = ColumnPlan::default();
        for f in table {
            if removed.iter().any(|r| r.path == f.path) {
                continue;
            }
            match f.cell(column).rule {
                Rule::Keep => plan.always.push(f),
                Rule::KeepIfCaller => plan.if_caller.push(f),
                Rule::Optional if kept.iter().any(|k| k.path == f.path) => plan.always.push(f),
                Rule::Optional | Rule::Remove => {}
            }
        }
        plan
    }

    /// Like [`ColumnPlan::build`], moving the kept fields out of `event`.
    fn build_taking(&self, event: &mut CdrEvent) -> CdrEvent {
        // Read before `direction` itself is moved.
        let caller = about_the_caller(event.event_type, event.direction);
        let mut out = CdrEvent::default();
        for f in &self.always {
            (f.access.take)(event, &mut out);
        }
        if caller {
            for f in &self.if_caller {
                (f.access.take)(event, &mut out);
            }
        }
        out
    }

    fn build(&self, event: &CdrEvent) -> CdrEvent {
        let mut out = CdrEvent::default();
        for f in &self.always {
            (f.access.copy)(event, &mut out);
        }
        if about_the_caller(event.event_type, event.direction) {
            for f in &self.if_caller {
                (f.access.copy)(event, &mut out);
            }
        }
        out
    }

    /// Whether this plan keeps a field (for a record about the caller).
    fn keeps(&self, path: &str) -> bool {
        self.always
            .iter()
            .chain(&self.if_caller)
            .any(|f| f.path == path)
    }
}

/// One configured purpose, compiled.
#[derive(Debug, Clone)]
pub struct PurposePolicy {
    pub legal: LegalPurpose,
    pub ttl: Ttl,
    /// Fields the operator removed on top of the table.
    pub removed: Vec<&'static FieldSpec>,
    /// Optional fields (rule O) the operator turned on with `keep`.
    pub kept: Vec<&'static FieldSpec>,
    plans: Vec<(Column, ColumnPlan)>,
}

impl PurposePolicy {
    /// Compiles a purpose under a version's table. The ttl, removals and keeps must have
    /// been validated (see `config`): removals only narrow, and `kept` only turns optional
    /// fields on (a field the table removes stays removed).
    pub fn new(
        version: Version,
        legal: LegalPurpose,
        ttl: Ttl,
        removed: Vec<&'static FieldSpec>,
        kept: Vec<&'static FieldSpec>,
    ) -> PurposePolicy {
        let plans = columns_of(legal.purpose)
            .iter()
            .map(|&c| (c, ColumnPlan::new(c, version.fields(), &removed, &kept)))
            .collect();
        PurposePolicy {
            legal,
            ttl,
            removed,
            kept,
            plans,
        }
    }

    fn plan(&self, column: Column) -> &ColumnPlan {
        &self
            .plans
            .iter()
            .find(|(c, _)| *c == column)
            .expect("every column of the purpose is compiled")
            .1
    }

    /// The compiled copy plans, per column: the fields always kept and those kept only on
    /// a record about the caller (after removals and kept optional fields). Read by the
    /// wire path, which compiles them to field numbers.
    pub fn column_plans(
        &self,
    ) -> impl Iterator<Item = (Column, &[&'static FieldSpec], &[&'static FieldSpec])> {
        self.plans
            .iter()
            .map(|(c, p)| (*c, p.always.as_slice(), p.if_caller.as_slice()))
    }

    /// Whether the compiled policy keeps `path` in `column` (after removals).
    pub fn keeps(&self, column: Column, path: &str) -> bool {
        self.plans
            .iter()
            .any(|(c, p)| *c == column && p.keeps(path))
    }
}

/// The columns that apply to a purpose.
pub fn columns_of(purpose: Purpose) -> &'static [Column] {
    match purpose {
        Purpose::Billing => &[Column::BillingTelephony, Column::BillingOther],
        Purpose::Security => &[Column::Security],
        Purpose::Unspecified => &[],
    }
}

/// The whole policy in force.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The version of the text: its table (compiled into `purposes`) and its routing.
    pub version: Version,
    /// The legal time zone calendar limits are also counted in.
    pub legal_time: LegalTime,
    pub purposes: Vec<PurposePolicy>,
    /// How far in the future an `event_time` may be before the event is refused.
    pub max_clock_skew: Duration,
}

/// The default clock skew allowed for `event_time` (5 minutes).
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

impl Policy {
    /// The first instant this policy's version does not apply to: for R10-14/2012, the
    /// start of 21 October 2021 in UTC or in the legal time zone, whichever comes first
    /// (2021-10-20T22:00:00Z in Paris). `None` for the text in force.
    pub fn in_force_until(&self) -> Option<DateTime<Utc>> {
        self.version
            .replaced_on()
            .map(|day| self.legal_time.day_starts(day))
    }

    /// Both purposes at their legal limits under the text in force, Paris legal time, no
    /// operator removals: the defaults of `demo`.
    pub fn legal_maximum() -> Policy {
        Policy::legal_maximum_of(Version::IN_FORCE)
    }

    /// [`Policy::legal_maximum`] under a given version.
    pub fn legal_maximum_of(version: Version) -> Policy {
        Policy {
            version,
            legal_time: LegalTime::PARIS,
            purposes: vec![
                PurposePolicy::new(version, BILLING, Ttl::Months(12), vec![], vec![]),
                PurposePolicy::new(version, SECURITY, Ttl::Months(3), vec![], vec![]),
            ],
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
        }
    }

    /// The version's name (`R10-14/2021`).
    pub fn version(&self) -> &'static str {
        self.version.name()
    }

    /// Applies the policy to one event at `now`.
    pub fn apply(&self, event: &CdrEvent, now: DateTime<Utc>) -> Evaluation {
        self.evaluate(Source::Borrowed(event), now)
    }

    /// [`Policy::apply`] on an event the caller no longer needs: the last purpose that
    /// keeps the event moves its fields instead of copying them. Same outcomes.
    pub fn apply_owned(&self, event: CdrEvent, now: DateTime<Utc>) -> Evaluation {
        self.evaluate(Source::Owned(event), now)
    }

    fn evaluate(&self, mut event: Source<'_>, now: DateTime<Utc>) -> Evaluation {
        let event_time = match self.validate(event.get(), now) {
            Ok(t) => t,
            Err(reason) => {
                return Evaluation {
                    outcomes: self
                        .purposes
                        .iter()
                        .map(|p| (p.legal.purpose, Outcome::Drop(reason)))
                        .collect(),
                }
            }
        };
        // Decide first, build after: the last forwarded purpose may take the fields.
        let decisions: Vec<Result<(Column, DateTime<Utc>), DropReason>> = self
            .purposes
            .iter()
            .map(|p| self.decide(p, event.get(), event_time, now))
            .collect();
        let last = decisions.iter().rposition(Result::is_ok);
        let outcomes = self
            .purposes
            .iter()
            .zip(decisions)
            .enumerate()
            .map(|(i, (p, d))| {
                let outcome = match d {
                    Err(reason) => Outcome::Drop(reason),
                    Ok((column, expires_at)) => {
                        let key = event.get().event_id.clone();
                        let plan = p.plan(column);
                        let out = match (&mut event, Some(i) == last) {
                            (Source::Owned(e), true) => plan.build_taking(e),
                            (e, _) => plan.build(e.get()),
                        };
                        self.record(p, key, event_time, expires_at, out)
                    }
                };
                (p.legal.purpose, outcome)
            })
            .collect();
        Evaluation { outcomes }
    }

    /// The checks that refuse an event for every purpose; returns its `event_time`.
    fn validate(&self, event: &CdrEvent, now: DateTime<Utc>) -> Result<DateTime<Utc>, DropReason> {
        if event.event_id.is_empty() {
            return Err(DropReason::Invalid(Invalid::MissingEventId));
        }
        let ts = event
            .event_time
            .as_ref()
            .ok_or(DropReason::Invalid(Invalid::MissingEventTime))?;
        let t = schema::to_datetime(ts)
            .filter(|t| (1..=9999).contains(&t.year()))
            .ok_or(DropReason::Invalid(Invalid::EventTimeOutOfRange))?;
        check_times(
            event.timing.as_ref().and_then(|t| t.answer_time.as_ref()),
            event.timing.as_ref().and_then(|t| t.release_time.as_ref()),
        )?;
        check_enums(event.event_type, event.direction)?;
        if t > now + self.max_clock_skew {
            return Err(DropReason::FutureEventTime);
        }
        Ok(t)
    }

    /// Whether a purpose takes the event: its column and the record's expiry.
    fn decide(
        &self,
        p: &PurposePolicy,
        event: &CdrEvent,
        event_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(Column, DateTime<Utc>), DropReason> {
        let purpose = p.legal.purpose;
        if self.in_force_until().is_some_and(|end| event_time >= end) {
            return Err(DropReason::NotInForce);
        }
        if !event.declared_purposes.is_empty()
            && !event.declared_purposes.contains(&(purpose as i32))
        {
            return Err(DropReason::NotDeclared);
        }
        let column = route(self.version, purpose, event)?;
        let expires_at =
            retention::expires_at(event_time, p.ttl, p.legal.limit_months, self.legal_time)
                .ok_or(DropReason::Invalid(Invalid::EventTimeOutOfRange))?;
        if expires_at.timestamp() > schema::MAX_SECONDS {
            return Err(DropReason::Invalid(Invalid::ExpiryOutOfRange));
        }
        if expires_at <= now {
            return Err(DropReason::Expired);
        }
        Ok((column, expires_at))
    }

    fn record(
        &self,
        p: &PurposePolicy,
        key: String,
        event_time: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        mut out: CdrEvent,
    ) -> Outcome {
        let purpose = p.legal.purpose;
        out.retention = Some(Retention {
            purpose: purpose as i32,
            expires_at: Some(schema::to_timestamp(expires_at)),
            legal_basis: p.legal.legal_basis.to_string(),
            policy_version: self.version.name().to_string(),
        });
        Outcome::Forward(OutputRecord {
            purpose,
            key,
            timestamp_ms: event_time.timestamp_millis(),
            expires_at,
            legal_basis: p.legal.legal_basis,
            policy_version: self.version.name(),
            event: out,
        })
    }
}

/// The event a policy reads: borrowed, or owned and free to move fields out of.
// Lives on the stack for one call; boxing the owned event would cost an allocation.
#[allow(clippy::large_enum_variant)]
enum Source<'a> {
    Borrowed(&'a CdrEvent),
    Owned(CdrEvent),
}

impl Source<'_> {
    fn get(&self) -> &CdrEvent {
        match self {
            Source::Borrowed(e) => e,
            Source::Owned(e) => e,
        }
    }
}

#[cfg(test)]
mod tests;
