//! A writer pool and a reader pool: reads can go to a replica (DATABASE_READ_URL).

use std::str::FromStr;

use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::{DbError, PoolSettings, connect_options_from_env, lazy_pool};

/// The application's pools: `writer` for writes and reads that must see them, `reader` for
/// read-only queries (the replica when DATABASE_READ_URL is set, else the writer itself).
#[derive(Debug, Clone)]
pub struct Db {
    writer: PgPool,
    reader: PgPool,
    replica: bool,
}

impl Db {
    /// One pool for everything (no replica).
    pub fn new(writer: PgPool) -> Self {
        Self {
            reader: writer.clone(),
            writer,
            replica: false,
        }
    }

    /// A writer and a separate reader pool.
    pub fn with_reader(writer: PgPool, reader: PgPool) -> Self {
        Self {
            writer,
            reader,
            replica: true,
        }
    }

    /// Lazy pools from DATABASE_URL / DATABASE_SECRET_ARN, and DATABASE_READ_URL for the reader.
    pub async fn from_env(
        aws: Option<&aws_config::SdkConfig>,
        settings: &PoolSettings,
    ) -> Result<Self, DbError> {
        let writer = lazy_pool(connect_options_from_env(aws).await?, settings);
        Ok(match read_options_from_env()? {
            Some(read) => Self::with_reader(writer, reader_pool(read, settings)),
            None => Self::new(writer),
        })
    }

    /// The primary: writes, and reads that must see the caller's own writes.
    pub fn writer(&self) -> &PgPool {
        &self.writer
    }

    /// For read-only queries; may lag behind the writer when it is a replica.
    pub fn reader(&self) -> &PgPool {
        &self.reader
    }

    /// Whether the reader is a separate pool.
    pub fn has_replica(&self) -> bool {
        self.replica
    }

    /// Size and use of both pools (`reader` only when it is a separate pool).
    pub fn pool_stats(&self) -> PoolsStats {
        PoolsStats {
            writer: PoolStats::of(&self.writer),
            reader: self.replica.then(|| PoolStats::of(&self.reader)),
        }
    }
}

/// Connection options of the read replica, from DATABASE_READ_URL (None when unset or empty).
pub fn read_options_from_env() -> Result<Option<PgConnectOptions>, DbError> {
    match std::env::var("DATABASE_READ_URL") {
        Ok(url) if !url.trim().is_empty() => PgConnectOptions::from_str(url.trim())
            .map(Some)
            .map_err(|e| DbError::InvalidConfig(format!("DATABASE_READ_URL: {e}"))),
        _ => Ok(None),
    }
}

/// A lazy reader pool whose sessions are read-only by default, so a write sent to the reader by
/// mistake fails the same way locally (reader = another database) as on a real replica.
pub fn reader_pool(options: PgConnectOptions, settings: &PoolSettings) -> PgPool {
    lazy_pool(
        options.options([("default_transaction_read_only", "on")]),
        settings,
    )
}

/// A pool's size and use at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Open connections (idle or in use).
    pub size: u32,
    /// Idle connections.
    pub idle: u32,
    /// Connections checked out (`size - idle`).
    pub in_use: u32,
    /// The pool's maximum.
    pub max_connections: u32,
    /// Whether the pool was closed.
    pub closed: bool,
}

impl PoolStats {
    /// Reads the counters of `pool`.
    pub fn of(pool: &PgPool) -> Self {
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        Self {
            size,
            idle,
            in_use: size - idle,
            max_connections: pool.options().get_max_connections(),
            closed: pool.is_closed(),
        }
    }
}

/// Both pools' statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolsStats {
    /// The writer pool.
    pub writer: PoolStats,
    /// The reader pool, when separate.
    pub reader: Option<PoolStats>,
}
