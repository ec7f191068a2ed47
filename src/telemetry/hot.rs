//! The metrics counted for every record: handles registered once ([`Hot`]), counts
//! tallied per record under one lock ([`Tally`]) and added to the metrics per batch, and
//! the presence mask the `cdr_fields_removed_total` counts come from ([`presence`]).

use super::{
    purpose_index, reason_index, Stats, DEAD_LETTERS, DEAD_LETTER_REASONS, DECODE_ERRORS,
    EVENTS_CONSUMED, EVENT_AGE, FIELDS_REMOVED, JSON_SLOW_PATH, PRODUCE_RETRIES, PURPOSES, REASONS,
    RECORDS_DROPPED, RECORDS_PRODUCED,
};
use crate::decode::DecodeError;
use crate::policy::table;
use crate::policy::{DropReason, Version};
use crate::schema::{self, CdrEvent, Purpose};
use chrono::{DateTime, Utc};
use metrics::{counter, histogram, Counter, Histogram};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// The handles of the metrics counted for every record, registered once: a registry
/// lookup with labels per record costs more than the policy itself. Create it after
/// [`install`] (handles taken before a recorder is installed count nothing).
///
/// The Prometheus side is counted per batch: a record's counts go to a tally
/// ([`Hot::tally`], one lock per record) and reach the counters and the event-age
/// histogram at [`Hot::flush`] — the engine flushes every batch — or every
/// [`FLUSH_EVERY`] records, whichever comes first (an update of the exporter's counters is
/// two atomic operations; a record made about thirteen). [`Stats`] is counted at once.
pub struct Hot {
    consumed: Vec<(String, [Counter; 3])>,
    produced: [Counter; 2],
    /// Registered at start for the reasons the policy can give each purpose
    /// ([`crate::policy::drop_reasons`]); a no-op for the others, counted at the flush if
    /// one ever happens (see [`Tally::flush`]).
    dropped: [[Counter; REASONS.len()]; 2],
    /// Which of `dropped` are registered.
    registered: [[bool; REASONS.len()]; 2],
    /// Per purpose: one counter per field group.
    fields_removed: [Vec<Counter>; 2],
    /// Per field group: the mask of its rows in the table (the table has < 64 rows).
    group_masks: Vec<u64>,
    event_age: Histogram,
    json_slow_path: Counter,
    pending: Mutex<Pending>,
}

/// The most records counted in a tally before it reaches the metrics by itself.
pub const FLUSH_EVERY: usize = 4096;

/// Counts not yet added to the metrics, in the shape of [`Hot`]'s handles.
#[derive(Default)]
struct Pending {
    consumed: Vec<[u64; 3]>,
    produced: [u64; 2],
    dropped: [[u64; REASONS.len()]; 2],
    fields_removed: [Vec<u64>; 2],
    event_ages: Vec<f64>,
    json_slow_path: u64,
    /// Calls since the last flush.
    calls: usize,
}

/// Every series of a closed set of labels, at 0: dead letters by reason, decode errors by
/// kind, produce retries by output topic.
fn zero_closed_sets(output_topics: &[&str]) {
    for reason in DEAD_LETTER_REASONS {
        counter!(DEAD_LETTERS, "reason" => reason).increment(0);
    }
    for kind in DecodeError::KINDS {
        counter!(DECODE_ERRORS, "kind" => kind).increment(0);
    }
    for topic in output_topics {
        counter!(PRODUCE_RETRIES, "topic" => topic.to_string()).increment(0);
    }
}

/// Per purpose, by reason index: whether the policy `version` can give that drop reason.
fn registered_drops(version: Version) -> [[bool; REASONS.len()]; 2] {
    PURPOSES.map(|p| {
        let possible = crate::policy::drop_reasons(version, p);
        let mut r = [false; REASONS.len()];
        for reason in possible {
            r[reason_index(reason)] = true;
        }
        r
    })
}

