//! `gen`: synthetic events to a file or stdout.

use super::{parse_now, GenArgs};
use crate::encode::{self, OutputFormat};
use crate::error::Failure;
use crate::gen::Generator;
use prost::Message;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

/// Produces the events to a Kafka topic, keyed by event_id, waiting for every ack.
fn to_kafka(args: &GenArgs, config: &std::path::Path, topic: &str) -> Result<ExitCode, Failure> {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let settings = crate::config::load(config)?;
    let now = parse_now(args.now.as_deref())?;
    let mut c = crate::kafka::base_config(&settings);
    for (k, v) in &settings.kafka.producer_properties {
        c.set(k, v);
    }
    c.set("enable.idempotence", "true");
    let producer: BaseProducer =
        crate::kafka::create(&settings, &c, rdkafka::producer::DefaultProducerContext)?;
    let mut generator = Generator::new(args.seed, now);
    let mut buf = Vec::with_capacity(1024);
    let started = std::time::Instant::now();
    for i in 0..args.count {
        let event = generator.next_event();
        encode::encode_event(&event, args.format, &mut buf).map_err(Failure::bug)?;
        let mut record = BaseRecord::to(topic)
            .key(event.event_id.as_str())
            .payload(buf.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    producer.poll(std::time::Duration::from_millis(10));
                }
                Err((e, _)) => {
                    return Err(Failure::world(anyhow::anyhow!(
                        "gen: producing to {topic} failed: {e}"
                    )))
                }
            }
        }
        producer.poll(std::time::Duration::ZERO);
        if (i + 1) % 100_000 == 0 {
            eprintln!("gen: {} events produced", i + 1);
        }
    }
    producer
        .flush(std::time::Duration::from_secs(120))
        .map_err(|e| Failure::world(anyhow::anyhow!("gen: flushing to {topic} failed: {e}")))?;
    eprintln!(
        "gen: produced {} events to {topic} in {:.1} s",
        args.count,
        started.elapsed().as_secs_f64()
    );
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
                eprintln!("gen: wrote {} events to {}", args.count, p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Failure::world(e).context("gen: write failed")),
    }
}
