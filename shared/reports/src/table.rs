//! Report data as named tables, rendered to CSV (one file per table) or one JSON document.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::ReportsError;
use crate::payload::{DateRange, ReportKind};

/// One value of a table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value (empty in CSV, null in JSON).
    Null,
    /// Text.
    Text(String),
    /// Whole number.
    Int(i64),
    /// Decimal number.
    Float(f64),
    /// JSON value (CSV gets its compact text).
    Json(Value),
}

impl Cell {
    fn csv_text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Float(f) if f.is_finite() => format!("{f:.3}"),
            Cell::Float(_) => String::new(),
            Cell::Json(v) => v.to_string(),
        }
    }

    fn json_value(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(n) => json!(n),
            // Rounded like the CSV, so both formats agree; NaN/inf have no JSON form.
            Cell::Float(f) if f.is_finite() => json!((f * 1000.0).round() / 1000.0),
            Cell::Float(_) => Value::Null,
            Cell::Json(v) => v.clone(),
        }
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_owned())
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Int(n)
    }
}

impl From<f64> for Cell {
    fn from(f: f64) -> Self {
        Cell::Float(f)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Null, Into::into)
    }
}

impl From<DateTime<Utc>> for Cell {
    fn from(t: DateTime<Utc>) -> Self {
        Cell::Text(t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

/// One table of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Name (a file-name-safe identifier such as `daily_uploads`).
    pub name: &'static str,
    /// Column names.
    pub columns: Vec<&'static str>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
    /// True when rows were cut at the row limit.
    pub truncated: bool,
}

impl Table {
    /// An empty table.
    pub fn new(name: &'static str, columns: &[&'static str]) -> Self {
        Table {
            name,
            columns: columns.to_vec(),
            rows: Vec::new(),
            truncated: false,
        }
    }

    /// Renders the table as CSV (header row first). Fields are quoted as RFC 4180 requires, and
    /// text starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'` so spreadsheets
    /// do not run it as a formula (user-controlled names and audit details end up here).
    pub fn to_csv(&self) -> Result<Vec<u8>, ReportsError> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record(&self.columns)
            .map_err(|e| ReportsError::Render(e.to_string()))?;
        for row in &self.rows {
            w.write_record(row.iter().map(|c| match c {
                Cell::Text(_) | Cell::Json(_) => defuse_formula(c.csv_text()),
                other => other.csv_text(),
            }))
            .map_err(|e| ReportsError::Render(e.to_string()))?;
        }
        w.into_inner()
            .map_err(|e| ReportsError::Render(e.to_string()))
    }

    /// Rows as JSON objects keyed by column name.
    pub fn to_json_rows(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|row| {
                let obj: Map<String, Value> = self
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| ((*c).to_owned(), v.json_value()))
                    .collect();
                Value::Object(obj)
            })
            .collect()
    }
}

fn defuse_formula(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

/// A generated report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Which report.
    pub kind: ReportKind,
    /// Days covered.
    pub range: DateRange,
    /// When the data was read.
    pub generated_at: DateTime<Utc>,
    /// Whether it covers every user (admins) or only the requester.
    pub scope: Scope,
    /// Its tables; the first is the main one.
    pub tables: Vec<Table>,
}

/// Whose data a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every user.
    All,
    /// Only the requester's own files.
    Own,
}

impl Report {
    /// The whole report as one JSON document.
    pub fn to_json(&self) -> Result<Vec<u8>, ReportsError> {
        let tables: Map<String, Value> = self
            .tables
            .iter()
            .map(|t| {
                (
                    t.name.to_owned(),
                    json!({
                        "columns": t.columns,
                        "rows": t.to_json_rows(),
                        "truncated": t.truncated,
                    }),
                )
            })
            .collect();
        serde_json::to_vec_pretty(&json!({
            "report": self.kind.as_str(),
            "range": self.range,
            "scope": self.scope,
            "generated_at": self.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "tables": tables,
        }))
        .map_err(|e| ReportsError::Render(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_escapes() {
        let mut t = Table::new("t", &["name", "n", "note"]);
        t.rows.push(vec!["plain".into(), Cell::Int(3), Cell::Null]);
        t.rows.push(vec![
            "comma, \"quoted\"\nnewline".into(),
            Cell::Float(1.23456),
            Cell::Json(json!({"a": "b,c"})),
        ]);
        t.rows
            .push(vec!["=HYPERLINK(\"x\")".into(), Cell::Int(-5), "-1".into()]);
        let csv = String::from_utf8(t.to_csv().unwrap()).unwrap();
        assert_eq!(
            csv,
            "name,n,note\r\n\
             plain,3,\r\n\
             \"comma, \"\"quoted\"\"\nnewline\",1.235,\"{\"\"a\"\":\"\"b,c\"\"}\"\r\n\
             \"'=HYPERLINK(\"\"x\"\")\",-5,'-1\r\n"
        );
        // And a CSV reader gets the original fields back.
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(&rows[1][0], "comma, \"quoted\"\nnewline");
        assert_eq!(&rows[1][2], r#"{"a":"b,c"}"#);
    }

    #[test]
    fn json_rows_are_keyed_by_column() {
        let mut t = Table::new("t", &["a", "b"]);
        t.rows.push(vec![Cell::Int(1), Cell::Null]);
        t.rows.push(vec![Cell::Float(f64::NAN), "x".into()]);
        assert_eq!(
            t.to_json_rows(),
            vec![json!({"a": 1, "b": null}), json!({"a": null, "b": "x"})]
        );
    }
}
