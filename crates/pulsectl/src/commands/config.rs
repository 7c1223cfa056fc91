//! `pulsectl config get | set`: reads or replaces the scoring configuration.
//!
//! The round trip is `config get > scoring.json`, edit, `config set --file scoring.json`: the
//! file is a pulse.v1.ScoringConfig in the protobuf JSON mapping. Its `version` makes the
//! update conditional (FAILED_PRECONDITION when someone else changed the config in between);
//! set it to 0 to replace unconditionally.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use pulse_proto::v1;

use crate::gateway::Gateway;
use crate::output::{self, Output};
use crate::rpc_error::RpcResultExt;

/// Arguments of `pulsectl config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do with the config.
    #[command(subcommand)]
    pub action: ConfigAction,
}

/// `get` or `set`.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Prints the current scoring config as pulse.v1.ScoringConfig JSON (GetScoringConfig).
    Get,
    /// Replaces the scoring config with a JSON file (UpdateScoringConfig) and prints the stored
    /// one with its new version.
    Set {
        /// A pulse.v1.ScoringConfig in the protobuf JSON mapping, e.g. from `config get`.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

/// Runs `pulsectl config`.
pub async fn run(address: &str, output: Output, args: &ConfigArgs) -> Result<()> {
    let config = match &args.action {
        ConfigAction::Get => {
            let gateway = Gateway::connect(address).await?;
            let request = v1::GetScoringConfigRequest {};
            gateway.admin().get_scoring_config(request).await.rpc("GetScoringConfig")?.into_inner()
        }
        ConfigAction::Set { file } => {
            let config = read_config(file)?;
            let gateway = Gateway::connect(address).await?;
            let request = v1::UpdateScoringConfigRequest { config: Some(config) };
            gateway.admin().update_scoring_config(request).await.rpc("UpdateScoringConfig")?.into_inner()
        }
    };
    if output.is_json() {
        return output::print_json(&config);
    }
    // Pretty JSON is the readable form, and the one to edit and send back.
    output::print_line(serde_json::to_string_pretty(&config).context("formatting the config")?)
}

/// Reads a ScoringConfig JSON file; an error names the field (`kindWeights.visit`).
fn read_config(path: &PathBuf) -> Result<v1::ScoringConfig> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    let config: v1::ScoringConfig = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = error.path().to_string();
        anyhow::anyhow!("{name}: {field}: {}", error.into_inner())
    })?;
    deserializer.end().with_context(|| format!("{name}: trailing characters after the config"))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proto_json_and_names_a_bad_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scoring.json");
        std::fs::write(&file, r#"{"version":"3","levelHigh":75,"kindWeights":{"visit":0.5}}"#).unwrap();
        let config = read_config(&file).unwrap();
        assert_eq!(config.version, 3);
        assert_eq!(config.level_high, 75.0);
        assert_eq!(config.kind_weights.unwrap().visit, 0.5);

        std::fs::write(&file, r#"{"kindWeights":{"visit":"lots"}}"#).unwrap();
        let err = read_config(&file).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: kindWeights.visit: ", file.display())), "{err}");
    }
}
