//! What the commands print: aligned tables for people, or with `--json` one JSON object per
//! line (the response messages in the protobuf JSON mapping) for machines. Plus the formatting
//! of times and enum values shared by the tables.

use std::io::{self, Write};

use anyhow::{Context, Result};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use serde::Serialize;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Aligned tables and short sentences.
    Table,
    /// One JSON object per line.
    Json,
}

impl Output {
    /// `--json` given.
    pub fn is_json(self) -> bool {
        self == Output::Json
    }
}

/// Prints `message` as one line of JSON on stdout.
pub fn print_json<T: Serialize>(message: &T) -> Result<()> {
    let mut out = io::stdout().lock();
    crate::jsonl::write(&mut out, message).context("writing output")?;
    out.flush().context("writing output")
}

/// Prints a line of text on stdout.
pub fn print_line(text: impl std::fmt::Display) -> Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}").context("writing output")
}

/// A borderless table with `header` (none when empty); columns named in `numeric` are
/// right-aligned.
pub fn table(header: &[&str], numeric: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    if !header.is_empty() {
        table.set_header(header.iter().copied());
    }
    for (index, name) in header.iter().enumerate() {
        if numeric.contains(name)
            && let Some(column) = table.column_mut(index)
        {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// Prints a table on stdout, without trailing spaces.
pub fn print_table(table: &Table) -> Result<()> {
    let mut out = io::stdout().lock();
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end()).context("writing output")?;
    }
    Ok(())
}

/// A Unix ms instant as ISO-8601 UTC with milliseconds (`2026-03-30T20:13:04.445Z`).
pub fn time_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic Gregorian calendar;
/// Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The short name of a proto enum value: `ACTIVITY_SEGMENT_DAILY` without `prefix` is `DAILY`.
pub fn short_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_owned()
}

/// A two-column table of `name value` rows, no header.
pub fn key_values<K: Into<String>>(rows: impl IntoIterator<Item = (K, String)>) -> Table {
    let mut table = table(&[], &[]);
    for (key, value) in rows {
        table.add_row([key.into(), value]);
    }
    table
}

/// Short names of enum fields held as `i32`; an unknown value prints as its number.
pub mod names {
    use pulse_proto::v1;

    use super::short_name;

    /// `HIGH` for `ACTIVITY_LEVEL_HIGH`.
    pub fn level(value: i32) -> String {
        v1::ActivityLevel::try_from(value)
            .map_or_else(|_| value.to_string(), |v| short_name(v.as_str_name(), "ACTIVITY_LEVEL_"))
    }

    /// `DAILY` for `ACTIVITY_SEGMENT_DAILY`.
    pub fn activity_segment(value: i32) -> String {
        v1::ActivitySegment::try_from(value)
            .map_or_else(|_| value.to_string(), |v| short_name(v.as_str_name(), "ACTIVITY_SEGMENT_"))
    }

    /// `NEW` for `LIFECYCLE_NEW`.
    pub fn lifecycle(value: i32) -> String {
        v1::Lifecycle::try_from(value)
            .map_or_else(|_| value.to_string(), |v| short_name(v.as_str_name(), "LIFECYCLE_"))
    }

    /// `TUESDAY` for `WEEKDAY_TUESDAY`.
    pub fn weekday(value: i32) -> String {
        v1::Weekday::try_from(value)
            .map_or_else(|_| value.to_string(), |v| short_name(v.as_str_name(), "WEEKDAY_"))
    }

    /// `ACTIVITY_SEGMENT` for `DIMENSION_ACTIVITY_SEGMENT`.
    pub fn dimension(value: i32) -> String {
        v1::Dimension::try_from(value)
            .map_or_else(|_| value.to_string(), |v| short_name(v.as_str_name(), "DIMENSION_"))
    }
}

/// A real number with two decimals.
pub fn number(value: f64) -> String {
    format!("{value:.2}")
}

/// A segment name where empty means "no segment".
pub fn segment_or_none(segment: &str) -> &str {
    if segment.is_empty() { "(none)" } else { segment }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_utc() {
        assert_eq!(time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time_ms(1_774_915_200_000), "2026-03-31T00:00:00.000Z");
        assert_eq!(time_ms(1_759_306_548_278), "2025-10-01T08:15:48.278Z");
        assert_eq!(time_ms(951_782_400_000 + 86_399_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(time_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn tables_align_numbers_right_and_trim() {
        let mut t = table(&["customer", "index"], &["index"]);
        t.add_row(["alice", "7.50"]).add_row(["bob", "12.25"]);
        let lines: Vec<String> = t.lines().map(|l| l.trim_end().to_owned()).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[1].contains("alice") && lines[1].ends_with(" 7.50"), "{lines:?}");
        assert!(lines[2].ends_with("12.25"), "{lines:?}");
    }
}
