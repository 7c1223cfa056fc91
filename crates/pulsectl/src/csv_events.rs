//! Events from CSV: a header row naming the columns, then one event per row.
//!
//! Columns: `customer_id,event_id,timestamp_ms,kind,category,amount,channel` in any order;
//! `customer_id`, `timestamp_ms` and `kind` are required, the others optional (empty = none,
//! amount 0). `kind` is `PURCHASE` or `EVENT_KIND_PURCHASE`, any case. Errors name the line
//! (1-based, the header is line 1) and the column.

use std::io::Read;

use pulse_proto::v1;

use crate::jsonl::Line;

/// Every column an events CSV may have.
pub const COLUMNS: [&str; 7] =
    ["customer_id", "event_id", "timestamp_ms", "kind", "category", "amount", "channel"];
/// Columns every events CSV must have.
const REQUIRED: [&str; 3] = ["customer_id", "timestamp_ms", "kind"];

/// Why a CSV input could not be read: the line and what is wrong with it (naming the column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// 1-based line number (the header is line 1); 0 when the input could not be read at all.
    pub line: usize,
    /// What is wrong, starting with the column's name where one is at fault.
    pub message: String,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CsvError {}

/// `return Err(CsvError)` with a formatted message.
macro_rules! fail {
    ($line:expr, $($message:tt)+) => {
        return Err(CsvError { line: $line, message: format!($($message)+) })
    };
}

/// Reads every event of a CSV input, or the first error (`line 3: amount: ...`).
pub fn read(reader: impl Read) -> Result<Vec<Line<v1::Event>>, CsvError> {
    let mut csv = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(reader);
    let header = match csv.headers() {
        Ok(header) => header.clone(),
        Err(e) => fail!(1, "{e}"),
    };
    let mut index = [None; COLUMNS.len()];
    for (position, name) in header.iter().enumerate() {
        let Some(column) = COLUMNS.iter().position(|c| *c == name) else {
            fail!(1, "unknown column {name:?}; expected columns {}", COLUMNS.join(","));
        };
        if index[column].replace(position).is_some() {
            fail!(1, "column {name:?} appears twice");
        }
    }
    for required in REQUIRED {
        let column = COLUMNS.iter().position(|c| *c == required).unwrap_or_default();
        if index[column].is_none() {
            fail!(1, "missing column {required:?}; expected columns {}", COLUMNS.join(","));
        }
    }

    let mut events = Vec::new();
    for record in csv.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => fail!(e.position().map_or(0, |p| p.line() as usize), "{e}"),
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let field = |name: &str| -> &str {
            let column = COLUMNS.iter().position(|c| *c == name).unwrap_or_default();
            index[column].and_then(|i| record.get(i)).unwrap_or("")
        };
        let timestamp_ms = match field("timestamp_ms").parse::<i64>() {
            Ok(ms) => ms,
            Err(e) => fail!(line, "timestamp_ms: {:?}: {e}", field("timestamp_ms")),
        };
        let kind = match crate::values::event_kind(field("kind")) {
            Ok(kind) => kind,
            Err(e) => fail!(line, "kind: {e}"),
        };
        let amount = match field("amount") {
            "" => 0.0,
            text => match text.parse::<f64>() {
                Ok(amount) => amount,
                Err(e) => fail!(line, "amount: {text:?}: {e}"),
            },
        };
        let message = v1::Event {
            customer_id: field("customer_id").to_owned(),
            event_id: field("event_id").to_owned(),
            timestamp_ms,
            kind: kind as i32,
            category: field("category").to_owned(),
            amount,
            channel: field("channel").to_owned(),
        };
        events.push(Line { number: line, message });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_in_any_column_order() {
        let input = "kind,customer_id,timestamp_ms,amount\nPURCHASE,a,1000,9.5\nevent_kind_visit,b,2000,\n";
        let events = read(input.as_bytes()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].number, 2);
        assert_eq!(events[0].message.kind, v1::EventKind::Purchase as i32);
        assert_eq!(events[0].message.amount, 9.5);
        assert_eq!(events[1].message.customer_id, "b");
        assert_eq!(events[1].message.kind, v1::EventKind::Visit as i32);
        assert_eq!(events[1].message.amount, 0.0);
    }

    #[test]
    fn errors_name_line_and_column() {
        let bad_kind = "customer_id,timestamp_ms,kind\na,1,VISIT\na,2,REFUND\n";
        let err = read(bad_kind.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("line 3: kind: unknown event kind \"REFUND\""), "{err}");
        let bad_time = "customer_id,timestamp_ms,kind\na,soon,VISIT\n";
        let err = read(bad_time.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("line 2: timestamp_ms: \"soon\""), "{err}");
        let missing = "customer_id,kind\na,VISIT\n";
        assert!(
            read(missing.as_bytes()).unwrap_err().to_string().contains("missing column \"timestamp_ms\"")
        );
        let unknown = "customer_id,timestamp_ms,kind,colour\n";
        assert!(read(unknown.as_bytes()).unwrap_err().to_string().contains("unknown column \"colour\""));
    }
}
