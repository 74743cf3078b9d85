-- The knowledge base tables a PostgreSQL source reads (read-only). The
-- host never writes them; `tests/` and `make demo-pg` fill them with the
-- embedded corpus to prove that a dry run from PostgreSQL plans exactly
-- what a dry run from the embedded corpus plans.

CREATE TABLE source_document (
    id          bigint PRIMARY KEY,
    kb_path     text NOT NULL UNIQUE,
    title       text NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'archived')),
    updated_at  timestamptz NOT NULL
);

CREATE TABLE source_version (
    id           bigint PRIMARY KEY,
    document_id  bigint NOT NULL REFERENCES source_document (id),
    revision     bigint NOT NULL CHECK (revision >= 1),
    body         text NOT NULL,
    body_sha256  text NOT NULL,
    created_at   timestamptz NOT NULL,
    UNIQUE (document_id, revision)
);

CREATE TABLE information_unit (
    id           bigint PRIMARY KEY,
    document_id  bigint NOT NULL REFERENCES source_document (id),
    version_id   bigint NOT NULL REFERENCES source_version (id),
    ordinal      bigint NOT NULL CHECK (ordinal >= 0),
    heading      text NOT NULL,
    anchor       text NOT NULL,
    body         text NOT NULL,
    body_sha256  text NOT NULL,
    lifecycle    text NOT NULL CHECK (lifecycle IN ('active', 'superseded', 'retired')),
    UNIQUE (version_id, ordinal)
);

CREATE INDEX information_unit_document ON information_unit (document_id) WHERE lifecycle = 'active';
