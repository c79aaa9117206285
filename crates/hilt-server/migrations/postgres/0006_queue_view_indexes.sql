-- Indexes for the queue view of one run, which reads only what concerns its candidate
-- benches. Append-only: never edit a released migration, add a new file.

-- A bench's active runs, the queued runs pinned to it (bench_id '' for the queued runs by
-- labels) and its latest finished runs per state, newest first.
CREATE INDEX runs_by_bench ON runs (workspace_id, bench_id, state, seq);

-- The benches carrying a label: the candidates of a run by tags/capabilities.
CREATE INDEX bench_labels_by_label ON bench_labels (workspace_id, label, bench_id);
