//! Log output: text or JSON lines on stderr, colours only where a person reads them.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::EnvFilter;

/// Whether the command's last line was written: log lines after it are dropped. librdkafka's
/// threads can still log (a broker refusing TLS, say) while a failing command prints why
/// it stops; that line must stay the last one. Held while a log line is written.
static FINISHED: Mutex<bool> = Mutex::new(false);

/// Log lines to stderr, until [`last_line`].
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let finished = FINISHED.lock().unwrap_or_else(|e| e.into_inner());
        if *finished {
            return Ok(buf.len());
        }
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The format chosen at [`init`]: the lines the commands write themselves on stderr
/// (a summary, the final error) follow it too, so that under JSON logs every line of
/// stderr is a JSON object.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// A line a command writes on stderr itself, in the log lines' shape: under JSON logs
/// an object like tracing-subscriber's (`timestamp`, `level`, `fields` with `message` and
/// `extra`, `target`), else `text` as is.
fn line(level: &str, text: &str, message: &str, extra: &[(&str, serde_json::Value)]) -> String {
    if FORMAT.get() != Some(&LogFormat::Json) {
        return text.to_string();
    }
    use tracing_subscriber::fmt::time::FormatTime;
    let mut timestamp = String::new();
    let _ = tracing_subscriber::fmt::time::SystemTime.format_time(
        &mut tracing_subscriber::fmt::format::Writer::new(&mut timestamp),
    );
    let mut fields = serde_json::Map::new();
    fields.insert("message".into(), message.into());
    for (k, v) in extra {
        fields.insert((*k).into(), v.clone());
    }
    serde_json::json!({
        "timestamp": timestamp,
        "level": level,
        "fields": fields,
        "target": "cdr_purpose_filter",
    })
    .to_string()
}

/// A line of the command's own on stderr (a summary, progress): as text, or as an INFO
/// JSON object under JSON logs.
pub fn notice(text: &str) {
    let line = line("INFO", text, text, &[]);
    let finished = FINISHED.lock().unwrap_or_else(|e| e.into_inner());
    if !*finished {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// Arguments clap refused (exit 2), or `--help`/`--version` (printed, exit 0). Under
/// JSON logs — `--log-format json` among the arguments or `CDR_PURPOSE_FILTER_LOG_FORMAT`
/// set to `json`, read here as the arguments could not be parsed — the refusal is one
/// ERROR JSON line like [`last_error`]'s.
pub fn usage_error(e: clap::Error) -> std::process::ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return std::process::ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().collect();
    let json = args
        .windows(2)
        .any(|w| w[0] == "--log-format" && w[1] == "json")
        || args.iter().any(|a| a == "--log-format=json")
        || std::env::var(crate::cli::LOG_FORMAT_ENV).is_ok_and(|v| v == "json");
    let code = crate::error::Fault::User.exit_code();
    if !json {
        let _ = e.print();
        return std::process::ExitCode::from(code);
    }
    let _ = FORMAT.set(LogFormat::Json);
    let text = e.render().to_string();
    let message = text.trim().strip_prefix("error: ").unwrap_or(text.trim());
    last_line(&line(
        "ERROR",
        &text,
        message,
        &[
            ("fault", crate::error::Fault::User.name().into()),
            ("exit_code", code.into()),
        ],
    ));
    std::process::ExitCode::from(code)
}

/// Writes the command's last line on stderr: no log line comes after it.
fn last_line(text: &str) {
    let mut finished = FINISHED.lock().unwrap_or_else(|e| e.into_inner());
    *finished = true;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Writes why the command failed as its last line: `error: MESSAGE` as text; under JSON
/// logs an ERROR object whose fields hold the `message`, the `fault` (`user`, `world`,
/// `bug`) and the `exit_code`.
pub fn last_error(failure: &crate::error::Failure) {
    let message = failure.to_string();
    last_line(&line(
        "ERROR",
        &format!("error: {message}"),
        &message,
        &[
            ("fault", failure.fault().name().into()),
            ("exit_code", failure.exit_code().into()),
        ],
    ));
}

/// The format of log lines (`--log-format`, `CDR_PURPOSE_FILTER_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's format): `timestamp`, `level`,
    /// `target`, and `fields` holding `message` and the event's fields.
    Json,
}

/// ANSI colours only on a terminal, and never when `NO_COLOR` is set to anything but
/// the empty string (<https://no-color.org>).
pub fn use_ansi(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the subscriber: `log` (or `RUST_LOG`, or `default`) as the filter.
pub(super) fn init(log: Option<&str>, default: &str, format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = match log {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(use_ansi(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(use_ansi(true, None));
        assert!(use_ansi(true, Some(OsStr::new(""))));
        assert!(!use_ansi(true, Some(OsStr::new("1"))));
        assert!(!use_ansi(false, None));
    }
}
