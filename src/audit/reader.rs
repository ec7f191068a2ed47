//! Reads the audited topics from the beginning (or from a time), read-only: partitions
//! are assigned, never subscribed, no offset is stored or committed, and only committed
//! records are read (`read_committed`). Each partition is read up to the end offset it
//! had when the audit started — or, once, to the later high watermark its fetches report
//! when they disagree (a broker that answers ListOffsets wrongly) — or to librdkafka's
//! partition-EOF event, whichever comes first.

use super::progress::Progress;
use super::{Auditor, Finding, RecordView, Timestamp, TopicContext};
use crate::config::Settings;
use crate::kafka::Context;
use chrono::{DateTime, Utc};
use metrics::{counter, Counter};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub use crate::telemetry::{AUDIT_FINDINGS as FINDINGS, RECORDS_AUDITED};

const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// How to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Start at the first record whose timestamp is at or after this time.
    pub from_time: Option<DateTime<Utc>>,
    /// Stop after this many records in all.
    pub max_records: Option<u64>,
    /// Give up when nothing arrives for this long before every partition's end.
    pub idle_timeout: Duration,
    /// Draw a progress line on stderr.
    pub progress: bool,
}

/// Why the audit could not be carried out (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Unreachable(#[from] crate::kafka::reach::Unreachable),
    #[error("kafka client configuration")]
    Config(#[source] crate::kafka::ClientConfigError),
    #[error("topic {0} does not exist")]
    TopicMissing(String),
    #[error("kafka client: {0}")]
    Client(String),
    #[error("reading {topic}: {error}")]
    Read { topic: String, error: String },
    #[error(
        "{topic} partition {partition}: nothing arrived for {idle_s} s at offset {at} before \
         the end offset {end}; the partition was not read to its end"
    )]
    Stalled {
        topic: String,
        partition: i32,
        at: i64,
        end: i64,
        idle_s: u64,
    },
}

/// The audit could not be carried out (`audit` reports it with exit code 2, its own
/// contract): a refused client property is the configuration's, the rest Kafka's.
impl crate::error::Classify for AuditError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            AuditError::Config(_) => crate::error::Fault::User,
            _ => crate::error::Fault::Unavailable,
        }
    }
}

/// A consumer of the audit: a refused property named by the user's key, never its value.
pub fn consumer(settings: &Settings) -> Result<BaseConsumer<Context>, AuditError> {
    crate::kafka::create(settings, &consumer_config(settings), Context::default())
        .map_err(AuditError::Config)
}

/// What was read of one partition.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PartitionRead {
    pub topic: String,
    pub partition: i32,
    /// The first offset read from.
    pub start: i64,
    /// The offset the partition was read to (exclusive): its end offset when the audit
    /// started, or the later high watermark its fetches reported.
    pub end: i64,
    pub records: u64,
    /// The earliest and latest Kafka timestamps of the records audited (RFC 3339, UTC);
    /// absent when none was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<String>,
}

/// Per topic: how many records expire how many whole hours after their `event_time`
/// (rounded up), from [`super::Auditor::check`]: the expiry distribution of `report`.
pub type ExpiryHours = BTreeMap<String, BTreeMap<i64, u64>>;

/// Everything read, and every finding.
#[derive(Debug, Default)]
pub struct Read {
    pub partitions: Vec<PartitionRead>,
    pub findings: Vec<Finding>,
    /// Expiry − event time of the records audited, per topic, in hours.
    pub expiry_hours: ExpiryHours,
    pub records: u64,
    /// True when `max_records` stopped the read before the end.
    pub truncated: bool,
    pub elapsed: Duration,
}

/// The consumer of an audit: the configuration's client settings, no group membership,
/// no commits, committed records only, partition-EOF events on.
pub fn consumer_config(settings: &Settings) -> ClientConfig {
    let group = format!("{}.audit", settings.kafka.group_id);
    let mut c = crate::kafka::reader_config(settings, &group);
    c.set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest");
    c
}

/// The partitions of each topic; a missing topic or an unreachable broker is an error.
pub fn partitions(
    settings: &Settings,
    consumer: &BaseConsumer<Context>,
    topics: &[String],
) -> Result<Vec<(String, Vec<i32>)>, AuditError> {
    let metadata = crate::kafka::reach::first_metadata(
        consumer.client(),
        None,
        &settings.kafka.bootstrap_servers,
    )
    .map_err(|e| match e {
        Ok(unreachable) => AuditError::Unreachable(unreachable),
        Err(e) => AuditError::Client(e.to_string()),
    })?;
    topics
        .iter()
        .map(|t| {
            let found = metadata
                .topics()
                .iter()
                .find(|m| m.name() == t && m.error().is_none() && !m.partitions().is_empty())
                .ok_or_else(|| AuditError::TopicMissing(t.clone()))?;
            let mut ps: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
            ps.sort_unstable();
            Ok((t.clone(), ps))
        })
        .collect()
}

