//! Batch inserts with `UNNEST`: one array parameter per column, so the statement has as many
//! bind parameters as columns, however many rows — far from PostgreSQL's 65,535 limit, which a
//! multi-row `VALUES ($1, $2), ($3, $4), …` reaches at 65,535 / columns rows.

use sqlx::postgres::{PgArguments, PgHasArrayType};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Connection, Encode, PgConnection, PgPool, Postgres, Type};

use crate::DbError;

/// PostgreSQL's limit on bind parameters in one statement.
pub const MAX_BIND_PARAMETERS: usize = 65_535;
/// Rows per statement unless [`UnnestInsert::chunk_rows`] says otherwise.
pub const DEFAULT_CHUNK_ROWS: usize = 10_000;
/// Upper bound on rows per statement (client memory per chunk).
pub const MAX_CHUNK_ROWS: usize = 1_000_000;

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;
type Binder<R> = Box<dyn for<'q> Fn(&[R], PgQuery<'q>) -> PgQuery<'q> + Send + Sync>;

struct Column<R> {
    name: String,
    array_type: String,
    bind: Binder<R>,
}

/// An `INSERT INTO table (cols…) SELECT * FROM UNNEST($1::type[], …)` for rows of type `R`.
pub struct UnnestInsert<R> {
    table: String,
    columns: Vec<Column<R>>,
    chunk_rows: usize,
    on_conflict_do_nothing: bool,
}

impl<R> std::fmt::Debug for UnnestInsert<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnnestInsert")
            .field("sql", &self.sql())
            .field("chunk_rows", &self.chunk_rows)
            .finish()
    }
}

/// What a batch insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInsertOutcome {
    /// Rows inserted (as the server counted them).
    pub rows_inserted: u64,
    /// INSERT statements executed (one per chunk).
    pub statements: usize,
    /// Bind parameters per statement (one per column).
    pub parameters_per_statement: usize,
    /// Rows in the largest chunk.
    pub largest_chunk: usize,
}

/// A double-quoted identifier; names are taken verbatim (case-sensitive).
fn quote_ident(name: &str) -> Result<String, DbError> {
    if name.is_empty() || name.len() > 63 || name.contains(['"', '\0']) {
        return Err(DbError::InvalidInput(format!(
            "invalid identifier {name:?}: 1 to 63 bytes, no double quote or NUL"
        )));
    }
    Ok(format!("\"{name}\""))
}

/// `schema.table` or `table`, each part quoted.
fn quote_table(table: &str) -> Result<String, DbError> {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 {
        return Err(DbError::InvalidInput(format!(
            "invalid table name {table:?}: at most schema.table"
        )));
    }
    Ok(parts
        .into_iter()
        .map(quote_ident)
        .collect::<Result<Vec<_>, _>>()?
        .join("."))
}

/// `int4`, `text`, `numeric(10,2)`, `timestamp with time zone` … as an array type (`…[]`).
fn array_type(element_type: &str) -> Result<String, DbError> {
    let t = element_type.trim();
    let t = t.strip_suffix("[]").unwrap_or(t).trim();
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '(' | ')' | ',' | '.'));
    if !ok {
        return Err(DbError::InvalidInput(format!(
            "invalid column type {element_type:?}"
        )));
    }
    Ok(format!("{t}[]"))
}

impl<R> UnnestInsert<R> {
    /// An insert into `table` (`name` or `schema.name`, case-sensitive) with no columns yet.
    pub fn new(table: &str) -> Result<Self, DbError> {
        Ok(Self {
            table: quote_table(table)?,
            columns: Vec::new(),
            chunk_rows: DEFAULT_CHUNK_ROWS,
            on_conflict_do_nothing: false,
        })
    }

    /// Adds a column: its name, its PostgreSQL element type (`text`, `int4`, `uuid`,
    /// `timestamptz`, `jsonb`, …) and how to read its value from a row.
    pub fn column<T, F>(
        mut self,
        name: &str,
        element_type: &str,
        extract: F,
    ) -> Result<Self, DbError>
    where
        F: Fn(&R) -> T + Send + Sync + 'static,
        T: for<'e> Encode<'e, Postgres> + Type<Postgres> + PgHasArrayType + 'static,
    {
        if self.columns.len() >= MAX_BIND_PARAMETERS {
            return Err(DbError::InvalidInput("too many columns".into()));
        }
        self.columns.push(Column {
            name: quote_ident(name)?,
            array_type: array_type(element_type)?,
            bind: Box::new(move |rows, query| {
                query.bind(rows.iter().map(&extract).collect::<Vec<T>>())
            }),
        });
        Ok(self)
    }

