//! Unit tests of the at-least-once delivery bookkeeping, on librdkafka's mock cluster.

use super::clients::{is_permanent, record_of, wire_size};
use super::engine::{Batch, Record, Sent};
use super::offsets::{await_batch, Done};
use super::records::{Outgoing, Source};
use super::tracker::Tracker;
use super::*;
use crate::config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::ThreadedProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::Duration;

/// The configuration of the engine's tests, these and the simulation's, as written:
/// brokers at `bootstrap`, consumer group `group`, input `cdr.raw`, both purposes on
/// `cdr.billing` and `cdr.security`, the topics not managed; the rest by default.
pub(super) fn raw_config(bootstrap: &str, group: &str) -> config::RawConfig {
    let purpose = |topic: &str| config::PurposeSection {
        topic: Some(topic.into()),
        ..config::PurposeSection::default()
    };
    let mut raw = config::RawConfig::default();
    raw.kafka.bootstrap_servers = bootstrap.into();
    raw.kafka.group_id = group.into();
    raw.input.topics = vec!["cdr.raw".into()];
    raw.purposes.billing = Some(purpose("cdr.billing"));
    raw.purposes.security = Some(purpose("cdr.security"));
    raw.topics.mode = config::TopicsMode::Off;
    raw
}

fn settings(bootstrap: &str) -> Arc<Settings> {
    Arc::new(Settings::validate(raw_config(bootstrap, "unit")).unwrap())
}

fn records_in(bootstrap: &str, topic: &str) -> Vec<Vec<u8>> {
    messages_in(bootstrap, topic)
        .into_iter()
        .map(|m| m.payload().unwrap_or_default().to_vec())
        .collect()
}

fn messages_in(bootstrap: &str, topic: &str) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "unit-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while (out.len() as i64) < high && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.detach());
        }
    }
    out
}

/// A failed record as its delivery report gives it back.
fn reported(topic: &str) -> rdkafka::message::OwnedMessage {
    rdkafka::message::OwnedMessage::new(
        Some(b"an output".to_vec()),
        Some(b"k".to_vec()),
        topic.to_string(),
        rdkafka::Timestamp::CreateTime(1),
        0,
        -1,
        Some(
            rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                key: "cdr-purpose",
                value: Some("billing"),
            }),
        ),
    )
}

/// A delivery that failed (here: timed out, a report made by the test) is sent again
/// until it is acknowledged, and its record completes — it is neither left incomplete
/// (which kept its tracker entry, and the back-pressure count, stuck) nor dropped.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delivery_is_sent_again_and_the_record_completes() {
    let mock = MockCluster::new(1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    mock.create_topic("cdr.billing", 1, 1).unwrap();
    let settings = settings(&bootstrap);
    let context = Context::default();
    let producer = Arc::new(super::producer(&settings, context.clone()).unwrap());
    let transform = Arc::new(Transform::new(settings.clone()));
    // Output 0 of the batch, counted as sent; its report says it timed out, and gives
    // the record back.
    let ticket = context.acks.ticket();
    let opaque = ticket.expect(0);
    context.acks.report(
        opaque,
        Some((
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
            reported("cdr.billing"),
        )),
    );
    let mut tracker = Tracker::default();
    let p = tracker.partition("cdr.raw", 0);
    let seq = tracker.push(p, 7);
    let batch = Batch {
        records: vec![Record {
            source: Source {
                topic: Arc::from("cdr.raw"),
                partition: 0,
                offset: 7,
            },
            leader_epoch: None,
            received: std::time::Instant::now(),
            processed: true,
            slot: Some((p, seq)),
        }],
        sent: vec![Sent {
            record: 0,
            topic: Arc::from("cdr.billing"),
        }],
        ticket: Some(ticket),
        ..Batch::default()
    };
    let (batch, done) = tokio::time::timeout(
        Duration::from_secs(60),
        await_batch(
            producer,
            context,
            transform,
            Arc::new(Stats::default()),
            batch,
        ),
    )
    .await
    .expect("the re-sent output is acknowledged");
    let (slot, done_seq) = batch.records[0].slot.unwrap();
    assert!(matches!(done, Done::Acked), "{done:?}");
    assert_eq!(
        tracker.complete(slot, done_seq),
        Some((Arc::from("cdr.raw"), 0, 7))
    );
    assert_eq!(tracker.in_flight, 0, "back-pressure released");
    // The record the report gave back, whole: key, value, timestamp, headers.
    let resent = messages_in(&bootstrap, "cdr.billing");
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].key(), Some(&b"k"[..]));
    assert_eq!(resent[0].payload(), Some(&b"an output"[..]));
    assert_eq!(resent[0].timestamp().to_millis(), Some(1));
    let headers: Vec<(String, Vec<u8>)> = resent[0]
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        headers,
        vec![("cdr-purpose".to_string(), b"billing".to_vec())]
    );
}

