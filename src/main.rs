//! The `cdr-purpose-filter` binary: parses arguments, runs the command, and exits with the
//! code its failure names (0 success, 1 failure while working, 2 could not do the work:
//! bad usage or configuration, or Kafka unavailable — `error::Fault`, docs/exit-codes.md).

use clap::Parser;
use std::process::ExitCode;

/// mimalloc: the filter allocates and frees many small strings per record (decode,
/// copy, encode); glibc's allocator was a third of the profile. With its `override`
/// feature it also serves librdkafka's `malloc`/`free` (a message, a header list and one
/// allocation per header for every record sent, freed on another thread). Its v2 line:
/// v3 (the crate's default) held more memory at peak under load, for no CPU gain
/// (`scripts/bench-e2e.sh` with `E2E_BASELINE` compares two builds).
#[cfg(not(feature = "bench-passthrough"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmark builds only (the `bench-passthrough` feature): mimalloc, counted, so that
/// `benches/e2e.rs` prints allocations per event (`CDR_BENCH_ALLOCATIONS=PATH`).
#[cfg(feature = "bench-passthrough")]
#[global_allocator]
static GLOBAL: cdr_purpose_filter::alloc_count::Counting<mimalloc::MiMalloc> =
    cdr_purpose_filter::alloc_count::Counting(mimalloc::MiMalloc);

fn main() -> ExitCode {
    #[cfg(feature = "bench-passthrough")]
    if let Some(path) = std::env::var_os("CDR_BENCH_ALLOCATIONS") {
        cdr_purpose_filter::alloc_count::report_to(path.into());
    }
    let cli = match cdr_purpose_filter::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cdr_purpose_filter::cli::usage_error(e),
    };
    cdr_purpose_filter::cli::init_tracing(&cli);
    match cdr_purpose_filter::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // The last line says why, whatever librdkafka's threads still log.
            cdr_purpose_filter::cli::last_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
