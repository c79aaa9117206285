-- hilt server schema, PostgreSQL. Append-only: never edit a released migration, add a new file.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

-- Tokens are stored as the hex SHA-256 of the secret; the secret is shown once.
CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    kind          TEXT NOT NULL CHECK (kind IN ('agent', 'user')),
    admin         BOOLEAN NOT NULL DEFAULT FALSE,
    label         TEXT,
    hash          TEXT NOT NULL UNIQUE,
    machine_id    TEXT,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);

-- One cloud agent per agent token.
CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    name          TEXT,
    machine_id    TEXT NOT NULL,
    machine_name  TEXT,
    version       TEXT,
    region        TEXT,
    last_seen_at  TEXT NOT NULL
);

CREATE TABLE benches (
    workspace_id       TEXT NOT NULL REFERENCES workspaces(id),
    bench_id           TEXT NOT NULL,
    agent_id           TEXT NOT NULL REFERENCES agents(id),
    reported_bench_id  TEXT NOT NULL,
    name               TEXT NOT NULL,
    status             TEXT NOT NULL,
    current_run_id     TEXT,
    health_status      TEXT,
    summary            TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    PRIMARY KEY (workspace_id, bench_id)
);
CREATE UNIQUE INDEX benches_by_agent ON benches (agent_id, reported_bench_id);

CREATE TABLE runs (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    workspace_id      TEXT NOT NULL REFERENCES workspaces(id),
    bench_id          TEXT NOT NULL,
    state             TEXT NOT NULL,
    suite_yaml        TEXT NOT NULL,
    artifact_name     TEXT,
    skip_flash        BOOLEAN NOT NULL,
    verbose_steps     BOOLEAN NOT NULL,
    agent_id          TEXT,
    fence             BIGINT NOT NULL DEFAULT 0,
    lease_expires_ms  BIGINT,
    exit_code         INTEGER,
    error             TEXT,
    failure           TEXT,
    created_at        TEXT NOT NULL,
    assigned_at       TEXT,
    started_at        TEXT,
    finished_at       TEXT,
    artifacts_size    BIGINT,
    artifacts_sha256  TEXT
);
CREATE INDEX runs_queue ON runs (workspace_id, state, seq);

CREATE TABLE run_events (
    run_id      TEXT NOT NULL REFERENCES runs(id),
    seq         BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
