//! `dry-run`: the policy applied to events from a file or stdin, no Kafka — or to the
//! records of a Kafka topic, read-only (`--from-topic`).

use super::delimited::{Delimited, ReadError};
use super::{parse_now, DryRunArgs};
use crate::config;
use crate::decode::{self, InputFormat};
use crate::encode::{self, OutputFormat};
use crate::error::Failure;
use crate::policy::{Outcome, Policy};
use crate::retention::rfc3339;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::process::ExitCode;

/// Counts per purpose and outcome, printed to stderr at the end.
#[derive(Default)]
struct Summary {
    events: u64,
    undecodable: u64,
    outcomes: BTreeMap<(&'static str, &'static str), u64>,
}

impl Summary {
    fn print(&self, policy: &crate::policy::Policy) {
        let mut s = format!(
            "dry-run: policy {} ({} legal time): {} records read, {} undecodable",
            policy.version(),
            policy.legal_time,
            self.events,
            self.undecodable
        );
        for ((purpose, outcome), n) in &self.outcomes {
            s.push_str(&format!("; {purpose} {outcome}: {n}"));
        }
        super::notice(&s);
    }
}

struct DryRun<'a, W: Write> {
    policy: &'a Policy,
    schema_ids: &'a [u32],
    /// The configured `output.format`: the `content-type` header `run` writes with it.
    output_format: OutputFormat,
    now: chrono::DateTime<chrono::Utc>,
    topics: BTreeMap<&'static str, String>,
    out: W,
    summary: Summary,
}

impl<W: Write> DryRun<'_, W> {
    fn record(&mut self, bytes: &[u8], format: InputFormat) -> io::Result<()> {
        self.summary.events += 1;
        let event = match decode::decode_record(bytes, format, self.schema_ids) {
            Ok(decoded) => decoded.event,
            Err(e) => {
                self.summary.undecodable += 1;
                for p in &self.policy.purposes {
                    let purpose = p.legal.purpose.name();
                    *self
                        .summary
                        .outcomes
                        .entry((purpose, e.reason()))
                        .or_default() += 1;
                    let mut line = json!({
                        "event_id": null, "purpose": purpose, "outcome": "drop",
                        "reason": e.reason(), "error": e.to_string(),
                        "expires_at": null, "record": null,
                    });
                    if let Some(id) = e.schema_id() {
                        line["schema_id"] = id.into();
                    }
                    writeln!(self.out, "{line}")?;
                }
                return Ok(());
            }
        };
        let evaluation = self.policy.apply(&event, self.now);
        for (purpose, outcome) in &evaluation.outcomes {
            let purpose = purpose.name();
            let encoded = match outcome {
                Outcome::Forward(r) => encode::to_json_value(&r.event).map(Some),
                Outcome::Drop(_) => Ok(None),
            };
            let line = match (outcome, encoded) {
                (Outcome::Forward(_), Err(e)) => {
                    *self
                        .summary
                        .outcomes
                        .entry((purpose, "unencodable"))
                        .or_default() += 1;
                    json!({
                        "event_id": event.event_id, "purpose": purpose, "outcome": "drop",
                        "reason": "unencodable", "message": e.to_string(),
                        "expires_at": null, "record": null,
                    })
                }
                (Outcome::Forward(r), Ok(record)) => {
                    *self
                        .summary
                        .outcomes
                        .entry((purpose, "forward"))
                        .or_default() += 1;
                    // The headers `run` writes for this configuration, from the same
                    // function.
                    let headers: serde_json::Map<String, serde_json::Value> =
                        encode::headers(r, self.output_format)
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v.into()))
                            .collect();
                    json!({
                        "event_id": event.event_id, "purpose": purpose, "outcome": "forward",
                        "reason": null, "expires_at": rfc3339(r.expires_at),
                        "record": record,
                        "topic": self.topics.get(purpose), "key": r.key,
                        "timestamp_ms": r.timestamp_ms, "headers": headers,
                    })
                }
                (Outcome::Drop(reason), _) => {
                    *self
                        .summary
                        .outcomes
                        .entry((purpose, reason.as_str()))
                        .or_default() += 1;
                    json!({
                        "event_id": if event.event_id.is_empty() { None } else { Some(&event.event_id) },
                        "purpose": purpose, "outcome": "drop", "reason": reason.as_str(),
                        "message": reason.message(), "expires_at": null, "record": null,
                    })
                }
            };
            writeln!(self.out, "{line}")?;
        }
        Ok(())
    }
}

