//! Reading recommendations out of an `EXPLAIN (FORMAT JSON)` plan.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

/// What a recommendation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationKind {
    /// A sequential scan over a table larger than the threshold.
    SeqScanLargeTable,
    /// A sort whose estimated input does not fit in `work_mem` (it will spill to disk).
    SortSpill,
    /// The planner's row estimate is off from the rows the statement really produced.
    RowMisestimate,
}

/// One finding in a plan, with the numbers behind it and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// What kind of problem.
    pub kind: RecommendationKind,
    /// The plan node it was found on (`Seq Scan`, `Sort`, or the root node for misestimates).
    pub node: String,
    /// The relation concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// The planner's row estimate for the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_rows: Option<f64>,
    /// Rows the statement really returned or changed (misestimates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_rows: Option<u64>,
    /// The table's size in rows (`pg_class.reltuples`, else the scan's estimate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_rows: Option<f64>,
    /// Estimated bytes to sort (rows × width).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_bytes: Option<f64>,
    /// The server's `work_mem`, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_mem_bytes: Option<u64>,
    /// How far off the estimate is (≥ 1, either direction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// The node's filter or sort key, as the plan prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What to do about it.
    pub suggestion: String,
}

/// Facts from outside the plan that the rules need.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// Rows per relation name (from `pg_class.reltuples`; missing or negative = unknown).
    pub relation_rows: HashMap<String, f64>,
    /// `work_mem` in bytes, when known.
    pub work_mem_bytes: Option<u64>,
    /// Rows the statement really returned (or changed, for a write without RETURNING).
    pub actual_rows: Option<u64>,
    /// A sequential scan is flagged above this many table rows.
    pub seq_scan_min_rows: f64,
    /// A row estimate is flagged when off by this factor or more.
    pub misestimate_factor: f64,
    /// The plan is a generic one (parameters unknown to the planner).
    pub generic_plan: bool,
}

/// The root `Plan` node of `EXPLAIN (FORMAT JSON)` output (`[{"Plan": {…}}]`).
pub fn plan_root(explain: &Value) -> Option<&Value> {
    match explain {
        Value::Array(items) => items.first().and_then(|v| v.get("Plan")),
        Value::Object(_) => explain.get("Plan").or(Some(explain)),
        _ => None,
    }
}

/// Every node with its parent, depth first, without recursion (plans can be deep).
fn nodes(root: &Value) -> Vec<(&Value, Option<&Value>)> {
    let mut out = Vec::new();
    let mut stack: Vec<(&Value, Option<&Value>)> = vec![(root, None)];
    while let Some((node, parent)) = stack.pop() {
        out.push((node, parent));
        if let Some(Value::Array(children)) = node.get("Plans") {
            for child in children.iter().rev() {
                stack.push((child, Some(node)));
            }
        }
    }
    out
}

fn node_type(node: &Value) -> &str {
    node.get("Node Type").and_then(Value::as_str).unwrap_or("")
}

fn num(node: &Value, key: &str) -> Option<f64> {
    node.get(key).and_then(Value::as_f64)
}

fn relation(node: &Value) -> Option<String> {
    let name = node.get("Relation Name")?.as_str()?;
    Some(match node.get("Schema").and_then(Value::as_str) {
        Some(schema) => format!("{schema}.{name}"),
        None => name.to_string(),
    })
}

/// The relations a plan reads with a sequential scan.
pub fn seq_scan_relations(root: &Value) -> Vec<String> {
    let mut rels: Vec<String> = nodes(root)
        .into_iter()
        .filter(|(n, _)| node_type(n) == "Seq Scan")
        .filter_map(|(n, _)| n.get("Relation Name")?.as_str().map(str::to_string))
        .collect();
    rels.sort();
    rels.dedup();
    rels
}

/// Every relation a plan touches.
fn relations(root: &Value) -> Vec<String> {
    let mut rels: Vec<String> = nodes(root)
        .into_iter()
        .filter_map(|(n, _)| relation(n))
        .collect();
    rels.sort();
    rels.dedup();
    rels
}

