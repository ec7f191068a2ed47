//! Acting on the judgement: creating missing output topics, correcting drift (never
//! raising a retention), publishing the verdict to readiness and metrics, and the
//! periodic re-check while the filter runs.

use super::*;
use rdkafka::types::RDKafkaErrorCode;

/// Creates the missing targets with the desired settings.
async fn create_missing(
    settings: &Settings,
    admin: &AdminClient<Context>,
    inspection: &Inspection,
) -> Result<(), TopicsError> {
    let skew = skew_ms(settings);
    for (t, current) in &inspection.current {
        if current.is_some() {
            continue;
        }
        let d = bound::desired(t.limit_ms, &inspection.broker, skew, false).map_err(|e| {
            TopicsError::Unmeetable {
                topic: t.topic.clone(),
                error: e,
            }
        })?;
        create_one(settings, admin, t, &d).await?;
    }
    Ok(())
}

/// Creates one missing target with the desired settings `d`.
async fn create_one(
    settings: &Settings,
    admin: &AdminClient<Context>,
    t: &Target,
    d: &Desired,
) -> Result<(), TopicsError> {
    // Brokers before Kafka 3.6 refuse the unknown after.max.ms: try without it.
    let mut last_error = String::new();
    for with_after_max in [true, false] {
        let configs = desired_rows(d, with_after_max);
        let topic = configs.iter().fold(
            NewTopic::new(
                &t.topic,
                settings.topics.partitions,
                TopicReplication::Fixed(settings.topics.replication_factor),
            ),
            |n, (k, v)| n.set(k, v),
        );
        // The request outlives the broker's operation: librdkafka's default for it is
        // `socket.timeout.ms` (5 s by default, `kafka::CLIENT_DEFAULTS`), shorter than
        // a creation may take.
        let opts = AdminOptions::new()
            .operation_timeout(Some(TIMEOUT))
            .request_timeout(Some(TIMEOUT + std::time::Duration::from_secs(5)));
        let result =
            admin
                .create_topics(&[topic], &opts)
                .await
                .map_err(|e| TopicsError::Create {
                    topic: t.topic.clone(),
                    error: e.to_string(),
                })?;
        match result.into_iter().next() {
            Some(Ok(_)) => {
                tracing::info!(topic = %t.topic, role = t.role, retention_ms = d.retention_ms, segment_ms = d.segment_ms, "created output topic");
                last_error.clear();
                break;
            }
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                last_error.clear();
                break;
            }
            Some(Err((_, code))) => last_error = code.to_string(),
            None => break,
        }
    }
    if !last_error.is_empty() {
        return Err(TopicsError::Create {
            topic: t.topic.clone(),
            error: last_error,
        });
    }
    Ok(())
}

/// The changes that bring existing topics to compliance, never raising a retention.
fn corrections(
    settings: &Settings,
    inspection: &Inspection,
) -> Result<Vec<(String, ConfigPairs)>, TopicsError> {
    let mut changes = Vec::new();
    for report in judge(settings, inspection)? {
        if !report.exists || report.compliant {
            continue;
        }
        let mut set = Vec::new();
        for row in &report.rows {
            if row.ok {
                continue;
            }
            let current = row.current.as_deref().and_then(|v| v.parse::<i64>().ok());
            let desired = row.desired.parse::<i64>().ok();
            let lowers = match (current, desired) {
                // Numeric: only ever lower (an unset or -1 value counts as infinite).
                (Some(c), Some(d)) => c < 0 || c > d,
                _ => true,
            };
            if lowers {
                set.push((row.setting, row.desired.clone()));
            }
        }
        // The bound may still fail with every row "ok" when the topic relies on
        // defaults: then set the numeric settings explicitly.
        if set.is_empty() {
            for row in &report.rows {
                if matches!(row.setting, "retention.ms" | "segment.ms") {
                    let c = row.current.as_deref().and_then(|v| v.parse::<i64>().ok());
                    let d: i64 = row.desired.parse().unwrap_or(i64::MAX);
                    if c.is_none_or(|c| c < 0 || c > d) {
                        set.push((row.setting, row.desired.clone()));
                    }
                }
            }
        }
        if !set.is_empty() {
            changes.push((report.topic.clone(), set));
        }
    }
    Ok(changes)
}

