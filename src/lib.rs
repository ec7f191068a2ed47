//! `cdr-purpose-filter`: keeps, for each purpose that French law (CPCE R10-14) allows —
//! billing and network security — only the fields that purpose may keep, tags each record
//! with its legal expiry, and republishes it to the purpose's Kafka topic.
//!
//! A record's path through the crate: [`pipeline`] consumes it and hands it to
//! `pipeline::records::Transform::process`, which takes the wire path when it can —
//! [`wire`] applies the [`policy`]'s tables to the protobuf bytes themselves (JSON in and
//! out through [`json`]'s fast paths) — and otherwise the struct path, [`decode`] →
//! [`policy`] (pure: event + now → outcomes) → [`encode`], which is also the wire path's
//! oracle in the tests. A refused record becomes a [`dead_letter`] pointer; the pipeline
//! produces the outputs and commits the input's offset once they are acknowledged. Beside
//! it: the output topics' retention in [`topics`] (arithmetic in [`retention`]), the audit
//! of what they hold in [`audit`], configuration in [`config`], the commands in [`cli`],
//! synthetic events in [`gen`]. `ARCHITECTURE.md` has the map.

pub mod alloc_count;
pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod dead_letter;
pub mod decode;
pub mod delivery;
pub mod demo;
pub mod encode;
pub mod error;
pub mod framing;
pub mod gen;
pub mod health;
pub mod json;
pub mod kafka;
pub mod pipeline;
pub mod policy;
pub mod retention;
pub mod schema;
pub mod shutdown;
pub mod telemetry;
pub mod topics;
pub mod wire;
