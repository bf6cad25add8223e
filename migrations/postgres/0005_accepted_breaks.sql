-- Breaks accepted on purpose: a version pushed by an admin despite breaking changes
-- (`--accept-breaking --reason`), with the findings it was accepted with (JSON, as the API
-- returns them), the reason and who accepted it. Written in the version's commit.
CREATE TABLE accepted_breaks (
    subject TEXT NOT NULL,
    version BIGINT NOT NULL,
    reason TEXT NOT NULL,
    accepted_by TEXT NOT NULL,
    findings TEXT NOT NULL,
    PRIMARY KEY (subject, version)
);
