//! The documentation that quotes the program stays equal to what the program prints.

use std::process::Command;

fn assert_doc_is_output(doc: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}");
    let path = format!("{}/{doc}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(
        text,
        String::from_utf8(out.stdout).unwrap(),
        "{doc} is stale: regenerate it with `cargo run -- {} > {doc}`",
        args.join(" ")
    );
}

#[test]
fn docs_policy_md_is_the_output_of_policy_show_for_the_text_in_force() {
    assert_doc_is_output(
        "docs/policy.md",
        &["policy", "show", "--format", "markdown"],
    );
}

#[test]
fn docs_policy_2012_md_is_the_output_of_policy_show_for_the_2012_text() {
    assert_doc_is_output(
        "docs/policy-2012.md",
        &[
            "policy",
            "show",
            "--format",
            "markdown",
            "--version",
            "R10-14/2012",
        ],
    );
}

#[test]
fn docs_policy_diff_md_is_the_output_of_policy_diff() {
    assert_doc_is_output(
        "docs/policy-diff.md",
        &[
            "policy",
            "diff",
            "R10-14/2012",
            "R10-14/2021",
            "--format",
            "markdown",
        ],
    );
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn docs_readme_quotes_the_retention_the_example_configuration_gets() {
    let out = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args([
            "topics",
            "render",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/config.example.toml"),
            "--format",
            "properties",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rendered = String::from_utf8(out.stdout).unwrap();
    let retention: Vec<u64> = rendered
        .lines()
        .filter_map(|l| l.strip_prefix("retention.ms="))
        .map(|v| v.parse().unwrap())
        .collect();
    // Billing, then security (the dead-letter topic is not quoted).
    assert!(retention.len() >= 2, "{rendered}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for (purpose, ms) in ["billing", "security"].iter().zip(&retention) {
        let s = ms / 1000;
        let quoted = format!(
            "{purpose} `retention.ms` {} ({} d {} h {} m)",
            thousands(*ms),
            s / 86_400,
            s % 86_400 / 3_600,
            s % 3_600 / 60
        );
        assert!(
            readme.contains(&quoted),
            "README.md should quote `{quoted}` (topics render --config deploy/config.example.toml)"
        );
    }
}

/// The README's configuration "from the environment alone" (the `sh` block that sets
/// `CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS=kafka:9092`) is valid: `config check` with
/// exactly those variables exits 0.
#[test]
fn docs_readme_environment_only_configuration_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains("CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS=kafka:9092"))
        .expect("the README's environment-only example");
    let vars: Vec<(String, String)> = block
        .lines()
        .filter_map(|l| l.trim_end_matches(" \\").split_once('='))
        .filter(|(k, _)| k.starts_with("CDR_PURPOSE_FILTER_"))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    assert!(vars.len() >= 5, "{block}");
    let mut c = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CDR_PURPOSE_FILTER_") {
            c.env_remove(k);
        }
    }
    let out = c.args(["config", "check"]).envs(vars).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
