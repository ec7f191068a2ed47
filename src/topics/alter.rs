//! Corrections of the output topics' settings with IncrementalAlterConfigs, which changes
//! only the named settings and leaves every other setting of the topic as it is. The call
//! into librdkafka's C API is [`crate::kafka::admin`], beside the crate's other FFI.

pub use crate::kafka::admin::{set_topic_configs, AlterError};