struct Partition {
    id: i32,
    start: i64,
    /// Where to stop: the end offset read at the start (see [`read`] for the one
    /// extension).
    end: i64,
    /// True once `end` was moved to the high watermark the fetches report.
    extended: bool,
    /// With `--from-time`: true once a record at or after it was seen (the broker's
    /// answer to the time lookup is checked record by record).
    reached_time: bool,
    records: u64,
    /// The earliest and latest Kafka timestamps audited, ms.
    times: Option<(i64, i64)>,
    done: bool,
}

impl Partition {
    fn read(&self, topic: &str) -> PartitionRead {
        let at =
            |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(crate::retention::rfc3339);
        PartitionRead {
            topic: topic.to_string(),
            partition: self.id,
            start: self.start,
            end: self.end,
            records: self.records,
            first_timestamp: self.times.and_then(|(a, _)| at(a)),
            last_timestamp: self.times.and_then(|(_, b)| at(b)),
        }
    }

    fn saw(&mut self, timestamp: Option<i64>) {
        if let Some(t) = timestamp {
            self.times = Some(match self.times {
                None => (t, t),
                Some((a, b)) => (a.min(t), b.max(t)),
            });
        }
    }
}

impl Partition {
    /// After the record at `offset`: done at the end read at the start, unless the
    /// fetches report a later high watermark — then once to that (a broker may answer the
    /// start's ListOffsets wrongly: the test broker counts batches there; on Kafka this
    /// takes in what was written meanwhile).
    fn passed(&mut self, consumer: &BaseConsumer<Context>, topic: &str, offset: i64) {
        if offset + 1 < self.end {
            return;
        }
        match fetched_high_watermark(consumer, topic, self.id) {
            Some(h) if h > offset + 1 && !self.extended => {
                self.end = h;
                self.extended = true;
            }
            _ => self.done = true,
        }
    }
}

/// The high watermark the consumer's last fetch of a partition reported (librdkafka's
/// cached value), if any.
fn fetched_high_watermark(
    consumer: &BaseConsumer<Context>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    crate::kafka::native::cached_high_watermark(consumer.client(), topic, partition)
}

/// Reads every topic in turn and checks every record.
pub fn read(
    settings: &Settings,
    auditor: &Auditor,
    topics: &[TopicContext],
    opts: &ReadOptions,
    now: DateTime<Utc>,
) -> Result<Read, AuditError> {
    let started = Instant::now();
    let mut plans = plan(settings, topics, opts)?;
    let total: i64 = plans
        .iter()
        .flat_map(|(_, ps)| ps.iter().map(|p| (p.end - p.start).max(0)))
        .sum();
    let mut reader = Reader {
        auditor,
        opts,
        now,
        out: Read::default(),
        progress: Progress::new(opts.progress && std::io::stderr().is_terminal(), total),
    };
    for (ctx, parts) in &mut plans {
        match reader.topic(settings, ctx, parts)? {
            TopicEnd::Empty => {}
            TopicEnd::End => collect(&mut reader.out, ctx, parts),
            TopicEnd::MaxRecords => {
                let out = &mut reader.out;
                out.truncated = parts.iter().any(|p| !p.done) || plans_left(out, total);
                collect(out, ctx, parts);
                break;
            }
        }
    }
    let mut out = reader.out;
    // Partitions of topics never opened (all empty, or after --max-records).
    for (ctx, parts) in &plans {
        for p in parts {
            if !out
                .partitions
                .iter()
                .any(|r| r.topic == *ctx.topic && r.partition == p.id)
            {
                out.partitions.push(p.read(&ctx.topic));
            }
        }
    }
    reader.progress.finish(out.records, out.findings.len());
    out.elapsed = started.elapsed();
    Ok(out)
}

