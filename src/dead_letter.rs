//! Dead letters: where records that cannot be decoded or are refused go, so that a bad
//! record never stops its partition and nothing is lost.
//!
//! In the default `pointer` mode a dead letter says *where* the bad record is (source
//! topic, partition, offset) and *why*, in words that hold no personal data — never the
//! payload, the key or the headers: the dead-letter topic must not become a copy of raw
//! data. `payload` mode, an explicit opt-in, adds the raw payload as the value.

use serde::{Deserialize, Serialize};

/// What a dead letter holds, from `dead_letter.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadLetterMode {
    /// Source topic, partition, offset and reason only: never the payload.
    #[default]
    Pointer,
    /// Also the raw payload: an explicit opt-in, since it copies raw personal data.
    Payload,
}

/// Headers of a dead-letter record.
pub mod header {
    pub const REASON: &str = "cdr-dead-letter-reason";
    pub const SOURCE_TOPIC: &str = "cdr-source-topic";
    pub const SOURCE_PARTITION: &str = "cdr-source-partition";
    pub const SOURCE_OFFSET: &str = "cdr-source-offset";
}

/// The pointer: the value of a dead-letter record in `pointer` mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Pointer {
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    /// `undecodable`, `unexpected_schema`, `invalid`, `future_event_time`,
    /// `output_too_large`.
    pub reason: String,
    /// The Schema Registry id of a record refused as `unexpected_schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<u32>,
    /// What was wrong, with no value of the record.
    pub message: String,
    pub policy_version: String,
    pub filter_version: String,
}

impl Pointer {
    /// A pointer; `policy_version` is the configured version's name (`R10-14/2021`).
    pub fn new(
        topic: &str,
        partition: i32,
        offset: i64,
        reason: &str,
        message: String,
        policy_version: &str,
    ) -> Pointer {
        Pointer {
            source_topic: topic.to_string(),
            source_partition: partition,
            source_offset: offset,
            reason: reason.to_string(),
            schema_id: None,
            message,
            policy_version: policy_version.to_string(),
            filter_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The value of the dead-letter record: the pointer as JSON, or in `payload` mode the
    /// raw payload (the pointer then travels in the headers only).
    pub fn value(&self, mode: DeadLetterMode, payload: Option<&[u8]>) -> Vec<u8> {
        match mode {
            DeadLetterMode::Pointer => serde_json::to_vec(self).expect("a pointer serializes"),
            DeadLetterMode::Payload => payload.unwrap_or_default().to_vec(),
        }
    }

    /// The headers: the pointer again, so that `payload` mode keeps it too.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (header::REASON, self.reason.clone()),
            (header::SOURCE_TOPIC, self.source_topic.clone()),
            (header::SOURCE_PARTITION, self.source_partition.to_string()),
            (header::SOURCE_OFFSET, self.source_offset.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_mode_never_carries_the_payload() {
        let p = Pointer::new(
            "cdr.raw",
            3,
            42,
            "undecodable",
            "not JSON".into(),
            "R10-14/2021",
        );
        let payload = b"{\"msisdn\": \"+33612345678\"}";
        let v = p.value(DeadLetterMode::Pointer, Some(payload));
        let text = String::from_utf8(v).unwrap();
        assert!(!text.contains("+33612345678"));
        let back: Pointer = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            p.value(DeadLetterMode::Payload, Some(payload)),
            payload.to_vec()
        );
    }
}
