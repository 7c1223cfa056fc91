//! JSON lines in the protobuf JSON mapping: one message per line, blank lines skipped.
//!
//! Input errors name the line (1-based) and, where the JSON decoder can tell, the field as it
//! was spelled in the input (`kind`, `timestampMs`), so a bad line in a large file is found
//! without guessing.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// One message read from a JSON lines input.
#[derive(Debug)]
pub struct Line<T> {
    /// 1-based line number in the input.
    pub number: usize,
    /// The decoded message.
    pub message: T,
}

/// Why a line could not be read.
#[derive(Debug)]
pub enum LineError {
    /// The input could not be read.
    Io {
        /// 1-based number of the line being read.
        line: usize,
        /// The I/O error.
        source: io::Error,
    },
    /// The line is not a valid JSON message of the expected type.
    Parse {
        /// 1-based line number.
        line: usize,
        /// Path of the offending field as spelled in the input (`kind`, `items[2].id`);
        /// `None` when the error is about the line as a whole (syntax, unknown field).
        field: Option<String>,
        /// The decoder's message, without its position.
        message: String,
        /// 1-based column where decoding stopped.
        column: usize,
    },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Io { line, source } => write!(f, "line {line}: {source}"),
            LineError::Parse { line, field: Some(field), message, column } => {
                write!(f, "line {line}: {field}: {message} (column {column})")
            }
            LineError::Parse { line, field: None, message, column } => {
                write!(f, "line {line}: {message} (column {column})")
            }
        }
    }
}

impl std::error::Error for LineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LineError::Io { source, .. } => Some(source),
            LineError::Parse { .. } => None,
        }
    }
}

/// Iterator over the messages of a JSON lines input, skipping blank lines.
pub struct Messages<R, T> {
    lines: io::Lines<R>,
    number: usize,
    message: PhantomData<fn() -> T>,
}

/// Reads JSON lines of `T` from `reader`.
pub fn read<R: BufRead, T: DeserializeOwned>(reader: R) -> Messages<R, T> {
    Messages { lines: reader.lines(), number: 0, message: PhantomData }
}

impl<R: BufRead, T: DeserializeOwned> Iterator for Messages<R, T> {
    type Item = Result<Line<T>, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let text = self.lines.next()?;
            self.number += 1;
            let line = self.number;
            let text = match text {
                Ok(text) => text,
                Err(source) => return Some(Err(LineError::Io { line, source })),
            };
            if text.trim().is_empty() {
                continue;
            }
            return Some(parse(&text, line).map(|message| Line { number: line, message }));
        }
    }
}

/// Decodes one line, tracking the path of the field being decoded when it fails.
fn parse<T: DeserializeOwned>(text: &str, line: usize) -> Result<T, LineError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let message = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        parse_error(line, (path != ".").then_some(path), err.into_inner())
    })?;
    // Anything but whitespace after the message is an error too.
    deserializer.end().map_err(|err| parse_error(line, None, err))?;
    Ok(message)
}

/// A [`LineError::Parse`] from a JSON error, whose message loses its (always line 1) position.
fn parse_error(line: usize, field: Option<String>, err: serde_json::Error) -> LineError {
    let position = format!(" at line {} column {}", err.line(), err.column());
    let full = err.to_string();
    let message = full.strip_suffix(&position).unwrap_or(&full).to_owned();
    LineError::Parse { line, field, message, column: err.column() }
}

/// Writes `message` as one line of JSON.
pub fn write<W: Write, T: Serialize>(out: &mut W, message: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, message)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use pulse_proto::v1;

    use super::*;

    fn read_all(input: &str) -> Vec<Result<Line<v1::Event>, LineError>> {
        read(input.as_bytes()).collect()
    }

    #[test]
    fn skips_blank_lines_and_counts_them() {
        let lines = read_all("\n{\"customerId\":\"a\"}\n   \n{\"customer_id\":\"b\"}\n");
        let got: Vec<(usize, String)> =
            lines.into_iter().map(|l| l.unwrap()).map(|l| (l.number, l.message.customer_id)).collect();
        assert_eq!(got, [(2, "a".to_owned()), (4, "b".to_owned())]);
    }

    #[test]
    fn names_line_and_field() {
        let lines =
            read_all("{\"customerId\":\"a\"}\n{\"customerId\":\"b\",\"kind\":\"EVENT_KIND_REFUND\"}\n");
        let err = lines.into_iter().nth(1).unwrap().unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("line 2: kind: unknown variant `EVENT_KIND_REFUND`"), "{text}");
        assert!(text.ends_with("(column 44)"), "{text}");
    }

    #[test]
    fn whole_line_errors_have_no_field() {
        let err = read_all("{\"customerId\":\"a\"} x").remove(0).unwrap_err();
        let LineError::Parse { field: None, line: 1, .. } = &err else { panic!("unexpected {err:?}") };
        let err = read_all("<html>").remove(0).unwrap_err();
        assert!(err.to_string().starts_with("line 1: expected value"), "{err}");
    }

    #[test]
    fn writes_one_line_per_message() {
        let mut out = Vec::new();
        let event = v1::Event { customer_id: "c1".into(), ..v1::Event::default() };
        write(&mut out, &event).unwrap();
        write(&mut out, &event).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with("}\n"));
    }
}