/// `topics apply`: creates missing targets, corrects drifted ones; returns the reports
/// after the changes.
pub async fn apply(
    settings: &Settings,
    admin: &AdminClient<Context>,
) -> Result<Vec<TopicReport>, TopicsError> {
    let inspection = inspect(settings, admin).await?;
    create_missing(settings, admin, &inspection).await?;
    let changes = corrections(settings, &inspection)?;
    for (topic, set) in &changes {
        let list: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tracing::warn!(%topic, "correcting topic settings: {}", list.join(", "));
    }
    let client = admin.inner();
    tokio::task::block_in_place(|| alter::set_topic_configs(client, &changes, TIMEOUT)).map_err(
        |errors| {
            TopicsError::Alter(
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        },
    )?;
    let after = inspect(settings, admin).await?;
    judge(settings, &after)
}

/// Publishes the verdicts as metrics and in the health flag.
pub fn publish(reports: &[TopicReport], health: &crate::health::Health) {
    for r in reports {
        gauge!(COMPLIANT, "topic" => r.topic.clone()).set(if r.compliant { 1.0 } else { 0.0 });
        let bound = r
            .bound_ms
            .map(|b| b as f64 / 1000.0)
            .unwrap_or(f64::INFINITY);
        gauge!(RESIDENCY_BOUND, "topic" => r.topic.clone()).set(bound);
    }
    *health
        .non_compliant_topics
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = reports
        .iter()
        .filter(|r| !r.compliant)
        .map(|r| r.topic.clone())
        .collect();
    health
        .topics_verified
        .store(reports.iter().all(|r| r.compliant), Ordering::SeqCst);
}

/// At start, per `topics.mode`.
pub async fn prepare(settings: &Settings, context: Context) -> Result<(), TopicsError> {
    let health = context.health.clone();
    if settings.topics.mode == TopicsMode::Off {
        health.topics_verified.store(true, Ordering::SeqCst);
        return Ok(());
    }
    let admin = admin(settings, context)?;
    let reports = match settings.topics.mode {
        TopicsMode::Off => unreachable!("handled above"),
        TopicsMode::Create => {
            let inspection = inspect(settings, &admin).await?;
            create_missing(settings, &admin, &inspection).await?;
            judge(settings, &inspect(settings, &admin).await?)?
        }
        TopicsMode::Verify => judge(settings, &inspect(settings, &admin).await?)?,
        TopicsMode::Enforce => apply(settings, &admin).await?,
    };
    publish(&reports, &health);
    let bad: Vec<String> = reports
        .iter()
        .filter(|r| !r.compliant)
        .map(|r| format!("{} ({})", r.topic, r.problems()))
        .collect();
    if bad.is_empty() {
        tracing::info!(topics = reports.len(), "output topics compliant");
    } else if settings.topics.mode == TopicsMode::Verify {
        return Err(TopicsError::NotCompliant(bad.join("; ")));
    } else {
        tracing::warn!("output topics not compliant: {}", bad.join("; "));
    }
    Ok(())
}

/// While running: re-checks every `topics.check_interval`, publishes the verdicts, logs
/// each change of verdict once (naming the setting that drifted), and in `enforce` mode
/// corrects the drift.
pub async fn watch(
    settings: std::sync::Arc<Settings>,
    context: Context,
    shutdown: CancellationToken,
) {
    if settings.topics.mode == TopicsMode::Off {
        return;
    }
    let admin = match admin(&settings, context.clone()) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("topic checks disabled: {e}");
            return;
        }
    };
    let mut last: BTreeMap<String, bool> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(settings.topics.check_interval) => {}
        }
        let result = match settings.topics.mode {
            TopicsMode::Enforce => apply(&settings, &admin).await,
            _ => match inspect(&settings, &admin).await {
                Ok(i) => judge(&settings, &i),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(reports) => {
                publish(&reports, &context.health);
                for r in &reports {
                    let was = last.insert(r.topic.clone(), r.compliant);
                    if was != Some(r.compliant) {
                        if r.compliant {
                            tracing::info!(topic = %r.topic, "topic compliant");
                        } else {
                            tracing::error!(topic = %r.topic, "topic not compliant: {}", r.problems());
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("topic check failed: {e:#}"),
        }
    }
}
