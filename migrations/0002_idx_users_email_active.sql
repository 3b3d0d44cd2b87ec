-- no-transaction
-- Email lookup for active users: WHERE lower(email) = lower($1) AND is_active.
-- Built CONCURRENTLY so a deploy never blocks writes; one statement per file because PostgreSQL refuses
-- CONCURRENTLY inside the implicit transaction of a multi-statement query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_email_active ON users (lower(email)) WHERE is_active;