/// Start and end offsets of every partition, first: the total for the progress line.
fn plan<'t>(
    settings: &Settings,
    topics: &'t [TopicContext],
    opts: &ReadOptions,
) -> Result<Vec<(&'t TopicContext, Vec<Partition>)>, AuditError> {
    let probe = consumer(settings)?;
    let names: Vec<String> = topics.iter().map(|t| t.topic.to_string()).collect();
    let layout = partitions(settings, &probe, &names)?;
    let mut plans = Vec::new();
    for (ctx, (topic, ids)) in topics.iter().zip(&layout) {
        let starts = start_offsets(&probe, topic, ids, opts.from_time)?;
        let mut parts = Vec::new();
        for (&id, start) in ids.iter().zip(starts) {
            let (low, high) = probe
                .fetch_watermarks(topic, id, METADATA_TIMEOUT)
                .map_err(|e| AuditError::Read {
                    topic: topic.clone(),
                    error: e.to_string(),
                })?;
            let start = start.map_or(high, |s| s.max(low));
            parts.push(Partition {
                id,
                start,
                end: high,
                extended: false,
                reached_time: opts.from_time.is_none(),
                records: 0,
                times: None,
                done: start >= high,
            });
        }
        plans.push((ctx, parts));
    }
    Ok(plans)
}

/// How the read of one topic ended.
enum TopicEnd {
    /// Nothing to read: no consumer was opened.
    Empty,
    /// Every partition read to its end.
    End,
    /// `max_records` reached.
    MaxRecords,
}

/// The state of a read across topics.
struct Reader<'a> {
    auditor: &'a Auditor,
    opts: &'a ReadOptions,
    now: DateTime<Utc>,
    out: Read,
    progress: Progress,
}

impl Reader<'_> {
    /// Reads one topic's partitions to their ends, or until `max_records`.
    fn topic(
        &mut self,
        settings: &Settings,
        ctx: &TopicContext,
        parts: &mut [Partition],
    ) -> Result<TopicEnd, AuditError> {
        let mut counters = TopicCounters::new(ctx);
        // One consumer per topic: librdkafka's partition-EOF names a partition only.
        let consumer = consumer(settings)?;
        let mut tpl = TopicPartitionList::new();
        for p in parts.iter().filter(|p| !p.done) {
            tpl.add_partition_offset(&ctx.topic, p.id, Offset::Offset(p.start))
                .map_err(|e| AuditError::Client(e.to_string()))?;
        }
        if tpl.count() == 0 {
            return Ok(TopicEnd::Empty);
        }
        consumer
            .assign(&tpl)
            .map_err(|e| AuditError::Client(e.to_string()))?;
        let mut last_activity = Instant::now();
        self.out
            .expiry_hours
            .entry(ctx.topic.to_string())
            .or_default();
        while parts.iter().any(|p| !p.done) {
            match consumer.poll(Duration::from_millis(100)) {
                None => {
                    if last_activity.elapsed() > self.opts.idle_timeout {
                        return Err(stalled(&consumer, ctx, parts, self.opts.idle_timeout));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(id))) => {
                    last_activity = Instant::now();
                    if let Some(p) = parts.iter_mut().find(|p| p.id == id) {
                        p.done = true;
                    }
                }
                Some(Err(e)) => {
                    return Err(AuditError::Read {
                        topic: ctx.topic.to_string(),
                        error: e.to_string(),
                    })
                }
                Some(Ok(m)) => {
                    last_activity = Instant::now();
                    let Some(p) = parts.iter_mut().find(|p| p.id == m.partition()) else {
                        continue;
                    };
                    if self.record(&consumer, ctx, p, &m, &mut counters)
                        && self.opts.max_records.is_some_and(|n| self.out.records >= n)
                    {
                        return Ok(TopicEnd::MaxRecords);
                    }
                }
            }
        }
        Ok(TopicEnd::End)
    }

    /// One record: passed over when past the end or before `--from-time`, else checked
    /// and counted. True when it was checked.
    fn record(
        &mut self,
        consumer: &BaseConsumer<Context>,
        ctx: &TopicContext,
        p: &mut Partition,
        m: &BorrowedMessage<'_>,
        counters: &mut TopicCounters,
    ) -> bool {
        // Past the end (written during the audit): not ours.
        if p.done || m.offset() >= p.end {
            p.done = true;
            return false;
        }
        let reached = p.reached_time
            || self.opts.from_time.is_some_and(|from| {
                m.timestamp()
                    .to_millis()
                    .is_some_and(|t| t >= from.timestamp_millis())
            });
        if !reached {
            // Before --from-time: not audited; the start moves past it.
            p.start = m.offset() + 1;
            p.passed(consumer, &ctx.topic, m.offset());
            return false;
        }
        p.reached_time = true;
        let out = &mut self.out;
        let findings_before = out.findings.len();
        let expiry = self
            .auditor
            .check(ctx, &record_view(m), self.now, &mut out.findings);
        if let (Some(d), Some(hours_of)) = (expiry, out.expiry_hours.get_mut(&*ctx.topic)) {
            let hours = (d.num_milliseconds() + 3_599_999).div_euclid(3_600_000);
            *hours_of.entry(hours).or_insert(0) += 1;
        }
        p.saw(m.timestamp().to_millis());
        counters.count(ctx, &out.findings[findings_before..]);
        p.records += 1;
        out.records += 1;
        p.passed(consumer, &ctx.topic, m.offset());
        self.progress.tick(out.records, out.findings.len());
        true
    }
}

