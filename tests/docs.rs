//! The documentation that quotes the program stays equal to what the program prints.

use std::process::Command;

#[test]
fn docs_policy_md_is_the_output_of_policy_show() {
    let out = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(["policy", "show", "--format", "markdown"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/policy.md")).unwrap();
    assert_eq!(
        doc,
        String::from_utf8(out.stdout).unwrap(),
        "docs/policy.md is stale: regenerate it with `cargo run -- policy show --format markdown > docs/policy.md`"
    );
}
