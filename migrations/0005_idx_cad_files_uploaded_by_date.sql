-- no-transaction
-- File listing by uploader, newest first, in keyset order.
-- Built CONCURRENTLY so a deploy never blocks writes; one statement per file because PostgreSQL refuses
-- CONCURRENTLY inside the implicit transaction of a multi-statement query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_cad_files_uploaded_by_date ON cad_files (uploaded_by, created_at DESC, id DESC);
