//! `demo`: the whole pipeline on librdkafka's in-process mock cluster, with generated
//! events, then a readable summary. Needs nothing installed; runs the same
//! [`pipeline::run`] as `run`.

use crate::config::{self, Guarantee, Settings};
use crate::decode;
use crate::encode::{self, OutputFormat};
use crate::gen::Generator;
use crate::kafka::Context;
use crate::pipeline;
use crate::policy::table;
use crate::schema::{self, CdrEvent};
use crate::telemetry::Stats;
use chrono::{DateTime, Utc};
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const INPUT: &str = "cdr.raw";
const PARTITIONS: i32 = 3;

/// What `demo` measured, for the summary and for tests.
#[derive(Debug, Default)]
pub struct DemoReport {
    pub events_in: u64,
    pub json_in: u64,
    pub protobuf_in: u64,
    pub malformed_in: u64,
    pub out: BTreeMap<String, u64>,
    pub dropped: BTreeMap<(&'static str, &'static str), u64>,
    pub dead_letters: BTreeMap<&'static str, u64>,
    /// Per purpose: field group → number of values removed.
    pub removed: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// One event before, and after for each purpose.
    pub sample: Option<(String, BTreeMap<String, String>)>,
    pub expiry: BTreeMap<String, (String, String)>,
    /// Output records whose Kafka timestamp is not the event time (should be 0).
    pub timestamp_mismatches: u64,
    pub elapsed: Duration,
    pub guarantee: Option<Guarantee>,
}

/// A guarantee as the configuration writes it (`delivery.guarantee`).
fn guarantee_name(guarantee: Guarantee) -> &'static str {
    match guarantee {
        Guarantee::AtLeastOnce => "at-least-once",
        Guarantee::ExactlyOnce => "exactly-once",
    }
}

fn settings_for(bootstrap: &str, guarantee: Guarantee) -> Settings {
    let guarantee = guarantee_name(guarantee);
    let toml = format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "cdr-purpose-filter-demo"
[kafka.consumer_properties]
"fetch.wait.max.ms" = "10"
[input]
topics = ["{INPUT}"]
[purposes.billing]
[purposes.security]
[topics]
mode = "off"
[delivery]
guarantee = "{guarantee}"
transactional_id = "cdr-purpose-filter-demo"
"#
    );
    Settings::validate(config::parse(&toml, &[]).expect("demo config parses"))
        .expect("demo config is valid")
}

/// The malformed records the demo mixes in, to show dead letters.
fn malformed(now: DateTime<Utc>) -> Vec<Vec<u8>> {
    let mut future = Generator::new(99, now).full_event(
        schema::EventType::VoiceCall,
        schema::Direction::Originating,
        now + chrono::Duration::days(2),
    );
    future.event_id = "demo-future".into();
    vec![
        b"\xff\xfe garbage, not a CDR".to_vec(),
        br#"{"eventTime": "2026-11-28T10:00:00Z", "eventType": "SMS"}"#.to_vec(),
        br#"{"eventId": "demo-truncated", "eventTime": "2026-11"#.to_vec(),
        future.encode_to_vec(),
    ]
}

/// Runs the demo: `count` generated events (plus a few malformed ones).
pub async fn run(count: u64, seed: u64, guarantee: Guarantee) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let mock = MockCluster::new(1).map_err(|e| anyhow::anyhow!("mock cluster: {e}"))?;
    let bootstrap = mock.bootstrap_servers();
    let settings = settings_for(&bootstrap, guarantee);
    for t in [INPUT, "cdr.billing", "cdr.security", "cdr.dead-letter"] {
        mock.create_topic(t, PARTITIONS, 1)
            .map_err(|e| anyhow::anyhow!("mock topic {t}: {e}"))?;
    }
    let mut report = DemoReport::default();
    let inputs = load_input(&bootstrap, count, seed, &mut report).await?;
    let stats = run_filter(settings, report.events_in).await?;
    report.dropped = stats.dropped();
    report.dead_letters = stats.dead_letters.lock().expect("stats").clone();
    let expected: u64 =
        stats.produced().values().sum::<u64>() + report.dead_letters.values().sum::<u64>();
    let read = read_back(&bootstrap, expected, &inputs, &mut report)?;
    report.elapsed = started.elapsed();
    report.guarantee = Some(guarantee);
    if read < expected {
        anyhow::bail!("demo: read back {read} of {expected} output records");
    }
    Ok(report)
}

