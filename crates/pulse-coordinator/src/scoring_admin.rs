//! [`ScoringAdmin`]: changes of the replicated scoring configuration — config updates, custom
//! segment definitions, the BG/NBD fit and the RFM edges.
//!
//! Every change is a new config version `newest + 1`, installed by proposing one
//! `ShardCommand::SetConfig` (config and every segment definition) to every shard. Changes made
//! through this process are serialised by one lock, so two of them never derive from the same
//! version. When a proposal fails on some shard the change fails, and the shards disagree until
//! the next change (which starts from the highest version any shard holds and goes to every
//! shard) or until [`ScoringAdmin::reconcile`] at startup proposes the highest version to the
//! laggards.

use std::future::Future;
use std::sync::Arc;

use pulse_node::ShardCommand;
use pulse_proto::v1;
use pulse_scoring::{
    CompiledSegment, FieldViolation, HistoryCounts, RfmEdges, RfmSketch, ScoringConfig, ScoringError,
    SegmentDefinition, fit,
};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::error::{Result, ServerError};
use crate::local_shards::LocalShards;

/// The config and custom segment definitions one shard has in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigInForce {
    /// The config, with its version.
    pub config: ScoringConfig,
    /// Every custom segment definition, ordered by id.
    pub segments: Vec<SegmentDefinition>,
}

impl ConfigInForce {
    /// The config version.
    pub fn version(&self) -> u64 {
        self.config.version
    }
}

/// The shards a [`ScoringAdmin`] administers: this process's ([`LocalShards`], standalone) or a
/// cluster's (every shard through its leader).
pub trait ConfigShards: Clone + Send + Sync + 'static {
    /// Every shard's config in force after a read barrier, as `(shard_id, config)`.
    fn configs(&self) -> impl Future<Output = Result<Vec<(u64, ConfigInForce)>>> + Send;
    /// The grouped purchase histories of every shard's customers at `as_of_ms`, merged.
    fn history_counts(&self, as_of_ms: i64) -> impl Future<Output = Result<HistoryCounts>> + Send;
    /// The RFM sketch of every shard's customers at `as_of_ms`, merged.
    fn rfm_sketch(&self, as_of_ms: i64) -> impl Future<Output = Result<RfmSketch>> + Send;
    /// Proposes `command` to the shards `shard_ids` at once and waits for all; the first
    /// failure is the error.
    fn propose_each(
        &self,
        shard_ids: &[u64],
        command: &ShardCommand,
    ) -> impl Future<Output = Result<()>> + Send;
    /// After the manual clock moved to `now_ms`: proposes `Tick { now_ms }` to every shard,
    /// again to each shard whose tick used its whole budget `max_customers`, until nothing is
    /// left due (or after `max_rounds`).
    fn settle(
        &self,
        now_ms: i64,
        max_customers: u32,
        max_rounds: usize,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Changes the scoring configuration of every shard, one change at a time (per process).
/// Cheap to clone; clones share the change lock.
#[derive(Debug, Clone)]
pub struct ScoringAdmin<S = LocalShards> {
    shards: S,
    clock: Clock,
    /// Held for the whole of a change (read, derive, propose everywhere).
    changes: Arc<Mutex<()>>,
}

/// The RFM edges just installed and the number of customers they were computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshedEdges {
    /// The edges, with their new version.
    pub edges: RfmEdges,
    /// Customers with a purchase that the edges were computed from.
    pub customers: u64,
}

impl<S: ConfigShards> ScoringAdmin<S> {
    /// Administers the scoring config of `shards`; `clock` is "now" for fits and refreshes.
    pub fn new(shards: S, clock: Clock) -> Self {
        Self { shards, clock, changes: Arc::new(Mutex::new(())) }
    }

    /// The shards administered.
    pub fn shards(&self) -> &S {
        &self.shards
    }

    /// The config and segment definitions in force: the newest version any shard has applied
    /// (after a read barrier on every shard, so an acknowledged change is always visible).
    pub async fn current(&self) -> Result<ConfigInForce> {
        Ok(newest(self.shards.configs().await?))
    }

