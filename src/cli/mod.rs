//! The command line (clap): one subcommand per job, each in its own module.

mod audit;
mod delimited;
pub mod dry_run;
mod from_topic;
mod gen;
mod logs;
mod paths;
mod policy_show;
mod report;
mod schema;
mod topics;

pub use logs::{last_error, notice, usage_error, LogFormat};

/// The environment variable that chooses the log format (`--log-format`).
pub const LOG_FORMAT_ENV: &str = "CDR_PURPOSE_FILTER_LOG_FORMAT";

use crate::config;
use crate::decode::InputFormat;
use crate::encode::OutputFormat;
use crate::error::{Failure, Fault};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "cdr-purpose-filter",
    version,
    about = "Keeps only what CPCE R10-14 allows for billing and network security, tagged with its legal expiry",
    long_about = None
)]
pub struct Cli {
    /// Log filter (tracing's EnvFilter syntax), e.g. `info`, `debug`,
    /// `cdr_purpose_filter=trace`. Overrides RUST_LOG.
    #[arg(long, global = true, env = "CDR_PURPOSE_FILTER_LOG")]
    pub log: Option<String>,

    /// Log lines as text, or as JSON objects (level, target, fields with the message),
    /// one per line. Colours only when stderr is a terminal and NO_COLOR is not set.
    #[arg(
        long,
        global = true,
        value_enum,
        env = LOG_FORMAT_ENV,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    /// Accept `${file:}` secrets that other users can read (group or world read
    /// permission); refused by default.
    #[arg(long, global = true)]
    pub allow_insecure_secret_files: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The long-running filter: consume, filter, republish.
    Run {
        /// Configuration file; without it, the defaults plus the environment.
        #[arg(long, env = config::ENV_CONFIG)]
        config: Option<PathBuf>,
        /// Benchmark floor only: forward every input record unchanged to every purpose
        /// topic, without decoding or policy. Never on real data; only in a build with
        /// the `bench-passthrough` feature (the benches), never in the release binary.
        #[cfg(feature = "bench-passthrough")]
        #[arg(long, hide = true)]
        passthrough: bool,
    },
    /// The whole pipeline on an embedded broker with generated events; prints a summary.
    Demo {
        /// Generated events to send through the filter.
        #[arg(long, default_value_t = 5000)]
        events: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run the filter with transactions (`delivery.guarantee = "exactly-once"`).
        #[arg(long)]
        exactly_once: bool,
    },
    /// Apply the policy to events from a file or stdin, without Kafka: one JSON line per
    /// (event, purpose).
    DryRun(DryRunArgs),
    /// The policy in force: the field table with its legal references.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Synthetic events (every type and direction, content and extensions filled in).
    Gen(GenArgs),
    /// The output topics' retention settings: what would change, change it, verify it,
    /// or render it as manifests.
    Topics(TopicsArgs),
    /// The embedded schema, for registering with a Schema Registry: the `.proto` file,
    /// or a JSON Schema of the canonical JSON.
    Schema {
        #[arg(long, value_enum, default_value_t = schema::SchemaFormat::Proto)]
        format: schema::SchemaFormat,
    },
    /// Shell completions, printed to stdout.
    Completions {
        #[arg(value_enum)]
        shell: schema::Shell,
    },
    /// Check every record of the output topics against the policy version it names:
    /// findings by topic, partition, offset and kind, never a value (exit 0 clean,
    /// 1 findings, 2 could not audit).
    Audit(audit::AuditArgs),
    /// The evidence for a compliance officer: one self-contained HTML page (or its JSON
    /// twin) with the policy applied, the topics' retention and an audit of every record
    /// (exit 0 clean, 1 a finding or a non-compliant topic, 2 could not report).
    Report(report::ReportArgs),
}

#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[command(subcommand)]
    pub command: TopicsCommand,
}

#[derive(Debug, Args)]
pub struct TopicsCommon {
    /// Configuration file; without it, the defaults plus the environment.
    #[arg(long, env = config::ENV_CONFIG)]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = TopicsFormat::Table)]
    pub format: TopicsFormat,
}

