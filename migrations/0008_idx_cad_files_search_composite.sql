-- no-transaction
-- Common search pattern: a project (and part), newest first, in keyset order.
-- Built CONCURRENTLY so a deploy never blocks writes; one statement per file because PostgreSQL refuses
-- CONCURRENTLY inside the implicit transaction of a multi-statement query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_cad_files_search_composite ON cad_files (project_name, part_name, created_at DESC, id DESC);
