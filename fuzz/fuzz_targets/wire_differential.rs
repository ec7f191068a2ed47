//! Fuzz target: the wire path (`policy::wire`) against the struct path (decode → policy →
//! encode) on arbitrary bytes, under both policy versions: the scanner accepts exactly
//! what prost accepts, both refuse the same records for the same reason, and every
//! forwarded value decodes to exactly the struct path's event, with the same key, expiry
//! and headers. `FUZZ_TARGET=wire_differential scripts/fuzz.sh`.

#![no_main]

use cdr_purpose_filter::decode::{self, InputFormat};
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::retention::Ttl;
use cdr_purpose_filter::wire::{self, WireFilter, WireRefusal, WireScratch};
use cdr_purpose_filter::policy::{self, Outcome, Policy, PurposePolicy, Version};
use cdr_purpose_filter::schema::CdrEvent;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::cell::RefCell;
use std::sync::OnceLock;

struct Fixture {
    now: DateTime<Utc>,
    filters: Vec<(Policy, WireFilter)>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut policies = Vec::new();
        for version in Version::ALL {
            policies.push(Policy::legal_maximum_of(version));
            let removed: Vec<_> = ["served.msisdn", "calling.ip", "location"]
                .iter()
                .flat_map(|n| version.select(n))
                .collect();
            let kept: Vec<_> = ["location.latitude", "terminal.imeisv"]
                .iter()
                .flat_map(|n| version.select(n))
                .collect();
            policies.push(Policy {
                purposes: vec![
                    PurposePolicy::new(version, policy::SECURITY, Ttl::Months(3), removed, vec![]),
                    PurposePolicy::new(version, policy::BILLING, Ttl::Months(12), vec![], kept),
                ],
                ..Policy::legal_maximum_of(version)
            });
        }
        Fixture {
            // A fixed `now`, so that a crash reproduces.
            now: "2026-11-28T12:00:00Z".parse().expect("time"),
            filters: policies
                .into_iter()
                .map(|p| {
                    let f = WireFilter::new(&p).expect("compiles");
                    (p, f)
                })
                .collect(),
        }
    })
}

thread_local! {
    static SCRATCH: RefCell<WireScratch> = RefCell::new(WireScratch::default());
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let oracle = decode::decode(data, InputFormat::Protobuf);
    assert_eq!(
        wire::scans(data),
        data.is_empty() || oracle.is_ok(),
        "the scanner and prost disagree"
    );
    SCRATCH.with_borrow_mut(|scratch| {
        for (policy, filter) in &f.filters {
            let got = filter.apply(data, f.now, scratch);
            assert_eq!(scratch.disagreements, 0);
            let event = match &oracle {
                Err(e) => {
                    assert_eq!(got, Err(WireRefusal::Undecodable(e.clone())));
                    continue;
                }
                Ok((event, _)) => event,
            };
            let evaluation = policy.apply(event, f.now);
            if let Some(r) = evaluation.refusal() {
                assert_eq!(got, Err(WireRefusal::Refused(r)));
                continue;
            }
            assert_eq!(got, Ok(()));
            for ((purpose, outcome), r) in evaluation.outcomes.iter().zip(scratch.records()) {
                assert_eq!(r.purpose, *purpose);
                match outcome {
                    Outcome::Drop(reason) => assert_eq!(r.outcome, Err(*reason)),
                    Outcome::Forward(o) => {
                        assert_eq!(r.outcome, Ok(()));
                        let back = CdrEvent::decode(r.value.as_slice()).expect("decodes");
                        assert_eq!(format!("{back:?}"), format!("{:?}", o.event));
                        assert_eq!(scratch.key(), o.key);
                        assert_eq!(r.expires_at(), o.expires_at);
                        let headers = encode::headers(o, OutputFormat::Protobuf);
                        for ((n, v), (sn, sv)) in r.headers().iter().zip(&headers) {
                            assert_eq!((n, *v), (sn, sv.as_ref()));
                        }
                    }
                }
            }
        }
    });
});
