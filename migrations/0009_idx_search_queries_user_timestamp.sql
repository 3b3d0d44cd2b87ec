-- no-transaction
-- A user's search history, newest first.
-- Built CONCURRENTLY so a deploy never blocks writes; one statement per file because PostgreSQL refuses
-- CONCURRENTLY inside the implicit transaction of a multi-statement query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_search_queries_user_timestamp ON search_queries (user_id, created_at DESC);
