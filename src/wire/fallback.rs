//! The struct path inside the wire path: for a record the scanner refuses, prost's
//! message; and the outputs of [`crate::policy::Policy::apply_owned`] written into a [`WireScratch`].

use super::record::{unix, WireRecord};
use super::{WireFilter, WireRefusal, WireScratch};
use crate::decode;
use crate::encode::{self, OutputFormat};
use crate::schema::CdrEvent;
use chrono::{DateTime, Utc};

impl WireFilter {
    /// The scan refused the record: prost's message; if prost accepts it after all (a
    /// bug of the scanner), the struct path decides.
    #[cold]
    pub(super) fn refused_by_scan(
        &self,
        input: &[u8],
        prefix: &[u8],
        now: DateTime<Utc>,
        out: &mut WireScratch,
    ) -> Result<(), WireRefusal> {
        let (event, _) = match decode::decode(input, decode::InputFormat::Protobuf) {
            Err(e) => return Err(WireRefusal::Undecodable(e)),
            Ok(e) => e,
        };
        out.disagreements += 1;
        tracing::error!("the wire scanner refused a record prost decodes; struct path used");
        self.apply_struct(event, prefix, now, out)
    }

    /// The struct path into the wire path's outputs.
    pub(super) fn apply_struct(
        &self,
        event: CdrEvent,
        prefix: &[u8],
        now: DateTime<Utc>,
        out: &mut WireScratch,
    ) -> Result<(), WireRefusal> {
        out.input_presence = crate::telemetry::presence(&event);
        let evaluation = self.policy.apply_owned(event, now);
        if let Some(r) = evaluation.refusal() {
            return Err(WireRefusal::Refused(r));
        }
        out.records = evaluation
            .outcomes
            .into_iter()
            .map(|(purpose, o)| {
                let mut r = WireRecord::new(purpose);
                match o {
                    crate::policy::Outcome::Drop(reason) => r.outcome = Err(reason),
                    crate::policy::Outcome::Forward(f) => {
                        encode::encode_framed(
                            &f.event,
                            OutputFormat::Protobuf,
                            prefix,
                            &mut r.value,
                        )
                        .expect("protobuf encoding never fails");
                        r.legal_basis = f.legal_basis;
                        r.policy_version = f.policy_version;
                        r.forward(unix(f.expires_at), f.timestamp_ms);
                        r.presence = crate::telemetry::presence(&f.event);
                        out.key.clear();
                        out.key.push_str(&f.key);
                    }
                }
                r
            })
            .collect();
        Ok(())
    }
}
