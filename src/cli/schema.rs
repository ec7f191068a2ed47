//! `schema` (the embedded schema, for a Schema Registry) and `completions`.

use super::print_stdout;
use crate::error::Failure;
use std::process::ExitCode;

/// What `schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaFormat {
    /// `proto/cdr/v1/cdr.proto`, the schema of protobuf input and output.
    Proto,
    /// A JSON Schema (draft 2020-12) of the canonical JSON of `cdr.v1.CdrEvent`.
    JsonSchema,
}

/// The shells `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub(super) fn print(format: SchemaFormat) -> Result<ExitCode, Failure> {
    print_stdout(match format {
        SchemaFormat::Proto => crate::schema::PROTO,
        SchemaFormat::JsonSchema => crate::schema::JSON_SCHEMA,
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn completions(shell: Shell) -> Result<ExitCode, Failure> {
    use clap::CommandFactory;
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(
        shell,
        &mut super::Cli::command(),
        "cdr-purpose-filter",
        &mut out,
    );
    print_stdout(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::SUCCESS)
}
