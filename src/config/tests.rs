//! Configuration: defaults, environment overrides, and every refusal with its key.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn check(toml: &str) -> Result<Settings, ConfigError> {
    Settings::validate(parse(toml, &[])?)
}

fn problems(toml: &str) -> Vec<Problem> {
    match check(toml) {
        Ok(_) => panic!("accepted:\n{toml}"),
        Err(e) => e.problems(),
    }
}

const BOTH: &str = r#"
[purposes.billing]
[purposes.security]
"#;

#[test]
fn defaults() {
    let s = check(BOTH).unwrap();
    assert_eq!(s.kafka.bootstrap_servers, "127.0.0.1:9092");
    assert_eq!(s.kafka.group_id, "cdr-purpose-filter");
    assert_eq!(s.input_topics, vec!["cdr.raw"]);
    assert_eq!(s.input_format, InputFormat::Auto);
    assert_eq!(s.output_format, OutputFormat::Protobuf);
    assert_eq!(s.topic_of(Purpose::Billing), Some("cdr.billing"));
    assert_eq!(s.topic_of(Purpose::Security), Some("cdr.security"));
    assert_eq!(s.purposes[0].ttl, Ttl::Fixed(Duration::days(365)));
    assert_eq!(s.purposes[1].ttl, Ttl::Fixed(Duration::days(89)));
    assert_eq!(s.dead_letter.topic, "cdr.dead-letter");
    assert_eq!(s.dead_letter.mode, DeadLetterMode::Pointer);
    assert_eq!(s.topics.mode, TopicsMode::Enforce);
    assert_eq!(s.shutdown_timeout, std::time::Duration::from_secs(30));
    assert_eq!(s.max_in_flight, 20_000);
    assert_eq!(s.guarantee, Guarantee::AtLeastOnce);
    assert_eq!(s.metrics_listen.to_string(), "127.0.0.1:9898");
    assert_eq!(s.policy.max_clock_skew, Duration::minutes(5));
}

#[test]
fn the_contract_example_is_valid() {
    let s = check(include_str!("../../deploy/config.example.toml")).unwrap();
    assert_eq!(s.purposes.len(), 2);
}

#[test]
fn omitting_a_section_disables_its_purpose() {
    let s = check("[purposes.security]\n").unwrap();
    assert_eq!(s.purposes.len(), 1);
    assert_eq!(s.topic_of(Purpose::Billing), None);
    let p = problems("");
    assert_eq!(p[0].key, "purposes");
}

#[test]
fn a_ttl_past_the_limit_is_refused_with_the_arithmetic() {
    let p = problems("[purposes.billing]\nttl = \"366d\"\n");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].key, "purposes.billing.ttl");
    assert!(p[0].reason.contains("365 days"), "{}", p[0].reason);
    let p = problems("[purposes.security]\nttl = \"90d\"\n");
    assert_eq!(p[0].key, "purposes.security.ttl");
    assert!(p[0].reason.contains("89 days"), "{}", p[0].reason);
    let p = problems("[purposes.security]\nttl = \"4mo\"\n");
    assert!(p[0].reason.contains("3 months"), "{}", p[0].reason);
    let p = problems("[purposes.security]\nttl = \"ninety days\"\n");
    assert_eq!(p[0].key, "purposes.security.ttl");
    check("[purposes.security]\nttl = \"3mo\"\n[purposes.billing]\nttl = \"1y\"\n").unwrap();
    check("[purposes.security]\nttl = \"2136h\"\n").unwrap();
}

