//! Fuzz target: the pipeline's JSON fast paths against the struct path on arbitrary
//! bytes read as JSON input: `Transform::process` (the fast parser into canonical
//! protobuf, the wire path, the JSON writer; serde where the fast parser declines) and
//! `Transform::process_struct` (serde → policy → encoder) give the same records — topics,
//! keys, headers, timestamps, values (decoded) — and the same dead letters, for protobuf
//! and JSON output. And JSON out (written from the parsed event, without protobuf) is
//! byte for byte the JSON `json::write_json` writes from the protobuf output's values.
//! `FUZZ_TARGET=json_differential scripts/fuzz.sh`.

#![no_main]

use cdr_purpose_filter::config::{self, Settings};
use cdr_purpose_filter::decode;
use cdr_purpose_filter::pipeline::records::{Outgoing, Source, Transform};
use cdr_purpose_filter::schema::CdrEvent;
use cdr_purpose_filter::telemetry::Stats;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::sync::{Arc, OnceLock};

struct Fixture {
    now: DateTime<Utc>,
    /// JSON in; protobuf out, JSON out.
    transforms: Vec<(Transform, bool)>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let transforms = ["protobuf", "json"]
            .into_iter()
            .map(|output| {
                let toml = format!(
                    "[input]\nformat = \"json\"\n[output]\nformat = \"{output}\"\n\
                     [purposes.billing]\n[purposes.security]\n[topics]\nmode = \"off\"\n"
                );
                let settings =
                    Settings::validate(config::parse(&toml, &[]).expect("parses")).expect("valid");
                (Transform::new(Arc::new(settings)), output == "json")
            })
            .collect();
        Fixture {
            // A fixed `now`, so that a crash reproduces.
            now: "2026-11-28T12:00:00Z".parse().expect("time"),
            transforms,
        }
    })
}

fn headers(o: &Outgoing) -> Vec<(String, Vec<u8>)> {
    o.headers
        .entries()
        .map(|(name, value)| (name.to_string(), value.to_vec()))
        .collect()
}

/// An output value as the event it holds (or the error reading it).
fn event(value: &[u8], json: bool) -> String {
    if json {
        format!(
            "{:?}",
            decode::decode_json(value).map_err(|e| e.to_string())
        )
    } else {
        format!("{:?}", CdrEvent::decode(value).map_err(|e| e.to_string()))
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let source = Source {
        topic: Arc::from("cdr.raw"),
        partition: 0,
        offset: 7,
    };
    let mut fast = Vec::new();
    for (t, json_out) in &f.transforms {
        let (old_stats, new_stats) = (Stats::default(), Stats::default());
        let (mut old, mut new) = (Vec::new(), Vec::new());
        t.process_struct(&source, data, f.now, &old_stats, &mut old);
        t.process(&source, data, f.now, &new_stats, &mut new);
        assert_eq!(old.len(), new.len(), "the number of records");
        for (o, n) in old.iter().zip(&new) {
            assert_eq!(o.topic, n.topic);
            assert_eq!(o.key, n.key);
            if o.topic == *t.dead_letter_topic() {
                // A dead letter's time headers are its own.
                let names = |h: Vec<(String, Vec<u8>)>| -> Vec<String> {
                    h.into_iter().map(|(k, _)| k).collect()
                };
                assert_eq!(names(headers(o)), names(headers(n)));
                continue;
            }
            assert_eq!(headers(o), headers(n));
            assert_eq!(o.timestamp_ms, n.timestamp_ms);
            assert_eq!(event(&o.value, *json_out), event(&n.value, *json_out));
        }
        fast.push(new);
        assert_eq!(old_stats.produced(), new_stats.produced());
        assert_eq!(old_stats.dropped(), new_stats.dropped());
        assert_eq!(
            old_stats.dead_letters.lock().expect("lock").clone(),
            new_stats.dead_letters.lock().expect("lock").clone()
        );
    }
    // JSON out against the JSON of protobuf out: the same bytes.
    // (A record JSON cannot hold is a dead letter there and not with protobuf out; the
    // comparison with the struct path above covers it.)
    let (pb, json) = (&fast[0], &fast[1]);
    let dead_letters = f.transforms[1].0.dead_letter_topic();
    if pb.len() != json.len() || json.iter().any(|j| j.topic == *dead_letters) {
        return;
    }
    for (p, j) in pb.iter().zip(json) {
        let mut want = Vec::new();
        cdr_purpose_filter::json::write_json(&p.value, &mut want).expect("written");
        assert_eq!(j.value, want, "JSON out differs from the JSON of protobuf out");
    }
});
