//! `audit`: reads the output topics from the beginning, read-only, and checks every
//! record against the policy version it names. Exit 0 clean, 1 findings, 2 could not
//! audit (broker unreachable, topic missing, a partition not read to its end).

use super::{print_stdout, UsageError};
use crate::audit::reader::{self, AuditError, ReadOptions};
use crate::audit::{report, Auditor, TopicContext};
use crate::config::{self, Settings};
use crate::error::Failure;
use crate::retention::bound::{self, BrokerSettings, TopicSettings};
use clap::{Args, ValueEnum};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The configuration (client settings, purpose topics, legal time zone, kept
    /// optional fields). Default: defaults plus environment.
    #[arg(long, env = "CDR_PURPOSE_FILTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// A topic to audit (repeatable). Default: every purpose topic of the configuration.
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Start at the first record whose timestamp is at or after this time (RFC 3339).
    #[arg(long)]
    pub from_time: Option<String>,
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    pub format: AuditFormat,
    /// Stop after this many records in all (a partial audit).
    #[arg(long)]
    pub max_records: Option<u64>,
    /// Serve /metrics (records audited, findings by kind) on this address while the
    /// audit runs, e.g. 0.0.0.0:9898.
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// With --metrics-listen: keep serving this long after the audit ends, so the last
    /// counts are scraped (e.g. "90s").
    #[arg(long, default_value = "0s")]
    pub metrics_linger: String,
    /// Give up (exit 2) when a partition delivers nothing for this long before its end.
    #[arg(long, default_value = "60s")]
    pub idle_timeout: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
}

pub(super) fn duration(flag: &str, text: &str) -> Result<Duration, UsageError> {
    match crate::retention::Ttl::parse(text) {
        Ok(crate::retention::Ttl::Fixed(d)) if d >= chrono::Duration::zero() => d
            .to_std()
            .map_err(|_| UsageError(format!("{flag} `{text}` is out of range"))),
        _ => Err(UsageError(format!(
            "{flag} `{text}` is not a duration such as \"30s\" or \"2m\""
        ))),
    }
}

pub(super) fn load(path: Option<&std::path::Path>) -> Result<Settings, config::ConfigError> {
    match path {
        Some(p) => config::load(p),
        None => {
            let env: Vec<(String, String)> = std::env::vars().collect();
            Settings::validate(config::parse("", &env)?)
        }
    }
}

