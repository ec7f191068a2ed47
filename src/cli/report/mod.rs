//! `report`: the evidence a compliance officer reads — one self-contained HTML page, or
//! its JSON twin — holding the policy in force, the output topics' retention and what an
//! audit of every record found. It runs `policy show`, `topics plan` and `audit` (or reads
//! a saved audit) with the configuration's read-only rights and changes nothing. Exit 0
//! clean, 1 a finding or a non-compliant topic, 2 could not report — as `audit`.

mod chart;
pub mod document;
mod html;

use super::audit::{self as audit_cmd, duration};
use super::{print_stdout, UsageError};
use crate::audit::reader::ReadOptions;
use crate::audit::report::AuditResult;
use crate::audit::Auditor;
use crate::config::{self, Settings};
use crate::error::Failure;
use crate::kafka::Context;
use crate::policy::Version;
use clap::{Args, ValueEnum};
use document::{Document, Identity};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The configuration (client settings, purpose topics, policy). Default: defaults
    /// plus environment.
    #[arg(long, env = config::ENV_CONFIG)]
    pub config: Option<PathBuf>,
    /// `html`: one self-contained page; `json`: the same content as data.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Write to this file (atomically: a temporary file renamed into place) instead of
    /// stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Audit from the first record whose timestamp is at or after this time (RFC 3339),
    /// as `audit --from-time`.
    #[arg(long, conflicts_with = "audit_result")]
    pub from_time: Option<String>,
    /// Do not audit: read this saved `audit --format json` result instead.
    #[arg(long)]
    pub audit_result: Option<PathBuf>,
    /// Give up (exit 2) when a partition delivers nothing for this long before its end,
    /// as `audit --idle-timeout`.
    #[arg(long, default_value = "60s")]
    pub idle_timeout: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Json,
}

/// Why the report could not be made (exit 2).
#[derive(Debug, thiserror::Error)]
enum CannotReport {
    #[error("cannot read the output topics' settings: {0:#}")]
    Topics(anyhow::Error),
    #[error("cannot audit: {0}")]
    Audit(crate::audit::reader::AuditError),
    #[error("cannot read the saved audit {path}: {error}")]
    Saved { path: String, error: String },
}

