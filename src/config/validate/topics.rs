//! Room: the rules on topic names — Kafka's legal names, and no two roles (purposes,
//! dead letters, input) on one topic.

use crate::config::raw::RawConfig;

/// Kafka's legal topic names.
pub(super) fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a topic name cannot be empty".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters; Kafka allows 249",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("`{name}` is not a valid topic name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "`{name}` contains {c:?}; Kafka topic names use ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Every pair of topics that would be the same topic: two purposes (billing records —
/// location, IMEI, bill data — would reach security readers, and one retention would
/// apply to both), a purpose and the dead-letter topic, an output and an input (the
/// filter would read its own output). Effective names are compared, defaults included.
pub(super) fn collisions(raw: &RawConfig) -> Vec<(String, String)> {
    let mut named: Vec<(String, String)> = Vec::new();
    for (purpose, section, default) in [
        ("billing", raw.purposes.billing.as_ref(), "cdr.billing"),
        ("security", raw.purposes.security.as_ref(), "cdr.security"),
    ] {
        if let Some(section) = section {
            let topic = section.topic.clone().unwrap_or_else(|| default.into());
            named.push((format!("purposes.{purpose}.topic"), topic));
        }
    }
    named.push(("dead_letter.topic".into(), raw.dead_letter.topic.clone()));
    let outputs = named.len();
    for (i, t) in raw.input.topics.iter().enumerate() {
        named.push((format!("input.topics[{i}]"), t.clone()));
    }
    let mut problems = Vec::new();
    for (i, (key_a, topic_a)) in named.iter().enumerate().take(outputs) {
        for (key_b, topic_b) in &named[i + 1..] {
            if topic_a != topic_b {
                continue;
            }
            let why = if key_b.starts_with("input.") {
                "the filter would read its own output"
            } else if key_b == "dead_letter.topic" {
                "dead letters and filtered records must not share a topic or its retention"
            } else {
                "each purpose needs its own topic: one purpose's records would reach the other's \
                 readers and share its retention"
            };
            problems.push((key_a.clone(), format!("`{topic_a}` is also {key_b}: {why}")));
        }
    }
    problems
}
