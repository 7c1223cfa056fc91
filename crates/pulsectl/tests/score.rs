//! `pulsectl score` end to end: runs the built binary on `testdata/` files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pulse_proto::v1;
use serde_json::Value;

const AS_OF_MS: &str = "1700000000000";

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn pulsectl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulsectl")).args(args).output().expect("pulsectl runs")
}

fn score(events: &Path, extra: &[&str]) -> Output {
    let events = events.to_str().unwrap();
    let mut args = vec!["score", "--events", events, "--as-of-ms", AS_OF_MS];
    args.extend_from_slice(extra);
    pulsectl(&args)
}

/// Stdout as JSON values, one per line, checking each line is a CustomerActivity.
fn activities(output: &Output) -> Vec<Value> {
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    stdout
        .lines()
        .map(|line| {
            serde_json::from_str::<v1::CustomerActivity>(line).expect("line is a pulse.v1.CustomerActivity");
            serde_json::from_str::<Value>(line).unwrap()
        })
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn prints_one_sorted_line_per_customer_without_lifetime() {
    let output = score(&testdata("events.jsonl"), &[]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let lines = activities(&output);
    let ids: Vec<&str> = lines.iter().map(|a| a["customerId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["alice", "bob", "carol"]);
    for activity in &lines {
        assert_eq!(activity["asOfMs"], AS_OF_MS);
        assert!(activity.get("lifetime").is_none(), "no lifetime without --lifetime-params: {activity}");
        assert!(activity["level"].as_str().unwrap().starts_with("ACTIVITY_LEVEL_"), "{activity}");
    }
    // The duplicate a-1 was not applied twice.
    assert_eq!(lines[0]["purchaseCount"], "2");
    assert_eq!(lines[0]["totalAmount"], 42.5);
    assert_eq!(lines[0]["lastPurchaseMs"], "1699500000000");
    assert!(lines[2].get("lastPurchaseMs").is_none(), "carol never purchased");
    assert_eq!(lines[2]["firstSeenMs"], "1699900000000");
    assert_eq!(lines[2]["lastSeenMs"], "1699950000000");
    let summary = stderr(&output);
    assert!(summary.contains("events=9 applied=7 duplicates=2 customers=3"), "{summary}");
}

#[test]
fn lifetime_params_add_predictions_for_buyers() {
    let output = score(&testdata("events.jsonl"), &["--lifetime-params", "0.243,4.414,0.793,2.426"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let lines = activities(&output);
    for buyer in &lines[..2] {
        let lifetime = &buyer["lifetime"];
        let p_alive = lifetime["pAlive"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p_alive), "{buyer}");
        assert!(lifetime["expectedPurchases30d"].as_f64().unwrap() >= 0.0, "{buyer}");
    }
}

#[test]
fn bad_lines_name_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"customerId":"x","timestampMs":"1","kind":"EVENT_KIND_REFUND"}"#,
            "line 3: kind: unknown variant",
        ),
        (r#"{"customerId":"x","timestampMs":"soon","kind":"EVENT_KIND_VISIT"}"#, "line 3: timestampMs:"),
        (
            r#"{"customerId":"x","timestampMs":"1","kind":"EVENT_KIND_VISIT","amount":-3}"#,
            "line 3: invalid event: amount",
        ),
        (r#"{"customerId":"x","timestampMs":"1","kind":9}"#, "line 3: kind: invalid value: integer `9`"),
        (r#"{"customerId":"x","timestampMs":"1"}"#, "line 3: invalid event: kind: must be one of"),
        (
            r#"{"customerId":"x","timestampMs":"1","kind":"EVENT_KIND_VISIT","colour":"red"}"#,
            "line 3: colour: unknown field `colour`",
        ),
        (
            r#"{"customerId":"x","timestampMs":"1700000000001","kind":"EVENT_KIND_VISIT"}"#,
            "line 3: timestamp_ms: 1700000000001 is after --as-of-ms",
        ),
    ];
    for (i, (bad, expected)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.jsonl"));
        let mut file = std::fs::File::create(&path).unwrap();
        writeln!(file, r#"{{"customerId":"ok","timestampMs":"1","kind":"EVENT_KIND_VISIT"}}"#).unwrap();
        writeln!(file).unwrap();
        writeln!(file, "{bad}").unwrap();
        drop(file);
        let output = score(&path, &[]);
        assert!(!output.status.success(), "case {i} must fail");
        assert!(output.stdout.is_empty(), "case {i}: nothing is printed on error");
        let message = stderr(&output);
        assert!(message.starts_with("pulsectl: error: "), "case {i}: {message}");
        assert!(message.contains(&format!("bad-{i}.jsonl: {expected}")), "case {i}: {message}");
    }
}

#[test]
fn bad_arguments_are_rejected() {
    let events = testdata("events.jsonl");
    let output = score(&events, &["--lifetime-params", "1,2,3"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("r,alpha,a,b"), "{}", stderr(&output));
    let output = pulsectl(&["score", "--events", "/nonexistent/events.jsonl", "--as-of-ms", AS_OF_MS]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("cannot open /nonexistent/events.jsonl"), "{}", stderr(&output));
}
