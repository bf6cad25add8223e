-- Which service runs which contract where. An environment is created by its first recorded
-- deployment. A deployment row says: service S, built with the pins in deployment_pins, runs
-- in environment E since deployed_at; it is replaced by S's next deployment there (ended_at
-- set) or ended by an undeploy. CI-recorded deployments have instance ''; instances that
-- report themselves (heartbeats) have their id and stop counting after expires_at.
CREATE TABLE environments (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
CREATE TABLE deployments (
    id BIGSERIAL PRIMARY KEY,
    environment TEXT NOT NULL,
    service TEXT NOT NULL,
    instance TEXT NOT NULL,
    labels TEXT NOT NULL,
    deployed_at BIGINT NOT NULL,
    ended_at BIGINT,
    expires_at BIGINT
);
-- At most one current deployment per service (and reporting instance) in an environment.
CREATE UNIQUE INDEX deployments_current ON deployments(environment, service, instance) WHERE ended_at IS NULL;
CREATE TABLE deployment_pins (
    deployment_id BIGINT NOT NULL,
    subject TEXT NOT NULL,
    version BIGINT NOT NULL,
    digest TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (deployment_id, subject, role)
);
CREATE INDEX deployment_pins_version ON deployment_pins(subject, version);
-- A subject's policy on versions still deployed somewhere: a push incompatible with one is
-- a warning (`warn`) or refused (`enforce`).
ALTER TABLE config ADD COLUMN deployed TEXT NOT NULL DEFAULT 'warn';
