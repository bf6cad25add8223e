-- Global schema ids (the Confluent API's): one id per distinct schema content — the
-- version's text (its path too when it has several files) and its references — shared by
-- every subject and version with that content, and never reused for other content.
CREATE TABLE schema_ids (
    id BIGINT PRIMARY KEY NOT NULL,
    digest TEXT NOT NULL UNIQUE
);

-- NULL only for rows written before this migration, until the server assigns them at start.
ALTER TABLE versions ADD COLUMN schema_id BIGINT;
CREATE INDEX versions_schema_id ON versions(schema_id);

-- The import path a Confluent reference gives its version (NULL: the version's own paths).
ALTER TABLE version_deps ADD COLUMN name TEXT;

-- The Confluent API's modes (READWRITE, READONLY, READONLY_OVERRIDE, IMPORT); scope '' is
-- the global one, otherwise a subject name.
CREATE TABLE modes (
    scope TEXT PRIMARY KEY NOT NULL,
    mode TEXT NOT NULL
);
