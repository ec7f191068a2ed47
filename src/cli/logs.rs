//! Log output: text or JSON lines on stderr, colours only where a person reads them.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
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

/// Writes the command's last line on stderr: no log line comes after it.
pub fn last_line(text: &str) {
    let mut finished = FINISHED.lock().unwrap_or_else(|e| e.into_inner());
    *finished = true;
    let _ = writeln!(std::io::stderr(), "{text}");
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
