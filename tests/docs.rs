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

/// The pieces of code of a document: its inline spans (which may wrap across lines) and
/// the lines of its fenced blocks.
fn code_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut fenced = false;
    let mut prose = String::new();
    let spans = |prose: &mut String, pieces: &mut Vec<String>| {
        let text = std::mem::take(prose);
        pieces.extend(
            text.split('`')
                .skip(1)
                .step_by(2)
                .map(|s| s.replace('\n', " ")),
        );
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            spans(&mut prose, &mut pieces);
            fenced = !fenced;
            continue;
        }
        if fenced {
            pieces.push(line.to_string());
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    spans(&mut prose, &mut pieces);
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
            // A command's name, not a TOML key (`topics = [...]`).
            let mut words = segment.split_whitespace();
            let (first, second) = (words.next(), words.next());
            (top.iter().any(|c| first == Some(c)) && second != Some("=")).then_some(segment)
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

/// A `pub struct` of `src/config/raw.rs`, as written: its fields with their doc comments.
struct RawStruct {
    name: String,
    doc: Vec<String>,
    fields: Vec<RawField>,
}

struct RawField {
    name: String,
    ty: String,
    doc: Vec<String>,
}

/// The `pub struct`s of a Rust source and the doc comment of each and of its `pub` fields
/// (attributes between a doc comment and its item are skipped).
fn raw_structs(src: &str) -> Vec<RawStruct> {
    let mut structs: Vec<RawStruct> = Vec::new();
    let mut doc: Vec<String> = Vec::new();
    let mut inside = false;
    for line in src.lines() {
        let trimmed = line.trim();
        if let Some(text) = trimmed.strip_prefix("///") {
            doc.push(text.strip_prefix(' ').unwrap_or(text).to_string());
        } else if trimmed.starts_with("#[") {
        } else if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = rest.split([' ', '{', '(', ';']).next().unwrap();
            inside = rest.trim_end().ends_with('{');
            structs.push(RawStruct {
                name: name.to_string(),
                doc: std::mem::take(&mut doc),
                fields: Vec::new(),
            });
        } else if inside && line == "}" {
            inside = false;
        } else if let (true, Some(rest)) = (inside, line.strip_prefix("    pub ")) {
            let (name, ty) = rest.split_once(": ").unwrap();
            structs.last_mut().unwrap().fields.push(RawField {
                name: name.to_string(),
                ty: ty.trim_end_matches(',').to_string(),
                doc: std::mem::take(&mut doc),
            });
        } else {
            doc.clear();
        }
    }
    structs
}

/// A doc comment cut into its meaning, its `Default:` line and its `Example:` line.
fn doc_parts(doc: &[String]) -> (String, Option<String>, Option<String>) {
    let mut meaning = Vec::new();
    let (mut default, mut example) = (None, None);
    for line in doc {
        if let Some(d) = line.strip_prefix("Default: ") {
            default = Some(d.to_string());
        } else if let Some(e) = line.strip_prefix("Example: ") {
            example = Some(e.trim_matches('`').to_string());
        } else {
            meaning.push(line.as_str());
        }
    }
    (meaning.join("\n").trim().to_string(), default, example)
}

