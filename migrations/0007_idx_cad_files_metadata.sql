-- no-transaction
-- Metadata containment searches: metadata @> $1.
-- Built CONCURRENTLY so a deploy never blocks writes; one statement per file because PostgreSQL refuses
-- CONCURRENTLY inside the implicit transaction of a multi-statement query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_cad_files_metadata ON cad_files USING gin (metadata jsonb_path_ops);