#[derive(Debug, Args)]
pub struct TopicsCheckArgs {
    #[command(flatten)]
    pub common: TopicsCommon,
    /// Give up (exit 2) when the check has not completed within this, e.g. `30s`, `2m`.
    #[arg(long, default_value = "30s")]
    pub timeout: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopicsFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Current vs desired settings of every output topic, the residency bound, the verdict.
    Plan(TopicsCommon),
    /// Create missing topics, correct drifted settings (never raising a retention).
    Apply(TopicsCommon),
    /// Verify only: exit 0 compliant, 1 not compliant, 2 when it cannot check (broker
    /// unreachable, authorization refused, timeout).
    Check(TopicsCheckArgs),
    /// The desired settings as manifests (no broker needed).
    Render {
        /// Configuration file; without it, the defaults plus the environment.
        #[arg(long, env = config::ENV_CONFIG)]
        config: Option<PathBuf>,
        #[arg(long, value_enum)]
        format: crate::topics::render::RenderFormat,
        /// Strimzi: the `strimzi.io/cluster` label.
        #[arg(long, default_value = "my-cluster")]
        cluster: String,
        /// Strimzi: the `KafkaTopic` API version (`v1` needs Strimzi 0.49 or later).
        #[arg(long, value_enum, default_value_t = crate::topics::render::StrimziApi::V1beta2)]
        api: crate::topics::render::StrimziApi,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the field table, routing rules and readings, with legal references.
    Show {
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
        /// Show the policy of this configuration (version, operator removals and kept
        /// optional fields, ttls, legal time zone) instead of the legal table alone.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The version of R10-14 to show: R10-14/2021 (in force, the default) or
        /// R10-14/2012 (historical). With --config, the configuration's version.
        #[arg(long)]
        version: Option<String>,
    },
    /// The fields and routing two versions differ in, with both legal references
    /// (e.g. `policy diff R10-14/2012 R10-14/2021`).
    Diff {
        from: String,
        to: String,
        #[arg(long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration and print the effective one (secrets masked).
    Check {
        /// Configuration file; without it, the defaults plus the environment.
        #[arg(long, env = config::ENV_CONFIG)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DryRunArgs {
    /// Configuration file; without it, the defaults plus the environment.
    #[arg(long, env = config::ENV_CONFIG)]
    pub config: Option<PathBuf>,
    /// Input file (default: stdin).
    #[arg(conflicts_with = "from_topic")]
    pub input: Option<PathBuf>,
    /// `json`: one JSON event per line; `protobuf`: length-delimited messages;
    /// `confluent-protobuf`, `confluent-json`: length-delimited Schema Registry framed
    /// records; `auto`: the configuration's input format if it is not `auto`, else JSON
    /// lines when the input starts with `{`, or else length-delimited records, each bare
    /// or framed. With --from-topic: how each record is decoded.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub format: InputFormat,
    /// Read the records of this Kafka topic instead (from its beginning; read-only: no
    /// consumer group, nothing committed).
    #[arg(long)]
    pub from_topic: Option<String>,
    /// With --from-topic: how many records to read at most.
    #[arg(long, default_value_t = 100, requires = "from_topic")]
    pub count: u64,
    /// The processing time (RFC 3339), for reproducible output; default: the clock.
    #[arg(long)]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of events.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
    /// Seed of the generator: the same seed and --now give the same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The time events are generated around (RFC 3339); default: the clock.
    #[arg(long)]
    pub now: Option<String>,
    /// Output file (default: stdout). JSON lines, or length-delimited protobuf.
    #[arg(long, conflicts_with_all = ["config", "topic"])]
    pub out: Option<PathBuf>,
    /// Produce to Kafka instead, with the client settings of this configuration.
    #[arg(long, requires = "topic")]
    pub config: Option<PathBuf>,
    /// The topic to produce to (with --config).
    #[arg(long, requires = "config")]
    pub topic: Option<String>,
}

/// Writes to stdout; a reader that closed the pipe (`| head`) is not an error.
pub(crate) fn print_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// A bad argument value that clap cannot check by itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl crate::error::Classify for UsageError {
    fn fault(&self) -> Fault {
        Fault::User
    }
}

/// Parses an RFC 3339 `--now`.
pub(crate) fn parse_now(now: Option<&str>) -> Result<chrono::DateTime<chrono::Utc>, UsageError> {
    match now {
        None => Ok(chrono::Utc::now()),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.to_utc())
            .map_err(|e| UsageError(format!("--now `{s}` is not an RFC 3339 time: {e}"))),
    }
}

pub fn init_tracing(cli: &Cli) {
    // The demo prints a summary: only warnings by default.
    let default = match cli.command {
        Command::Demo { .. } => "error",
        _ => "info",
    };
    logs::init(cli.log.as_deref(), default, cli.log_format);
}

/// Connects once before a command's work, as `run` does at its start: a TLS or SASL
/// refusal stops the command within seconds naming the keys to check, and no broker
/// answering within `kafka::reach::REACH_TIMEOUT` stops it too — both exit 2.
fn reach(settings: &config::Settings) -> Result<(), Failure> {
    let rt = crate::app::runtime()?;
    let result = rt.block_on(crate::kafka::check_transport(
        settings,
        &crate::kafka::Context::default(),
    ));
    // A refusal is seen before the probe's metadata request gives up: not waited for.
    rt.shutdown_background();
    result
}

/// The Kafka client properties the filter sets itself, where the configuration does not,
/// as TOML comments after the effective configuration (`config check`).
fn client_defaults(settings: &config::Settings) -> String {
    let defaults = crate::kafka::defaults_in_force(settings);
    if defaults.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n# Kafka client properties the filter sets because the configuration does not\n\
         # (set them in [kafka.properties] or a client's own section to change them):\n",
    );
    for d in defaults {
        out.push_str(&format!(
            "#   {} = \"{}\" ({}): {}\n",
            d.name, d.value, d.clients, d.why
        ));
    }
    out
}

