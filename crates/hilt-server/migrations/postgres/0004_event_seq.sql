-- Sequenced events from hilt cloud agents: each (run, agent seq) is stored once and in
-- order. Append-only: never edit a released migration, add a new file.

-- The highest agent sequence number stored for the run (0: none yet). The event call
-- updates this row first, which also serialises concurrent event calls for one run.
ALTER TABLE runs ADD COLUMN last_event_seq BIGINT NOT NULL DEFAULT 0;

-- The agent's own sequence number of an event; NULL for agents that send none (BenchCI).
ALTER TABLE run_events ADD COLUMN agent_seq BIGINT;
CREATE UNIQUE INDEX run_events_by_agent_seq ON run_events (run_id, agent_seq);
