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