    /// Replaces the whole config (segment definitions are kept). `wire` is validated entirely
    /// (every bad field named `config.<field>`); its `version` is the version it was derived
    /// from, 0 to replace unconditionally. Returns the stored config with its new version.
    pub async fn update_config(&self, wire: Option<v1::ScoringConfig>) -> Result<ScoringConfig> {
        let wire = wire.ok_or_else(|| ServerError::InvalidArgument {
            field: "config".into(),
            description: "must be set".into(),
        })?;
        let requested = wire.version;
        let replacement = ScoringConfig::try_from(wire).map_err(|error| ServerError::InvalidFields {
            violations: error
                .violations()
                .into_iter()
                .map(|v| FieldViolation::new(format!("config.{}", v.field), v.description))
                .collect(),
        })?;
        let (config, ()) = self
            .change(|config, _| {
                if requested != 0 && requested != config.version {
                    return Err(ServerError::StaleConfigVersion { requested, stored: config.version });
                }
                *config = replacement;
                Ok(())
            })
            .await?;
        Ok(config)
    }

    /// Creates or replaces (by id) a custom segment definition, checked and compiled first
    /// (a bad field is named `definition.<field>` with the CEL parser's message).
    pub async fn put_segment(&self, definition: Option<v1::SegmentDefinition>) -> Result<SegmentDefinition> {
        let definition = SegmentDefinition::from(definition.ok_or_else(|| ServerError::InvalidArgument {
            field: "definition".into(),
            description: "must be set".into(),
        })?);
        CompiledSegment::compile(definition.clone()).map_err(|error| match error {
            ScoringError::InvalidRule { field, message, .. } => {
                ServerError::InvalidArgument { field: format!("definition.{field}"), description: message }
            }
            other => {
                ServerError::InvalidArgument { field: "definition".into(), description: other.to_string() }
            }
        })?;
        let installed = definition.clone();
        self.change(move |_, segments| {
            segments.retain(|existing| existing.id != definition.id);
            segments.push(definition);
            segments.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(())
        })
        .await?;
        Ok(installed)
    }

