-- Firmware submitted with a run: its name, size and SHA-256 in the artifact store (the
-- assignment's firmware_sha256). A table of its own, so the runs table is unchanged.
CREATE TABLE run_firmware (
    run_id  TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    size    BIGINT NOT NULL,
    sha256  TEXT NOT NULL
);

-- Retention looks runs up by age.
CREATE INDEX runs_created ON runs (created_at);
