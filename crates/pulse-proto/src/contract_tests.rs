//! The names DESIGN.md section 4 fixes, checked against the compiled descriptor sets: a rename
//! in a `.proto` file fails here before it breaks a client.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use prost_types::FileDescriptorSet;

use crate::{FILE_DESCRIPTOR_SET, PUBLIC_FILE_DESCRIPTOR_SET};

/// Names declared in one descriptor set, by kind.
#[derive(Default)]
struct Names {
    /// Full service name → method names.
    services: BTreeMap<String, BTreeSet<String>>,
    /// Full message name (nested ones included) → field names.
    messages: BTreeMap<String, BTreeSet<String>>,
    /// Full enum name → value names.
    enums: BTreeMap<String, BTreeSet<String>>,
}

fn names(encoded: &[u8]) -> Names {
    let set = FileDescriptorSet::decode(encoded).unwrap();
    let mut names = Names::default();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            let methods = service.method.iter().map(|m| m.name().to_owned()).collect();
            names.services.insert(format!("{package}.{}", service.name()), methods);
        }
        for message in &file.message_type {
            add_message(&mut names, package, message);
        }
        for enumeration in &file.enum_type {
            let values = enumeration.value.iter().map(|v| v.name().to_owned()).collect();
            names.enums.insert(format!("{package}.{}", enumeration.name()), values);
        }
    }
    names
}

fn add_message(names: &mut Names, scope: &str, message: &prost_types::DescriptorProto) {
    let full = format!("{scope}.{}", message.name());
    let fields = message.field.iter().map(|f| f.name().to_owned()).collect();
    for nested in &message.nested_type {
        add_message(names, &full, nested);
    }
    names.messages.insert(full, fields);
}

fn assert_has(set: &BTreeMap<String, BTreeSet<String>>, name: &str, members: &[&str]) {
    let Some(declared) = set.get(name) else { panic!("{name} is not declared") };
    for member in members {
        assert!(declared.contains(*member), "{name} has no {member}; it has {declared:?}");
    }
}

#[test]
fn services_and_rpcs() {
    let public = names(PUBLIC_FILE_DESCRIPTOR_SET);
    assert_has(
        &public.services,
        "pulse.v1.ActivityService",
        &[
            "Ingest",
            "IngestStream",
            "GetActivity",
            "BatchGetActivity",
            "ListSegmentMembers",
            "GetSegmentStats",
            "GetMigrationMatrix",
            "TopCustomers",
            "GetCategoryAffinity",
            "WatchTransitions",
            "DeleteCustomer",
        ],
    );
    assert_has(
        &public.services,
        "pulse.v1.AdminService",
        &[
            "GetScoringConfig",
            "UpdateScoringConfig",
            "PutSegmentDefinition",
            "DeleteSegmentDefinition",
            "ListSegmentDefinitions",
            "FitLifetimeModel",
            "RefreshRfmEdges",
            "AdvanceClock",
        ],
    );
    assert_has(
        &public.services,
        "pulse.v1.ClusterService",
        &["GetClusterState", "DrainNode", "RemoveNode", "TransferLeader", "CheckConsistency"],
    );
    assert_eq!(public.services.len(), 3, "the public set holds no internal service");
    let all = names(FILE_DESCRIPTOR_SET);
    assert_has(&all.services, "pulse.internal.v1.RaftTransport", &["Send", "SendSnapshot"]);
    assert_has(&all.services, "pulse.internal.v1.NodeRegistry", &["Register", "Heartbeat"]);
}

