//! Room: what the filter does with its output topics at start-up, from `topics.mode` — how
//! topic retention is managed (row 0: read by `config` and `topics`).

use serde::{Deserialize, Serialize};

/// What the filter does with the topics it writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicsMode {
    /// Neither create nor check them.
    Off,
    /// Create missing topics with the legal settings; only check existing ones.
    Create,
    /// Check their settings; refuse to start unless they are compliant.
    Verify,
    /// Create missing topics and correct the settings of existing ones.
    #[default]
    Enforce,
}
