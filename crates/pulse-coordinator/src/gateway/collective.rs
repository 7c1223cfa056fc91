//! Collective queries: `GetSegmentStats`, `GetMigrationMatrix`, `TopCustomers` and
//! `GetCategoryAffinity` over every shard.
//!
//! Each query validates its request, waits for every shard's read barrier (linearizable), runs
//! one per-shard partial (a `ShardReader` method of `pulse-node`'s `aggregate`) per shard in
//! `spawn_blocking`, and merges the partials here. Today every shard is local; the cluster
//! version fans the same partials out to remote shards and merges them the same way.

use std::collections::{BTreeMap, HashSet};

use pulse_node::{AffinityPartial, MigrationCounts, SegmentStatsPartial, ShardReader, TopK};
use pulse_proto::{ProtoEnum, v1};
use pulse_scoring::{ActivityLevel, ActivitySegment, Dimension, Lifecycle, MAX_CATEGORY_BYTES, RfmSegment};
use pulse_storage::RocksEngine;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::error::{Result, ServerError};
use crate::local_shards::LocalShards;

/// Default of `TopCustomersRequest.limit`.
pub(crate) const DEFAULT_TOP_LIMIT: u32 = 10;
/// Largest `TopCustomersRequest.limit`.
const MAX_TOP_LIMIT: u32 = 10_000;
/// Most categories of one `GetCategoryAffinity` request.
const MAX_AFFINITY_CATEGORIES: usize = 64;

/// The collective queries over the local shards, with the clock and the transition retention.
#[derive(Debug, Clone)]
pub(crate) struct Collective {
    shards: LocalShards,
    clock: Clock,
    transition_retention_ms: i64,
}

fn invalid(field: impl Into<String>, description: impl Into<String>) -> ServerError {
    ServerError::InvalidArgument { field: field.into(), description: description.into() }
}

/// The dimension of a request; UNSPECIFIED and unknown numbers are INVALID_ARGUMENT.
fn parse_dimension(value: i32) -> Result<Dimension> {
    Dimension::from_proto_i32(value, "dimension").map_err(|e| invalid("dimension", e.to_string()))
}

/// A category normalised like `Event.category` (trimmed, lowercased); `None` when blank.
fn normalise_category(field: &str, raw: &str) -> Result<Option<String>> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let name = trimmed.to_lowercase();
    if name.len() > MAX_CATEGORY_BYTES {
        return Err(invalid(
            field,
            format!("must be at most {MAX_CATEGORY_BYTES} bytes after normalisation"),
        ));
    }
    Ok(Some(name))
}

impl Collective {
    /// The queries over `shards`, "now" from `clock`, migration windows bounded by
    /// `transition_retention_ms`.
    pub(crate) fn new(shards: LocalShards, clock: Clock, transition_retention_ms: i64) -> Self {
        Self { shards, clock, transition_retention_ms }
    }