/// Loads the input: generated events, alternately JSON and protobuf, and malformed ones.
/// Returns the generated events by id.
async fn load_input(
    bootstrap: &str,
    count: u64,
    seed: u64,
    report: &mut DemoReport,
) -> anyhow::Result<HashMap<String, CdrEvent>> {
    let now = Utc::now();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let mut inputs: HashMap<String, CdrEvent> = HashMap::new();
    let mut generator = Generator::new(seed, now);
    let mut buf = Vec::new();
    let mut sends = Vec::new();
    for i in 0..count {
        let event = generator.next_event();
        let format = if i % 2 == 0 {
            report.json_in += 1;
            OutputFormat::Json
        } else {
            report.protobuf_in += 1;
            OutputFormat::Protobuf
        };
        encode::encode_event(&event, format, &mut buf)?;
        let record = FutureRecord::to(INPUT)
            .key(event.event_id.as_str())
            .payload(buf.as_slice());
        sends.push(producer.send_result(record).map_err(|(e, _)| e)?);
        inputs.insert(event.event_id.clone(), event);
    }
    for bad in malformed(now) {
        report.malformed_in += 1;
        sends.push(
            producer
                .send_result(FutureRecord::<(), _>::to(INPUT).payload(bad.as_slice()))
                .map_err(|(e, _)| e)?,
        );
    }
    for s in futures::future::join_all(sends).await {
        s?.map_err(|(e, _)| e)?;
    }
    report.events_in = count + report.malformed_in;
    Ok(inputs)
}