/// The residency slack of each topic: how long past its retention the broker may keep
/// a record by design (segment roll, deletion check, delete delay, clock skew). The
/// topics' and the broker's settings are read with DescribeConfigs; Kafka's defaults
/// stand in for what cannot be read.
async fn slacks(settings: &Settings, topics: &[String]) -> BTreeMap<String, i64> {
    let skew = settings.policy.max_clock_skew.num_milliseconds();
    let admin: Option<AdminClient<DefaultClientContext>> =
        crate::kafka::base_config(settings).create().ok();
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(15)));
    let entries = |r: &rdkafka::admin::ConfigResource| -> BTreeMap<String, String> {
        r.entries
            .iter()
            .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
            .collect()
    };
    let mut broker = BrokerSettings::default();
    if let Some(admin) = &admin {
        let md = {
            let client = admin.inner();
            tokio::task::block_in_place(|| client.fetch_metadata(None, Duration::from_secs(15)))
        };
        if let Some(id) = md.ok().and_then(|m| m.brokers().first().map(|b| b.id())) {
            if let Ok(mut v) = admin
                .describe_configs(&[ResourceSpecifier::Broker(id)], &opts)
                .await
            {
                if let Some(Ok(r)) = v.pop() {
                    broker = BrokerSettings::from_entries(&entries(&r));
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for t in topics {
        let mut current = BTreeMap::new();
        if let Some(admin) = &admin {
            match admin
                .describe_configs(&[ResourceSpecifier::Topic(t)], &opts)
                .await
            {
                Ok(mut v) => {
                    if let Some(Ok(r)) = v.pop() {
                        current = entries(&r);
                    }
                }
                Err(e) => tracing::warn!(
                    topic = %t,
                    "cannot read the topic's settings ({e}); Kafka's defaults count in the residency slack"
                ),
            }
        }
        let mut s = TopicSettings::from_entries(&current);
        // The slack is the bound past a retention of zero, as if the topic deleted by
        // time (a compacted topic's records kept past their limit are still findings).
        s.retention_ms = Some(0);
        s.compact_only = false;
        let slack = bound::residency_bound_ms(&s, &broker, skew).unwrap_or(i64::MAX / 4);
        out.insert(t.clone(), slack);
    }
    out
}

/// Reads and checks every record of `topics` (the audit proper, shared with `report`):
/// the brokers reached and the topics found first, for a clear message quickly.
pub(super) async fn read_topics(
    settings: &Arc<Settings>,
    topics: &[String],
    auditor: Auditor,
    opts: ReadOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<reader::Read, AuditError> {
    // Reach the brokers and find the topics first: a clear message, quickly.
    let probe = reader::consumer(settings)?;
    tokio::task::block_in_place(|| reader::partitions(settings, &probe, topics))?;
    drop(probe);
    let slack = slacks(settings, topics).await;
    let contexts: Vec<TopicContext> = topics
        .iter()
        .map(|t| TopicContext {
            topic: Arc::from(t.as_str()),
            purpose: settings
                .purposes
                .iter()
                .find(|p| p.topic == *t)
                .map(|p| p.purpose),
            slack_ms: slack[t],
        })
        .collect();
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || reader::read(&settings, &auditor, &contexts, &opts, now))
        .await
        .map_err(|e| AuditError::Client(format!("audit thread: {e}")))?
}

/// `--from-time`: an RFC 3339 time.
pub(super) fn from_time(
    text: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, UsageError> {
    text.map(|t| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| t.to_utc())
            .map_err(|e| UsageError(format!("--from-time `{t}` is not an RFC 3339 time: {e}")))
    })
    .transpose()
}

/// The metrics endpoint of `audit --metrics-listen`: the recorder installed, the audit's
/// metrics described, the server started; cancel the token to stop it.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    settings: &Settings,
    topics: &[String],
) -> Result<
    (
        tokio_util::sync::CancellationToken,
        tokio::task::JoinHandle<()>,
    ),
    Failure,
> {
    let handle = crate::telemetry::install(settings.policy.version())
        .map_err(|e| Failure::bug(e).context("cannot install the metrics recorder"))?;
    report::describe_metrics(topics);
    let stop = tokio_util::sync::CancellationToken::new();
    let (_, task) = crate::telemetry::server::start(
        addr,
        handle,
        Arc::default(),
        tokio_util::sync::CancellationToken::new(),
        stop.clone(),
    )
    .await?;
    Ok((stop, task))
}

pub(super) fn run(args: AuditArgs) -> Result<ExitCode, Failure> {
    let settings = load(args.config.as_deref())?;
    let from_time = from_time(args.from_time.as_deref())?;
    let linger = duration("--metrics-linger", &args.metrics_linger)?;
    let idle = duration("--idle-timeout", &args.idle_timeout)?;
    let topics: Vec<String> = if args.topics.is_empty() {
        settings.purposes.iter().map(|p| p.topic.clone()).collect()
    } else {
        args.topics.clone()
    };
    let auditor = Auditor::from_settings(&settings);
    let opts = ReadOptions {
        from_time,
        max_records: args.max_records,
        idle_timeout: idle,
        progress: true,
    };
    let now = chrono::Utc::now();
    let settings = Arc::new(settings);
    let rt = crate::app::runtime()?;
    if let Err(e) = super::reach(&settings) {
        return match e.fault() {
            crate::error::Fault::User => Err(e),
            _ => Err(e.context("could not audit")),
        };
    }
    let outcome = rt.block_on(async {
        let server = match args.metrics_listen {
            Some(addr) => Some(serve_metrics(addr, &settings, &topics).await?),
            None => None,
        };
        let result = read_topics(&settings, &topics, auditor, opts, now).await;
        if let Some((stop, task)) = server {
            tokio::time::sleep(linger).await;
            stop.cancel();
            let _ = task.await;
        }
        Ok::<_, Failure>(result)
    })?;
    let read = match outcome {
        Ok(read) => read,
        // A refused property stays the configuration's; the rest: no verdict (exit 2).
        Err(e) if crate::error::Classify::fault(&e) == crate::error::Fault::User => {
            return Err(e.into())
        }
        Err(e) => return Err(Failure::unavailable(e).context("could not audit")),
    };
    let report = report::Report::new(&read);
    let text = match args.format {
        AuditFormat::Json => report.json(),
        AuditFormat::Table => report.table(),
    };
    print_stdout(&text)?;
    Ok(if read.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
