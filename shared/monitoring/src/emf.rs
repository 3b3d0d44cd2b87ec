//! CloudWatch Embedded Metric Format: one JSON object per line on stdout, which CloudWatch Logs
//! turns into metrics (no API call, no PutMetricData permission, nothing on the request path but
//! a write to a pipe).
//!
//! Rendering enforces the specification's limits by splitting: at most
//! [`MAX_METRICS_PER_DIRECTIVE`] metric definitions per line, at most [`MAX_VALUES_PER_METRIC`]
//! values per metric array (the rest go to further lines with the same dimensions), at most
//! [`MAX_DIMENSIONS_PER_SET`] keys per dimension set.

use serde_json::{Map, Number, Value};

use crate::config::StorageResolution;
use crate::names::dimension_value;

/// The specification's limit on MetricDefinition objects in one directive.
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;
/// The specification's limit on dimension keys in one DimensionSet.
pub const MAX_DIMENSIONS_PER_SET: usize = 30;
/// The specification's limit on values in one metric array.
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// CloudWatch units used by this crate (a subset of MetricDatum's StandardUnit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Durations.
    Milliseconds,
    /// Occurrences.
    Count,
    /// Sizes.
    Bytes,
    /// Memory.
    Megabytes,
    /// Ratios ×100.
    Percent,
}

impl Unit {
    /// The unit's name in EMF.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Milliseconds => "Milliseconds",
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Megabytes => "Megabytes",
            Unit::Percent => "Percent",
        }
    }
}

/// One metric and the values recorded for it in this document.
#[derive(Debug, Clone, PartialEq)]
struct Metric {
    name: &'static str,
    unit: Unit,
    values: Vec<f64>,
}

/// The metrics sharing one set of dimension values; rendered to one or more EMF lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmfDocument {
    dimension_sets: Vec<Vec<&'static str>>,
    dimensions: Vec<(&'static str, String)>,
    metrics: Vec<Metric>,
}

impl EmfDocument {
    /// An empty document (no dimensions: metrics aggregated over the whole namespace).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a dimension set (CloudWatch creates one metric per set); keys beyond 30 are dropped.
    pub fn dimension_set(mut self, keys: &[&'static str]) -> Self {
        let keys: Vec<&'static str> = keys.iter().take(MAX_DIMENSIONS_PER_SET).copied().collect();
        if !self.dimension_sets.contains(&keys) {
            self.dimension_sets.push(keys);
        }
        self
    }

    /// Sets a dimension's value (sanitised: printable ASCII, 1..=250 characters).
    pub fn dimension(mut self, key: &'static str, value: &str) -> Self {
        let value = dimension_value(value);
        match self.dimensions.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.dimensions.push((key, value)),
        }
        self
    }

    /// Adds values to a metric (non-finite values are dropped).
    pub fn values(&mut self, name: &'static str, unit: Unit, values: &[f64]) {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        match self.metrics.iter_mut().find(|m| m.name == name) {
            Some(m) => m.values.extend(finite),
            None => self.metrics.push(Metric {
                name,
                unit,
                values: finite.collect(),
            }),
        }
    }

    /// Adds one value to a metric.
    pub fn value(&mut self, name: &'static str, unit: Unit, value: f64) {
        self.values(name, unit, &[value]);
    }

    /// Adds one value (builder style).
    pub fn with(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        self.value(name, unit, value);
        self
    }

    /// True when no metric has a value.
    pub fn is_empty(&self) -> bool {
        self.metrics.iter().all(|m| m.values.is_empty())
    }

    /// Renders the document as EMF lines (without newlines), splitting at the limits.
    pub fn render(
        &self,
        namespace: &str,
        timestamp_ms: u64,
        resolution: StorageResolution,
    ) -> Vec<String> {
        // Only sets whose every key has a value; the spec requires the targets on the root.
        let sets: Vec<Value> = self
            .dimension_sets
            .iter()
            .filter(|set| {
                set.iter()
                    .all(|k| self.dimensions.iter().any(|(d, _)| d == k))
            })
            .map(|set| Value::Array(set.iter().map(|k| Value::from(*k)).collect()))
            .collect();
        let sets = if sets.is_empty() {
            vec![Value::Array(Vec::new())]
        } else {
            sets
        };
        let mut lines = Vec::new();
        let mut round = 0usize;
        loop {
            let start = round * MAX_VALUES_PER_METRIC;
            let slices: Vec<(&Metric, &[f64])> = self
                .metrics
                .iter()
                .filter(|m| m.values.len() > start)
                .map(|m| {
                    let end = (start + MAX_VALUES_PER_METRIC).min(m.values.len());
                    (m, &m.values[start..end])
                })
                .collect();
            if slices.is_empty() {
                break;
            }
            for chunk in slices.chunks(MAX_METRICS_PER_DIRECTIVE) {
                lines.push(self.line(namespace, timestamp_ms, resolution, &sets, chunk));
            }
            round += 1;
        }
        lines
    }

    fn line(
        &self,
        namespace: &str,
        timestamp_ms: u64,
        resolution: StorageResolution,
        sets: &[Value],
        metrics: &[(&Metric, &[f64])],
    ) -> String {
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(m, _)| {
                let mut d = Map::new();
                d.insert("Name".into(), Value::from(m.name));
                d.insert("Unit".into(), Value::from(m.unit.as_str()));
                if resolution == StorageResolution::High {
                    d.insert("StorageResolution".into(), Value::from(1));
                }
                Value::Object(d)
            })
            .collect();
        let mut directive = Map::new();
        directive.insert("Namespace".into(), Value::from(namespace));
        directive.insert("Dimensions".into(), Value::Array(sets.to_vec()));
        directive.insert("Metrics".into(), Value::Array(definitions));
        let mut aws = Map::new();
        aws.insert("Timestamp".into(), Value::from(timestamp_ms));
        aws.insert(
            "CloudWatchMetrics".into(),
            Value::Array(vec![Value::Object(directive)]),
        );
        let mut root = Map::new();
        root.insert("_aws".into(), Value::Object(aws));
        for (k, v) in &self.dimensions {
            root.insert((*k).into(), Value::from(v.as_str()));
        }
        for (m, values) in metrics {
            let v = match values {
                [one] => number(*one),
                many => Value::Array(many.iter().map(|v| number(*v)).collect()),
            };
            root.insert(m.name.into(), v);
        }
        Value::Object(root).to_string()
    }
}