#[test]
fn a_widening_is_refused_naming_the_field_and_the_rule() {
    let p = problems("[purposes.security]\nkeep = [\"terminal.imei\", \"served.imsi\"]\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "purposes.security.keep[0]");
    assert!(p[0].reason.contains("terminal.imei"), "{}", p[0].reason);
    assert!(p[0].reason.contains("R10-14 IV"), "{}", p[0].reason);
    assert!(p[0].reason.contains("never widen"), "{}", p[0].reason);
    let p = problems("[purposes.billing]\nkeep = [\"content\"]\n");
    assert_eq!(p.len(), 5, "one per content field: {p:?}");
    assert!(p[0].reason.contains("L34-1"));
    // Location is allowed for telephony billing: keeping it is no widening.
    check("[purposes.billing]\nkeep = [\"location\"]\n").unwrap();
}

#[test]
fn removals_must_name_table_fields_and_not_required_ones() {
    let s = check("[purposes.billing]\nremove = [\"terminal.imei\", \"location\"]\n").unwrap();
    let b = &s.policy.purposes[0];
    assert_eq!(b.removed.len(), 7);
    assert!(!b.keeps(
        crate::policy::table::Column::BillingTelephony,
        "terminal.imei"
    ));
    assert!(b.keeps(
        crate::policy::table::Column::BillingTelephony,
        "terminal.imeisv"
    ));
    let p = problems("[purposes.billing]\nremove = [\"terminal.colour\", \"event_id\"]\n");
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].key, "purposes.billing.remove[0]");
    assert!(p[0].reason.contains("terminal.colour"));
    assert_eq!(p[1].key, "purposes.billing.remove[1]");
    assert!(p[1].reason.contains("required"));
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let e = check("[purposes.billing]\nttl = \"30d\"\nretention = \"1y\"\n").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("purposes.billing"), "{msg}");
    assert!(msg.contains("retention"), "{msg}");
    let e = check("[purposes.marketing]\ntopic = \"m\"\n").unwrap_err();
    assert!(e.to_string().contains("marketing"), "{e}");
    let e = check("[kafka]\nbootstrap = \"x\"\n[purposes.billing]\n").unwrap_err();
    assert!(e.to_string().contains("bootstrap"), "{e}");
}

#[test]
fn wrong_types_and_values_name_the_key() {
    let e = check("[input]\nformat = \"xml\"\n[purposes.billing]\n").unwrap_err();
    assert!(e.to_string().contains("input.format"), "{e}");
    let p = problems("[metrics]\nlisten = \"nowhere\"\n[purposes.billing]\n");
    assert_eq!(p[0].key, "metrics.listen");
    let p = problems("[policy]\nmax_clock_skew = \"2mo\"\n[purposes.billing]\n");
    assert_eq!(p[0].key, "policy.max_clock_skew");
}

#[test]
fn topics_are_checked() {
    let p = problems(
        "[input]\ntopics = [\"cdr.raw\", \"bad topic\"]\n[purposes.billing]\ntopic = \"cdr.raw\"\n[purposes.security]\ntopic = \"cdr.dead-letter\"\n",
    );
    let keys: Vec<_> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "input.topics[1]",
            "purposes.billing.topic",
            "purposes.security.topic"
        ],
        "{p:?}"
    );
    let p = problems("[purposes.billing]\ntopic = \"x\"\n[purposes.security]\ntopic = \"x\"\n");
    assert_eq!(p[0].key, "purposes.security.topic");
}

#[test]
fn owned_kafka_properties_are_refused() {
    let p = problems("[kafka.properties]\n\"enable.auto.commit\" = \"true\"\n[purposes.billing]\n");
    assert!(p[0].key.contains("enable.auto.commit"), "{p:?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = problems(
        "[purposes.billing]\nttl = \"2y\"\nremove = [\"nope\"]\n[purposes.security]\nttl = \"1y\"\n",
    );
    assert_eq!(p.len(), 3, "{p:?}");
}