/// Column-looking words of a filter such as `((status = $1) AND (lower(email) = 'x'::text))`.
fn filter_columns(filter: &str) -> Vec<String> {
    const NOT_COLUMNS: &[&str] = &[
        "and",
        "or",
        "not",
        "is",
        "null",
        "true",
        "false",
        "any",
        "all",
        "like",
        "ilike",
        "in",
        "between",
        "similar",
        "to",
        "distinct",
        "from",
        "array",
        "case",
        "when",
        "then",
        "else",
        "end",
        "subplan",
        "hashed",
        "initplan",
        // the second word of multi-word type names after `::`
        "varying",
        "precision",
        "with",
        "without",
        "time",
        "zone",
    ];
    let chars: Vec<char> = filter.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut after_cast = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            after_cast = false;
        } else if c == '$' {
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' || c == '"' {
            let start = i;
            if c == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                {
                    i += 1;
                }
            }
            let word: String = chars[start..i.min(chars.len())].iter().collect();
            let is_function = chars.get(i) == Some(&'(');
            let bare = word.rsplit('.').next().unwrap_or(&word).to_string();
            if !after_cast
                && !is_function
                && !NOT_COLUMNS.contains(&bare.to_lowercase().as_str())
                && !out.contains(&bare)
            {
                out.push(bare);
            }
            after_cast = false;
        } else {
            // `::type` and `::character varying`: the next word is a type, not a column.
            if c == ':' && chars.get(i + 1) == Some(&':') {
                after_cast = true;
                i += 2;
                continue;
            }
            if !c.is_whitespace() {
                after_cast = false;
            }
            i += 1;
        }
    }
    out.truncate(4);
    out
}

fn human_bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.0} kB", b / 1024.0)
    }
}

/// The rows the plan promises to produce: the root's, or for a write (`ModifyTable`, which
/// estimates 0 rows without RETURNING) the rows of the plan feeding it.
fn estimated_output_rows(root: &Value) -> Option<f64> {
    if node_type(root) == "ModifyTable" && num(root, "Plan Rows") == Some(0.0) {
        return root
            .get("Plans")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .and_then(|c| num(c, "Plan Rows"));
    }
    num(root, "Plan Rows")
}

