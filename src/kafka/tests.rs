use super::*;
use crate::config::{self, Settings};
use std::sync::atomic::Ordering;

fn settings(extra: &str) -> Settings {
    let toml = format!(
        r#"
[kafka]
bootstrap_servers = "127.0.0.1:9092"
group_id = "unit"
{extra}
[input]
topics = ["cdr.raw"]
[purposes.billing]
topic = "cdr.billing"
[purposes.security]
topic = "cdr.security"
"#
    );
    Settings::validate(config::parse(&toml, &[]).unwrap()).unwrap()
}

/// Every broker reported down, then reachable, again and again (librdkafka's
/// reconnects after a broker restart): one line for the outage, the reports counted;
/// readiness follows each change; the outage ends once no report came for a while.
#[test]
fn a_flapping_outage_is_one_line_with_a_count() {
    let (logs, _capture) = crate::telemetry::events::test_logs::capture();
    let context = Context::default();
    let down = || {
        let e = KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        context.error(e, "2/2 brokers are down");
    };
    for _ in 0..5 {
        down();
        assert!(context.health.brokers_down.load(Ordering::SeqCst));
        context.broker_answered();
        assert!(!context.health.brokers_down.load(Ordering::SeqCst));
    }
    let text = logs.text();
    assert_eq!(
        text.matches("all brokers are down").count(),
        1,
        "one line for the outage: {text}"
    );
    let h = &context.health;
    assert_eq!(h.outage_reports.load(Ordering::SeqCst), 5);
    assert_ne!(h.outage_since.load(Ordering::SeqCst), 0, "not over yet");
    // No report for longer than the settling time: the next answer ends it.
    let long_ago = crate::health::unix_millis() - crate::health::OUTAGE_SETTLES_AFTER_MS;
    h.outage_last_report.store(long_ago, Ordering::SeqCst);
    context.broker_answered();
    assert_eq!(h.outage_since.load(Ordering::SeqCst), 0, "over");
    assert_eq!(h.outage_reports.load(Ordering::SeqCst), 0);
    down();
    assert_eq!(
        logs.text().matches("all brokers are down").count(),
        2,
        "a new outage, a new line"
    );
}

/// A refused property is named by the key and section the user wrote, not by
/// librdkafka's canonical name for it (which is given aside); never its value.
#[test]
fn a_refused_alias_is_named_by_the_users_key_and_section() {
    let s = settings("[kafka.producer_properties]\n\"linger.ms\" = \"-5\"");
    let e = check_client_configs(&s).unwrap_err().to_string();
    assert!(
        e.starts_with(r#"kafka.producer_properties."linger.ms" refused by librdkafka"#),
        "{e}"
    );
    assert!(e.contains("`queue.buffering.max.ms`"), "{e}");
    assert!(e.contains("value out of range (allowed 0..900000)"), "{e}");
    assert!(!e.contains("-5"), "{e}");
    let s = settings("[kafka.properties]\n\"socket.timeout.ms\" = \"1\"");
    let e = check_client_configs(&s).unwrap_err().to_string();
    assert!(
        e.starts_with(r#"kafka.properties."socket.timeout.ms" refused by librdkafka: "#),
        "{e}"
    );
}

/// A frozen broker is seen within seconds and a created topic taken up within ten
/// with the defaults; the configuration overrides each default, in any section.
#[test]
fn the_clients_get_the_filters_timeouts_unless_configured() {
    let s = settings("");
    let consumer = consumer_config(&s);
    assert_eq!(consumer.get("socket.timeout.ms"), Some("5000"));
    assert_eq!(consumer.get("session.timeout.ms"), Some("10000"));
    assert_eq!(
        consumer.get("topic.metadata.refresh.interval.ms"),
        Some("10000")
    );
    let producer = producer_config(&s);
    assert_eq!(producer.get("socket.timeout.ms"), Some("5000"));
    assert_eq!(
        producer.get("topic.metadata.refresh.interval.ms"),
        Some("10000")
    );
    assert_eq!(
        producer.get("session.timeout.ms"),
        None,
        "a consumer setting"
    );
    assert_eq!(base_config(&s).get("socket.timeout.ms"), Some("5000"));
    check_client_configs(&s).expect("librdkafka takes the defaults");
    let s = settings(
        "[kafka.properties]\n\"topic.metadata.refresh.interval.ms\" = \"60000\"\n\
             [kafka.consumer_properties]\n\"socket.timeout.ms\" = \"20000\"\n\
             \"session.timeout.ms\" = \"45000\"",
    );
    let consumer = consumer_config(&s);
    assert_eq!(consumer.get("socket.timeout.ms"), Some("20000"));
    assert_eq!(consumer.get("session.timeout.ms"), Some("45000"));
    assert_eq!(
        consumer.get("topic.metadata.refresh.interval.ms"),
        Some("60000")
    );
    assert_eq!(producer_config(&s).get("socket.timeout.ms"), Some("5000"));
    let shown: Vec<(&str, &str)> = defaults_in_force(&s)
        .iter()
        .map(|d| (d.name, d.clients))
        .collect();
    assert_eq!(shown, vec![("socket.timeout.ms", "producer, admin")]);
}
