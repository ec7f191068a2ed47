//! The `cdr-purpose-filter` binary: parses arguments, runs the command, and exits with the
//! code its failure names (0 success, 1 failure at run time, 2 bad usage or
//! configuration: `error::Fault`).

use clap::Parser;
use std::process::ExitCode;

/// mimalloc, for Rust's allocations and — with the `override` feature — for every
/// `malloc`/`free` of the process, librdkafka's included: librdkafka allocates and frees
/// each produced message, its headers and their list, and under glibc's allocator those
/// were 27 % of the running filter's CPU samples (`perf record` of `run` under load).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cdr_purpose_filter::cli::Cli::parse();
    cdr_purpose_filter::cli::init_tracing(&cli);
    match cdr_purpose_filter::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
