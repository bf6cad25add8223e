-- The findings of a diff between two versions' contents under a policy (JSON, as the API
-- returns them), kept so that a diff page needs no decoding after the first time — or
-- after the push that made the newer version, which computes the default diff (the
-- previous live version against it) in the background. Keyed by content digests: versions
-- are immutable.
CREATE TABLE diff_results (
    subject TEXT NOT NULL,
    from_digest TEXT NOT NULL,
    to_digest TEXT NOT NULL,
    policy TEXT NOT NULL,
    findings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (subject, from_digest, to_digest, policy)
);