/// Recommendations for a plan (`root` is the `Plan` object).
pub fn recommend(root: &Value, ctx: &PlanContext) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for (node, parent) in nodes(root) {
        match node_type(node) {
            "Seq Scan" => {
                let Some(rel) = node.get("Relation Name").and_then(Value::as_str) else {
                    continue;
                };
                let estimated = num(node, "Plan Rows");
                let table_rows = ctx
                    .relation_rows
                    .get(rel)
                    .copied()
                    .filter(|r| *r >= 0.0)
                    .or(estimated);
                let Some(table_rows) = table_rows.filter(|r| *r > ctx.seq_scan_min_rows) else {
                    continue;
                };
                let filter = node.get("Filter").and_then(Value::as_str);
                let suggestion = match filter {
                    Some(f) => {
                        let cols = filter_columns(f);
                        if cols.is_empty() {
                            format!(
                                "add an index on {rel} matching the filter {f} (the scan reads all ~{table_rows:.0} rows)"
                            )
                        } else {
                            format!(
                                "add an index on {rel} ({}) for the filter {f} (the scan reads all ~{table_rows:.0} rows)",
                                cols.join(", ")
                            )
                        }
                    }
                    None => format!(
                        "the statement reads all ~{table_rows:.0} rows of {rel}: add a WHERE clause or LIMIT, or an index serving its join or order"
                    ),
                };
                out.push(Recommendation {
                    kind: RecommendationKind::SeqScanLargeTable,
                    node: "Seq Scan".into(),
                    relation: relation(node),
                    estimated_rows: estimated,
                    actual_rows: None,
                    table_rows: Some(table_rows),
                    estimated_bytes: None,
                    work_mem_bytes: None,
                    factor: None,
                    detail: filter.map(str::to_string),
                    suggestion,
                });
            }
            "Sort" => {
                let Some(work_mem) = ctx.work_mem_bytes else {
                    continue;
                };
                let (Some(mut rows), Some(width)) =
                    (num(node, "Plan Rows"), num(node, "Plan Width"))
                else {
                    continue;
                };
                // Under a LIMIT the executor keeps only the top rows (bounded heap sort).
                if let Some(p) = parent.filter(|p| node_type(p) == "Limit")
                    && let Some(limit_rows) = num(p, "Plan Rows")
                {
                    rows = rows.min(limit_rows);
                }
                let bytes = rows * width;
                if bytes <= work_mem as f64 {
                    continue;
                }
                let key = node.get("Sort Key").and_then(Value::as_array).map(|k| {
                    k.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                let order = key.clone().unwrap_or_else(|| "the sort key".into());
                out.push(Recommendation {
                    kind: RecommendationKind::SortSpill,
                    node: "Sort".into(),
                    relation: None,
                    estimated_rows: Some(rows),
                    actual_rows: None,
                    table_rows: None,
                    estimated_bytes: Some(bytes),
                    work_mem_bytes: Some(work_mem),
                    factor: None,
                    detail: key,
                    suggestion: format!(
                        "the sort of ~{rows:.0} rows (~{}) exceeds work_mem ({}) and will spill to disk: raise work_mem for this query, add a LIMIT, or add an index ordered by {order}",
                        human_bytes(bytes),
                        human_bytes(work_mem as f64)
                    ),
                });
            }
            _ => {}
        }
    }
    if let (Some(actual), Some(estimated)) = (ctx.actual_rows, estimated_output_rows(root)) {
        let e = estimated.max(1.0);
        let a = (actual as f64).max(1.0);
        let factor = if e > a { e / a } else { a / e };
        if factor >= ctx.misestimate_factor {
            let rels = relations(root);
            let mut suggestion = if rels.is_empty() {
                "check the statistics of the functions and sub-queries involved".to_string()
            } else {
                format!(
                    "run ANALYZE on {}; if the estimate stays off, add extended statistics (CREATE STATISTICS) or an expression index for the filtered expressions",
                    rels.join(", ")
                )
            };
            if ctx.generic_plan {
                suggestion.push_str(
                    " (this is the generic plan, estimated without the parameter values)",
                );
            }
            out.push(Recommendation {
                kind: RecommendationKind::RowMisestimate,
                node: node_type(root).to_string(),
                relation: rels.first().cloned().filter(|_| rels.len() == 1),
                estimated_rows: Some(estimated),
                actual_rows: Some(actual),
                table_rows: None,
                estimated_bytes: None,
                work_mem_bytes: None,
                factor: Some(factor),
                detail: None,
                suggestion,
            });
        }
    }
    out
}

/// `SHOW work_mem` output (`4MB`, `64kB`, `1GB`, or a bare number of kB) in bytes.
pub fn parse_memory_setting(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "kB" => 1024,
        "B" => 1,
        "MB" => 1024 * 1024,
        "GB" => 1024 * 1024 * 1024,
        "TB" => 1024 * 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> PlanContext {
        PlanContext {
            relation_rows: HashMap::new(),
            work_mem_bytes: Some(4 * 1024 * 1024),
            actual_rows: None,
            seq_scan_min_rows: 10_000.0,
            misestimate_factor: 10.0,
            generic_plan: false,
        }
    }

    #[test]
    fn a_seq_scan_over_a_big_table_asks_for_an_index_on_the_filtered_column() {
        let explain = json!([{"Plan": {"Node Type": "Seq Scan", "Relation Name": "orders",
            "Alias": "orders", "Plan Rows": 1, "Plan Width": 15,
            "Filter": "((status)::text = ($1)::text)"}}]);
        let root = plan_root(&explain).unwrap();
        let mut c = ctx();
        c.relation_rows.insert("orders".into(), 250_000.0);
        let recs = recommend(root, &c);
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!(r.kind, RecommendationKind::SeqScanLargeTable);
        assert_eq!(r.relation.as_deref(), Some("orders"));
        assert_eq!(r.table_rows, Some(250_000.0));
        assert!(
            r.suggestion.starts_with("add an index on orders (status)"),
            "{}",
            r.suggestion
        );
        // A small table is fine.
        c.relation_rows.insert("orders".into(), 500.0);
        assert!(recommend(root, &c).is_empty());
        // Unknown size (never analysed): the scan's own estimate decides.
        c.relation_rows.insert("orders".into(), -1.0);
        assert!(recommend(root, &c).is_empty());
    }

    #[test]
    fn a_sort_bigger_than_work_mem_is_a_spill_unless_a_limit_bounds_it() {
        let sort = json!({"Node Type": "Sort", "Plan Rows": 200000, "Plan Width": 110,
            "Sort Key": ["pad"], "Plans": [{"Node Type": "Seq Scan", "Relation Name": "t",
            "Plan Rows": 200000, "Plan Width": 110}]});
        let recs = recommend(&sort, &ctx());
        let spill: Vec<_> = recs
            .iter()
            .filter(|r| r.kind == RecommendationKind::SortSpill)
            .collect();
        assert_eq!(spill.len(), 1);
        assert_eq!(spill[0].estimated_bytes, Some(22_000_000.0));
        assert!(spill[0].suggestion.contains("raise work_mem"));
        assert!(spill[0].suggestion.contains("add a LIMIT"));
        let limited = json!({"Node Type": "Limit", "Plan Rows": 10, "Plan Width": 110,
            "Plans": [sort]});
        assert!(
            recommend(&limited, &ctx())
                .iter()
                .all(|r| r.kind != RecommendationKind::SortSpill)
        );
        let mut no_mem = ctx();
        no_mem.work_mem_bytes = None;
        assert!(
            recommend(&limited, &no_mem)
                .iter()
                .all(|r| r.kind != RecommendationKind::SortSpill)
        );
    }

    #[test]
    fn misestimates_in_either_direction_suggest_analyze() {
        let plan = json!({"Node Type": "Seq Scan", "Relation Name": "t", "Plan Rows": 1000,
            "Plan Width": 4, "Filter": "((v % 2) = 0)"});
        let mut c = ctx();
        c.actual_rows = Some(100_000);
        let recs = recommend(&plan, &c);
        let m = recs
            .iter()
            .find(|r| r.kind == RecommendationKind::RowMisestimate)
            .unwrap();
        assert_eq!(m.factor, Some(100.0));
        assert!(m.suggestion.starts_with("run ANALYZE on t"));
        c.actual_rows = Some(50);
        assert!(recommend(&plan, &c).iter().any(|r| r.factor == Some(20.0)));
        c.actual_rows = Some(500);
        assert!(recommend(&plan, &c).is_empty());
        c.actual_rows = None;
        assert!(recommend(&plan, &c).is_empty());
    }

    #[test]
    fn a_write_is_compared_with_the_rows_feeding_it() {
        let plan = json!({"Node Type": "ModifyTable", "Operation": "Update",
            "Relation Name": "t", "Plan Rows": 0, "Plan Width": 0,
            "Plans": [{"Node Type": "Index Scan", "Relation Name": "t", "Plan Rows": 3,
            "Plan Width": 10}]});
        let mut c = ctx();
        c.actual_rows = Some(3);
        assert!(recommend(&plan, &c).is_empty());
        c.actual_rows = Some(3000);
        assert_eq!(recommend(&plan, &c)[0].estimated_rows, Some(3.0));
    }

    #[test]
    fn filter_columns_skips_functions_types_values_and_keywords() {
        assert_eq!(
            filter_columns("((lower(email) = 'A'::text) AND (t.status IS NOT NULL) AND (n > $1))"),
            vec!["email", "status", "n"]
        );
        assert_eq!(
            filter_columns("((name)::character varying = 'x'::character varying)"),
            vec!["name"]
        );
    }

    #[test]
    fn memory_settings() {
        assert_eq!(parse_memory_setting("4MB"), Some(4 * 1024 * 1024));
        assert_eq!(parse_memory_setting("64kB"), Some(64 * 1024));
        assert_eq!(parse_memory_setting("1GB"), Some(1 << 30));
        assert_eq!(parse_memory_setting("2048"), Some(2048 * 1024));
        assert_eq!(parse_memory_setting("lots"), None);
        assert_eq!(parse_memory_setting("99999999999999TB"), None);
    }
}