/// The schema's field groups, in table order, and the mask of each one's rows.
fn field_groups() -> (Vec<&'static str>, Vec<u64>) {
    let mut groups: Vec<&'static str> = table::schema_rows().iter().map(|f| f.group()).collect();
    groups.dedup();
    let group_masks = groups
        .iter()
        .map(|g| {
            table::schema_rows()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.group() == *g)
                .fold(0u64, |m, (i, _)| m | 1 << i)
        })
        .collect();
    (groups, group_masks)
}

const FORMATS: [&str; 3] = ["json", "protobuf", "unknown"];

impl Hot {
    /// The handles, and every series of a closed set of labels shown from the start at 0
    /// (a counter that appears only at its first increment hides that increase from
    /// `rate()`): dead letters by reason, decode errors by kind, produce retries by output
    /// topic (`output_topics`: the purposes' and the dead-letter topic), drops by the
    /// reasons the policy `version` can give each purpose.
    pub fn new(input_topics: &[String], version: Version, output_topics: &[&str]) -> Hot {
        zero_closed_sets(output_topics);
        let registered = registered_drops(version);
        let consumed: Vec<_> = input_topics
            .iter()
            .map(|t| {
                let c = |f: &'static str| counter!(EVENTS_CONSUMED, "topic" => t.clone(), "format" => f);
                (t.clone(), [c(FORMATS[0]), c(FORMATS[1]), c(FORMATS[2])])
            })
            .collect();
        let per_purpose = |f: &dyn Fn(&'static str) -> Counter| [f("billing"), f("security")];
        let (groups, group_masks) = field_groups();
        let removed = |purpose: &'static str| {
            groups
                .iter()
                .map(|g| counter!(FIELDS_REMOVED, "purpose" => purpose, "group" => *g))
                .collect::<Vec<_>>()
        };
        let pending = Pending {
            consumed: vec![[0; 3]; consumed.len()],
            fields_removed: [vec![0; groups.len()], vec![0; groups.len()]],
            ..Pending::default()
        };
        Hot {
            consumed,
            produced: per_purpose(&|p| counter!(RECORDS_PRODUCED, "purpose" => p)),
            // The reasons the policy can give a purpose are shown from the start, at 0.
            // The others — a refusal (`invalid`, `future_event_time`) dead-letters the
            // whole record and is counted in `cdr_dead_letters_total`; security takes every
            // event type — appear only if one ever happens (see `flush`), not as a 0 that
            // never moves.
            dropped: PURPOSES.map(|p| {
                let registered = registered[purpose_index(p)];
                std::array::from_fn(|i| {
                    if registered[i] {
                        counter!(RECORDS_DROPPED, "purpose" => p.name(), "reason" => REASONS[i])
                    } else {
                        Counter::noop()
                    }
                })
            }),
            registered,
            fields_removed: [removed("billing"), removed("security")],
            group_masks,
            event_age: histogram!(EVENT_AGE),
            json_slow_path: counter!(JSON_SLOW_PATH),
            pending: Mutex::new(pending),
        }
    }

    /// The tally a record's counts go to, held for the record: one lock for them all.
    pub fn tally(&self) -> Tally<'_> {
        Tally {
            hot: self,
            pending: self.pending.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Adds the tallied counts to the metrics.
    pub fn flush(&self) {
        self.tally().flush();
    }
}

impl Drop for Hot {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A record's counts, under [`Hot`]'s lock: [`Stats`] at once, the metrics at the next
/// flush (at the latest when the guard drops after [`FLUSH_EVERY`] calls).
pub struct Tally<'a> {
    hot: &'a Hot,
    pending: std::sync::MutexGuard<'a, Pending>,
}

impl Tally<'_> {
    /// An input record was received.
    pub fn consumed(&mut self, stats: &Stats, topic: &str, format: &'static str) {
        stats.consumed.fetch_add(1, Ordering::Relaxed);
        let f = FORMATS.iter().position(|x| *x == format).unwrap_or(2);
        match self.hot.consumed.iter().position(|(t, _)| t == topic) {
            Some(i) => self.pending.consumed[i][f] += 1,
            // A topic matched by a pattern subscription: registered on the fly.
            None => counter!(EVENTS_CONSUMED, "topic" => topic.to_string(), "format" => format)
                .increment(1),
        }
        self.pending.calls += 1;
    }

