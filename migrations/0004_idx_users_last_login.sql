-- no-transaction
-- Login activity: most recently active users first, or logins since a time.
-- Built CONCURRENTLY so a deploy never blocks writes; one statement per file because PostgreSQL refuses
-- CONCURRENTLY inside the implicit transaction of a multi-statement query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_last_login ON users (last_login_at DESC NULLS LAST);
