//! Shared helpers of the integration tests (and of `benches/e2e.rs`), by role:
//! - [`canaries`]: the privacy corpus, values to search every output for;
//! - [`broker`]: the test broker (a real Kafka-compatible broker over TCP, started by
//!   `scripts/test-broker.sh`, address in `CDR_TEST_BROKERS`), unique names, topics,
//!   committed offsets, a broker of a test's own;
//! - [`io`]: loading input (one record per batch) and reading outputs back;
//! - [`filter`]: the filter binary, running;
//! - [`config`]: the topics of a test and a typed configuration over them;
//! - [`checks`]: the at-least-once check of the outputs;
//! - [`mock`]: librdkafka's mock cluster as a test's own broker (no test broker needed).
//!
//! Each test binary compiles these modules on its own and uses a part of them: the
//! `#[allow(dead_code)]` below says so once per module instead of per item.

#[allow(dead_code)]
pub mod broker;
#[allow(dead_code)]
pub mod canaries;
#[allow(dead_code)]
pub mod checks;
#[allow(dead_code)]
pub mod config;
#[allow(dead_code)]
pub mod filter;
#[allow(dead_code)]
pub mod io;
#[allow(dead_code)]
pub mod mock;
