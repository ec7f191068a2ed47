//! `gen`: synthetic events to a file or stdout.

use super::{parse_now, GenArgs};
use crate::encode::{self, OutputFormat};
use crate::error::Failure;
use crate::gen::Generator;
use crate::kafka::producer::{enqueue, Enqueued};
use prost::Message;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long `gen` waits for the brokers to describe the topic before producing.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// `gen`'s producer context: librdkafka's logs and errors as the filter's clients log
/// them (a broker that cannot be reached is one line, not one per reconnect), and the
/// delivery reports counted — an event the broker did not take fails the command.
#[derive(Default)]
struct GenContext {
    inner: crate::kafka::Context,
    failed: AtomicU64,
    /// The first delivery error: librdkafka's error, never the record.
    first: Mutex<Option<KafkaError>>,
}

impl ClientContext for GenContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.inner.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.inner.error(error, reason);
    }
}

impl ProducerContext for GenContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| e.clone());
        }
    }
}

/// The brokers describe `topic`, with partitions: else why not, naming the topic. A
/// topic error is asked again until [`METADATA_TIMEOUT`] (a broker that creates topics
/// on first use answers "leader not available" while it does).
fn check_topic(
    producer: &BaseProducer<GenContext>,
    topic: &str,
    servers: &str,
) -> Result<(), Failure> {
    // A broker answers first, or the command stops there (exit 2).
    crate::kafka::reach::first_metadata(producer.client(), Some(topic), servers).map_err(|e| {
        match e {
            Ok(unreachable) => Failure::from(unreachable).context(format!("gen: topic {topic}")),
            Err(e) => Failure::world(e).context(format!("gen: topic {topic}")),
        }
    })?;
    let deadline = std::time::Instant::now() + METADATA_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), left.max(Duration::from_millis(100)))
            .map_err(|e| {
                Failure::world(anyhow::anyhow!(
                    "gen: the brokers did not describe topic {topic} within {} s ({e}): are they reachable at kafka.bootstrap_servers?",
                    METADATA_TIMEOUT.as_secs()
                ))
            })?;
        let why = match metadata.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => return Ok(()),
            Some(t) => t
                .error()
                .map(|e| RDKafkaErrorCode::from(e).to_string())
                .unwrap_or_else(|| "it has no partitions".to_string()),
            None => "the brokers did not describe it".to_string(),
        };
        if std::time::Instant::now() >= deadline {
            return Err(Failure::world(anyhow::anyhow!(
                "gen: cannot produce to topic {topic}: {why} (after {} s); create the topic first",
                METADATA_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Produces the events to a Kafka topic, keyed by event_id, waiting for every ack; fails
/// (exit 1) when the topic does not exist or any event was not delivered.
fn to_kafka(args: &GenArgs, config: &std::path::Path, topic: &str) -> Result<ExitCode, Failure> {
    let settings = crate::config::load(config)?;
    let now = parse_now(args.now.as_deref())?;
    super::reach(&settings).map_err(|e| e.context(format!("gen: topic {topic}")))?;
    let mut c = crate::kafka::base_config(&settings);
    for (k, v) in &settings.kafka.producer_properties {
        c.set(k, v);
    }
    c.set("enable.idempotence", "true");
    let producer: BaseProducer<GenContext> =
        crate::kafka::create(&settings, &c, GenContext::default())?;
    check_topic(&producer, topic, &settings.kafka.bootstrap_servers)?;
    let mut generator = Generator::new(args.seed, now);
    let mut buf = Vec::with_capacity(1024);
    let started = std::time::Instant::now();
    for i in 0..args.count {
        let event = generator.next_event();
        encode::encode_event(&event, args.format, &mut buf).map_err(Failure::bug)?;
        loop {
            let record = BaseRecord::to(topic)
                .key(event.event_id.as_str())
                .payload(buf.as_slice());
            match enqueue(&producer, record) {
                Enqueued::Queued => break,
                Enqueued::QueueFull => {
                    producer.poll(Duration::from_millis(10));
                }
                Enqueued::Failed(e) => {
                    return Err(Failure::world(anyhow::anyhow!(
                        "gen: producing to {topic} failed: {e}"
                    )))
                }
            }
        }
        producer.poll(Duration::ZERO);
        if (i + 1) % 100_000 == 0 {
            super::notice(&format!("gen: {} events produced", i + 1));
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| Failure::world(anyhow::anyhow!("gen: flushing to {topic} failed: {e}")))?;
    let context = producer.context();
    let failed = context.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = context.first.lock().unwrap_or_else(|p| p.into_inner());
        let why = first.as_ref().map(ToString::to_string).unwrap_or_default();
        return Err(Failure::world(anyhow::anyhow!(
            "gen: {failed} of {} events were not delivered to {topic}: {why}",
            args.count
        )));
    }
    super::notice(&format!(
        "gen: produced {} events to {topic} in {:.1} s",
        args.count,
        started.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run(args: GenArgs) -> Result<ExitCode, Failure> {
    if let (Some(config), Some(topic)) = (&args.config, &args.topic) {
        return to_kafka(&args, config, topic);
    }
    let now = parse_now(args.now.as_deref())?;
    let out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(super::paths::create_output(p).map_err(|e| e.context("gen"))?),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut generator = Generator::new(args.seed, now);
    let mut buf = Vec::with_capacity(1024);
    let result = (|| -> io::Result<()> {
        for _ in 0..args.count {
            let event = generator.next_event();
            match args.format {
                OutputFormat::Json => {
                    encode::encode_event(&event, OutputFormat::Json, &mut buf)
                        .map_err(io::Error::other)?;
                    buf.push(b'\n');
                }
                OutputFormat::Protobuf => {
                    buf.clear();
                    event
                        .encode_length_delimited(&mut buf)
                        .expect("a Vec grows to fit any message");
                }
            }
            out.write_all(&buf)?;
        }
        out.flush()
    })();
    match result {
        Ok(()) => {
            if let Some(p) = &args.out {
                super::notice(&format!(
                    "gen: wrote {} events to {}",
                    args.count,
                    p.display()
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Failure::world(e).context("gen: write failed")),
    }
}