/// SHA-256 in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn run(args: ReportArgs) -> Result<ExitCode, Failure> {
    let settings = Arc::new(audit_cmd::load(args.config.as_deref())?);
    let from_time = audit_cmd::from_time(args.from_time.as_deref())?;
    let idle = duration("--idle-timeout", &args.idle_timeout)?;
    let saved = args
        .audit_result
        .as_deref()
        .map(|p| std::fs::read(p).map(|b| (p, b)))
        .transpose()
        .map_err(|e| UsageError(format!("--audit-result: {e}")))?;
    let now = chrono::Utc::now();
    let rt = crate::app::runtime()?;
    // Connect once first, as every Kafka command does: refused credentials or TLS are told
    // within seconds, an unreachable broker after the common bound.
    if let Err(e) = super::reach(&settings) {
        return match e.fault() {
            crate::error::Fault::User => Err(e),
            _ => Err(e.context("could not report")),
        };
    }
    let gathered = rt.block_on(gather(
        &settings,
        saved.as_ref().map(|(p, b)| (*p, b.as_slice())),
        ReadOptions {
            from_time,
            max_records: None,
            idle_timeout: idle,
            progress: true,
        },
        now,
    ));
    // A metadata request still waiting on an unreachable broker is not waited for.
    rt.shutdown_background();
    let gathered = match gathered {
        Ok(g) => g,
        // No verdict: exit 2, the last line saying why (JSON under `--log-format json`).
        Err(e) => return Err(Failure::unavailable(e).context("could not report")),
    };
    let saved_sha256 = saved.as_ref().map(|(_, b)| sha256_hex(b));
    let doc = document(&settings, now, from_time, saved_sha256, gathered)?;
    let json = serde_json::to_string_pretty(&doc).map_err(Failure::bug)? + "\n";
    let text = match args.format {
        ReportFormat::Json => json,
        ReportFormat::Html => html::page(&doc, &json),
    };
    write_out(args.out.as_deref(), &text)?;
    Ok(match doc.verdict {
        "not_compliant" => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

/// The report as data, from what was gathered.
fn document(
    settings: &Settings,
    now: chrono::DateTime<chrono::Utc>,
    from_time: Option<chrono::DateTime<chrono::Utc>>,
    saved_sha256: Option<String>,
    (topics, audit, cluster_id): Gathered,
) -> Result<Document, Failure> {
    let from_text = from_time.map(crate::retention::rfc3339);
    let version = settings.policy.version;
    let policy = super::policy_show::document(version, Some(settings)).map_err(Failure::bug)?;
    let differences = serde_json::json!({
        "from": Version::R2012.name(),
        "to": version.name(),
        "differences": super::policy_show::differences(Version::R2012, version),
    });
    Ok(Document {
        report_format: document::FORMAT_VERSION,
        verdict: document::verdict(&topics, &audit),
        summary: document::summary(settings, now, &topics, &audit, from_text.as_deref()),
        identity: Identity {
            product: env!("CARGO_PKG_NAME"),
            product_version: env!("CARGO_PKG_VERSION"),
            policy_version: version.name(),
            policy_text: document::policy_text(version),
            legal_time_zone: settings.policy.legal_time.name(),
            generated_at: crate::retention::rfc3339(now),
            cluster_id,
            // Of exactly what `config check` prints: a reader can check it with sha256sum.
            configuration_sha256: sha256_hex(
                (settings.effective_toml() + &super::client_defaults(settings)).as_bytes(),
            ),
            audit_source: if saved_sha256.is_some() {
                "saved"
            } else {
                "live"
            },
            audit_result_sha256: saved_sha256,
            from_time: from_text,
        },
        policy,
        policy_differences: differences,
        expiry: document::expiry(settings, &audit),
        topics,
        audit,
    })
}

/// Writes the report to the file named (atomically), or to stdout.
fn write_out(out: Option<&Path>, text: &str) -> Result<(), Failure> {
    match out {
        Some(path) => {
            if let Err(e) = write_atomically(path, text.as_bytes()) {
                // A file named on the command line that cannot be created: bad usage.
                let cannot = format!("cannot write {}", path.display());
                return Err(Failure::user(anyhow::Error::new(e).context(cannot))
                    .context("could not report"));
            }
        }
        None => print_stdout(text)?,
    }
    Ok(())
}

type Gathered = (Vec<crate::topics::TopicReport>, AuditResult, Option<String>);

/// The topics as `topics plan` judges them, the cluster id, and the audit (run, or read).
async fn gather(
    settings: &Arc<Settings>,
    saved: Option<(&Path, &[u8])>,
    opts: ReadOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Gathered, CannotReport> {
    let topics_error = |e: crate::topics::TopicsError| CannotReport::Topics(e.into());
    let admin = crate::topics::admin(settings, Context::default()).map_err(topics_error)?;
    let inspection = crate::topics::inspect(settings, &admin)
        .await
        .map_err(topics_error)?;
    let topics = crate::topics::judge(settings, &inspection).map_err(topics_error)?;
    let cluster_id = {
        let client = admin.inner();
        tokio::task::block_in_place(|| client.fetch_cluster_id(Duration::from_secs(15)))
    };
    let audit = match saved {
        Some((path, bytes)) => std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|t| AuditResult::parse(t).map_err(|e| e.to_string()))
            .map_err(|error| CannotReport::Saved {
                path: path.display().to_string(),
                error,
            })?,
        None => {
            let names: Vec<String> = settings.purposes.iter().map(|p| p.topic.clone()).collect();
            let auditor = Auditor::from_settings(settings);
            let read = audit_cmd::read_topics(settings, &names, auditor, opts, now)
                .await
                .map_err(CannotReport::Audit)?;
            AuditResult::of(&read)
        }
    };
    Ok((topics, audit, cluster_id))
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced and
/// renamed into place: a reader sees the old file or the whole new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("--out names no file"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
