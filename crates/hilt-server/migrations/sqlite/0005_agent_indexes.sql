-- What an agent's calls look up by agent: the heartbeat's lease renewal and cancel check
-- (runs it holds), and the sweep of agents silent too long.
CREATE INDEX runs_by_agent ON runs (agent_id, state);
CREATE INDEX agents_last_seen ON agents (last_seen_at);
