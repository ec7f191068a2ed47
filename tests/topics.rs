//! Topic retention against a real broker: creation with the desired settings, drift made
//! by an independent admin client and its correction, exit codes of `topics check`,
//! refusal of a ttl no topic can meet, and the checked-in manifests.

mod common;

use cdr_purpose_filter::config::TopicsMode;
use cdr_purpose_filter::topics::alter;
use common::config::Topics;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn filter(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A topic's settings, read by a client of the test's own.
async fn describe(topic: &str) -> BTreeMap<String, String> {
    let admin: AdminClient<DefaultClientContext> =
        common::broker::client_config().create().unwrap();
    let r = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .unwrap();
    let r = r.into_iter().next().unwrap().unwrap();
    r.entries
        .into_iter()
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_creates_check_detects_drift_apply_restores() {
    let t = Topics::new("ret");
    let dir = tempfile::tempdir().unwrap();
    let config = t.config(dir.path());

    // Nothing exists yet: not compliant.
    let check = filter(&["topics", "check"], &config);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(text(&check).contains("topic missing"), "{}", text(&check));

    let apply = filter(&["topics", "apply"], &config);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    // Read back independently: the settings that bound residency.
    let day = 86_400_000i64;
    for (topic, limit) in [
        (&t.billing, 365 * day),
        (&t.security, 89 * day),
        (&t.dead_letter, 7 * day),
    ] {
        let c = describe(topic).await;
        assert_eq!(
            c.get("cleanup.policy").map(String::as_str),
            Some("delete"),
            "{topic}"
        );
        assert_eq!(
            c.get("message.timestamp.type").map(String::as_str),
            Some("CreateTime"),
            "{topic}"
        );
        let n = |k: &str| {
            c.get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or_else(|| panic!("{topic} {k}"))
        };
        let bound =
            n("retention.ms") + n("segment.ms") + 300_000 + n("file.delete.delay.ms") + 300_000;
        assert!(bound <= limit, "{topic}: bound {bound} > {limit}");
        assert!(
            n("retention.ms") > limit * 9 / 10,
            "{topic}: retention not needlessly short"
        );
    }
    let check = filter(&["topics", "check"], &config);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    // Drift, made by another client: infinite retention and compaction.
    let admin: AdminClient<DefaultClientContext> =
        common::broker::client_config().create().unwrap();
    alter::set_topic_configs(
        admin.inner(),
        &[(
            t.security.clone(),
            vec![
                ("retention.ms", "-1".to_string()),
                ("cleanup.policy", "compact".to_string()),
            ],
        )],
        Duration::from_secs(10),
    )
    .unwrap();
    let check = filter(&["topics", "check"], &config);
    let out = text(&check);
    assert_eq!(check.status.code(), Some(1), "{out}");
    let security_part = &out[out.find(&t.security).unwrap()..];
    assert!(security_part.contains("NOT COMPLIANT"), "{out}");
    for line in ["cleanup.policy", "retention.ms"] {
        let row = security_part
            .lines()
            .find(|l| l.trim_start().starts_with(line))
            .unwrap();
        assert!(row.trim_end().ends_with("NO"), "{line} flagged: {row}");
    }
    let json = filter(&["topics", "check", "--format", "json"], &config);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["compliant"], false);

    let apply = filter(&["topics", "apply"], &config);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let c = describe(&t.security).await;
    assert_eq!(c.get("cleanup.policy").map(String::as_str), Some("delete"));
    assert_ne!(c.get("retention.ms").map(String::as_str), Some("-1"));
    let check = filter(&["topics", "check"], &config);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_never_raises_a_retention() {
    let t = Topics::new("lower");
    let dir = tempfile::tempdir().unwrap();
    let config = t.config(dir.path());
    assert_eq!(filter(&["topics", "apply"], &config).status.code(), Some(0));
    let admin: AdminClient<DefaultClientContext> =
        common::broker::client_config().create().unwrap();
    // An operator keeps security records one day only: stricter than the filter needs.
    alter::set_topic_configs(
        admin.inner(),
        &[(
            t.security.clone(),
            vec![("retention.ms", "86400000".to_string())],
        )],
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(filter(&["topics", "check"], &config).status.code(), Some(0));
    assert_eq!(filter(&["topics", "apply"], &config).status.code(), Some(0));
    assert_eq!(
        describe(&t.security)
            .await
            .get("retention.ms")
            .map(String::as_str),
        Some("86400000")
    );
}

#[test]
fn a_ttl_no_topic_can_meet_is_refused_with_the_arithmetic() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[purposes.security]\nttl = \"10m\"\n").unwrap();
    let out = filter(&["config", "check"], &config);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("purposes.security.ttl"), "{msg}");
    assert!(msg.contains("780000 ms > 600000 ms"), "{msg}");
    assert!(msg.contains("log.retention.check.interval.ms"), "{msg}");
}

