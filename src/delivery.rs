//! Room: the delivery guarantee the filter keeps, from `delivery.guarantee` — a word
//! shared by the configuration (which reads it) and the pipeline (which keeps it).

use serde::{Deserialize, Serialize};

/// How outputs and input offsets are tied together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guarantee {
    /// Offsets are committed after the outputs are acknowledged: a crash may replay.
    #[default]
    AtLeastOnce,
    /// Outputs and offsets are committed in one Kafka transaction.
    ExactlyOnce,
}
