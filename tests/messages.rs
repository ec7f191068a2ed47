//! Messages that say something true: a configuration problem names the file it is in,
//! `policy show` the ttl as configured, `config check` where a secret is kept (its
//! `${file:}` reference, never the secret), and the README the flags as they are.
//! None of these needs a broker.

use std::path::Path;
use std::process::{Command, Output};

fn filter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(args)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A problem in the file names the file (it said "(from TOML source string)").
#[test]
fn a_problem_in_the_configuration_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "filter.toml",
        "[kafka]\nbootstrap_servers = 12\n",
    );
    let out = filter(&["config", "check", "--config", &path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "kafka.bootstrap_servers: invalid type: found signed int `12`, expected a string \
             (from file {path})"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("source string"), "{stderr}");
}

/// `policy show --config` gives the ttl as configured: `12mo`, not its equal `1y`.
#[test]
fn policy_show_gives_the_ttl_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "filter.toml",
        "[purposes.billing]\nttl = \"12mo\"\n[purposes.security]\nttl = \"60d\"\n",
    );
    let out = filter(&["policy", "show", "--config", &path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("configured ttl 12mo"), "{stdout}");
    assert!(stdout.contains("configured ttl 60d"), "{stdout}");
    assert!(!stdout.contains("configured ttl 1y"), "{stdout}");
    let out = filter(&["policy", "show", "--config", &path, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["purposes"][0]["ttl"], "12mo", "{doc}");
}

/// `config check` prints where a secret is kept — the `${file:}` or `${env:}` reference
/// as written, even under a secret's name — never the secret; a plain secret is masked.
#[cfg(unix)]
#[test]
fn config_check_prints_secret_references_not_secrets() {
    use std::os::unix::fs::PermissionsExt;
    const SECRET: &str = "CANARY-pw-4711";
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "sasl-password", &format!("{SECRET}\n"));
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = write(
        dir.path(),
        "filter.toml",
        &format!(
            "[purposes.billing]\n[kafka.properties]\n\
             \"sasl.password\" = \"${{file:{secret}}}\"\n\
             \"ssl.key.password\" = \"plain-{SECRET}\"\n"
        ),
    );
    let out = filter(&["config", "check", "--config", &path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("\"sasl.password\" = \"${{file:{secret}}}\"")),
        "the reference is shown:\n{stdout}"
    );
    assert!(
        stdout.contains("\"ssl.key.password\" = \"********\""),
        "a plain secret is masked:\n{stdout}"
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}{stderr}"
    );
}

/// The README's command table marks `--config` optional for `dry-run`, as it is: a
/// dry-run without it runs on the defaults and the environment.
#[test]
fn dry_run_runs_without_config_as_the_readme_says() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `dry-run ") && !l.contains("--from-topic"))
        .expect("the README's dry-run row");
    assert!(row.starts_with("| `dry-run [--config FILE]"), "{row}");
    let out = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(["dry-run", "/dev/null"])
        .env_remove("CDR_PURPOSE_FILTER_CONFIG")
        .env("CDR_PURPOSE_FILTER_PURPOSES__BILLING__TOPIC", "cdr.billing")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