#[test]
fn checked_in_manifests_equal_what_render_produces() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = root.join("deploy/config.example.toml");
    for (format, file) in [
        ("strimzi", "deploy/strimzi/kafka-topics.yaml"),
        ("properties", "deploy/kafka-configs/topics.properties"),
    ] {
        let out = filter(&["topics", "render", "--format", format], &config);
        assert!(out.status.success(), "{}", text(&out));
        let checked_in = std::fs::read_to_string(root.join(file)).unwrap();
        assert_eq!(
            checked_in,
            String::from_utf8(out.stdout).unwrap(),
            "{file} is stale: regenerate it with `cargo run -- topics render --config deploy/config.example.toml --format {format} > {file}`"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_mode_refuses_to_start_on_missing_topics() {
    let t = Topics::new("verify");
    common::broker::create_topics(&[&t.input], 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config_with(dir.path(), |c| c.topics.mode = TopicsMode::Verify);
    let log = dir.path().join("filter.log");
    let mut f = common::filter::Filter::start(&config, &log);
    let code = f.wait(Duration::from_secs(60));
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("not compliant") && log.contains(&t.billing) && log.contains("missing"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_running_filter_detects_and_corrects_drift_in_enforce_mode() {
    let t = Topics::new("watch");
    common::broker::create_topics(&[&t.input], 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config_with(dir.path(), |c| {
        c.topics.mode = TopicsMode::Enforce;
        c.topics.check_interval = "10s".into();
    });
    let log = dir.path().join("filter.log");
    let _f = common::filter::Filter::start(&config, &log);
    // Wait for the filter to have created the topics.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while describe_opt(&t.security).await.is_none() {
        assert!(std::time::Instant::now() < deadline, "topics not created");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let admin: AdminClient<DefaultClientContext> =
        common::broker::client_config().create().unwrap();
    alter::set_topic_configs(
        admin.inner(),
        &[(t.security.clone(), vec![("retention.ms", "-1".to_string())])],
        Duration::from_secs(10),
    )
    .unwrap();
    // Within a check interval or two, the filter puts it back and says so.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let c = describe(&t.security).await;
        if c.get("retention.ms").map(String::as_str) != Some("-1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "drift not corrected");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("correcting topic settings") && log.contains("retention.ms"),
        "{log}"
    );
}

/// A topic's settings, or None while it does not exist.
async fn describe_opt(topic: &str) -> Option<BTreeMap<String, String>> {
    let admin: AdminClient<DefaultClientContext> =
        common::broker::client_config().create().unwrap();
    let md = admin
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    if md
        .topics()
        .first()
        .is_none_or(|t| t.error().is_some() || t.partitions().is_empty())
    {
        return None;
    }
    Some(describe(topic).await)
}

/// With `topics.mode = "create"` (create missing topics, correct
/// nothing) and an output topic that keeps records forever, the filter runs but is not
/// ready: `/readyz` answers 503 and names the topic, even once it has its partitions.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_names_a_non_compliant_topic_and_stays_503() {
    use rdkafka::admin::{NewTopic, TopicReplication};
    let t = Topics::new("ready");
    common::broker::create_topics(&[&t.input], 1).await;
    let admin: AdminClient<DefaultClientContext> =
        common::broker::client_config().create().unwrap();
    for r in admin
        .create_topics(
            &[NewTopic::new(&t.security, 1, TopicReplication::Fixed(1)).set("retention.ms", "-1")],
            &AdminOptions::new(),
        )
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = t.config(dir.path());
    let log = dir.path().join("filter.log");
    let mut f = common::filter::Filter::start(&config, &log);
    let addr = f.http_address(&log);
    assert!(
        f.wait_for_log(&log, "partitions assigned", Duration::from_secs(60)),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    // Assigned, brokers up: only the topic keeps it from being ready.
    for _ in 0..10 {
        let (status, body) = common::filter::http_get(addr, "/readyz").expect("/readyz answers");
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("not compliant") && body.contains(&t.security),
            "{body}"
        );
        assert!(!body.contains("no partitions assigned"), "{body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    f.signal("TERM");
    assert_eq!(f.wait(Duration::from_secs(30)), Some(0));
}

/// The test broker returns no broker configs: `topics plan` says it assumed Kafka's
/// default check interval (5 minutes), in the table and in JSON.
#[test]
fn plan_says_when_it_assumed_the_default_check_interval() {
    let t = Topics::new("assumed");
    let dir = tempfile::tempdir().unwrap();
    let config = t.config(dir.path());
    let plan = filter(&["topics", "plan"], &config);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        text(&plan).contains(
            "Note: the broker did not return log.retention.check.interval.ms; Kafka's \
             default, 5m, is assumed in every residency bound"
        ),
        "{}",
        text(&plan)
    );
    let plan = filter(&["topics", "plan", "--format", "json"], &config);
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert!(
        doc["assumed"]
            .as_str()
            .is_some_and(|a| a.contains("log.retention.check.interval.ms")),
        "{doc}"
    );
}