#[test]
fn environment_variables_override_keys() {
    let raw = parse(
        BOTH,
        &env(&[
            ("CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS", "broker:9093"),
            ("CDR_PURPOSE_FILTER_PURPOSES__BILLING__TTL", "180d"),
            ("CDR_PURPOSE_FILTER_INPUT__TOPICS", "[a, b]"),
            (
                "CDR_PURPOSE_FILTER_KAFKA__PROPERTIES__SASL_PASSWORD",
                "hunter2",
            ),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    let s = Settings::validate(raw).unwrap();
    assert_eq!(s.kafka.bootstrap_servers, "broker:9093");
    assert_eq!(s.purposes[0].ttl, Ttl::Fixed(Duration::days(180)));
    assert_eq!(s.input_topics, vec!["a", "b"]);
    assert_eq!(s.kafka.properties["sasl.password"], "hunter2");
    let shown = s.effective_toml();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("180d"), "{shown}");
}

#[test]
fn an_unknown_environment_key_is_an_error_naming_the_variable() {
    let e = parse(
        BOTH,
        &env(&[("CDR_PURPOSE_FILTER_PURPOSES__BILLING__TLL", "1d")]),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("tll"), "{msg}");
    assert!(msg.contains("environment variable"), "{msg}");
}

#[test]
fn the_log_variable_of_the_command_line_is_not_a_configuration_key() {
    let raw = parse(BOTH, &env(&[("CDR_PURPOSE_FILTER_LOG", "debug")])).unwrap();
    assert!(Settings::validate(raw).is_ok());
}

#[test]
fn secrets_come_from_the_environment_or_a_file_and_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "from-a-file\n").unwrap();
    // Readable by its owner only: a secret file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let lookup = |n: &str| (n == "SASL_PW").then(|| "from-the-env".to_string());
    assert_eq!(
        resolve_reference("${env:SASL_PW}", lookup),
        Ok(Some("from-the-env".into()))
    );
    assert_eq!(
        resolve_reference(&format!("${{file:{}}}", file.display()), lookup),
        Ok(Some("from-a-file".into())),
        "the trailing newline is removed"
    );
    assert_eq!(resolve_reference("plain", lookup), Ok(None));
    let e = resolve_reference("${env:MISSING_PW}", lookup).unwrap_err();
    assert!(e.contains("MISSING_PW"), "{e}");
    let e = resolve_reference("${file:/nonexistent/pw}", lookup).unwrap_err();
    assert!(e.contains("/nonexistent/pw"), "{e}");
    assert!(resolve_reference("${vault:x}", lookup).is_err());

    let toml = format!(
        "{BOTH}\n[kafka.properties]\n\"sasl.password\" = \"${{file:{}}}\"\n",
        file.display()
    );
    let s = Settings::validate(parse(&toml, &[]).unwrap()).unwrap();
    assert_eq!(s.kafka.properties["sasl.password"], "from-a-file");
    let shown = s.effective_toml();
    assert!(!shown.contains("from-a-file"), "{shown}");
    let toml = format!(
        "{BOTH}\n[kafka.properties]\n\"sasl.password\" = \"${{env:CDR_TEST_SURELY_UNSET_PW}}\"\n"
    );
    let e = Settings::validate(parse(&toml, &[]).unwrap()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("kafka.properties.\"sasl.password\""), "{msg}");
    assert!(msg.contains("CDR_TEST_SURELY_UNSET_PW"), "{msg}");
}

#[test]
fn delivery_commit_interval_and_owned_gapless_guarantee() {
    let s = Settings::validate(parse(BOTH, &[]).unwrap()).unwrap();
    assert_eq!(s.commit_interval, std::time::Duration::from_secs(1));
    let toml = format!("{BOTH}\n[delivery]\ncommit_interval = \"250ms\"\n");
    let s = Settings::validate(parse(&toml, &[]).unwrap()).unwrap();
    assert_eq!(s.commit_interval, std::time::Duration::from_millis(250));
    let toml = format!("{BOTH}\n[delivery]\ncommit_interval = \"0s\"\n");
    let e = Settings::validate(parse(&toml, &[]).unwrap()).unwrap_err();
    assert!(e.to_string().contains("delivery.commit_interval"), "{e}");
    // A gap would make the idempotent producer fail for good: the filter owns it.
    let toml =
        format!("{BOTH}\n[kafka.producer_properties]\n\"enable.gapless.guarantee\" = \"true\"\n");
    let e = Settings::validate(parse(&toml, &[]).unwrap()).unwrap_err();
    assert!(
        e.to_string()
            .contains("kafka.producer_properties.\"enable.gapless.guarantee\""),
        "{e}"
    );
}