    /// Rows per statement (1 to [`MAX_CHUNK_ROWS`]; default [`DEFAULT_CHUNK_ROWS`]).
    pub fn chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = rows.clamp(1, MAX_CHUNK_ROWS);
        self
    }

    /// Appends `ON CONFLICT DO NOTHING` (rows that violate a unique constraint are skipped).
    pub fn on_conflict_do_nothing(mut self) -> Self {
        self.on_conflict_do_nothing = true;
        self
    }

    /// The statement each chunk runs.
    pub fn sql(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        let arrays: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}", i + 1, c.array_type))
            .collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) SELECT * FROM UNNEST({})",
            self.table,
            names.join(", "),
            arrays.join(", ")
        );
        if self.on_conflict_do_nothing {
            sql.push_str(" ON CONFLICT DO NOTHING");
        }
        sql
    }

    async fn insert_chunk(
        &self,
        conn: &mut PgConnection,
        sql: &str,
        rows: &[R],
    ) -> Result<u64, DbError> {
        let mut query = sqlx::query(AssertSqlSafe(sql.to_string()));
        for c in &self.columns {
            query = (c.bind)(rows, query);
        }
        Ok(query.execute(&mut *conn).await?.rows_affected())
    }

    /// Inserts `rows` on `conn`, `chunk_rows` per statement; only one chunk is in memory at a
    /// time. Not atomic by itself: pass a transaction (`&mut *tx`) or use
    /// [`UnnestInsert::execute_in_transaction`] for all-or-nothing.
    pub async fn execute<I>(
        &self,
        conn: &mut PgConnection,
        rows: I,
    ) -> Result<BatchInsertOutcome, DbError>
    where
        I: IntoIterator<Item = R>,
    {
        if self.columns.is_empty() {
            return Err(DbError::InvalidInput(
                "a batch insert needs at least one column".into(),
            ));
        }
        let sql = self.sql();
        let mut outcome = BatchInsertOutcome {
            rows_inserted: 0,
            statements: 0,
            parameters_per_statement: self.columns.len(),
            largest_chunk: 0,
        };
        let mut chunk: Vec<R> = Vec::with_capacity(self.chunk_rows.min(DEFAULT_CHUNK_ROWS));
        let mut rows = rows.into_iter();
        loop {
            chunk.clear();
            chunk.extend(rows.by_ref().take(self.chunk_rows));
            if chunk.is_empty() {
                break;
            }
            outcome.rows_inserted += self.insert_chunk(conn, &sql, &chunk).await?;
            outcome.statements += 1;
            outcome.largest_chunk = outcome.largest_chunk.max(chunk.len());
        }
        Ok(outcome)
    }

    /// Inserts `rows` in one transaction: all of them or none.
    pub async fn execute_in_transaction<I>(
        &self,
        pool: &PgPool,
        rows: I,
    ) -> Result<BatchInsertOutcome, DbError>
    where
        I: IntoIterator<Item = R>,
    {
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let outcome = self.execute(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item {
        name: String,
        qty: i32,
    }

    #[test]
    fn the_statement_has_one_array_parameter_per_column() {
        let insert = UnnestInsert::<Item>::new("inventory.items")
            .unwrap()
            .column("name", "text", |i| i.name.clone())
            .unwrap()
            .column("qty", "int4[]", |i| i.qty)
            .unwrap()
            .on_conflict_do_nothing();
        assert_eq!(
            insert.sql(),
            r#"INSERT INTO "inventory"."items" ("name", "qty") SELECT * FROM UNNEST($1::text[], $2::int4[]) ON CONFLICT DO NOTHING"#
        );
    }

    #[test]
    fn identifiers_and_types_are_checked() {
        assert!(UnnestInsert::<Item>::new("a.b.c").is_err());
        assert!(UnnestInsert::<Item>::new("x\"; drop table y; --").is_err());
        assert!(UnnestInsert::<Item>::new("").is_err());
        let ok = UnnestInsert::<Item>::new("t").unwrap();
        assert!(
            ok.column("n", "text); drop table t; --", |i| i.qty)
                .is_err()
        );
        let ok = UnnestInsert::<Item>::new("t").unwrap();
        assert!(
            ok.column("n", "timestamp with time zone", |i| i.qty)
                .is_ok()
        );
        let ok = UnnestInsert::<Item>::new("t").unwrap();
        assert!(ok.column("n", "numeric(10,2)", |i| i.qty).is_ok());
    }

    #[test]
    fn chunk_size_is_bounded() {
        let i = UnnestInsert::<Item>::new("t").unwrap().chunk_rows(0);
        assert_eq!(i.chunk_rows, 1);
        let i = UnnestInsert::<Item>::new("t")
            .unwrap()
            .chunk_rows(usize::MAX);
        assert_eq!(i.chunk_rows, MAX_CHUNK_ROWS);
    }
}