    /// A JSON input record the fast parser left to the general decoder.
    pub fn json_slow_path(&mut self, stats: &Stats) {
        stats.json_slow_path.fetch_add(1, Ordering::Relaxed);
        self.pending.json_slow_path += 1;
        self.pending.calls += 1;
    }

    /// An output record was handed to the producer.
    pub fn produced(&mut self, stats: &Stats, purpose: Purpose) {
        let i = purpose_index(purpose);
        stats.produced[i].fetch_add(1, Ordering::Relaxed);
        self.pending.produced[i] += 1;
        self.pending.calls += 1;
    }

    /// A purpose did not take an event (not a failure: the policy at work).
    pub fn dropped(&mut self, stats: &Stats, purpose: Purpose, reason: DropReason) {
        let (p, r) = (purpose_index(purpose), reason_index(reason));
        stats.dropped[p][r].fetch_add(1, Ordering::Relaxed);
        tracing::trace!(
            purpose = purpose.name(),
            reason = reason.as_str(),
            "record dropped"
        );
        self.pending.dropped[p][r] += 1;
        self.pending.calls += 1;
    }

    /// A record was forwarded: counts, per field group, the values present in the input
    /// and absent from the output, from the two presence masks (see [`presence`]).
    pub fn fields_removed(&mut self, purpose: Purpose, input_mask: u64, output_mask: u64) {
        let removed = input_mask & !output_mask;
        if removed == 0 {
            return;
        }
        let pending = &mut self.pending.fields_removed[purpose_index(purpose)];
        for (n, mask) in pending.iter_mut().zip(&self.hot.group_masks) {
            *n += u64::from((removed & mask).count_ones());
        }
        self.pending.calls += 1;
    }

    /// An event was decoded: its age at processing (now − event_time; 0 when in the
    /// future within the allowed skew).
    pub fn event_age(&mut self, event: &CdrEvent, now: DateTime<Utc>) {
        if let Some(t) = event.event_time.as_ref().and_then(schema::to_datetime) {
            let age = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
            self.pending.event_ages.push(age);
            self.pending.calls += 1;
        }
    }

    /// Adds the tallied counts to the metrics.
    fn flush(&mut self) {
        let (hot, p) = (self.hot, &mut *self.pending);
        p.calls = 0;
        for ((_, counters), pending) in hot.consumed.iter().zip(&mut p.consumed) {
            add(counters, pending);
        }
        add(&hot.produced, &mut p.produced);
        let dropped = hot.dropped.iter().zip(&hot.registered);
        for (((counters, registered), pending), purpose) in
            dropped.zip(&mut p.dropped).zip(PURPOSES)
        {
            let reasons = REASONS.iter().zip(registered);
            for ((reason, registered), n) in reasons.zip(pending.iter_mut()) {
                if *n > 0 && !registered {
                    counter!(RECORDS_DROPPED, "purpose" => purpose.name(), "reason" => *reason)
                        .increment(std::mem::take(n));
                }
            }
            add(counters, pending);
        }
        for (counters, pending) in hot.fields_removed.iter().zip(&mut p.fields_removed) {
            add(counters, pending);
        }
        for age in p.event_ages.drain(..) {
            hot.event_age.record(age);
        }
        add(
            std::slice::from_ref(&hot.json_slow_path),
            std::slice::from_mut(&mut p.json_slow_path),
        );
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        if self.pending.calls >= FLUSH_EVERY {
            self.flush();
        }
    }
}

/// Adds each count to its counter and zeroes it.
fn add(counters: &[Counter], pending: &mut [u64]) {
    for (c, n) in counters.iter().zip(pending) {
        if *n > 0 {
            c.increment(std::mem::take(n));
        }
    }
}