/// The filter, as `run` runs it, until every input record is complete.
async fn run_filter(settings: Settings, events_in: u64) -> anyhow::Result<Arc<Stats>> {
    let stats = Arc::new(Stats::default());
    let token = CancellationToken::new();
    let filter = {
        let (settings, stats, token) = (Arc::new(settings), stats.clone(), token.clone());
        tokio::spawn(async move { pipeline::run(settings, token, stats, Context::default()).await })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while stats.completed() < events_in {
        if Instant::now() > deadline || filter.is_finished() {
            token.cancel();
            let result = filter.await?;
            anyhow::bail!(
                "demo: the filter completed {} of {} records ({})",
                stats.completed(),
                events_in,
                match result {
                    Err(e) => e.to_string(),
                    Ok(()) => "it stopped without an error".to_string(),
                }
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    token.cancel();
    filter.await??;
    Ok(stats)
}

/// Reads the outputs back, up to `expected` records: counts, expiry ranges, removed
/// fields and a sample into `report`. Returns how many were read.
fn read_back(
    bootstrap: &str,
    expected: u64,
    inputs: &HashMap<String, CdrEvent>,
    report: &mut DemoReport,
) -> anyhow::Result<u64> {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cdr-demo-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    reader.subscribe(&["cdr.billing", "cdr.security", "cdr.dead-letter"])?;
    let mut read = 0u64;
    let mut afters: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read < expected && Instant::now() < deadline {
        let Some(msg) = reader.poll(Timeout::After(Duration::from_millis(200))) else {
            continue;
        };
        let msg = msg?;
        read += 1;
        *report.out.entry(msg.topic().to_string()).or_default() += 1;
        if msg.topic() != "cdr.dead-letter" {
            report.output(&msg, inputs, &mut afters)?;
        }
    }
    report.sample = afters
        .into_iter()
        .find(|(_, by_purpose)| by_purpose.len() == 2)
        .map(|(id, by_purpose)| {
            (
                serde_json::to_string(&inputs[&id]).unwrap_or_default(),
                by_purpose,
            )
        });
    Ok(read)
}

impl DemoReport {
    /// One output record read back: its expiry, its Kafka timestamp, the fields it lost;
    /// an originating SMS is kept in `afters` (by event id, then purpose) for the sample.
    fn output(
        &mut self,
        msg: &BorrowedMessage<'_>,
        inputs: &HashMap<String, CdrEvent>,
        afters: &mut BTreeMap<String, BTreeMap<String, String>>,
    ) -> anyhow::Result<()> {
        let header = |name: &str| {
            msg.headers()
                .and_then(|h| h.iter().find(|x| x.key == name))
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let purpose = header(encode::header::PURPOSE);
        let expires = header(encode::header::EXPIRES_AT);
        let range = self
            .expiry
            .entry(purpose.clone())
            .or_insert_with(|| (expires.clone(), expires.clone()));
        if expires < range.0 {
            range.0 = expires.clone();
        }
        if expires > range.1 {
            range.1 = expires;
        }
        // Read as written: `decode::decode` would clear `retention`, as it does for input.
        let out = decode::decode_protobuf(msg.payload().unwrap_or_default())?;
        let Some(input) = inputs.get(&out.event_id) else {
            return Ok(());
        };
        let event_ms = input
            .event_time
            .as_ref()
            .and_then(schema::to_datetime)
            .map(|t| t.timestamp_millis());
        if msg.timestamp().to_millis() != event_ms {
            self.timestamp_mismatches += 1;
        }
        let removed = self.removed.entry(purpose.clone()).or_default();
        for f in table::schema_rows() {
            if f.is_present(input) && !f.is_present(&out) {
                *removed.entry(f.group()).or_default() += 1;
            }
        }
        if input.event_type == schema::EventType::Sms as i32
            && input.direction == schema::Direction::Originating as i32
        {
            afters
                .entry(out.event_id.clone())
                .or_default()
                .insert(purpose, serde_json::to_string(&out).unwrap_or_default());
        }
        Ok(())
    }
}

impl DemoReport {
    /// The summary printed by `demo`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "cdr-purpose-filter demo — policy {}, {}, librdkafka mock cluster\n",
            crate::policy::Version::IN_FORCE.name(),
            guarantee_name(self.guarantee.unwrap_or_default())
        );
        let _ = writeln!(
            s,
            "events in:        {} ({} JSON, {} protobuf, {} malformed)",
            self.events_in, self.json_in, self.protobuf_in, self.malformed_in
        );
        let _ = writeln!(s, "records out:");
        for (topic, n) in &self.out {
            let _ = writeln!(s, "  {topic:<18} {n}");
        }
        let _ = writeln!(s, "dropped (counted, not dead-lettered):");
        for ((purpose, reason), n) in &self.dropped {
            let _ = writeln!(s, "  {purpose:<9} {reason:<18} {n}");
        }
        let _ = writeln!(s, "dead letters (pointers only, no payload):");
        for (reason, n) in &self.dead_letters {
            let _ = writeln!(s, "  {reason:<28} {n}");
        }
        let _ = writeln!(s, "fields removed, by purpose and group:");
        for (purpose, groups) in &self.removed {
            let list: Vec<String> = groups.iter().map(|(g, n)| format!("{g} {n}")).collect();
            let _ = writeln!(s, "  {purpose:<9} {}", list.join(", "));
        }
        let _ = writeln!(s, "expiry (cdr-expires-at), by purpose:");
        for (purpose, (lo, hi)) in &self.expiry {
            let _ = writeln!(s, "  {purpose:<9} {lo} .. {hi}");
        }
        let _ = writeln!(
            s,
            "Kafka timestamps equal to event_time: {}",
            if self.timestamp_mismatches == 0 {
                "all".to_string()
            } else {
                format!("{} mismatches", self.timestamp_mismatches)
            }
        );
        if let Some((before, afters)) = &self.sample {
            let _ = writeln!(
                s,
                "\nsample event (an originating SMS), as it came in:\n  {before}"
            );
            for (purpose, after) in afters {
                let _ = writeln!(s, "the same event as written to {purpose}:\n  {after}");
            }
        }
        let _ = writeln!(s, "\ndone in {:.1} s", self.elapsed.as_secs_f64());
        s
    }
}
