-- no-transaction
-- Full-text search over files: search_vector @@ websearch_to_tsquery('english', $1).
-- Built CONCURRENTLY so a deploy never blocks writes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS cad_files_search_vector ON cad_files USING gin (search_vector);
