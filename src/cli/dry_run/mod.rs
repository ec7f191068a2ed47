//! `dry-run`: what `run` would do with events from a file or stdin, no Kafka — or with the
//! records of a Kafka topic, read-only (`--from-topic`).

pub mod judge;

use super::delimited::{Delimited, ReadError};
use super::{parse_now, DryRunArgs};
use crate::config;
use crate::decode::InputFormat;
use crate::encode::{self, OutputFormat};
use crate::error::Failure;
use crate::retention::rfc3339;
use judge::{Judge, Line, Verdict};
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
    judge: Judge<'a>,
    now: chrono::DateTime<chrono::Utc>,
    out: W,
    summary: Summary,
}

impl<W: Write> DryRun<'_, W> {
    fn record(&mut self, bytes: &[u8], format: InputFormat) -> io::Result<()> {
        self.summary.events += 1;
        let lines = self.judge.judge(bytes, format, self.now);
        if lines.first().is_some_and(|l| {
            matches!(&l.verdict, Verdict::DeadLetter(d) if d.reason == "undecodable" || d.reason == "unexpected_schema")
        }) {
            self.summary.undecodable += 1;
        }
        for line in &lines {
            let purpose = line.purpose.name();
            let counted = match &line.verdict {
                Verdict::Forward(_) => "forward",
                Verdict::Drop(reason) => reason.as_str(),
                Verdict::DeadLetter(d) => d.reason,
            };
            *self.summary.outcomes.entry((purpose, counted)).or_default() += 1;
            writeln!(self.out, "{}", to_json(line, self.judge.output_format()))?;
        }
        Ok(())
    }
}

/// dry-run's line for one purpose: `event_id`, `purpose`, `outcome` (`forward`, `drop`
/// or `dead_letter`), `reason`, `expires_at`, `record`; a forward adds `topic`, `key`,
/// `timestamp_ms` and `headers`, a drop or dead letter its `message` (and `schema_id`
/// for `unexpected_schema`).
fn to_json(line: &Line, output_format: OutputFormat) -> serde_json::Value {
    let purpose = line.purpose.name();
    let outcome = line.verdict.outcome();
    match &line.verdict {
        Verdict::Forward(f) => {
            let headers: serde_json::Map<String, serde_json::Value> = f
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_str().into()))
                .collect();
            let mut json = json!({
                "event_id": line.event_id, "purpose": purpose, "outcome": outcome,
                "reason": null, "expires_at": rfc3339(f.expires_at),
                "record": null,
                "topic": f.topic, "key": f.key,
                "timestamp_ms": f.timestamp_ms, "headers": headers,
            });
            // The output as canonical JSON. A protobuf output can hold what JSON cannot
            // (an enum number the schema does not know): `run` writes it; shown as such.
            match encode::to_json_value(&f.event) {
                Ok(record) => json["record"] = record,
                Err(e) => {
                    debug_assert_eq!(output_format, OutputFormat::Protobuf);
                    json["message"] = format!("record not shown: {}", e.reason).into();
                }
            }
            json
        }
        Verdict::Drop(reason) => json!({
            "event_id": line.event_id, "purpose": purpose, "outcome": outcome,
            "reason": reason.as_str(), "message": reason.message(),
            "expires_at": null, "record": null,
        }),
        Verdict::DeadLetter(d) => {
            let mut json = json!({
                "event_id": line.event_id, "purpose": purpose, "outcome": outcome,
                "reason": d.reason, "message": d.message,
                "expires_at": null, "record": null,
            });
            if let Some(id) = d.schema_id {
                json["schema_id"] = id.into();
            }
            json
        }
    }
}

pub(super) fn run(args: DryRunArgs) -> Result<ExitCode, Failure> {
    let settings = config::load_from(args.config.as_deref())?;
    let now = parse_now(args.now.as_deref())?;
    let stdout = io::stdout().lock();
    let mut run = DryRun {
        judge: Judge::new(&settings),
        now,
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
        if topic_read_ended(result, flushed)? {
            run.summary.print(&settings.policy);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let input: Box<dyn Read> = match &args.input {
        Some(p) => Box::new(super::paths::open_input(p).map_err(|e| e.context("dry-run"))?),
        None => Box::new(io::stdin().lock()),
    };
    let mut input = BufReader::with_capacity(1 << 16, input);
    let format = input_format(&mut input, args.format, settings.input_format)?;
    let result = run.records(&mut input, format);
    if input_ended(result, &mut run.out)? {
        run.summary.print(&settings.policy);
    }
    Ok(ExitCode::SUCCESS)
}

/// How a `--from-topic` read ended: `Ok(true)` read to the end (the summary follows),
/// `Ok(false)` the output pipe was closed (not an error, no summary).
fn topic_read_ended(result: Result<(), Failure>, flushed: io::Result<()>) -> Result<bool, Failure> {
    match (result, flushed) {
        // `dry-run --from-topic ... | head` closes the pipe: not an error.
        (Err(e), _)
            if e.error()
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(false)
        }
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        (Ok(()), Err(e)) => Err(e.into()),
        (Ok(()), Ok(())) => Ok(true),
    }
}

/// The format to read a file or stdin in: the one given, else the configured one, else
/// (both `auto`) JSON lines when the first byte that is not whitespace is `{`.
fn input_format(
    input: &mut impl BufRead,
    given: InputFormat,
    configured: InputFormat,
) -> Result<InputFormat, Failure> {
    Ok(match (given, configured) {
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
    })
}

impl<W: Write> DryRun<'_, W> {
    /// Every record of a file or stdin, then the output flushed.
    fn records(&mut self, input: &mut impl BufRead, format: InputFormat) -> Result<(), ReadError> {
        match format {
            // Binary records (a framed record's schema id can hold a newline byte):
            // length-delimited.
            InputFormat::Protobuf
            | InputFormat::Auto
            | InputFormat::ConfluentProtobuf
            | InputFormat::ConfluentJson => {
                let mut records = Delimited::new(input);
                let mut buf = Vec::new();
                while records.next_into(&mut buf)? {
                    self.record(&buf, format)?;
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
                    self.record(&line, InputFormat::Json)?;
                }
            }
        }
        Ok(self.out.flush()?)
    }
}

/// How reading a file or stdin ended: `Ok(true)` read to the end (the summary follows),
/// `Ok(false)` the output pipe was closed (not an error, no summary).
fn input_ended(result: Result<(), ReadError>, out: &mut impl Write) -> Result<bool, Failure> {
    match result {
        Ok(()) => Ok(true),
        // `dry-run ... | head` closes the pipe: not an error.
        Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(ReadError::Io(e)) => Err(Failure::world(e).context("dry-run: reading input failed")),
        // Input that is not in the format named: the lines of the records before it are
        // printed, then the error (exit 2).
        Err(ReadError::Framing(e)) => {
            match out.flush() {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    return Err(Failure::world(e).context("dry-run: writing the output failed"))
                }
                _ => {}
            }
            Err(Failure::from(e).context("dry-run"))
        }
    }
}
