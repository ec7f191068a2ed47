//! `cdr-purpose-filter`: keeps, for each purpose that French law (CPCE R10-14) allows —
//! billing and network security — only the fields that purpose may keep, tags each record
//! with its legal expiry, and republishes it to the purpose's Kafka topic.
//!
//! A record's path through the crate, one module per stage:
//! [`decode`] → [`policy`] (pure: event + now → outcomes) → [`encode`]; the command line
//! in [`cli`]; configuration in [`config`]; retention arithmetic in [`retention`]; synthetic
//! events in [`gen`].

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