#[test]
fn messages_and_fields() {
    let public = names(PUBLIC_FILE_DESCRIPTOR_SET);
    let m = &public.messages;
    let event = ["customer_id", "event_id", "timestamp_ms", "kind", "category", "amount", "channel"];
    assert_has(m, "pulse.v1.Event", &event);
    assert_has(m, "pulse.v1.IngestRequest", &["events"]);
    assert_has(m, "pulse.v1.IngestResponse", &["accepted", "duplicates"]);
    assert_has(m, "pulse.v1.GetActivityRequest", &["customer_id", "as_of_ms", "consistency"]);
    assert_has(m, "pulse.v1.BatchGetActivityRequest", &["customer_ids", "as_of_ms", "consistency"]);
    assert_has(m, "pulse.v1.BatchGetActivityResponse", &["activities", "missing_customer_ids"]);
    assert_has(
        m,
        "pulse.v1.CustomerActivity",
        &[
            "customer_id",
            "as_of_ms",
            "activity_index",
            "level",
            "components",
            "trend",
            "segment",
            "lifecycle",
            "weekday_pattern",
            "active_days_7",
            "active_days_30",
            "active_days_90",
            "first_seen_ms",
            "last_seen_ms",
            "last_purchase_ms",
            "purchase_count",
            "total_amount",
            "average_order_value",
            "rfm",
            "lifetime",
            "categories",
            "custom_segments",
        ],
    );
    assert_has(m, "pulse.v1.Components", &["recency", "frequency", "monetary", "engagement"]);
    assert_has(m, "pulse.v1.RfmScore", &["r", "f", "m", "segment"]);
    assert_has(m, "pulse.v1.LifetimePrediction", &["p_alive", "expected_purchases_30d"]);
    assert_has(
        m,
        "pulse.v1.CategoryActivity",
        &["category", "activity_index", "affinity", "trend", "last_seen_ms"],
    );
    assert_has(m, "pulse.v1.FitLifetimeModelRequest", &["as_of_ms", "modified"]);
    assert_has(m, "pulse.v1.LifetimeModel", &["r", "alpha", "a", "b", "customers", "log_likelihood"]);
    assert_has(m, "pulse.v1.AdvanceClockRequest", &["now_ms"]);
    assert_has(m, "pulse.v1.DeleteCustomerRequest", &["customer_id"]);
    assert_has(m, "pulse.v1.ListSegmentMembersRequest", &["dimension", "segment", "page_size", "page_token"]);
    assert_has(m, "pulse.v1.SegmentMember", &["customer_id", "activity_index", "since_ms"]);
    assert_has(m, "pulse.v1.GetSegmentStatsRequest", &["dimension"]);
    assert_has(
        m,
        "pulse.v1.SegmentStats",
        &["segments", "active_1d", "active_7d", "active_30d", "stickiness"],
    );
    assert_has(m, "pulse.v1.SegmentSummary", &["segment", "customers", "mean_activity_index"]);
    assert_has(m, "pulse.v1.GetMigrationMatrixRequest", &["dimension", "from_ms", "to_ms"]);
    assert_has(m, "pulse.v1.MigrationMatrix", &["cells"]);
    assert_has(m, "pulse.v1.MigrationCell", &["from", "to", "customers", "rate"]);
    assert_has(m, "pulse.v1.WatchTransitionsRequest", &["dimensions", "segments", "resume_token"]);
    assert_has(
        m,
        "pulse.v1.Transition",
        &["customer_id", "dimension", "from", "to", "at_ms", "cause", "resume_token"],
    );
    assert_has(m, "pulse.v1.ClusterState", &["nodes", "shards"]);
    assert_has(m, "pulse.v1.NodeInfo", &["node_id", "address", "state", "replica_count", "leader_count"]);
    assert_has(
        m,
        "pulse.v1.ShardInfo",
        &["shard_id", "start_hash", "end_hash", "replicas", "leader", "applied_index"],
    );
    assert_has(m, "pulse.v1.DrainNodeRequest", &["node_id"]);
    assert_has(m, "pulse.v1.RemoveNodeRequest", &["node_id"]);
    assert_has(m, "pulse.v1.CheckConsistencyResponse", &["consistent", "shards"]);
    assert_has(m, "pulse.v1.ShardConsistency", &["shard_id", "hashes"]);
    assert_has(m, "pulse.v1.SegmentDefinition", &["id", "name", "enter", "exit"]);
    assert_has(m, "pulse.v1.TopCustomersRequest", &["category", "limit"]);
    assert_has(m, "pulse.v1.TopCustomer", &["customer_id", "activity_index"]);
    assert_has(m, "pulse.v1.GetCategoryAffinityRequest", &["categories", "threshold"]);
    assert_has(m, "pulse.v1.CategoryPair", &["category_a", "category_b", "customers", "lift"]);
}

#[test]
fn enums_and_values() {
    let public = names(PUBLIC_FILE_DESCRIPTOR_SET);
    let e = &public.enums;
    let values = |prefix: &str, suffixes: &[&str]| -> Vec<String> {
        let mut all = vec![format!("{prefix}_UNSPECIFIED")];
        all.extend(suffixes.iter().map(|s| format!("{prefix}_{s}")));
        all
    };
    let check = |name: &str, prefix: &str, suffixes: &[&str]| {
        let expected = values(prefix, suffixes);
        let declared: BTreeSet<String> = e[name].clone();
        assert_eq!(declared, expected.into_iter().collect(), "{name}");
    };
    check("pulse.v1.EventKind", "EVENT_KIND", &["PURCHASE", "VISIT", "INTERACTION", "PAYMENT", "SUPPORT"]);
    check("pulse.v1.ActivityLevel", "ACTIVITY_LEVEL", &["HIGH", "MEDIUM", "LOW", "INACTIVE"]);
    check(
        "pulse.v1.ActivitySegment",
        "ACTIVITY_SEGMENT",
        &["DAILY", "WEEKLY", "MONTHLY", "DORMANT", "CHURNED"],
    );
    check("pulse.v1.Lifecycle", "LIFECYCLE", &["NEW", "RETURNING", "RESURRECTING", "DORMANT"]);
    check(
        "pulse.v1.Weekday",
        "WEEKDAY",
        &["NONE", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"],
    );
    check("pulse.v1.Consistency", "CONSISTENCY", &["LINEARIZABLE", "STALE"]);
    check(
        "pulse.v1.Dimension",
        "DIMENSION",
        &["ACTIVITY_SEGMENT", "LIFECYCLE", "LEVEL", "RFM_SEGMENT", "CUSTOM"],
    );
}

#[test]
fn descriptor_sets_carry_comments_for_reflection() {
    let set = FileDescriptorSet::decode(PUBLIC_FILE_DESCRIPTOR_SET).unwrap();
    let activity = set.file.iter().find(|f| f.name() == "pulse/v1/activity.proto").unwrap();
    let locations = &activity.source_code_info.as_ref().unwrap().location;
    assert!(locations.iter().any(|l| l.leading_comments().contains("Idempotency key")));
}
