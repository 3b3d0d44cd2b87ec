-- Core schema of the CAD AI Platform. Roles and statuses are text with CHECK constraints rather than
-- enum types: adding a value later is a plain constraint change, not an ALTER TYPE outside a transaction.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    cognito_sub   text NOT NULL UNIQUE,
    email         text NOT NULL,
    username      text NOT NULL,
    display_name  text,
    role          text NOT NULL DEFAULT 'viewer' CHECK (role IN ('admin', 'engineer', 'viewer')),
    is_active     boolean NOT NULL DEFAULT true,
    last_login_at timestamptz,
    preferences   jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(preferences) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cad_files (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    uploaded_by      uuid NOT NULL REFERENCES users (id),
    filename         text NOT NULL,
    original_name    text NOT NULL,
    file_size        bigint NOT NULL CHECK (file_size > 0 AND file_size <= 104857600),
    mime_type        text NOT NULL,
    sha256           text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    checksum         text,
    s3_key           text NOT NULL,
    status           text NOT NULL DEFAULT 'uploading'
                     CHECK (status IN ('uploading', 'processing', 'ready', 'failed')),
    processing_error text,
    tags             text[] NOT NULL DEFAULT '{}',
    project_name     text,
    part_name        text,
    description      text,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    thumbnails       jsonb NOT NULL DEFAULT '[]'::jsonb,
    current_version  integer NOT NULL DEFAULT 1 CHECK (current_version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- Keyset orders of the unfiltered listing; the guide's named indexes cover the filtered ones.
CREATE INDEX cad_files_created ON cad_files (created_at DESC, id DESC);
CREATE INDEX cad_files_name ON cad_files (lower(original_name), id);
CREATE INDEX cad_files_size ON cad_files (file_size, id);
COMMENT ON COLUMN cad_files.checksum IS 'S3 ETag of the current version, recorded when the upload completes';
COMMENT ON COLUMN cad_files.thumbnails IS 'Thumbnail keys and CDN URLs: [{width, format, key, url}]';

CREATE TABLE cad_file_versions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    file_id     uuid NOT NULL REFERENCES cad_files (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 1),
    s3_key      text NOT NULL,
    file_size   bigint NOT NULL CHECK (file_size > 0 AND file_size <= 104857600),
    mime_type   text NOT NULL,
    original_name text NOT NULL,
    sha256      text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    checksum    text,
    status      text NOT NULL DEFAULT 'uploading' CHECK (status IN ('uploading', 'uploaded')),
    change_note text,
    uploaded_by uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    UNIQUE (file_id, version)
);

CREATE TABLE datasets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    description text,
    owner_id    uuid NOT NULL REFERENCES users (id),
    is_public   boolean NOT NULL DEFAULT false,
    tags        text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dataset_files (
    dataset_id uuid NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    file_id    uuid NOT NULL REFERENCES cad_files (id) ON DELETE CASCADE,
    label      text,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset_id, file_id)
);
CREATE INDEX dataset_files_file ON dataset_files (file_id);

CREATE TABLE ai_models (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL,
    version       text NOT NULL DEFAULT '1',
    model_type    text NOT NULL,
    status        text NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'training', 'ready', 'failed', 'archived')),
    dataset_id    uuid REFERENCES datasets (id) ON DELETE SET NULL,
    artifact_key  text,
    config        jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by    uuid NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

CREATE TABLE training_jobs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id        uuid NOT NULL REFERENCES ai_models (id) ON DELETE CASCADE,
    dataset_id      uuid REFERENCES datasets (id) ON DELETE SET NULL,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress        smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    hyperparameters jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics         jsonb NOT NULL DEFAULT '{}'::jsonb,
    error           text,
    created_by      uuid NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX training_jobs_model ON training_jobs (model_id, created_at DESC);

CREATE TABLE search_queries (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    query_text   text NOT NULL,
    filters      jsonb NOT NULL DEFAULT '{}'::jsonb,
    result_count integer NOT NULL DEFAULT 0,
    duration_ms  real,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE search_results (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    query_id        uuid NOT NULL REFERENCES search_queries (id) ON DELETE CASCADE,
    file_id         uuid NOT NULL REFERENCES cad_files (id) ON DELETE CASCADE,
    relevance_score real NOT NULL,
    rank            integer NOT NULL,
    clicked         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_feedback (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid REFERENCES users (id) ON DELETE SET NULL,
    query_id      uuid REFERENCES search_queries (id) ON DELETE CASCADE,
    file_id       uuid REFERENCES cad_files (id) ON DELETE CASCADE,
    feedback_type text NOT NULL,
    rating        smallint CHECK (rating BETWEEN 1 AND 5),
    comment       text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_logs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       uuid REFERENCES users (id) ON DELETE SET NULL,
    action        text NOT NULL,
    resource_type text NOT NULL,
    resource_id   text,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id    text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_created ON audit_logs (created_at DESC);
CREATE INDEX audit_logs_resource ON audit_logs (resource_type, resource_id);

CREATE TABLE notifications (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL DEFAULT '',
    data       jsonb NOT NULL DEFAULT '{}'::jsonb,
    read_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_created ON notifications (user_id, created_at DESC);
