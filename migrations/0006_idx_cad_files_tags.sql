-- no-transaction
-- Tag searches: tags && $1 (any) and tags @> $1 (all).
-- Built CONCURRENTLY so a deploy never blocks writes; one statement per file because PostgreSQL refuses
-- CONCURRENTLY inside the implicit transaction of a multi-statement query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_cad_files_tags ON cad_files USING gin (tags);
