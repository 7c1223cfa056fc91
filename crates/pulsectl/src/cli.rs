//! The command tree. Each subcommand's arguments are defined next to its implementation in
//! `commands/`; this file only lists the subcommands and the global flags.

use clap::{Parser, Subcommand};

use crate::commands::advance_clock::AdvanceClockArgs;
use crate::commands::affinity::AffinityArgs;
use crate::commands::cluster::ClusterCommand;
use crate::commands::config::ConfigArgs;
use crate::commands::define_segment::DefineSegmentArgs;
use crate::commands::delete_segment::DeleteSegmentArgs;
use crate::commands::fit::FitArgs;
use crate::commands::get::GetArgs;
use crate::commands::health::HealthArgs;
use crate::commands::ingest::IngestArgs;
use crate::commands::migrations::MigrationsArgs;
use crate::commands::score::ScoreArgs;
use crate::commands::segments::SegmentsArgs;
use crate::commands::stats::StatsArgs;
use crate::commands::top::TopArgs;
use crate::commands::watch::WatchArgs;

/// Pulse admin and query command line.
#[derive(Debug, Parser)]
#[command(name = "pulsectl", version, about, propagate_version = true)]
pub struct Cli {
    /// The gateway to talk to: any pulsed process, HOST:PORT or an http:// URL.
    #[arg(
        long,
        global = true,
        env = "PULSE_ADDR",
        default_value = "127.0.0.1:50051",
        value_name = "HOST:PORT"
    )]
    pub addr: String,

    /// Machine output: one JSON object per line, the response messages in the protobuf JSON
    /// mapping (instead of aligned tables).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scores a file of events offline (no server) and prints one pulse.v1.CustomerActivity
    /// JSON object per customer, sorted by customer id.
    Score(ScoreArgs),
    /// Sends a file of events (JSON lines or CSV) in batches (IngestStream).
    Ingest(IngestArgs),
    /// The activity of one customer (GetActivity) or of several (BatchGetActivity).
    Get(GetArgs),
    /// The members of one segment (ListSegmentMembers).
    Segments(SegmentsArgs),
    /// Segment sizes of one dimension and DAU/WAU/MAU (GetSegmentStats).
    Stats(StatsArgs),
    /// Movement between the segments of one dimension in a window (GetMigrationMatrix).
    Migrations(MigrationsArgs),
    /// The customers with the highest activity index (TopCustomers).
    Top(TopArgs),
    /// Category attachment and co-occurrence (GetCategoryAffinity).
    Affinity(AffinityArgs),
    /// Streams segment transitions as they are recorded (WatchTransitions).
    Watch(WatchArgs),
    /// Creates or replaces a custom CEL segment (PutSegmentDefinition).
    DefineSegment(DefineSegmentArgs),
    /// Lists the custom segment definitions (ListSegmentDefinitions).
    SegmentDefinitions,
    /// Deletes a custom segment definition (DeleteSegmentDefinition).
    DeleteSegment(DeleteSegmentArgs),
    /// Fits the BG/NBD lifetime model and installs it (FitLifetimeModel).
    Fit(FitArgs),
    /// Recomputes the RFM quintile edges now (RefreshRfmEdges).
    RefreshRfm,
    /// Reads or replaces the scoring configuration.
    Config(ConfigArgs),
    /// Moves the manual clock of a `--clock manual` server (AdvanceClock).
    AdvanceClock(AdvanceClockArgs),
    /// Asks the gRPC health service whether the server is serving.
    Health(HealthArgs),
    /// The cluster: status, waiting until it serves, leader transfer (ClusterService).
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
