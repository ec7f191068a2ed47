//! `topics plan|apply|check|render`: the output topics' retention settings.

use super::{print_stdout, TopicsArgs, TopicsCommand, TopicsFormat};
use crate::config;
use crate::error::Failure;
use crate::kafka::Context;
use crate::topics::{self, render, TopicReport};
use std::fmt::Write as _;
use std::process::ExitCode;

/// `363d 23h 49m` from milliseconds.
pub fn human_ms(ms: i64) -> String {
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if sec > 0 || parts.is_empty() {
        parts.push(format!("{sec}s"));
    }
    parts.join(" ")
}

fn table(reports: &[TopicReport], title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}\n");
    if let Some(note) = assumed(reports) {
        let _ = writeln!(out, "Note: {note}\n");
    }
    for r in reports {
        let verdict = if r.compliant {
            "COMPLIANT"
        } else {
            "NOT COMPLIANT"
        };
        let bound = match (r.exists, r.bound_ms) {
            (false, _) => "topic missing".to_string(),
            (true, None) => "unbounded (records never deleted by time)".to_string(),
            (true, Some(b)) => human_ms(b),
        };
        let _ = writeln!(
            out,
            "{} ({}): {verdict}\n  residency bound {bound}, limit {}",
            r.topic,
            r.role,
            human_ms(r.limit_ms)
        );
        let _ = writeln!(
            out,
            "  {:<32} {:<22} {:<22} ok",
            "setting", "current", "desired"
        );
        for row in &r.rows {
            let _ = writeln!(
                out,
                "  {:<32} {:<22} {:<22} {}",
                row.setting,
                row.current.as_deref().unwrap_or("-"),
                row.desired,
                if row.ok { "yes" } else { "NO" }
            );
        }
        let _ = writeln!(out);
    }
    out
}

/// What the bounds assumed, when the broker did not say.
fn assumed(reports: &[TopicReport]) -> Option<String> {
    reports.iter().any(|r| r.check_interval_assumed).then(|| {
        format!(
            "the broker did not return log.retention.check.interval.ms; Kafka's default, {}, \
             is assumed in every residency bound",
            human_ms(crate::retention::bound::DEFAULT_CHECK_INTERVAL_MS)
        )
    })
}

fn show(reports: &[TopicReport], format: TopicsFormat, title: &str) -> Result<(), Failure> {
    let text = match format {
        TopicsFormat::Json => {
            serde_json::to_string_pretty(&serde_json::json!({
                "compliant": reports.iter().all(|r| r.compliant),
                "assumed": assumed(reports),
                "topics": reports,
            }))
            .map_err(Failure::bug)?
                + "\n"
        }
        _ => table(reports, title),
    };
    print_stdout(&text)?;
    Ok(())
}

