-- no-transaction
-- Full-text search over past queries. The two-argument to_tsvector is immutable, so it may be indexed.
-- Built CONCURRENTLY so a deploy never blocks writes; one statement per file because PostgreSQL refuses
-- CONCURRENTLY inside the implicit transaction of a multi-statement query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_search_queries_query_text ON search_queries USING gin (to_tsvector('english'::regconfig, query_text));
