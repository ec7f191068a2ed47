//! The start against brokers that do not answer (nothing listens on 127.0.0.1:1): the
//! error names the cause and the configuration key, and a shutdown asked for meanwhile is
//! acted on at once rather than when the start's first metadata request gives up (30 s).
//! Nothing here needs the test broker.

mod common;

use common::filter::Filter;
use std::path::Path;
use std::time::Duration;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/config.example.toml");

/// The example configuration, on a broker address nothing listens on.
fn start(log: &Path) -> Filter {
    Filter::start_with(
        Path::new(EXAMPLE),
        log,
        &[],
        &[
            ("CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1"),
            ("CDR_PURPOSE_FILTER_METRICS__LISTEN", "127.0.0.1:0"),
        ],
    )
}

/// SIGTERM while the start waits for the brokers: exit 0 (nothing consumed, nothing to
/// commit) within seconds — it used to wait for the start's requests to time out.
#[test]
fn a_sigterm_during_the_start_is_acted_on_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("filter.log");
    let mut filter = start(&log);
    assert!(
        filter.wait_for_log(&log, "serving /metrics", Duration::from_secs(60)),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Inside the start's first metadata request (30 s) by now.
    std::thread::sleep(Duration::from_secs(3));
    filter.signal("TERM");
    let code = filter.wait(Duration::from_secs(15));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, Some(0), "exit 0 soon after SIGTERM; log:\n{text}");
    assert!(text.contains("stopped during the start"), "{text}");
}

/// No broker answers: exit 2 (Kafka unavailable, nothing done) with a line naming the
/// key, the addresses and the time waited.
#[test]
fn unreachable_brokers_are_named_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("filter.log");
    let mut filter = start(&log);
    let code = filter.wait(Duration::from_secs(120));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, Some(2), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("an error line; log:\n{text}"));
    assert!(
        line.contains("no broker at kafka.bootstrap_servers (127.0.0.1:1) answered in 30 s"),
        "{line}"
    );
}
