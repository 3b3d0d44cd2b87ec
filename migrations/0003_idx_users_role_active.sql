-- no-transaction
-- Role-based listings (GET /api/users?role=&active=), in keyset order.
-- Built CONCURRENTLY so a deploy never blocks writes; one statement per file because PostgreSQL refuses
-- CONCURRENTLY inside the implicit transaction of a multi-statement query.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_role_active ON users (role, is_active, created_at, id);
