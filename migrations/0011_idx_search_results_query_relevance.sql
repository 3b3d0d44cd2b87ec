-- no-transaction
-- Results of a query in ranking order.
-- Built CONCURRENTLY so a deploy never blocks writes; one statement per file because PostgreSQL refuses
-- CONCURRENTLY inside the implicit transaction of a multi-statement query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_search_results_query_relevance ON search_results (query_id, relevance_score DESC);
