//! `pulsectl watch`: streams segment transitions as they are recorded (`WatchTransitions`),
//! one line each as it arrives, with the transition's resume token in hex: pass the last one
//! to `--resume-token` to continue exactly after it. `--limit` stops after that many.
//!
//! With `--json` each line is the pulse.v1.Transition in the protobuf JSON mapping, where the
//! token is base64 (the mapping of `bytes`).

use anyhow::Result;
use clap::Args;
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output, names, segment_or_none, time_ms};
use crate::rpc_error::RpcResultExt;
use crate::values;

/// Arguments of `pulsectl watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only transitions of this dimension (repeatable) [default: every dimension].
    #[arg(long = "dimension", value_name = "DIMENSION", value_parser = values::dimension)]
    pub dimensions: Vec<v1::Dimension>,

    /// Only transitions from or to this segment (repeatable) [default: every segment].
    #[arg(long = "segment", value_name = "SEGMENT")]
    pub segments: Vec<String>,

    /// Resume right after the transition that carried this token (hex, as printed)
    /// [default: only transitions recorded from now on].
    #[arg(long, value_name = "HEX", value_parser = values::hex_bytes)]
    pub resume_token: Option<Vec<u8>>,

    /// Stop after this many transitions [default: never].
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

/// Runs `pulsectl watch`.
pub async fn run(address: &str, output: Output, args: &WatchArgs) -> Result<()> {
    let gateway = Gateway::connect(address).await?;
    if args.limit == Some(0) {
        return Ok(());
    }
    let request = v1::WatchTransitionsRequest {
        dimensions: args.dimensions.iter().map(|d| *d as i32).collect(),
        segments: args.segments.clone(),
        resume_token: args.resume_token.clone().unwrap_or_default(),
    };
    let mut transitions =
        gateway.activity().watch_transitions(request).await.rpc("WatchTransitions")?.into_inner();
    let mut received = 0u64;
    while let Some(transition) = transitions.message().await.rpc("WatchTransitions")? {
        if output.is_json() {
            output::print_json(&transition)?;
        } else {
            output::print_line(line(&transition))?;
        }
        received += 1;
        if args.limit.is_some_and(|limit| received >= limit) {
            break;
        }
    }
    Ok(())
}

/// `AT CUSTOMER DIMENSION FROM -> TO cause=CAUSE token=HEX`.
fn line(t: &v1::Transition) -> String {
    format!(
        "{}  {}  {}  {} -> {}  cause={}  token={}",
        time_ms(t.at_ms),
        t.customer_id,
        names::dimension(t.dimension),
        segment_or_none(&t.from),
        segment_or_none(&t.to),
        t.cause,
        values::hex(&t.resume_token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_a_hex_token() {
        let transition = v1::Transition {
            customer_id: "alice".into(),
            dimension: v1::Dimension::Lifecycle as i32,
            from: String::new(),
            to: "NEW".into(),
            at_ms: 0,
            cause: "e1".into(),
            resume_token: vec![1, 0xab],
        };
        assert_eq!(
            line(&transition),
            "1970-01-01T00:00:00.000Z  alice  LIFECYCLE  (none) -> NEW  cause=e1  token=01ab"
        );
    }
}