/// librdkafka's size check at enqueue, reproduced: an output one byte over
/// `message.max.bytes` is refused by the client, one at the limit is not.
#[tokio::test(flavor = "multi_thread")]
async fn the_size_precheck_matches_librdkafka() {
    let mock = MockCluster::new(1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    mock.create_topic("cdr.billing", 1, 1).unwrap();
    let context = Context::default();
    let producer: ThreadedProducer<Context> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.max.bytes", "1500")
        .create_with_context(context.clone())
        .unwrap();
    let ticket = context.acks.ticket();
    let headers = [
        records::headers_of(&[("content-type", "application/json"), ("x", "y")]),
        records::OutHeaders::inline(&[
            ("cdr-purpose", "billing"),
            ("cdr-expires-at", "2027-02-28T10:00:00Z"),
            ("cdr-legal-basis", "CPCE R10-14 III"),
            ("cdr-policy-version", "R10-14/2021"),
            ("content-type", "application/x-protobuf"),
        ]),
    ];
    for (extra, headers) in [0usize, 1]
        .into_iter()
        .flat_map(|e| headers.clone().map(|h| (e, h)))
    {
        let mut o = Outgoing {
            topic: Arc::from("cdr.billing"),
            key: Some("a-key".into()),
            value: Vec::new(),
            headers,
            timestamp_ms: 1,
        };
        o.value = vec![b'v'; 1500 - wire_size(&o) + extra];
        assert_eq!(wire_size(&o), 1500 + extra);
        let refused = match producer.send(record_of(&o, ticket.expect(0))) {
            Ok(()) => false,
            Err((e, _)) => {
                ticket.unsent();
                is_permanent(&e)
            }
        };
        assert_eq!(refused, extra == 1, "{} bytes", wire_size(&o));
    }
}

/// A broker without transactions is told apart once, where librdkafka's error is
/// classified: never retried, and the filter stops with exit 2 (the configuration's to
/// change) — not as fenced, not as a failed abort.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_without_transactions_is_classified_where_the_error_is_read() {
    use crate::error::Classify;
    let settings = settings("127.0.0.1:1");
    let producer = super::producer(&settings, Context::default()).unwrap();
    let classified = |code| super::clients::txn_error(&producer, KafkaError::Global(code));
    let e = classified(RDKafkaErrorCode::UnsupportedFeature);
    assert!(matches!(e, boundary::TxnError::Unsupported(_)), "{e}");
    let stop = PipelineError::Transactions(e);
    assert_eq!(stop.fault().exit_code(), 2, "{stop}");
    assert!(
        stop.to_string()
            .contains("the broker does not support Kafka transactions"),
        "{stop}"
    );
    let e = classified(RDKafkaErrorCode::OperationTimedOut);
    assert!(matches!(e, boundary::TxnError::Abortable(_)), "{e}");
}

/// librdkafka's own `fetch.queue.backoff.ms` (1 s) stalled a partition for a second
/// each time its local queue reached `queued.max.messages.kbytes`: the filter consumed
/// about one second in two under load. The filter sets 20 ms, under both guarantees,
/// unless the configuration says otherwise; its memory bound stays.
#[test]
fn the_consumer_fetches_again_soon_after_its_queue_was_full() {
    let mut raw = raw_config("127.0.0.1:9092", "unit");
    let at_least_once = Settings::validate(raw.clone()).unwrap();
    let c = super::clients::consumer_config(&at_least_once);
    assert_eq!(c.get("fetch.queue.backoff.ms"), Some("20"));
    assert_eq!(c.get("queued.max.messages.kbytes"), Some("16384"));

    raw.delivery.guarantee = config::Guarantee::ExactlyOnce;
    let exactly_once = Settings::validate(raw.clone()).unwrap();
    let c = super::clients::consumer_config(&exactly_once);
    assert_eq!(c.get("fetch.queue.backoff.ms"), Some("20"));
    assert_eq!(c.get("isolation.level"), Some("read_committed"));

    raw.kafka
        .consumer_properties
        .insert("fetch.queue.backoff.ms".into(), "250".into());
    let configured = Settings::validate(raw).unwrap();
    let c = super::clients::consumer_config(&configured);
    assert_eq!(
        c.get("fetch.queue.backoff.ms"),
        Some("250"),
        "the configuration wins"
    );
}

