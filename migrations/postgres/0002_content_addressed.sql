-- Content-addressed storage and dependencies between subjects.
--
-- File texts, per-file compiled descriptors and manifest chunks are stored once, by the
-- sha256 of their content, shared by every version and subject. A version row then holds a
-- manifest: the JSON list of its manifest chunks' digests (each chunk lists files in
-- descriptor-set order: path, text digest for the version's own files, descriptor digest).
-- Rows written before this migration keep their inline `files`/`descriptor` until the
-- server rewrites them at start (manifest IS NULL marks them); new rows leave both empty.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY NOT NULL, -- sha256 of the uncompressed content
    content BYTEA NOT NULL            -- 1 byte of encoding (0 raw, 1 deflate), then the bytes
);

ALTER TABLE versions ADD COLUMN manifest TEXT;

-- The versions a version was built against (its imports resolve into their files).
CREATE TABLE version_deps (
    subject TEXT NOT NULL,
    version BIGINT NOT NULL,
    dep_subject TEXT NOT NULL,
    dep_version BIGINT NOT NULL,
    dep_digest TEXT NOT NULL,
    position BIGINT NOT NULL,       -- order as pushed
    PRIMARY KEY (subject, version, dep_subject),
    FOREIGN KEY (subject, version) REFERENCES versions(subject, version) ON DELETE CASCADE
);
CREATE INDEX version_deps_dep ON version_deps(dep_subject, dep_version);