/// The error of a read that waited `idle` for a partition not yet at its end.
fn stalled(
    consumer: &BaseConsumer<Context>,
    ctx: &TopicContext,
    parts: &[Partition],
    idle: Duration,
) -> AuditError {
    let p = parts
        .iter()
        .find(|p| !p.done)
        .expect("a partition not done");
    let at = consumer
        .position()
        .ok()
        .and_then(|tpl| {
            tpl.find_partition(&ctx.topic, p.id)
                .and_then(|e| e.offset().to_raw())
        })
        .unwrap_or(p.start);
    AuditError::Stalled {
        topic: ctx.topic.to_string(),
        partition: p.id,
        at,
        end: p.end,
        idle_s: idle.as_secs(),
    }
}

/// A record as the checks see it.
fn record_view<'m>(m: &'m BorrowedMessage<'_>) -> RecordView<'m> {
    let headers: Vec<(&str, Option<&[u8]>)> = m
        .headers()
        .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
        .unwrap_or_default();
    RecordView {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key(),
        value: m.payload(),
        timestamp: match m.timestamp() {
            rdkafka::Timestamp::NotAvailable => Timestamp::NotAvailable,
            rdkafka::Timestamp::CreateTime(t) => Timestamp::CreateTime(t),
            rdkafka::Timestamp::LogAppendTime(t) => Timestamp::LogAppendTime(t),
        },
        headers,
    }
}

/// The metrics of one topic: records audited, findings by kind.
struct TopicCounters {
    records: Counter,
    findings: BTreeMap<super::Kind, Counter>,
}

impl TopicCounters {
    fn new(ctx: &TopicContext) -> TopicCounters {
        TopicCounters {
            records: counter!(RECORDS_AUDITED, "topic" => ctx.topic.to_string()),
            findings: BTreeMap::new(),
        }
    }

    /// One record audited, with its findings.
    fn count(&mut self, ctx: &TopicContext, findings: &[Finding]) {
        for f in findings {
            self.findings
                .entry(f.kind)
                .or_insert_with(|| {
                    counter!(FINDINGS, "topic" => ctx.topic.to_string(), "kind" => f.kind.as_str())
                })
                .increment(1);
        }
        self.records.increment(1);
    }
}

/// Whether records remain after the ones read (for a read stopped by `--max-records`).
fn plans_left(out: &Read, total: i64) -> bool {
    i64::try_from(out.records).unwrap_or(i64::MAX) < total
}

fn collect(out: &mut Read, ctx: &TopicContext, parts: &[Partition]) {
    for p in parts {
        out.partitions.push(p.read(&ctx.topic));
    }
}

/// The offset of each partition to start from: the beginning, or the first record at
/// or after `from` (`None`: no such record, nothing to read).
fn start_offsets(
    consumer: &BaseConsumer<Context>,
    topic: &str,
    ids: &[i32],
    from: Option<DateTime<Utc>>,
) -> Result<Vec<Option<i64>>, AuditError> {
    let Some(from) = from else {
        return Ok(ids.iter().map(|_| Some(0)).collect());
    };
    let mut tpl = TopicPartitionList::new();
    for &id in ids {
        tpl.add_partition_offset(topic, id, Offset::Offset(from.timestamp_millis()))
            .map_err(|e| AuditError::Client(e.to_string()))?;
    }
    let found = consumer
        .offsets_for_times(tpl, METADATA_TIMEOUT)
        .map_err(|e| AuditError::Read {
            topic: topic.to_string(),
            error: e.to_string(),
        })?;
    Ok(ids
        .iter()
        .map(
            |&id| match found.find_partition(topic, id).map(|e| e.offset()) {
                Some(Offset::Offset(o)) if o >= 0 => Some(o),
                _ => None,
            },
        )
        .collect())
}
