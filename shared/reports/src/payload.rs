//! The `generate-report` job payload: which report, in which format, over which days.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ReportsError;

/// Longest range a report may cover, in days (bounds the queries and the daily table).
pub const MAX_RANGE_DAYS: u64 = 366;
/// Days covered when the request names no start.
pub const DEFAULT_RANGE_DAYS: u64 = 30;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// Files and bytes per user/project, uploads per day.
    Usage,
    /// File processing outcomes, failures and search latency.
    Performance,
    /// The audit trail (admins only).
    Audit,
}

impl ReportKind {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Usage => "usage",
            ReportKind::Performance => "performance",
            ReportKind::Audit => "audit",
        }
    }
}

/// Output format(s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// CSV, one file per table.
    #[default]
    Csv,
    /// One JSON document.
    Json,
    /// Both of the above.
    Both,
}

impl ReportFormat {
    /// True when CSV files are produced.
    pub fn csv(self) -> bool {
        matches!(self, ReportFormat::Csv | ReportFormat::Both)
    }

    /// True when the JSON document is produced.
    pub fn json(self) -> bool {
        matches!(self, ReportFormat::Json | ReportFormat::Both)
    }
}

/// Whole UTC days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
}

impl DateRange {
    /// Fills in defaults (the last [`DEFAULT_RANGE_DAYS`] days up to `today`) and checks the
    /// range: `from` ≤ `to`, `to` not after tomorrow, at most [`MAX_RANGE_DAYS`] days.
    pub fn resolve(
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<DateRange, ReportsError> {
        let to = to.unwrap_or(today);
        // Tomorrow is allowed: for callers east of UTC it is already today.
        if to > today.checked_add_days(Days::new(1)).unwrap_or(today) {
            return Err(ReportsError::invalid("to", "must not be in the future"));
        }
        let from = match from {
            Some(f) => f,
            None => to
                .checked_sub_days(Days::new(DEFAULT_RANGE_DAYS - 1))
                .unwrap_or(to),
        };
        if from > to {
            return Err(ReportsError::invalid("from", "must not be after `to`"));
        }
        let range = DateRange { from, to };
        if range.days() > MAX_RANGE_DAYS {
            return Err(ReportsError::invalid(
                "from",
                format!("the range may cover at most {MAX_RANGE_DAYS} days"),
            ));
        }
        Ok(range)
    }

    /// Number of days covered.
    pub fn days(&self) -> u64 {
        (self.to - self.from).num_days().max(0) as u64 + 1
    }

    /// Start instant (midnight UTC of `from`).
    pub fn start(&self) -> DateTime<Utc> {
        self.from.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// End instant, exclusive (midnight UTC after `to`).
    pub fn end(&self) -> DateTime<Utc> {
        self.to
            .checked_add_days(Days::new(1))
            .unwrap_or(self.to)
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
    }
}

/// Payload of a `generate-report` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateReport {
    /// Which report.
    pub kind: ReportKind,
    /// Output format(s).
    #[serde(default)]
    pub format: ReportFormat,
    /// Days covered (resolved when the report was requested, so retries cover the same days).
    pub range: DateRange,
    /// The user who asked (`users.id`); scope and permissions are checked again at generation.
    pub requested_by: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn field(e: ReportsError) -> &'static str {
        match e {
            ReportsError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn range_defaults_and_limits() {
        let today = d("2026-03-31");
        let r = DateRange::resolve(None, None, today).unwrap();
        assert_eq!((r.from, r.to, r.days()), (d("2026-03-02"), today, 30));
        assert_eq!(r.start().to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert_eq!(r.end().to_rfc3339(), "2026-04-01T00:00:00+00:00");
        let one = DateRange::resolve(Some(today), Some(today), today).unwrap();
        assert_eq!(one.days(), 1);
        assert_eq!(
            field(DateRange::resolve(Some(d("2026-04-01")), Some(today), today).unwrap_err()),
            "from"
        );
        assert_eq!(
            field(DateRange::resolve(None, Some(d("2026-04-02")), today).unwrap_err()),
            "to"
        );
        assert_eq!(
            field(DateRange::resolve(Some(d("2025-01-01")), None, today).unwrap_err()),
            "from"
        );
        assert!(
            DateRange::resolve(Some(d("2025-03-31")), None, today).is_ok(),
            "366 days"
        );
    }

    #[test]
    fn payload_json_shape() {
        let p: GenerateReport = serde_json::from_value(serde_json::json!({
            "kind": "audit", "format": "both",
            "range": {"from": "2026-01-01", "to": "2026-01-31"},
            "requested_by": Uuid::nil(),
        }))
        .unwrap();
        assert_eq!(p.kind, ReportKind::Audit);
        assert!(p.format.csv() && p.format.json());
        assert!(serde_json::from_value::<GenerateReport>(serde_json::json!({
            "kind": "sales", "range": {"from": "2026-01-01", "to": "2026-01-31"}, "requested_by": Uuid::nil()
        })).is_err());
    }
}