pub(super) fn run(args: TopicsArgs) -> Result<ExitCode, Failure> {
    let (path, format) = match &args.command {
        TopicsCommand::Plan(c) | TopicsCommand::Apply(c) => (&c.config, c.format),
        TopicsCommand::Check(c) => (&c.common.config, c.common.format),
        TopicsCommand::Render { config, .. } => (config, TopicsFormat::Table),
    };
    let settings = config::load_from(path.as_deref())?;
    if let TopicsCommand::Render {
        format,
        cluster,
        api,
        ..
    } = &args.command
    {
        let text = match format {
            render::RenderFormat::Strimzi => render::strimzi_api(&settings, cluster, *api)?,
            render::RenderFormat::Properties => render::properties(&settings)?,
        };
        print_stdout(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rt = crate::app::runtime()?;
    if let TopicsCommand::Check(c) = &args.command {
        let timeout = check_timeout(&c.timeout)?;
        return check(rt, settings, format, timeout);
    }
    super::reach(&settings)?;
    rt.block_on(async {
        let admin = topics::admin(&settings, Context::default())?;
        match &args.command {
            TopicsCommand::Plan(_) => {
                let reports = topics::judge(&settings, &topics::inspect(&settings, &admin).await?)?;
                show(
                    &reports,
                    format,
                    "Output topics: current vs desired settings (`topics apply` makes the changes)",
                )?;
                Ok(ExitCode::SUCCESS)
            }
            TopicsCommand::Check(_) => unreachable!("handled above"),
            TopicsCommand::Apply(_) => {
                let reports = topics::apply(&settings, &admin).await?;
                show(&reports, format, "Output topics after apply")?;
                Ok(if reports.iter().all(|r| r.compliant) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
            TopicsCommand::Render { .. } => unreachable!("handled above"),
        }
    })
}

/// `--timeout`: a fixed duration longer than 0.
fn check_timeout(text: &str) -> Result<std::time::Duration, super::UsageError> {
    match crate::retention::Ttl::parse(text) {
        Ok(crate::retention::Ttl::Fixed(d)) if d > chrono::Duration::zero() => d
            .to_std()
            .map_err(|e| super::UsageError(format!("--timeout `{text}`: {e}"))),
        _ => Err(super::UsageError(format!(
            "--timeout `{text}` is not a duration longer than 0, e.g. `30s`"
        ))),
    }
}

/// `topics check`: 0 compliant, 1 not compliant — a verdict — and 2 when no verdict
/// could be reached (broker unreachable, authorization or ACL refused, timeout).
fn check(
    rt: tokio::runtime::Runtime,
    settings: config::Settings,
    format: TopicsFormat,
    timeout: std::time::Duration,
) -> Result<ExitCode, Failure> {
    // No verdict: Kafka unavailable for the check, whatever the cause (exit 2).
    let cannot = |why: anyhow::Error| {
        Err(Failure::unavailable(why).context("cannot check the output topics"))
    };
    let no_answer = || {
        cannot(anyhow::anyhow!(
            "no answer within --timeout {} s (broker unreachable?)",
            timeout.as_secs_f64()
        ))
    };
    // `--timeout` bounds the whole check, the first contact with the brokers included
    // (which alone would wait 30 s for an unreachable one).
    let deadline = tokio::time::Instant::now() + timeout;
    let context = Context::default();
    let reached = rt.block_on(async {
        let transport = crate::kafka::check_transport(&settings, &context);
        tokio::time::timeout_at(deadline, transport).await
    });
    // A refusal is seen before the probe's metadata request gives up: that request,
    // still waiting, is not waited for.
    match reached {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            rt.shutdown_background();
            return match e.fault() {
                crate::error::Fault::User => Err(e),
                _ => Err(e.context("cannot check the output topics")),
            };
        }
        Err(_) => {
            rt.shutdown_background();
            return no_answer();
        }
    }
    let task = rt.spawn(async move {
        let admin = topics::admin(&settings, Context::default())?;
        topics::judge(&settings, &topics::inspect(&settings, &admin).await?)
    });
    let result = rt.block_on(async move { tokio::time::timeout_at(deadline, task).await });
    // A metadata request still waiting on an unreachable broker is not waited for.
    rt.shutdown_background();
    match result {
        Ok(Ok(Ok(reports))) => {
            show(&reports, format, "Output topics check")?;
            Ok(if reports.iter().all(|r| r.compliant) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        // A refused property stays the configuration's.
        Ok(Ok(Err(e))) if crate::error::Classify::fault(&e) == crate::error::Fault::User => {
            Err(e.into())
        }
        Ok(Ok(Err(e))) => cannot(e.into()),
        Ok(Err(e)) => cannot(e.into()),
        Err(_) => no_answer(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_compacted_topic_is_shown_unbounded() {
        let current: BTreeMap<String, String> = [
            ("cleanup.policy", "compact"),
            ("retention.ms", "31448940000"),
            ("segment.ms", "86400000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let target = topics::Target {
            topic: "cdr.billing".into(),
            role: "billing",
            limit_ms: 31_622_400_000,
        };
        let broker = topics::bound::BrokerSettings::default();
        let r = topics::evaluate(&target, Some(&current), &broker, 300_000).unwrap();
        let text = table(&[r], "check");
        // Kafka's default check interval was assumed (no broker configs): said once.
        assert!(
            text.contains(
                "Note: the broker did not return log.retention.check.interval.ms; Kafka's \
                 default, 5m, is assumed in every residency bound"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "cdr.billing (billing): NOT COMPLIANT\n  residency bound unbounded (records never deleted by time), limit 366d"
            ),
            "{text}"
        );
    }
}
