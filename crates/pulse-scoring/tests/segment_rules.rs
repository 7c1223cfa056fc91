//! Data-driven tests of the segment, lifecycle, weekday and level rules: every case in
//! `testdata/segments/*.txt` is an input (events, as_of, time zone) and the expected fields.

use pulse_scoring::{
    ActivityLevel, CustomerState, Event, EventInput, EventKind, MS_PER_DAY, ScoringConfig, score,
};

/// Day D of the fixtures: 2024-10-06, a Sunday.
const D: i64 = 20_002;

fn fixture(name: &str) -> String {
    let path = format!("{}/testdata/segments/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Parses `D-k[@HH:MM[:SS[.mmm]]]` (noon by default) into Unix ms.
fn parse_time(text: &str) -> i64 {
    let (day, time) = text.split_once('@').unwrap_or((text, "12:00"));
    let offset: i64 = match day.strip_prefix('D') {
        Some("") => 0,
        Some(rest) => rest.parse().unwrap_or_else(|_| panic!("bad day {day}")),
        None => panic!("bad day {day}"),
    };
    let mut parts = time.split(':');
    let hours: i64 = parts.next().unwrap().parse().unwrap();
    let minutes: i64 = parts.next().unwrap_or("0").parse().unwrap();
    let seconds: f64 = parts.next().unwrap_or("0").parse().unwrap();
    (D + offset) * MS_PER_DAY + hours * 3_600_000 + minutes * 60_000 + (seconds * 1000.0).round() as i64
}

/// One fixture line: the inputs and the expected `key=value` pairs.
struct Case {
    line: String,
    events: Vec<i64>,
    as_of_ms: i64,
    tz_offset_ms: i64,
    expected: Vec<(String, String)>,
}

fn cases(name: &str) -> Vec<Case> {
    let mut out = Vec::new();
    for line in fixture(name).lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut case =
            Case { line: line.to_owned(), events: vec![], as_of_ms: 0, tz_offset_ms: 0, expected: vec![] };
        for part in line.split(" | ") {
            for pair in part.split_whitespace() {
                let (key, value) =
                    pair.split_once('=').unwrap_or_else(|| panic!("bad pair {pair:?} in {line}"));
                match key {
                    "events" => case.events = value.split(',').map(parse_time).collect(),
                    "as_of" => case.as_of_ms = parse_time(value),
                    "tz" => case.tz_offset_ms = value.parse().unwrap(),
                    _ => case.expected.push((key.to_owned(), value.to_owned())),
                }
            }
        }
        assert!(!case.expected.is_empty(), "no expectation in {line}");
        out.push(case);
    }
    assert!(out.len() >= 5, "{name} has too few cases");
    out
}

fn run(name: &str) {
    for case in cases(name) {
        let config = ScoringConfig { tz_offset_ms: case.tz_offset_ms, ..ScoringConfig::default() };
        let mut state = CustomerState::new();
        for (i, &t) in case.events.iter().enumerate() {
            let input = EventInput {
                customer_id: "c".into(),
                event_id: format!("e{i}"),
                timestamp_ms: t,
                kind: Some(EventKind::Visit),
                ..EventInput::default()
            };
            state.apply(&Event::validate(input, case.as_of_ms, &config).unwrap(), &config);
        }
        let activity = score("c", &state, case.as_of_ms, &config).unwrap();
        for (key, want) in &case.expected {
            let got = match key.as_str() {
                "segment" => activity.segment.name().to_owned(),
                "lifecycle" => activity.lifecycle.name().to_owned(),
                "weekday" => activity.weekday_pattern.name().to_owned(),
                "l7" => activity.active_days_7.to_string(),
                "l30" => activity.active_days_30.to_string(),
                "l90" => activity.active_days_90.to_string(),
                other => panic!("unknown key {other} in {}", case.line),
            };
            assert_eq!(&got, want, "{key} of `{}`", case.line);
        }
    }
}

#[test]
fn activity_segment_rules() {
    run("activity_segment.txt");
}

#[test]
fn lifecycle_rules() {
    run("lifecycle.txt");
}

#[test]
fn weekday_rules() {
    run("weekday.txt");
}

#[test]
fn level_thresholds() {
    let config = ScoringConfig::default();
    let text = fixture("level.txt");
    let mut checked = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (index, level) = line.split_once(" | ").unwrap();
        let index: f64 = index.strip_prefix("index=").unwrap().parse().unwrap();
        let level = level.strip_prefix("level=").unwrap();
        assert_eq!(ActivityLevel::from_index(index, &config).name(), level, "{line}");
        checked += 1;
    }
    assert!(checked >= 8);
}
