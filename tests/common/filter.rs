//! The real filter binary, running: started on a configuration file with its log in a
//! file, signalled, waited for (readiness in its log, exit code), and its HTTP server.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The filter binary, running; killed on drop.
pub struct Filter {
    pub child: Child,
}

impl Filter {
    /// `cdr-purpose-filter run --config CONFIG`, logging at info level into `log`.
    pub fn start(config: &Path, log: &Path) -> Filter {
        Filter::launch(config, log, &[], &[], &[])
    }

    /// The filter with extra arguments before `run` (e.g. `--log trace`) and extra
    /// environment variables.
    pub fn start_with(config: &Path, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Filter {
        Filter::launch(config, log, args, &[], env)
    }

    /// `cdr-purpose-filter BEFORE.. run --config CONFIG AFTER..` with `env` added (and
    /// `RUST_LOG=info` unless a `--log` argument or `env` says otherwise); stderr into
    /// `log`.
    pub fn launch(
        config: &Path,
        log: &Path,
        before_run: &[&str],
        after_run: &[&str],
        env: &[(&str, &str)],
    ) -> Filter {
        Filter::launch_binary(
            Path::new(env!("CARGO_BIN_EXE_cdr-purpose-filter")),
            config,
            log,
            before_run,
            after_run,
            env,
        )
    }

    /// [`Filter::launch`] with another build of the filter (`binary`).
    pub fn launch_binary(
        binary: &Path,
        config: &Path,
        log: &Path,
        before_run: &[&str],
        after_run: &[&str],
        env: &[(&str, &str)],
    ) -> Filter {
        let log = std::fs::File::create(log).unwrap();
        let mut cmd = Command::new(binary);
        cmd.args(before_run)
            .args(["run", "--config"])
            .arg(config)
            .args(after_run)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log);
        if !before_run.iter().any(|a| a.starts_with("--log")) {
            cmd.env("RUST_LOG", "info");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        Filter {
            child: cmd.spawn().expect("start the filter"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`, ...) with kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit, up to `limit`; the exit code, or None if it is still running.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Peak resident memory of the running filter (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the filter is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// Waits (up to `limit`) until the filter's log holds `needle`; false if it exited
    /// or the time passed.
    pub fn wait_for_log(&mut self, log: &Path, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if std::fs::read_to_string(log)
                .unwrap_or_default()
                .contains(needle)
            {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The address the filter logged it serves `/metrics`, `/healthz` and `/readyz` on
    /// (tests configure port 0).
    pub fn http_address(&mut self, log: &Path) -> std::net::SocketAddr {
        assert!(
            self.wait_for_log(log, "serving /metrics", Duration::from_secs(60)),
            "the filter never served metrics; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        let text = std::fs::read_to_string(log).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("serving /metrics"))
            .unwrap();
        let at = line
            .find("127.0.0.1:")
            .expect("bound address in the log line");
        line[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect::<String>()
            .parse()
            .expect("an address")
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on the filter's telemetry server: (status, body); None when the
/// connection fails.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}