/// Runs a command. Its failure says whose fault it is ([`Failure::exit_code`]).
pub fn run(cli: Cli) -> Result<ExitCode, Failure> {
    config::allow_insecure_secret_files(cli.allow_insecure_secret_files);
    match cli.command {
        Command::DryRun(args) => dry_run::run(args),
        Command::Schema { format } => schema::print(format),
        Command::Completions { shell } => schema::completions(shell),
        Command::Policy { command } => policy(command),
        Command::Config {
            command: ConfigCommand::Check { config },
        } => config_check(config.as_deref()),
        Command::Gen(args) => gen::run(args),
        Command::Topics(args) => topics::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Report(args) => report::run(args),
        #[cfg(feature = "bench-passthrough")]
        Command::Run {
            config,
            passthrough,
        } => {
            let settings = config::load_from(config.as_deref())?;
            crate::app::run(settings, passthrough)?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(not(feature = "bench-passthrough"))]
        Command::Run { config } => {
            let settings = config::load_from(config.as_deref())?;
            crate::app::run(settings, false)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            events,
            seed,
            exactly_once,
        } => demo(events, seed, exactly_once),
    }
}

/// `policy show` and `policy diff`.
fn policy(command: PolicyCommand) -> Result<ExitCode, Failure> {
    match command {
        PolicyCommand::Show {
            format,
            config,
            version,
        } => {
            let settings = config.as_deref().map(config::load).transpose()?;
            let version = policy_show::choose_version(version.as_deref(), settings.as_ref())?;
            policy_show::run(format, version, settings.as_ref())
        }
        PolicyCommand::Diff { from, to, format } => {
            let parse =
                |v: &str| crate::policy::Version::parse(v).map_err(|e| UsageError(e.to_string()));
            policy_show::diff(format, parse(&from)?, parse(&to)?)
        }
    }
}

/// `config check`: the effective configuration and the client defaults in force.
fn config_check(config: Option<&std::path::Path>) -> Result<ExitCode, Failure> {
    let settings = config::load_from(config)?;
    crate::kafka::check_client_configs(&settings)?;
    print_stdout(&settings.effective_toml())?;
    print_stdout(&client_defaults(&settings))?;
    let shown = match config {
        Some(config) => config.display().to_string(),
        None => "(defaults and environment)".to_string(),
    };
    notice(&format!(
        "configuration {shown} is valid (policy {}, legal time {})",
        settings.policy.version(),
        settings.policy.legal_time
    ));
    Ok(ExitCode::SUCCESS)
}

/// `demo`: the pipeline on librdkafka's mock cluster, and its summary.
fn demo(events: u64, seed: u64, exactly_once: bool) -> Result<ExitCode, Failure> {
    let guarantee = if exactly_once {
        config::Guarantee::ExactlyOnce
    } else {
        config::Guarantee::AtLeastOnce
    };
    let report = crate::app::runtime()?
        .block_on(crate::demo::run(events, seed, guarantee))
        .map_err(Failure::world)?;
    print_stdout(&report.render())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;