/// Which rows of the table an event holds a value for, as a bit mask (bit i = row i).
pub fn presence(event: &CdrEvent) -> u64 {
    debug_assert!(
        table::schema_rows().len() <= 64,
        "the presence mask holds one bit per row"
    );
    table::schema_rows()
        .iter()
        .enumerate()
        .fold(
            0,
            |m, (i, f)| if f.is_present(event) { m | 1 << i } else { m },
        )
}

#[cfg(test)]
mod tests {
    use super::super::{AGE_BUCKETS, DEAD_LETTERS, DECODE_ERRORS, PRODUCE_RETRIES};
    use super::*;
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    #[test]
    fn the_presence_mask_has_a_bit_per_row() {
        assert!(table::schema_rows().len() <= 64);
        let mut g = crate::gen::Generator::new(1, Utc::now());
        let e = g.full_event(
            crate::schema::EventType::Sms,
            crate::schema::Direction::Originating,
            Utc::now(),
        );
        let mask = presence(&e);
        for (i, f) in table::schema_rows().iter().enumerate() {
            assert_eq!(mask >> i & 1 == 1, f.is_present(&e), "{}", f.path);
        }
        assert_eq!(presence(&CdrEvent::default()), 0);
    }

    /// The value of the sample `name{labels}` in a Prometheus text rendering.
    fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
        let prefix = if labels.is_empty() {
            format!("{name} ")
        } else {
            format!("{name}{{{labels}}} ")
        };
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().parse().unwrap())
    }

    /// A record's counts reach the metrics when the engine flushes after its batch — and
    /// by themselves after `FLUSH_EVERY` records, for a caller that never flushes — each
    /// counted once; `Stats` is counted at once.
    #[test]
    fn tallied_counts_reach_the_metrics_at_the_flush_and_by_themselves() {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(EVENT_AGE.into()), AGE_BUCKETS)
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        let hot = metrics::with_local_recorder(&recorder, || {
            Hot::new(
                &["cdr.raw".into()],
                Version::R2021,
                &["cdr.billing", "cdr.security", "cdr.dead"],
            )
        });
        let stats = Stats::default();
        let consumed = |h: &PrometheusHandle| {
            sample(
                &h.render(),
                EVENTS_CONSUMED,
                r#"topic="cdr.raw",format="protobuf""#,
            )
            .unwrap_or(0.0)
        };
        let now = Utc::now();
        let event = CdrEvent {
            event_time: Some(crate::schema::Timestamp {
                seconds: now.timestamp() - 60,
                nanos: 0,
            }),
            ..CdrEvent::default()
        };
        {
            let mut t = hot.tally();
            t.consumed(&stats, "cdr.raw", "protobuf");
            t.event_age(&event, now);
            t.produced(&stats, Purpose::Billing);
            t.dropped(&stats, Purpose::Billing, DropReason::NotOriginated);
            t.fields_removed(Purpose::Billing, 0b111, 0b001);
        }
        assert_eq!(stats.consumed(), 1, "Stats at once");
        assert_eq!(consumed(&handle), 0.0, "the metrics at the flush");
        hot.flush();
        let text = handle.render();
        assert_eq!(consumed(&handle), 1.0);
        assert_eq!(
            sample(&text, RECORDS_PRODUCED, r#"purpose="billing""#),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                RECORDS_DROPPED,
                r#"purpose="billing",reason="not_originated""#
            ),
            Some(1.0)
        );
        let removed: f64 = text
            .lines()
            .filter(|l| l.starts_with(FIELDS_REMOVED) && l.contains(r#"purpose="billing""#))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert_eq!(removed, 2.0, "two values removed: {text}");
        assert_eq!(sample(&text, &format!("{EVENT_AGE}_count"), ""), Some(1.0));
        // The policy's reasons from the start, at 0; no refusal series that never moves.
        assert_eq!(
            sample(
                &text,
                RECORDS_DROPPED,
                r#"purpose="billing",reason="not_billable""#
            ),
            Some(0.0)
        );
        for refusal in ["invalid", "future_event_time"] {
            let label = format!(r#"reason="{refusal}""#);
            let series = |l: &&str| l.starts_with(RECORDS_DROPPED) && l.contains(&label);
            assert!(!text.lines().any(|l| series(&l)), "{text}");
        }
        // ... until a purpose alone refuses one: then it is counted.
        hot.tally().dropped(
            &stats,
            Purpose::Billing,
            DropReason::Invalid(crate::policy::Invalid::EventTimeOutOfRange),
        );
        // (Registered at the flush, with the recorder in force: the global one in `run`.)
        metrics::with_local_recorder(&recorder, || hot.flush());
        assert_eq!(
            sample(
                &handle.render(),
                RECORDS_DROPPED,
                r#"purpose="billing",reason="invalid""#
            ),
            Some(1.0)
        );
        // Flushed counts are not added again.
        hot.flush();
        assert_eq!(consumed(&handle), 1.0);
        // A caller that never flushes: the counts arrive every FLUSH_EVERY calls.
        for _ in 0..FLUSH_EVERY {
            hot.tally().consumed(&stats, "cdr.raw", "protobuf");
        }
        assert_eq!(consumed(&handle), 1.0 + FLUSH_EVERY as f64);
    }

    /// Every series of a closed label set is shown from the start, at 0 — dead letters by
    /// reason, decode errors by kind, retries by output topic — and drops only by the
    /// reasons the policy can give the purpose: security takes every event type, and
    /// `not_originated` exists only under R10-14/2021. A drop that happens anyway is still
    /// counted.
    #[test]
    fn closed_label_sets_are_shown_at_zero_and_impossible_drops_are_not() {
        let outputs = ["cdr.billing", "cdr.security", "cdr.dead"];
        let text = |version| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let hot = metrics::with_local_recorder(&recorder, || {
                Hot::new(&["cdr.raw".into()], version, &outputs)
            });
            (handle.render(), hot, recorder)
        };
        let (t2021, _, _) = text(Version::R2021);
        for reason in [
            "undecodable",
            "unexpected_schema",
            "invalid",
            "future_event_time",
            "unencodable",
            "output_too_large",
        ] {
            assert_eq!(
                sample(&t2021, DEAD_LETTERS, &format!(r#"reason="{reason}""#)),
                Some(0.0),
                "{reason}: {t2021}"
            );
        }
        for kind in ["empty", "protobuf", "json", "framing", "unexpected_schema"] {
            assert_eq!(
                sample(&t2021, DECODE_ERRORS, &format!(r#"kind="{kind}""#)),
                Some(0.0),
                "{kind}: {t2021}"
            );
        }
        for topic in outputs {
            assert_eq!(
                sample(&t2021, PRODUCE_RETRIES, &format!(r#"topic="{topic}""#)),
                Some(0.0),
                "{topic}: {t2021}"
            );
        }
        let dropped = |text: &str, p: &str, r: &str| {
            sample(
                text,
                RECORDS_DROPPED,
                &format!(r#"purpose="{p}",reason="{r}""#),
            )
        };
        for r in ["expired", "not_declared", "not_billable", "not_originated"] {
            assert_eq!(dropped(&t2021, "billing", r), Some(0.0), "billing {r}");
        }
        for r in ["expired", "not_declared"] {
            assert_eq!(dropped(&t2021, "security", r), Some(0.0), "security {r}");
        }
        for r in ["not_billable", "not_originated"] {
            assert_eq!(
                dropped(&t2021, "security", r),
                None,
                "security {r}: {t2021}"
            );
        }
        let (t2012, hot, recorder) = text(Version::R2012);
        assert_eq!(dropped(&t2012, "billing", "not_billable"), Some(0.0));
        assert_eq!(
            dropped(&t2012, "billing", "not_originated"),
            None,
            "{t2012}"
        );
        // A drop not registered at start is counted all the same, when it happens.
        let stats = Stats::default();
        hot.tally()
            .dropped(&stats, Purpose::Security, DropReason::NotBillable);
        metrics::with_local_recorder(&recorder, || hot.flush());
        assert_eq!(
            dropped(&recorder.handle().render(), "security", "not_billable"),
            Some(1.0)
        );
    }
}
