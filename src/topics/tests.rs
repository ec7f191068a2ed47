use super::*;

const DAY: i64 = 86_400_000;

fn target(limit_ms: i64) -> Target {
    Target {
        topic: "t".into(),
        role: "security",
        limit_ms,
    }
}

fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_missing_topic_is_not_compliant() {
    let r = evaluate(&target(89 * DAY), None, &BrokerSettings::default(), 300_000).unwrap();
    assert!(!r.exists && !r.compliant);
    assert_eq!(r.problems(), "missing");
}

#[test]
fn desired_settings_are_compliant_and_drift_is_named() {
    let broker = BrokerSettings::default();
    let d = bound::desired(89 * DAY, &broker, 300_000, false).unwrap();
    let good = cfg(&[
        ("cleanup.policy", "delete"),
        ("message.timestamp.type", "CreateTime"),
        ("retention.ms", &d.retention_ms.to_string()),
        ("segment.ms", &d.segment_ms.to_string()),
        ("file.delete.delay.ms", "60000"),
    ]);
    let r = evaluate(&target(89 * DAY), Some(&good), &broker, 300_000).unwrap();
    assert!(r.compliant, "{}", r.problems());
    assert_eq!(r.bound_ms, Some(89 * DAY));

    let mut bad = good.clone();
    bad.insert("retention.ms".into(), "-1".into());
    bad.insert("cleanup.policy".into(), "compact".into());
    let r = evaluate(&target(89 * DAY), Some(&bad), &broker, 300_000).unwrap();
    assert!(!r.compliant);
    let p = r.problems();
    assert!(
        p.contains("cleanup.policy=compact") && p.contains("retention.ms=-1"),
        "{p}"
    );
    assert!(p.contains("residency unbounded"), "{p}");
}

#[test]
fn a_shorter_retention_with_larger_segments_is_judged_by_the_bound() {
    let broker = BrokerSettings::default();
    // 80 days + 7-day segments: bound 87 days + overhead < 89 days: compliant.
    let c = cfg(&[
        ("cleanup.policy", "delete"),
        ("retention.ms", &(80 * DAY).to_string()),
        ("segment.ms", &(7 * DAY).to_string()),
    ]);
    assert!(
        evaluate(&target(89 * DAY), Some(&c), &broker, 300_000)
            .unwrap()
            .compliant
    );
    // 85 days + 7-day segments: 92 days: not compliant.
    let c = cfg(&[
        ("cleanup.policy", "delete"),
        ("retention.ms", &(85 * DAY).to_string()),
        ("segment.ms", &(7 * DAY).to_string()),
    ]);
    assert!(
        !evaluate(&target(89 * DAY), Some(&c), &broker, 300_000)
            .unwrap()
            .compliant
    );
}

#[test]
fn future_timestamps_are_capped_where_the_broker_knows_the_setting() {
    let broker = BrokerSettings::default();
    let d = bound::desired(89 * DAY, &broker, 300_000, false).unwrap();
    let mut c = cfg(&[
        ("cleanup.policy", "delete"),
        ("retention.ms", &d.retention_ms.to_string()),
        ("segment.ms", &d.segment_ms.to_string()),
        (AFTER_MAX, "9223372036854775807"),
    ]);
    let r = evaluate(&target(89 * DAY), Some(&c), &broker, 300_000).unwrap();
    assert!(
        !r.compliant,
        "Kafka's default lets a record stamp itself far in the future"
    );
    c.insert(AFTER_MAX.into(), "300000".into());
    assert!(
        evaluate(&target(89 * DAY), Some(&c), &broker, 300_000)
            .unwrap()
            .compliant
    );
}

#[test]
fn a_compacted_topic_has_no_residency_bound_whatever_its_retention() {
    // Compaction never deletes by time: the retention settings bound nothing.
    let broker = BrokerSettings::default();
    let d = bound::desired(89 * DAY, &broker, 300_000, false).unwrap();
    let mut c = cfg(&[
        ("cleanup.policy", "compact"),
        ("message.timestamp.type", "CreateTime"),
        ("retention.ms", &d.retention_ms.to_string()),
        ("segment.ms", &d.segment_ms.to_string()),
        ("file.delete.delay.ms", "60000"),
    ]);
    let r = evaluate(&target(89 * DAY), Some(&c), &broker, 300_000).unwrap();
    assert_eq!(r.bound_ms, None);
    assert!(!r.compliant);
    let p = r.problems();
    assert!(
        p.contains("cleanup.policy=compact (want delete)") && p.contains("residency unbounded"),
        "{p}"
    );
    // With `delete` among the policies the retention still deletes by time.
    for policy in ["compact,delete", "delete, compact", "[compact, delete]"] {
        c.insert("cleanup.policy".into(), policy.into());
        let r = evaluate(&target(89 * DAY), Some(&c), &broker, 300_000).unwrap();
        assert_eq!(r.bound_ms, Some(89 * DAY), "{policy}");
    }
    // Absent: the broker's default, delete.
    c.remove("cleanup.policy");
    let s = bound::TopicSettings::from_entries(&c);
    assert!(!s.compact_only);
    assert_eq!(
        bound::residency_bound_ms(&s, &broker, 300_000),
        Some(89 * DAY)
    );
}
