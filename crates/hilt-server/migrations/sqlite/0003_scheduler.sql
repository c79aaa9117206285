-- Scheduling by tags/capabilities, priority, cancel, per-resource health and its history.
-- Append-only: never edit a released migration, add a new file.

-- A run by tags has bench_id '' until it is assigned.
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN tags TEXT;
ALTER TABLE runs ADD COLUMN capabilities TEXT;
ALTER TABLE runs ADD COLUMN cancel_requested_at TEXT;
ALTER TABLE runs ADD COLUMN cancel_deadline_ms INTEGER;
CREATE INDEX runs_by_priority ON runs (workspace_id, state, priority, seq);

-- What a run needs of its bench: `tag:<t>` and `cap:<c>` labels, all required.
CREATE TABLE run_needs (
    run_id  TEXT NOT NULL,
    label   TEXT NOT NULL,
    PRIMARY KEY (run_id, label)
);

-- What a run's suite uses (`resource:<r>`, `transport:<node>.<t>`, `gpio:<node>`,
-- `flash:<node>`, `node:<node>`): a degraded bench warning about one of these is no match.
CREATE TABLE run_uses (
    run_id   TEXT NOT NULL,
    concern  TEXT NOT NULL,
    PRIMARY KEY (run_id, concern)
);

-- The labels a bench offers (`tag:<t>`, `cap:<c>`), replaced on every sync.
CREATE TABLE bench_labels (
    workspace_id  TEXT NOT NULL,
    bench_id      TEXT NOT NULL,
    label         TEXT NOT NULL,
    PRIMARY KEY (workspace_id, bench_id, label)
);

-- The warning and failing checks of a bench's health and what each concerns.
CREATE TABLE bench_warnings (
    workspace_id  TEXT NOT NULL,
    bench_id      TEXT NOT NULL,
    check_id      TEXT NOT NULL,
    concern       TEXT NOT NULL,
    message       TEXT,
    PRIMARY KEY (workspace_id, bench_id, check_id)
);

-- Every change of a bench's health status.
CREATE TABLE bench_health_history (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id  TEXT NOT NULL,
    bench_id      TEXT NOT NULL,
    status        TEXT NOT NULL,
    summary       TEXT,
    changed_at    TEXT NOT NULL
);
CREATE INDEX bench_health_history_by_bench ON bench_health_history (workspace_id, bench_id, seq);