    /// Deletes a custom segment definition; [`ServerError::SegmentNotFound`] for an unknown id.
    pub async fn delete_segment(&self, id: &str) -> Result<()> {
        if id.is_empty() {
            return Err(ServerError::InvalidArgument {
                field: "id".into(),
                description: "must not be empty".into(),
            });
        }
        self.change(|_, segments| {
            let before = segments.len();
            segments.retain(|existing| existing.id != id);
            if segments.len() == before {
                return Err(ServerError::SegmentNotFound { segment: id.to_owned() });
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Fits the BG/NBD (or modified BG/NBD) parameters on the purchase histories of every
    /// customer measured to `as_of_ms` (0 = now) and installs them. Returns the fitted model
    /// with the installing config version.
    pub async fn fit_lifetime_model(&self, as_of_ms: i64, modified: bool) -> Result<v1::LifetimeModel> {
        let as_of_ms = self.as_of(as_of_ms)?;
        let counts = self.shards.history_counts(as_of_ms).await?;
        let fitted = blocking(move || {
            if counts.customers() == 0 {
                return Err(ServerError::NoPurchases { operation: "FitLifetimeModel" });
            }
            fit(&counts, modified).map_err(|e| ServerError::ModelFit { reason: e.to_string() })
        })
        .await?;
        let params = fitted.params;
        let (config, ()) = self
            .change(|config, _| {
                config.lifetime = Some(params);
                Ok(())
            })
            .await?;
        info!(
            version = config.version,
            customers = fitted.customers,
            iterations = fitted.iterations,
            "lifetime model fitted and installed"
        );
        Ok(v1::LifetimeModel::new(&params, fitted.customers, fitted.log_likelihood, config.version))
    }

    /// Recomputes the RFM quintile edges from every shard's customers now and installs them
    /// with the previous edges' version + 1.
    pub async fn refresh_rfm_edges(&self) -> Result<RefreshedEdges> {
        self.refresh_rfm_edges_when(|_| true)
            .await?
            .ok_or(ServerError::NoPurchases { operation: "RefreshRfmEdges" })
    }

    /// The periodic refresh: like [`Self::refresh_rfm_edges`], but installs the new edges (a new
    /// config version, hence a re-evaluation of every customer) only when some cut point moved
    /// by more than [`RFM_EDGE_TOLERANCE`] (relative) from the edges in force; `None` when they
    /// did not.
    pub async fn refresh_rfm_edges_if_moved(&self) -> Result<Option<RefreshedEdges>> {
        let in_force = self.current().await?.config.rfm_edges;
        self.refresh_rfm_edges_when(move |candidate| match &in_force {
            Some(current) => edges_moved(current, candidate),
            None => true,
        })
        .await
    }

    async fn refresh_rfm_edges_when(
        &self,
        install: impl FnOnce(&RfmEdges) -> bool,
    ) -> Result<Option<RefreshedEdges>> {
        let as_of_ms = self.clock.now_ms();
        let sketch = self.shards.rfm_sketch(as_of_ms).await?;
        let no_purchases = || ServerError::NoPurchases { operation: "RefreshRfmEdges" };
        if sketch.is_empty() {
            return Err(no_purchases());
        }
        if !sketch.edges(0).is_some_and(|candidate| install(&candidate)) {
            return Ok(None);
        }
        let (config, edges) = self
            .change(|config, _| {
                let version = config.rfm_edges.as_ref().map_or(0, |edges| edges.version) + 1;
                let edges = sketch.edges(version).ok_or_else(no_purchases)?;
                config.rfm_edges = Some(edges.clone());
                Ok(edges)
            })
            .await?;
        info!(config_version = config.version, edges_version = edges.version, "rfm edges refreshed");
        Ok(Some(RefreshedEdges { edges, customers: sketch.count() }))
    }

    /// Brings every shard to the highest config version any shard holds (after a change
    /// failed on some shards before a restart).
    pub async fn reconcile(&self) -> Result<()> {
        let _change = self.changes.lock().await;
        let configs = self.shards.configs().await?;
        let newest = newest(configs.clone());
        let laggards: Vec<u64> = configs
            .iter()
            .filter(|(_, config)| config.version() != newest.version())
            .map(|(id, _)| *id)
            .collect();
        if laggards.is_empty() {
            return Ok(());
        }
        warn!(version = newest.version(), shards = laggards.len(), "shards behind the newest scoring config");
        let command = ShardCommand::SetConfig { config: Box::new(newest.config), segments: newest.segments };
        self.shards.propose_each(&laggards, &command).await
    }

    /// Under the change lock: derives a new config and segment set from the newest with
    /// `derive`, stamps it `newest.version + 1` and installs it on every shard. Returns the
    /// installed config and what `derive` returned.
    async fn change<T>(
        &self,
        derive: impl FnOnce(&mut ScoringConfig, &mut Vec<SegmentDefinition>) -> Result<T>,
    ) -> Result<(ScoringConfig, T)> {
        let _change = self.changes.lock().await;
        let configs = self.shards.configs().await?;
        let everywhere: Vec<u64> = configs.iter().map(|(id, _)| *id).collect();
        let newest = newest(configs);
        let version = newest.version();
        let ConfigInForce { mut config, mut segments } = newest;
        let derived = derive(&mut config, &mut segments)?;
        config.version = version + 1;
        // Replicas decode and validate the command when applying it: never propose an invalid one.
        config.validate().map_err(|error| match error {
            ScoringError::InvalidConfig { violations } => ServerError::InvalidFields { violations },
            other => ServerError::ModelFit { reason: other.to_string() },
        })?;
        let command = ShardCommand::SetConfig { config: Box::new(config.clone()), segments };
        self.shards.propose_each(&everywhere, &command).await?;
        info!(version = config.version, "scoring config installed");
        Ok((config, derived))
    }

    /// `as_of_ms` of a request: 0 = now, negative is invalid.
    fn as_of(&self, as_of_ms: i64) -> Result<i64> {
        match as_of_ms {
            0 => Ok(self.clock.now_ms()),
            t if t < 0 => Err(ServerError::InvalidArgument {
                field: "as_of_ms".into(),
                description: format!("must not be negative, got {t}"),
            }),
            t => Ok(t),
        }
    }
}

/// The config of the shard with the highest version (the default config if there is none).
fn newest(configs: Vec<(u64, ConfigInForce)>) -> ConfigInForce {
    configs.into_iter().map(|(_, config)| config).max_by_key(ConfigInForce::version).unwrap_or_default()
}

impl ConfigShards for LocalShards {
    async fn configs(&self) -> Result<Vec<(u64, ConfigInForce)>> {
        self.read_barriers(0..self.len()).await?;
        Ok((0..self.len())
            .map(|p| {
                let reader = self.reader(p);
                let scoring = reader.config();
                (
                    reader.shard().shard_id,
                    ConfigInForce { config: scoring.config().clone(), segments: scoring.segments() },
                )
            })
            .collect())
    }

    async fn history_counts(&self, as_of_ms: i64) -> Result<HistoryCounts> {
        self.read_barriers(0..self.len()).await?;
        let readers: Vec<_> = (0..self.len()).map(|p| self.reader(p).clone()).collect();
        blocking(move || {
            let mut counts = HistoryCounts::new();
            for reader in &readers {
                counts.merge(&reader.history_counts(as_of_ms)?);
            }
            Ok(counts)
        })
        .await
    }

    async fn rfm_sketch(&self, as_of_ms: i64) -> Result<RfmSketch> {
        self.read_barriers(0..self.len()).await?;
        let readers: Vec<_> = (0..self.len()).map(|p| self.reader(p).clone()).collect();
        blocking(move || {
            let mut sketch = RfmSketch::new();
            for reader in &readers {
                sketch.merge(&reader.rfm_sketch(as_of_ms)?);
            }
            Ok(sketch)
        })
        .await
    }

    async fn propose_each(&self, shard_ids: &[u64], command: &ShardCommand) -> Result<()> {
        let positions: Vec<usize> =
            (0..self.len()).filter(|&p| shard_ids.contains(&self.reader(p).shard().shard_id)).collect();
        let proposals: Vec<_> = positions
            .into_iter()
            .map(|position| {
                let (shards, command) = (self.clone(), command.clone());
                tokio::spawn(async move { shards.propose(position, command).await })
            })
            .collect();
        let mut failure = None;
        for proposal in proposals {
            let outcome = proposal.await.map_err(|e| ServerError::Task(e.to_string())).and_then(|r| r);
            if let Err(error) = outcome {
                failure.get_or_insert(error);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn settle(&self, now_ms: i64, max_customers: u32, max_rounds: usize) -> Result<()> {
        let mut pending: Vec<usize> = (0..self.len()).collect();
        for _ in 0..max_rounds {
            let command = ShardCommand::Tick { now_ms, max_customers };
            let ticks: Vec<_> = pending
                .iter()
                .map(|&position| {
                    let (shards, command) = (self.clone(), command.clone());
                    tokio::spawn(async move { (position, shards.propose(position, command).await) })
                })
                .collect();
            let mut busy = Vec::new();
            for tick in ticks {
                let (position, output) = tick.await.map_err(|e| ServerError::Task(e.to_string()))?;
                if let pulse_node::ApplyOutput::Tick { evaluated, .. } = output?
                    && evaluated >= max_customers
                {
                    busy.push(position);
                }
            }
            if busy.is_empty() {
                return Ok(());
            }
            pending = busy;
        }
        warn!(now_ms, shards = pending.len(), "time-driven changes still pending after the round bound");
        Ok(())
    }
}

/// Runs a blocking scan or fit off the async runtime.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ServerError::Task(e.to_string()))?
}

/// Relative move of an RFM cut point below which the periodic refresh keeps the edges in force:
/// the sketches' own relative accuracy is 1 %, so smaller moves are noise, and installing edges
/// re-evaluates every customer.
pub const RFM_EDGE_TOLERANCE: f64 = 0.01;

/// Whether some cut point of `candidate` differs from `current` by more than the tolerance.
fn edges_moved(current: &RfmEdges, candidate: &RfmEdges) -> bool {
    let pairs = current
        .recency_days
        .iter()
        .zip(&candidate.recency_days)
        .chain(current.frequency.iter().zip(&candidate.frequency))
        .chain(current.monetary.iter().zip(&candidate.monetary));
    pairs.into_iter().any(|(a, b)| (a - b).abs() > RFM_EDGE_TOLERANCE * a.abs().max(b.abs()).max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_move_only_beyond_the_sketch_accuracy() {
        let current = RfmEdges {
            version: 4,
            recency_days: [3.0, 10.0, 30.0, 90.0],
            frequency: [1.0, 2.0, 4.0, 8.0],
            monetary: [20.0, 50.0, 120.0, 400.0],
        };
        let mut candidate = RfmEdges { version: 0, ..current.clone() };
        assert!(!edges_moved(&current, &candidate), "the version alone is no move");
        candidate.monetary[3] = 401.0;
        assert!(!edges_moved(&current, &candidate), "0.25 % is sketch noise");
        candidate.monetary[3] = 420.0;
        assert!(edges_moved(&current, &candidate), "5 % is a move");
    }
}