/// Integral values as JSON integers (shorter lines), others as floats.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        Value::Number(Number::from(v as i64))
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn splits_metrics_and_values() {
        // 250 values of one metric: 3 lines of 100, 100, 50 values.
        let mut doc = EmfDocument::new()
            .dimension_set(&["Service"])
            .dimension("Service", "users-api");
        let values: Vec<f64> = (0..250).map(f64::from).collect();
        doc.values("Latency", Unit::Milliseconds, &values);
        doc.value("Requests", Unit::Count, 1.0);
        let lines = doc.render("Ns", 1, StorageResolution::Standard);
        assert_eq!(lines.len(), 3);
        let first = parse(&lines[0]);
        assert_eq!(first["Latency"].as_array().unwrap().len(), 100);
        assert_eq!(first["Requests"], 1);
        let last = parse(&lines[2]);
        assert_eq!(last["Latency"].as_array().unwrap().len(), 50);
        assert!(last.get("Requests").is_none());
        assert_eq!(
            last["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(last["Service"], "users-api");
    }

    #[test]
    fn splits_more_than_100_metrics() {
        let mut doc = EmfDocument::new();
        for i in 0..250 {
            let name: &'static str = Box::leak(format!("m{i}").into_boxed_str());
            doc.value(name, Unit::Count, 1.0);
        }
        let lines = doc.render("Ns", 1, StorageResolution::Standard);
        let sizes: Vec<usize> = lines
            .iter()
            .map(|l| {
                parse(l)["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        let v = parse(&lines[0]);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([[]])
        );
    }

    #[test]
    fn drops_sets_without_values_and_non_finite_numbers() {
        let mut doc = EmfDocument::new()
            .dimension_set(&["Service", "Route"])
            .dimension_set(&["Service"])
            .dimension("Service", "s");
        doc.values("X", Unit::Count, &[f64::NAN, f64::INFINITY, 2.5]);
        let lines = doc.render("Ns", 1, StorageResolution::High);
        let v = parse(&lines[0]);
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Dimensions"], serde_json::json!([["Service"]]));
        assert_eq!(d["Metrics"][0]["StorageResolution"], 1);
        assert_eq!(v["X"], 2.5);
    }

    #[test]
    fn caps_dimension_sets() {
        const KEYS: [&str; 35] = [
            "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11", "d12", "d13",
            "d14", "d15", "d16", "d17", "d18", "d19", "d20", "d21", "d22", "d23", "d24", "d25",
            "d26", "d27", "d28", "d29", "d30", "d31", "d32", "d33", "d34",
        ];
        let mut doc = EmfDocument::new().dimension_set(&KEYS);
        for k in KEYS {
            doc = doc.dimension(k, "v");
        }
        doc.value("X", Unit::Count, 1.0);
        let v = parse(&doc.render("Ns", 1, StorageResolution::Standard)[0]);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
                .as_array()
                .unwrap()
                .len(),
            30
        );
    }
}
