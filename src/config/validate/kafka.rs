//! Room: validation of the `[kafka]` section — brokers, group, the properties the filter
//! owns, and the secrets the properties refer to (resolved here, once).

use crate::config::error::Problems;
use crate::config::raw::KafkaSection;
use crate::config::secrets::{self, Sources};

/// Property names the filter sets itself: overriding them would break delivery
/// guarantees, so they are refused rather than silently ignored.
const OWNED_PROPERTIES: &[(&str, &str)] = &[
    (
        "enable.auto.commit",
        "offsets are committed by the filter after outputs are acknowledged",
    ),
    (
        "enable.auto.offset.store",
        "offsets are stored only after outputs are acknowledged",
    ),
    ("enable.idempotence", "the producer is always idempotent"),
    (
        "enable.gapless.guarantee",
        "it turns a delivery gap into a fatal producer error; the filter re-sends failed outputs itself",
    ),
    (
        "transactional.id",
        "set per instance when delivery.guarantee = \"exactly-once\"",
    ),
    ("isolation.level", "set by the filter"),
    ("group.id", "use kafka.group_id"),
    ("bootstrap.servers", "use kafka.bootstrap_servers"),
];

/// Checks `[kafka]`; the section with its secret references resolved from `sources`
/// (the raw section, kept as the effective configuration, keeps the references, so
/// `config check` never shows a secret).
pub(super) fn kafka(raw: &KafkaSection, sources: &Sources<'_>, p: &mut Problems) -> KafkaSection {
    if raw.group_id.trim().is_empty() {
        p.add("kafka.group_id", "must not be empty");
    }
    for (section, props) in [
        ("properties", &raw.properties),
        ("consumer_properties", &raw.consumer_properties),
        ("producer_properties", &raw.producer_properties),
    ] {
        for (name, why) in OWNED_PROPERTIES {
            if props.contains_key(*name) {
                p.add(
                    &format!("kafka.{section}.\"{name}\""),
                    format!("is set by the filter and cannot be overridden: {why}"),
                );
            }
        }
    }
    let mut kafka = raw.clone();
    secrets::resolve_properties(&mut kafka, sources, p);
    // After the properties: a protocol prefix must be the clients' security.protocol.
    super::brokers::check(&kafka, p);
    kafka.bootstrap_servers = super::brokers::normalized(&kafka.bootstrap_servers);
    kafka
}