/// An input whose security output was refused for good becomes one dead letter that
/// names the purposes already forwarded — whether the refusal came from the client at the
/// enqueue (the round then delivered everything else) or from the broker's report.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_names_the_purposes_already_forwarded() {
    let mock = MockCluster::new(1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let settings = settings(&bootstrap);
    let context = Context::default();
    let producer = Arc::new(super::producer(&settings, context.clone()).unwrap());
    let transform = Arc::new(Transform::new(settings.clone()));
    let dead_letter_topic = transform.dead_letter_topic().to_string();
    for topic in ["cdr.billing", "cdr.security", dead_letter_topic.as_str()] {
        mock.create_topic(topic, 1, 1).unwrap();
    }
    let sent = |topic: &str| Sent {
        record: 0,
        topic: Arc::from(topic),
    };
    let record = |offset| Record {
        source: Source {
            topic: Arc::from("cdr.raw"),
            partition: 0,
            offset,
        },
        leader_epoch: None,
        received: std::time::Instant::now(),
        processed: true,
        slot: None,
    };
    let too_large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);

    // Refused by the client when enqueued; billing delivered (reports made by the test).
    let ticket = context.acks.ticket();
    context.acks.report(ticket.expect(0), None);
    let enqueue_refused = Batch {
        records: vec![record(1)],
        sent: vec![sent("cdr.billing")],
        refused: vec![(0, Arc::from("cdr.security"), too_large.to_string())],
        ticket: Some(ticket),
        ..Batch::default()
    };
    // Refused by the broker: the report of output 1 says so; sent again alone, it is
    // refused again (here by the client: larger than message.max.bytes).
    let ticket = context.acks.ticket();
    context.acks.report(ticket.expect(0), None);
    let large = rdkafka::message::OwnedMessage::new(
        Some(vec![b'x'; 2_000_000]),
        Some(b"k".to_vec()),
        "cdr.security".to_string(),
        rdkafka::Timestamp::CreateTime(1),
        0,
        -1,
        None,
    );
    context
        .acks
        .report(ticket.expect(1), Some((too_large.clone(), large)));
    let report_refused = Batch {
        records: vec![record(2)],
        sent: vec![sent("cdr.billing"), sent("cdr.security")],
        ticket: Some(ticket),
        ..Batch::default()
    };
    for batch in [enqueue_refused, report_refused] {
        let (_, done) = tokio::time::timeout(
            Duration::from_secs(60),
            await_batch(
                producer.clone(),
                context.clone(),
                transform.clone(),
                Arc::new(Stats::default()),
                batch,
            ),
        )
        .await
        .expect("the dead letter is acknowledged");
        assert!(matches!(done, Done::Acked), "{done:?}");
    }
    let dead: Vec<String> = records_in(&bootstrap, &dead_letter_topic)
        .into_iter()
        .map(|v| String::from_utf8(v).unwrap())
        .collect();
    assert_eq!(dead.len(), 2, "{dead:?}");
    for value in &dead {
        assert!(
            value.contains("the security output record was refused")
                && value.contains("forwarded: billing"),
            "{value}"
        );
    }
}

/// When the broker refuses a wave of outputs, the retry is logged in one WARN line for
/// the batch (how many records, which topic, which error, the attempt) — not one line
/// per record — and still counted per record in `cdr_produce_retries_total`.
#[tokio::test(flavor = "multi_thread")]
async fn a_wave_of_failed_deliveries_is_logged_once_and_counted_per_record() {
    const N: usize = 25;
    let (logs, _capture) = crate::telemetry::events::test_logs::capture();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _metrics = metrics::set_default_local_recorder(&recorder);

    let mock = MockCluster::new(1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    mock.create_topic("cdr.billing", 1, 1).unwrap();
    let settings = settings(&bootstrap);
    let context = Context::default();
    let producer = Arc::new(super::producer(&settings, context.clone()).unwrap());
    let transform = Arc::new(Transform::new(settings.clone()));
    let ticket = context.acks.ticket();
    let opaques: Vec<usize> = (0..N).map(|i| ticket.expect(i)).collect();
    for opaque in opaques {
        context.acks.report(
            opaque,
            Some((
                KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
                reported("cdr.billing"),
            )),
        );
    }
    let mut tracker = Tracker::default();
    let p = tracker.partition("cdr.raw", 0);
    let records = (0..N)
        .map(|i| Record {
            source: Source {
                topic: Arc::from("cdr.raw"),
                partition: 0,
                offset: i as i64,
            },
            leader_epoch: None,
            received: std::time::Instant::now(),
            processed: true,
            slot: Some((p, tracker.push(p, i as i64))),
        })
        .collect();
    let batch = Batch {
        records,
        sent: (0..N)
            .map(|record| Sent {
                record,
                topic: Arc::from("cdr.billing"),
            })
            .collect(),
        ticket: Some(ticket),
        ..Batch::default()
    };
    let (_, done) = tokio::time::timeout(
        Duration::from_secs(60),
        await_batch(
            producer,
            context,
            transform,
            Arc::new(Stats::default()),
            batch,
        ),
    )
    .await
    .expect("the re-sent outputs are acknowledged");
    assert!(matches!(done, Done::Acked), "{done:?}");
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("delivery failed"))
        .collect();
    assert_eq!(lines.len(), 1, "one line for the wave: {text}");
    let line = lines[0];
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!("records={N}")), "{line}");
    assert!(line.contains("attempt=1"), "{line}");
    assert!(line.contains("cdr.billing"), "{line}");
    assert!(line.contains("timed out"), "the error: {line}");
    assert!(!line.contains("an output"), "no record content: {line}");
    let rendered = handle.render();
    assert!(
        rendered.lines().any(|l| l
            == format!(
                r#"{}{{topic="cdr.billing"}} {N}"#,
                crate::telemetry::PRODUCE_RETRIES
            )),
        "counted per record: {rendered}"
    );
}
