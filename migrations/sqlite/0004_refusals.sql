-- A bounded log of refused pushes per subject (the newest kept): when, the push's labels,
-- and the findings it was refused for (JSON, as the API returns them).
CREATE TABLE refusals (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    labels TEXT NOT NULL,
    policy TEXT NOT NULL,
    findings TEXT NOT NULL
);
CREATE INDEX refusals_subject ON refusals(subject, id);
