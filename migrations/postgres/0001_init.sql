-- Subjects, their immutable versions, and compatibility configuration.
CREATE TABLE subjects (
    name TEXT PRIMARY KEY NOT NULL,
    -- Highest version number ever given; never decreases, so numbers are never reused.
    last_version BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE versions (
    subject TEXT NOT NULL REFERENCES subjects(name),
    version BIGINT NOT NULL,
    digest TEXT NOT NULL,
    files TEXT NOT NULL,          -- JSON object: path -> text
    descriptor BYTEA NOT NULL,     -- FileDescriptorSet with imports and source info
    labels TEXT NOT NULL,         -- JSON object
    created_at BIGINT NOT NULL,   -- unix milliseconds
    deleted BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE INDEX versions_digest ON versions(digest);

-- scope '' is the global default, otherwise a subject name.
CREATE TABLE config (
    scope TEXT PRIMARY KEY NOT NULL,
    mode TEXT NOT NULL,
    categories TEXT NOT NULL      -- JSON array of rule categories or ids
);