/// A TOML value as written in a configuration file, on one line.
fn toml_inline(v: &toml::Value) -> String {
    match v {
        toml::Value::Table(t) if t.is_empty() => "{}".to_string(),
        toml::Value::Table(t) => format!(
            "{{ {} }}",
            t.iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn toml_key(k: &str) -> String {
    if k.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}

fn toml_value(text: &str) -> toml::Value {
    let doc: toml::Table =
        toml::from_str(&format!("v = {text}")).unwrap_or_else(|e| panic!("`{text}`: {e}"));
    doc["v"].clone()
}

fn value_at<'a>(v: &'a toml::Value, path: &[String]) -> Option<&'a toml::Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// One key of the reference: its path (`purposes.billing.ttl`), its field and whether it
/// is a table of its own (a purpose).
struct Key<'a> {
    path: Vec<String>,
    /// The path as the reference shows it: `purposes.<purpose>.ttl`.
    shown: Vec<String>,
    field: &'a RawField,
}

/// `docs/configuration.md`, written from the doc comments of `src/config/raw.rs` and the
/// defaults of `RawConfig::default()`. Checks on the way, for every key: a meaning and an
/// example in its doc comment; a default from the code, or a `Default:` line where the
/// code has none to show (an absent option, an empty list), never both; the example read
/// from a file and from the environment variable the reference names gives that value.
fn configuration_reference() -> String {
    use cdr_purpose_filter::config::{self, RawConfig, ENV_PREFIX};
    let src = include_str!("../src/config/raw.rs");
    let structs = raw_structs(src);
    let by_name = |n: &str| structs.iter().find(|s| s.name == n);
    let root = by_name("RawConfig").expect("RawConfig in src/config/raw.rs");
    let defaults = toml::Value::try_from(RawConfig::default()).unwrap();
    let mut problems = Vec::new();
    let mut table = String::new();
    let mut body = String::new();
    let env_name = |path: &[String]| format!("{ENV_PREFIX}{}", path.join("__").to_uppercase());
    for section in &root.fields {
        let (meaning, _, _) = doc_parts(&section.doc);
        if meaning.is_empty() {
            problems.push(format!("RawConfig.{}: no doc comment", section.name));
        }
        body.push_str(&format!("\n## `[{}]`\n\n{meaning}\n", section.name));
        let fields = &by_name(&section.ty).expect("a section struct").fields;
        // The keys of the section, a nested table's keys after it.
        // A table several keys share (`purposes.billing`, `purposes.security`: a
        // `PurposeSection`) has its keys shown once, as `purposes.<purpose>.ttl`, and
        // checked on the first.
        let mut keys: Vec<Key> = Vec::new();
        let mut shown = Vec::new();
        let mut nested_keys: Vec<Key> = Vec::new();
        for f in fields {
            let path = vec![section.name.clone(), f.name.clone()];
            keys.push(Key {
                path: path.clone(),
                shown: path.clone(),
                field: f,
            });
            let inner = f.ty.trim_start_matches("Option<").trim_end_matches('>');
            if let Some(nested) = by_name(inner).filter(|_| !shown.contains(&inner)) {
                shown.push(inner);
                let shared = fields.iter().filter(|g| g.ty == f.ty).count() > 1;
                let placeholder = format!("<{}>", inner.trim_end_matches("Section").to_lowercase());
                for g in &nested.fields {
                    let mut p = path.clone();
                    p.push(g.name.clone());
                    let mut s = p.clone();
                    if shared {
                        s[1] = placeholder.clone();
                    }
                    nested_keys.push(Key {
                        path: p,
                        shown: s,
                        field: g,
                    });
                }
            }
        }
        keys.extend(nested_keys);
        for key in &keys {
            let name = key.shown.join(".");
            let f = key.field;
            let (meaning, doc_default, example) = doc_parts(&f.doc);
            if meaning.is_empty() {
                problems.push(format!(
                    "{name}: no meaning in the doc comment of `{}`",
                    f.name
                ));
            }
            let code_default = value_at(&defaults, &key.path).map(toml_inline);
            let default = match (code_default, doc_default) {
                (Some(code), None) => format!("`{code}`"),
                (None, Some(doc)) => doc,
                (Some(code), Some(doc)) => {
                    problems.push(format!(
                        "{name}: `Default: {doc}` in the doc comment, but the code's default is `{code}`: drop the line"
                    ));
                    doc
                }
                (None, None) => {
                    problems.push(format!(
                        "{name}: the code shows no default: write a `Default:` line in its doc comment"
                    ));
                    String::new()
                }
            };
            let is_map = f.ty.starts_with("BTreeMap");
            let is_table =
                by_name(f.ty.trim_start_matches("Option<").trim_end_matches('>')).is_some();
            let env = if is_map {
                format!("{}__<PROPERTY>", env_name(&key.shown))
            } else if is_table {
                String::new()
            } else {
                env_name(&key.shown)
            };
            match &example {
                None => problems.push(format!("{name}: no `Example:` line in its doc comment")),
                Some(example) => {
                    let want = toml_value(example);
                    // From a file.
                    let (parent, leaf) = key.path.split_at(key.path.len() - 1);
                    let text = format!("[{}]\n{} = {example}\n", parent.join("."), leaf[0]);
                    match config::parse(&text, &[]) {
                        Err(e) => problems
                            .push(format!("{name}: the example `{example}` is refused: {e}")),
                        Ok(raw) => {
                            let got = toml::Value::try_from(raw).unwrap();
                            if value_at(&got, &key.path) != Some(&want) {
                                problems.push(format!(
                                    "{name}: the example `{example}` reads as {:?}",
                                    value_at(&got, &key.path)
                                ));
                            }
                        }
                    }
                    // From the environment variable the reference names.
                    let vars: Vec<(String, String)> = match (&want, is_map, is_table) {
                        (_, _, true) => Vec::new(),
                        (toml::Value::Table(t), true, _) => t
                            .iter()
                            .map(|(k, v)| {
                                let var = format!(
                                    "{}__{}",
                                    env_name(&key.path),
                                    k.to_uppercase().replace('.', "_")
                                );
                                (var, v.as_str().unwrap().to_string())
                            })
                            .collect(),
                        (toml::Value::String(s), ..) => vec![(env_name(&key.path), s.clone())],
                        (other, ..) => vec![(env_name(&key.path), other.to_string())],
                    };
                    if !vars.is_empty() {
                        match config::parse("", &vars) {
                            Err(e) => problems.push(format!("{name}: {vars:?} is refused: {e}")),
                            Ok(raw) => {
                                let got = toml::Value::try_from(raw).unwrap();
                                if value_at(&got, &key.path) != Some(&want) {
                                    problems.push(format!(
                                        "{name}: {vars:?} reads as {:?}",
                                        value_at(&got, &key.path)
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            let shown_env = if env.is_empty() {
                "—".to_string()
            } else {
                format!("`{env}`")
            };
            table.push_str(&format!(
                "| [`{name}`](#{}) | {default} | {shown_env} |\n",
                name.replace(['.', '<', '>'], "")
            ));
            body.push_str(&format!("\n### `{name}`\n\n{meaning}\n\n"));
            body.push_str(&format!("- Default: {default}\n"));
            if let Some(example) = &example {
                body.push_str(&format!(
                    "- Example: `{} = {example}`\n",
                    key.path.last().unwrap()
                ));
            }
            if !env.is_empty() {
                body.push_str(&format!("- Environment: `{env}`\n"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "src/config/raw.rs:\n{}",
        problems.join("\n")
    );
    // The struct's first paragraph is for rustdoc; the rest is the reference's.
    let (intro, _, _) = doc_parts(&root.doc);
    let intro = intro.split_once("\n\n").map_or("", |(_, rest)| rest);
    format!(
        "<!-- Generated from the doc comments of src/config/raw.rs and RawConfig::default() by \
         tests/docs.rs; do not edit: regenerate with `{REGENERATE}`. -->\n\n\
         # Configuration\n\n{intro}\n\n## Every key\n\n\
         | Key | Default | Environment variable |\n|---|---|---|\n{table}{body}"
    )
}

const REGENERATE: &str = "CDR_WRITE_DOCS=1 cargo test --test docs docs_configuration_md";

/// `docs/configuration.md` is the reference the code gives: it fails when the file is
/// stale, and `CDR_WRITE_DOCS=1` writes it instead.
#[test]
fn docs_configuration_md_is_generated_from_the_doc_comments_of_config_raw() {
    let want = configuration_reference();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    if std::env::var_os("CDR_WRITE_DOCS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text == want,
        "docs/configuration.md is stale: regenerate it with `{REGENERATE}`"
    );
}