    /// Runs `partial` on every shard after a read barrier on all of them, each in
    /// `spawn_blocking`; the partials in shard order.
    async fn per_shard<T, F>(&self, partial: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(&ShardReader<RocksEngine>) -> pulse_node::Result<T> + Clone + Send + 'static,
    {
        self.shards.read_barriers(0..self.shards.len()).await?;
        let mut tasks = JoinSet::new();
        for position in 0..self.shards.len() {
            let reader = self.shards.reader(position).clone();
            let partial = partial.clone();
            tasks.spawn_blocking(move || (position, partial(&reader)));
        }
        let mut out: Vec<Option<T>> = (0..self.shards.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            let (position, result) = joined.map_err(|e| ServerError::Task(e.to_string()))?;
            out[position] = Some(result?);
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Ids of the custom segments defined (the same on every shard).
    fn custom_segment_ids(&self) -> Vec<String> {
        if self.shards.is_empty() { Vec::new() } else { self.shards.reader(0).custom_segment_ids() }
    }

    /// `GetSegmentStats`: every segment of the dimension in contract order with its members
    /// and mean index, and DAU / WAU / MAU.
    pub(crate) async fn segment_stats(
        &self,
        request: v1::GetSegmentStatsRequest,
    ) -> Result<v1::SegmentStats> {
        let dimension = parse_dimension(request.dimension)?;
        let now_ms = self.clock.now_ms();
        let partials = self.per_shard(move |reader| reader.segment_stats(dimension, now_ms)).await?;
        let mut merged = SegmentStatsPartial::default();
        for partial in partials {
            merged.merge(partial);
        }
        let names: Vec<String> = match dimension {
            Dimension::ActivitySegment => ActivitySegment::ALL.iter().map(|s| s.name().to_owned()).collect(),
            Dimension::Lifecycle => Lifecycle::ALL.iter().map(|s| s.name().to_owned()).collect(),
            Dimension::Level => ActivityLevel::ALL.iter().map(|s| s.name().to_owned()).collect(),
            Dimension::RfmSegment => RfmSegment::ALL.iter().map(|s| s.name().to_owned()).collect(),
            Dimension::Custom => self.custom_segment_ids(),
        };
        let segments = names
            .into_iter()
            .map(|segment| {
                let tally = merged.segments.get(&segment).copied().unwrap_or_default();
                let mean_activity_index =
                    if tally.customers == 0 { 0.0 } else { tally.index_sum / tally.customers as f64 };
                v1::SegmentSummary { segment, customers: tally.customers, mean_activity_index }
            })
            .collect();
        let stickiness = if merged.active_30d == 0 {
            0.0
        } else {
            (merged.active_1d as f64 / merged.active_30d as f64).clamp(0.0, 1.0)
        };
        Ok(v1::SegmentStats {
            segments,
            active_1d: merged.active_1d,
            active_7d: merged.active_7d,
            active_30d: merged.active_30d,
            stickiness,
        })
    }

    /// `GetMigrationMatrix`: the customers per (segment at `from_ms`, segment at `to_ms`),
    /// reconstructed from the changelog (see `ShardReader::migration_counts` for the custom
    /// dimension, which is counted once per custom segment).
    pub(crate) async fn migration_matrix(
        &self,
        request: v1::GetMigrationMatrixRequest,
    ) -> Result<v1::MigrationMatrix> {
        let dimension = parse_dimension(request.dimension)?;
        let now_ms = self.clock.now_ms();
        let from_ms = request.from_ms;
        if from_ms < 0 {
            return Err(invalid("from_ms", "must not be negative"));
        }
        let to_ms = if request.to_ms == 0 { now_ms } else { request.to_ms };
        if to_ms <= from_ms {
            return Err(invalid("to_ms", format!("must be after from_ms ({from_ms}); 0 = now ({now_ms})")));
        }
        let oldest = now_ms.saturating_sub(self.transition_retention_ms);
        if from_ms < oldest {
            return Err(ServerError::OutOfRange {
                field: "from_ms".into(),
                description: format!(
                    "transitions are retained for {} ms: from_ms must be at least {oldest}",
                    self.transition_retention_ms
                ),
            });
        }
        let custom_ids = self.custom_segment_ids();
        let partials = self
            .per_shard(move |reader| reader.migration_counts(dimension, from_ms, to_ms, &custom_ids))
            .await?;
        let mut counts = MigrationCounts::new();
        for partial in partials {
            for (cell, customers) in partial {
                *counts.entry(cell).or_default() += customers;
            }
        }
        let mut row_totals: BTreeMap<&str, u64> = BTreeMap::new();
        for ((from, _), customers) in &counts {
            *row_totals.entry(from.as_str()).or_default() += customers;
        }
        let cells = counts
            .iter()
            .filter(|(_, customers)| **customers > 0)
            .map(|((from, to), customers)| {
                let total = row_totals.get(from.as_str()).copied().unwrap_or(0);
                v1::MigrationCell {
                    from: from.clone(),
                    to: to.clone(),
                    customers: *customers,
                    rate: if total == 0 { 0.0 } else { *customers as f64 / total as f64 },
                }
            })
            .collect();
        Ok(v1::MigrationMatrix { cells })
    }

    /// `TopCustomers`: each shard's best `limit` (bounded min-heap), merged the same way. The
    /// state keeps no index, so "as stored at its last update" is the index computed from the
    /// stored counters at now (at the latest event when that is later).
    pub(crate) async fn top_customers(
        &self,
        request: v1::TopCustomersRequest,
    ) -> Result<v1::TopCustomersResponse> {
        let category = normalise_category("category", &request.category)?;
        let limit = match request.limit {
            0 => DEFAULT_TOP_LIMIT,
            limit if limit > MAX_TOP_LIMIT => {
                return Err(invalid(
                    "limit",
                    format!("must be at most {MAX_TOP_LIMIT} (0 = {DEFAULT_TOP_LIMIT})"),
                ));
            }
            limit => limit,
        } as usize;
        let now_ms = self.clock.now_ms();
        let partials =
            self.per_shard(move |reader| reader.top_customers(category.as_deref(), limit, now_ms)).await?;
        let mut top = TopK::new(limit);
        for ranked in partials.into_iter().flatten() {
            top.offer(ranked);
        }
        let customers = top
            .into_sorted()
            .into_iter()
            .map(|r| v1::TopCustomer { customer_id: r.customer_id, activity_index: r.activity_index })
            .collect();
        Ok(v1::TopCustomersResponse { customers })
    }

    /// `GetCategoryAffinity`: attachment per category and per pair, summed over the shards,
    /// with the lift of each pair.
    pub(crate) async fn category_affinity(
        &self,
        request: v1::GetCategoryAffinityRequest,
    ) -> Result<v1::CategoryAffinity> {
        if request.categories.is_empty() || request.categories.len() > MAX_AFFINITY_CATEGORIES {
            return Err(invalid(
                "categories",
                format!("must hold 1 to {MAX_AFFINITY_CATEGORIES} categories"),
            ));
        }
        let mut categories = Vec::with_capacity(request.categories.len());
        let mut seen = HashSet::new();
        for (i, raw) in request.categories.iter().enumerate() {
            let field = format!("categories[{i}]");
            let Some(name) = normalise_category(&field, raw)? else {
                return Err(invalid(field, "must not be empty or blank"));
            };
            if !seen.insert(name.clone()) {
                return Err(invalid(field, format!("{name:?} is listed twice (after normalisation)")));
            }
            categories.push(name);
        }
        let threshold = request.threshold;
        if !threshold.is_finite() || !(0.0..=1.0).contains(&threshold) {
            return Err(invalid("threshold", "must be within [0, 1]"));
        }
        let now_ms = self.clock.now_ms();
        let wanted = categories.clone();
        let partials =
            self.per_shard(move |reader| reader.category_affinity(&wanted, threshold, now_ms)).await?;
        let mut merged = AffinityPartial::default();
        for partial in partials {
            merged.merge(partial);
        }
        let n = categories.len();
        merged.per_category.resize(n, 0);
        merged.per_pair.resize(n * n.saturating_sub(1) / 2, 0);
        let mut pairs = Vec::with_capacity(merged.per_pair.len());
        let mut pair = 0;
        for i in 0..n {
            for j in i + 1..n {
                let (a, b, both) = (merged.per_category[i], merged.per_category[j], merged.per_pair[pair]);
                let lift = if a == 0 || b == 0 {
                    0.0
                } else {
                    merged.customers as f64 * both as f64 / (a as f64 * b as f64)
                };
                pairs.push(v1::CategoryPair {
                    category_a: categories[i].clone(),
                    category_b: categories[j].clone(),
                    customers: both,
                    lift,
                });
                pair += 1;
            }
        }
        let categories = categories
            .into_iter()
            .zip(merged.per_category)
            .map(|(category, customers)| v1::CategoryCustomers { category, customers })
            .collect();
        Ok(v1::CategoryAffinity { categories, pairs, customers: merged.customers })
    }
}