pub(super) fn run(args: DryRunArgs) -> Result<ExitCode, Failure> {
    let settings = config::load_from(args.config.as_deref())?;
    let now = parse_now(args.now.as_deref())?;
    let topics = settings
        .purposes
        .iter()
        .map(|p| (p.purpose.name(), p.topic.clone()))
        .collect();
    let stdout = io::stdout().lock();
    let mut run = DryRun {
        policy: &settings.policy,
        schema_ids: &settings.input_schema_ids,
        output_format: settings.output_format,
        now,
        topics,
        out: BufWriter::new(stdout),
        summary: Summary::default(),
    };
    if let Some(topic) = &args.from_topic {
        let format = match args.format {
            InputFormat::Auto => settings.input_format,
            given => given,
        };
        let result = super::from_topic::read(&settings, topic, args.count, |bytes| {
            run.record(bytes, format)
        });
        let flushed = run.out.flush();
        match (result, flushed) {
            // `dry-run --from-topic ... | head` closes the pipe: not an error.
            (Err(e), _)
                if e.error()
                    .downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
            {
                return Ok(ExitCode::SUCCESS)
            }
            (Err(e), _) => return Err(e),
            (Ok(()), Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                return Ok(ExitCode::SUCCESS)
            }
            (Ok(()), Err(e)) => return Err(e.into()),
            (Ok(()), Ok(())) => {}
        }
        run.summary.print(run.policy);
        return Ok(ExitCode::SUCCESS);
    }
    let input: Box<dyn Read> = match &args.input {
        Some(p) => Box::new(super::paths::open_input(p).map_err(|e| e.context("dry-run"))?),
        None => Box::new(io::stdin().lock()),
    };
    let mut input = BufReader::with_capacity(1 << 16, input);
    let format = match (args.format, settings.input_format) {
        (InputFormat::Auto, InputFormat::Auto) => {
            // Peek: a JSON line starts with `{` (or whitespace); anything else is
            // length-delimited records, each bare protobuf or Schema Registry framed.
            let first = input
                .fill_buf()?
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .copied();
            if first.is_none_or(|b| b == b'{') {
                InputFormat::Json
            } else {
                InputFormat::Auto
            }
        }
        (InputFormat::Auto, configured) => configured,
        (given, _) => given,
    };
    let result = (|| -> Result<(), ReadError> {
        match format {
            // Binary records (a framed record's schema id can hold a newline byte):
            // length-delimited.
            InputFormat::Protobuf
            | InputFormat::Auto
            | InputFormat::ConfluentProtobuf
            | InputFormat::ConfluentJson => {
                let mut records = Delimited::new(&mut input);
                let mut buf = Vec::new();
                while records.next_into(&mut buf)? {
                    run.record(&buf, format)?;
                }
            }
            InputFormat::Json => {
                let mut line = Vec::new();
                loop {
                    line.clear();
                    if input.read_until(b'\n', &mut line)? == 0 {
                        break;
                    }
                    if line.trim_ascii().is_empty() {
                        continue;
                    }
                    run.record(&line, InputFormat::Json)?;
                }
            }
        }
        Ok(run.out.flush()?)
    })();
    match result {
        Ok(()) => {}
        // `dry-run ... | head` closes the pipe: not an error.
        Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            return Ok(ExitCode::SUCCESS)
        }
        Err(ReadError::Io(e)) => {
            return Err(Failure::world(e).context("dry-run: reading input failed"))
        }
        // Input that is not in the format named: the lines of the records before it are
        // printed, then the error (exit 2).
        Err(ReadError::Framing(e)) => {
            match run.out.flush() {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    return Err(Failure::world(e).context("dry-run: writing the output failed"))
                }
                _ => {}
            }
            return Err(Failure::from(e).context("dry-run"));
        }
    }
    run.summary.print(run.policy);
    Ok(ExitCode::SUCCESS)
}
