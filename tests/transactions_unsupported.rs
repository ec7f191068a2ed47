//! Exactly-once on a broker without transactions (the test broker, tansu, has no
//! `EndTxn`): the filter stops at its first commit saying so, exit 2 (the configuration
//! cannot work with this broker) — not "fenced: another instance runs with the same
//! delivery.transactional_id", which it said though nothing was fenced.

mod common;

use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_on_a_broker_without_transactions_says_so() {
    let t = common::broker::unique("eos-unsupported");
    let (input, billing, security, dlq) = (
        format!("{t}.raw"),
        format!("{t}.billing"),
        format!("{t}.security"),
        format!("{t}.dlq"),
    );
    common::broker::create_topics(&[&input, &billing, &security, &dlq], 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("filter.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[kafka]
bootstrap_servers = "{brokers}"
group_id = "{t}.group"
[kafka.properties]
"fetch.wait.max.ms" = "10"
[input]
topics = ["{input}"]
[purposes.billing]
topic = "{billing}"
[purposes.security]
topic = "{security}"
[dead_letter]
topic = "{dlq}"
[topics]
mode = "off"
[delivery]
guarantee = "exactly-once"
[metrics]
listen = "127.0.0.1:0"
"#,
            brokers = common::broker::brokers()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_cdr-purpose-filter");
    let gen = Command::new(bin)
        .args(["gen", "--count", "5", "--topic", &input, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    // `timeout`: a filter that kept running would hang the test.
    let out = Command::new("timeout")
        .args(["120", bin, "--log", "warn", "run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{last}");
    assert!(
        last.contains("the broker does not support Kafka transactions"),
        "{last}"
    );
    assert!(!last.contains("fenced"), "nothing was fenced: {last}");
}
