//! `gen`: synthetic events to a file or stdout.

use super::{parse_now, GenArgs};
use crate::encode::{self, OutputFormat};
use crate::gen::Generator;
use prost::Message;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

pub(super) fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    let now = parse_now(args.now.as_deref())?;
    let out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", p.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut generator = Generator::new(args.seed, now);
    let mut buf = Vec::with_capacity(1024);
    let result = (|| -> io::Result<()> {
        for _ in 0..args.count {
            let event = generator.next_event();
            match args.format {
                OutputFormat::Json => {
                    encode::encode_event(&event, OutputFormat::Json, &mut buf);
                    buf.push(b'\n');
                }
                OutputFormat::Protobuf => {
                    buf.clear();
                    event
                        .encode_length_delimited(&mut buf)
                        .expect("a Vec grows to fit any message");
                }
            }
            out.write_all(&buf)?;
        }
        out.flush()
    })();
    match result {
        Ok(()) => {
            if let Some(p) = &args.out {
                eprintln!("gen: wrote {} events to {}", args.count, p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::anyhow!("gen: write failed: {e}")),
    }
}
