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
fn docs_retention_md_quotes_the_retention_the_example_configuration_gets() {
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
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/retention.md"))
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
            doc.contains(&quoted),
            "docs/retention.md should quote `{quoted}` (topics render --config deploy/config.example.toml)"
        );
    }
}

/// The configuration "from the environment alone" of `docs/configuration.md` (the `sh` block that sets
/// `CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS=kafka:9092`) is valid: `config check` with
/// exactly those variables exits 0.
#[test]
fn docs_configuration_md_environment_only_configuration_is_valid() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap();
    let block = doc
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains("CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS=kafka:9092"))
        .expect("the environment-only example of docs/configuration.md");
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

/// The documents a reader is pointed to: the README, ARCHITECTURE.md and `docs/*.md`.
fn documents() -> Vec<(String, String)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut paths = vec!["README.md".to_string(), "ARCHITECTURE.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(format!("{root}/docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(format!("{root}/{p}"))
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            (p, text)
        })
        .collect()
}

/// Every command of the binary (its path: `[]`, `["topics"]`, `["topics", "plan"]`, ...)
/// with the long flags its `--help` lists, read from `--help` itself.
fn commands() -> std::collections::BTreeMap<Vec<String>, Vec<String>> {
    let mut all = std::collections::BTreeMap::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let out = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
            .args(&path)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{path:?} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        let mut in_commands = false;
        let mut flags = Vec::new();
        for line in help.lines() {
            if line == "Commands:" {
                in_commands = true;
                continue;
            }
            if in_commands {
                match line.split_whitespace().next() {
                    Some(name) if line.starts_with("  ") && name != "help" => {
                        let mut child = path.clone();
                        child.push(name.to_string());
                        todo.push(child);
                    }
                    Some(_) => {}
                    None => in_commands = false,
                }
                continue;
            }
            let trimmed = line.trim_start();
            let trimmed = trimmed
                .strip_prefix("-")
                .filter(|t| t.chars().next().is_some_and(|c| c != '-'))
                .map(|t| t.split_once(", ").map_or(t, |(_, long)| long))
                .unwrap_or(trimmed);
            if let Some(flag) = trimmed.strip_prefix("--") {
                let name: String = flag
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if !name.is_empty() {
                    flags.push(format!("--{name}"));
                }
            }
        }
        all.insert(path, flags);
    }
    all
}

/// Flags that exist only in a build with a cargo feature, so are not in this binary's
/// `--help`: (command, flag, feature).
const FEATURE_FLAGS: &[(&str, &str, &str)] = &[("run", "--passthrough", "bench-passthrough")];

/// The pieces of code of a document: its inline spans and the lines of its fenced blocks.
fn code_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            pieces.push(line.to_string());
        } else {
            pieces.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
        }
    }
    pieces
}

/// The invocations of the binary a piece of code holds: after `cdr-purpose-filter ` or
/// `cargo run ... -- `, or a span that starts with a command's name; each cut at a shell
/// pipe, redirection or separator (a table's `\|` is an alternative, not a pipe).
fn invocations(piece: &str, top: &[String]) -> Vec<String> {
    let piece = piece.replace("\\|", "\u{1}");
    let mut found = Vec::new();
    for segment in piece.split(['|', ';', '>', '#', '&']) {
        let segment = segment.trim();
        let rest = if let Some(i) = segment.find("cdr-purpose-filter ") {
            Some(&segment[i + "cdr-purpose-filter ".len()..])
        } else if segment.contains("cargo run") && !segment.contains("--example") {
            segment.split_once(" -- ").map(|(_, r)| r)
        } else {
            top.iter()
                .any(|c| segment.split_whitespace().next() == Some(c))
                .then_some(segment)
        };
        if let Some(rest) = rest {
            let rest = rest.trim();
            if rest.starts_with(|c: char| c.is_ascii_lowercase()) {
                found.push(rest.replace('\u{1}', "|"));
            }
        }
    }
    found
}

/// Every command and flag the documents name is one `--help` lists, and every command
/// `--help` lists is in the README's command table, every flag named in the documents.
#[test]
fn docs_name_only_the_commands_and_flags_of_help_and_all_of_them() {
    let commands = commands();
    let top: Vec<String> = commands
        .keys()
        .filter(|p| p.len() == 1)
        .map(|p| p[0].clone())
        .collect();
    let global = &commands[&Vec::new()];
    let docs = documents();
    let mut wrong = Vec::new();
    for (doc, text) in &docs {
        for piece in code_pieces(text) {
            for call in invocations(&piece, &top) {
                let words: Vec<&str> = call.split_whitespace().collect();
                let first = words[0].to_string();
                if !top.contains(&first) {
                    wrong.push(format!("{doc}: `{call}`: no command `{first}`"));
                    continue;
                }
                // The commands named: `topics plan|apply` names two.
                let mut paths = vec![vec![first.clone()]];
                let has_children = commands.keys().any(|p| p.len() == 2 && p[0] == first);
                if has_children {
                    if let Some(second) = words.get(1).filter(|w| !w.starts_with(['-', '['])) {
                        paths = second
                            .split(['|', '/'])
                            .map(|s| vec![first.clone(), s.to_string()])
                            .collect();
                        for p in &paths {
                            if !commands.contains_key(p) {
                                wrong
                                    .push(format!("{doc}: `{call}`: no command `{}`", p.join(" ")));
                            }
                        }
                    }
                }
                for word in &words {
                    let flag = word.trim_start_matches(['[', '(']);
                    let Some(name) = flag.strip_prefix("--") else {
                        continue;
                    };
                    let name: String = name
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    let flag = format!("--{name}");
                    let known = paths
                        .iter()
                        .any(|p| commands.get(p).is_some_and(|f| f.contains(&flag)))
                        || global.contains(&flag)
                        || FEATURE_FLAGS
                            .iter()
                            .any(|(c, f, _)| *c == first && *f == flag);
                    if !known {
                        wrong.push(format!(
                            "{doc}: `{call}`: `{}` has no `{flag}`",
                            paths[0].join(" ")
                        ));
                    }
                }
            }
        }
    }
    // The other way: every command in the README's table, every flag in some document.
    let readme = &docs[0].1;
    let table: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_start_matches("| `").split('`').next().unwrap())
        .collect();
    for (path, flags) in &commands {
        if path.is_empty() {
            continue;
        }
        let listed = table.iter().any(|row| {
            let words: Vec<&str> = row.split_whitespace().collect();
            words[0] == path[0]
                && (path.len() == 1
                    || words
                        .get(1)
                        .is_some_and(|w| w.split("\\|").any(|alt| alt == path[1])))
        });
        if !listed {
            wrong.push(format!(
                "README.md: the command table lacks `{}`",
                path.join(" ")
            ));
        }
        for flag in flags {
            if flag == "--help" || flag == "--version" {
                continue;
            }
            let named = docs.iter().any(|(_, text)| {
                text.match_indices(flag.as_str()).any(|(i, _)| {
                    !text[i + flag.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
                })
            });
            if !named {
                wrong.push(format!("no document names `{} {flag}`", path.join(" ")));
            }
        }
    }
    for (command, flag, feature) in FEATURE_FLAGS {
        assert!(
            docs.iter()
                .any(|(_, t)| t.contains(&format!("{command} {flag}")) && t.contains(feature)),
            "`{command} {flag}` should be documented with its feature `{feature}`"
        );
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "the docs and --help disagree:\n{}",
        wrong.join("\n")
    );
}
