-- The search document of each file: a weighted tsvector over name (A), project, part and tags (B),
-- description (C) and the string values of its metadata (D). Maintained by the search-indexing
-- worker (not a trigger), so an upload or edit never waits for it.
ALTER TABLE cad_files ADD COLUMN search_vector tsvector;
