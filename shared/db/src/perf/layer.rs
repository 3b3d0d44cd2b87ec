//! The tracing layer that feeds the monitor from sqlx's own events, so no call site changes.
//!
//! sqlx 0.9 emits, for every statement a connection runs (`sqlx_core::logger::QueryLogger`, on
//! drop), an event with target `sqlx::query` at the connection's statement level (`Debug` by
//! default; the slow level, `Warn` by default, above its own slow threshold) with fields
//! `summary` (first four words), `db.statement` (the full text, empty when the summary already
//! is the whole text), `rows_affected`, `rows_returned`, `elapsed` and `elapsed_secs`. Pools with
//! `acquire_time_level` set emit `sqlx::pool::acquire` events with `acquired_after_secs`.
//! sqlx only builds these events when some subscriber is interested in them, which this layer's
//! per-layer filter says it is — whatever the filter of the log output is.

use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Filter};

use super::QueryMonitor;

const QUERY_TARGET: &str = "sqlx::query";

/// Called with each statement's duration, in the task that ran it (the metrics crate registers
/// one at start-up to put database time into the current request's or job's metrics; this crate
/// does not depend on it).
static STATEMENT_OBSERVER: std::sync::OnceLock<fn(Duration)> = std::sync::OnceLock::new();

/// Registers the process-wide statement observer; later calls are ignored.
pub fn set_statement_observer(observer: fn(Duration)) {
    let _ = STATEMENT_OBSERVER.set(observer);
}
const ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

/// Passes sqlx's statement and acquire events, at every level, to the monitor's layer only.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlxEvents;

impl SqlxEvents {
    fn wants(meta: &Metadata<'_>) -> bool {
        matches!(meta.target(), QUERY_TARGET | ACQUIRE_TARGET)
    }
}

impl<S> Filter<S> for SqlxEvents {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        Self::wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
}

/// Feeds every sqlx statement and acquire event to a [`QueryMonitor`].
#[derive(Debug, Clone)]
pub struct QueryLayer {
    monitor: QueryMonitor,
}

/// The layer with its filter, as [`QueryMonitor::layer`] returns it.
pub type MonitorLayer<S> = Filtered<QueryLayer, SqlxEvents, S>;

impl QueryLayer {
    /// A layer feeding `monitor` (unfiltered: prefer [`QueryMonitor::layer`]).
    pub fn new(monitor: QueryMonitor) -> Self {
        Self { monitor }
    }
}

impl QueryMonitor {
    /// The tracing layer to add to the process's subscriber (it filters for itself).
    pub fn layer<S>(&self) -> MonitorLayer<S>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        QueryLayer::new(self.clone()).with_filter(SqlxEvents)
    }
}

#[derive(Default)]
struct EventFields {
    summary: Option<String>,
    statement: Option<String>,
    rows_affected: u64,
    rows_returned: u64,
    elapsed_secs: Option<f64>,
    acquired_after_secs: Option<f64>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = Some(value.to_string()),
            "db.statement" => self.statement = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "rows_affected" => self.rows_affected = value,
            "rows_returned" => self.rows_returned = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "elapsed_secs" => self.elapsed_secs = Some(value),
            "acquired_after_secs" => self.acquired_after_secs = Some(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or_default()
}

impl<S: Subscriber> Layer<S> for QueryLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if target != QUERY_TARGET && target != ACQUIRE_TARGET {
            return;
        }
        let mut fields = EventFields::default();
        event.record(&mut fields);
        if target == ACQUIRE_TARGET {
            if let Some(s) = fields.acquired_after_secs {
                self.monitor.observe_acquire(secs(s));
            }
            return;
        }
        let Some(elapsed) = fields.elapsed_secs else {
            return;
        };
        // The full text is in `db.statement` unless the summary already was all of it.
        let sql = match fields.statement.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => match fields.summary {
                Some(s) => s,
                None => return,
            },
        };
        self.monitor.observe(
            &sql,
            secs(elapsed),
            fields.rows_returned,
            fields.rows_affected,
        );
        if let Some(observer) = STATEMENT_OBSERVER.get() {
            observer(secs(elapsed));
        }
    }
}
