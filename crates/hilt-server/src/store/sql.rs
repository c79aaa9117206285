//! The SQL of the store, written once for every backend: `$N` placeholders (SQLite reads
//! them too) and only SQL both SQLite and PostgreSQL accept. [`impl_store!`] implements
//! [`Store`](super::Store) for a struct with the backend's `read()` and `write()` (a
//! connection for a read, for a write), `builder()` (a query builder) and `insert_events()`
//! (an event batch, in the backend's fastest form); its second argument is how a
//! transaction that writes begins (SQLite needs `BEGIN IMMEDIATE`: a deferred transaction
//! that reads and then writes fails with `database is locked` at once when another
//! connection wrote meanwhile); its third is appended to each bench's choice of a run in
//! the claim (PostgreSQL: `FOR UPDATE OF r SKIP LOCKED`, so concurrent claims, of this
//! process or of another replica, skip each other's run; empty for SQLite, whose one writer
//! makes the claim a lone statement).

/// The columns of a [`RunRow`](super::RunRow), for `concat!` into static SQL.
macro_rules! run_cols {
    () => {
        "seq, id, workspace_id, bench_id, state, suite_yaml, artifact_name, skip_flash, \
         verbose_steps, agent_id, fence, lease_expires_ms, exit_code, error, failure, created_at, \
         started_at, finished_at, artifacts_size, artifacts_sha256, priority, tags, capabilities, \
         cancel_requested_at"
    };
}

/// The claim's choice, as the CTE `p (id, bench_id)`: the first queued run (priority, then
/// age) an idle bench of agent `$2` in workspace `$1` matches, the agent seen since `$3`.
/// Health gate: healthy, or degraded with no warning on a part the suite uses; failing,
/// unknown, missing or malformed health never matches, not even for a run pinned to the
/// bench. The argument is appended to each bench's choice of a run (PostgreSQL: `FOR UPDATE
/// OF r SKIP LOCKED`).
///
/// It starts from the agent's benches (`c`, materialized so that no planner reorders it)
/// and looks, per bench, only at the runs pinned to it and the runs by labels
/// (`runs_by_bench`): never at every queued run of the workspace, nor at the dead index
/// entries PostgreSQL keeps for runs that were queued before its last vacuum.
macro_rules! pick_run {
    ($lock:literal) => {
        concat!(
            "WITH c AS MATERIALIZED (SELECT b.bench_id, (SELECT r.id FROM runs r \
               WHERE r.workspace_id = b.workspace_id AND r.state = 'queued' \
                 AND r.bench_id IN ('', b.bench_id) \
                 AND NOT EXISTS (SELECT 1 FROM run_needs n WHERE n.run_id = r.id \
                   AND NOT EXISTS (SELECT 1 FROM bench_labels l \
                     WHERE l.workspace_id = b.workspace_id AND l.bench_id = b.bench_id \
                       AND l.label = n.label)) \
                 AND (b.health_status = 'healthy' OR NOT EXISTS (SELECT 1 FROM bench_warnings w \
                   JOIN run_uses u ON u.concern = w.concern WHERE u.run_id = r.id \
                   AND w.workspace_id = b.workspace_id AND w.bench_id = b.bench_id)) \
               ORDER BY +r.priority DESC, r.seq LIMIT 1",
            $lock,
            ") AS run_id FROM benches b \
             WHERE b.workspace_id = $1 AND b.agent_id = $2 \
               AND b.health_status IN ('healthy', 'degraded') \
               AND NOT EXISTS (SELECT 1 FROM runs a WHERE a.workspace_id = b.workspace_id \
                 AND a.bench_id = b.bench_id AND a.state IN ('preparing', 'running')) \
               AND (b.status <> 'busy' OR EXISTS (SELECT 1 FROM runs f \
                 WHERE f.workspace_id = b.workspace_id AND f.id = b.current_run_id \
                 AND f.state IN ('done', 'failed', 'cancelled'))) \
               AND EXISTS (SELECT 1 FROM agents g WHERE g.id = b.agent_id \
                 AND g.last_seen_at >= $3)), \
             p AS (SELECT c.run_id AS id, c.bench_id FROM c JOIN runs q ON q.id = c.run_id \
               ORDER BY q.priority DESC, q.seq, c.bench_id LIMIT 1) "
        )
    };
}

macro_rules! impl_store {
    ($store:ty, $begin:literal, $pick_lock:literal) => {
        impl Store for $store {
            fn ensure_bootstrap<'a>(&'a self, hash: &'a str, now: &'a str) -> Fut<'a, ()> {
                Box::pin(async move {
                    let mut w = self.write().await?;
                    let mut tx = w.begin_with($begin).await?;
                    sqlx::query(
                        "INSERT INTO workspaces (id, name, created_at) VALUES ($1, 'default', $2) \
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(crate::ids::new_id())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO tokens (id, workspace_id, kind, admin, label, hash, created_at) \
                         SELECT $1, id, 'user', TRUE, 'bootstrap', $2, $3 FROM workspaces WHERE name = 'default' \
                         ON CONFLICT (hash) DO NOTHING",
                    )
                    .bind(crate::ids::new_id())
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn create_workspace<'a>(
                &'a self,
                name: &'a str,
                now: &'a str,
            ) -> Fut<'a, Option<WorkspaceRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, WorkspaceRow>(
                        "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO NOTHING RETURNING id, name, created_at",
                    )
                    .bind(crate::ids::new_id())
                    .bind(name)
                    .bind(now)
                    .fetch_optional(&mut *self.write().await?)
                    .await?)
                })
            }

            fn workspace_by_name<'a>(&'a self, name: &'a str) -> Fut<'a, Option<WorkspaceRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, WorkspaceRow>(
                        "SELECT id, name, created_at FROM workspaces WHERE name = $1",
                    )
                    .bind(name)
                    .fetch_optional(&mut *self.read().await?)
                    .await?)
                })
            }

            fn insert_token<'a>(&'a self, t: NewToken<'a>) -> Fut<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO tokens (id, workspace_id, kind, admin, label, hash, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(t.id)
                    .bind(t.workspace_id)
                    .bind(t.kind)
                    .bind(t.admin)
                    .bind(t.label)
                    .bind(t.hash)
                    .bind(t.created_at)
                    .execute(&mut *self.write().await?)
                    .await?;
                    Ok(())
                })
            }

            fn principal<'a>(&'a self, hash: &'a str) -> Fut<'a, Option<Principal>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, Principal>(
                        "SELECT t.id AS token_id, t.workspace_id, w.name AS workspace_name, t.kind, \
                         t.admin, t.machine_id FROM tokens t JOIN workspaces w ON w.id = t.workspace_id \
                         WHERE t.hash = $1 AND t.revoked_at IS NULL",
                    )
                    .bind(hash)
                    .fetch_optional(&mut *self.read().await?)
                    .await?)
                })
            }

            fn revoke_token<'a>(
                &'a self,
                id: &'a str,
                workspace_id: Option<&'a str>,
                now: &'a str,
            ) -> Fut<'a, bool> {
                Box::pin(async move {
                    let done = match workspace_id {
                        Some(ws) => {
                            sqlx::query(
                                "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
                                 AND workspace_id = $3",
                            )
                            .bind(now)
                            .bind(id)
                            .bind(ws)
                            .execute(&mut *self.write().await?)
                            .await?
                        }
                        None => {
                            sqlx::query(
                                "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                            )
                            .bind(now)
                            .bind(id)
                            .execute(&mut *self.write().await?)
                            .await?
                        }
                    };
                    Ok(done.rows_affected() == 1)
                })
            }

            fn bind_machine<'a>(&'a self, token_id: &'a str, machine_id: &'a str) -> Fut<'a, String> {
                Box::pin(async move {
                    let bound: (String,) = sqlx::query_as(
                        "UPDATE tokens SET machine_id = COALESCE(machine_id, $1) WHERE id = $2 \
                         RETURNING machine_id",
                    )
                    .bind(machine_id)
                    .bind(token_id)
                    .fetch_one(&mut *self.write().await?)
                    .await?;
                    Ok(bound.0)
                })
            }

            fn touch_agent<'a>(&'a self, a: AgentSeen<'a>) -> Fut<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO agents (id, workspace_id, machine_id, machine_name, version, last_seen_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                         machine_name = excluded.machine_name, version = excluded.version, \
                         last_seen_at = excluded.last_seen_at",
                    )
                    .bind(a.agent_id)
                    .bind(a.workspace_id)
                    .bind(a.machine_id)
                    .bind(a.machine_name)
                    .bind(a.version)
                    .bind(a.now)
                    .execute(&mut *self.write().await?)
                    .await?;
                    Ok(())
                })
            }

            fn heartbeat<'a>(
                &'a self,
                agent_id: &'a str,
                name: Option<&'a str>,
                region: Option<&'a str>,
                lease_until_ms: i64,
            ) -> Fut<'a, ()> {
                Box::pin(async move {
                    // Most heartbeats change nothing but the lease of the runs the agent
                    // holds, and most agents hold none: look before taking the write lock.
                    let now: Option<(Option<String>, Option<String>, bool)> = sqlx::query_as(
                        "SELECT a.name, a.region, EXISTS (SELECT 1 FROM runs r WHERE r.agent_id = a.id \
                         AND r.state IN ($2, $3)) FROM agents a WHERE a.id = $1",
                    )
                    .bind(agent_id)
                    .bind(state::PREPARING)
                    .bind(state::RUNNING)
                    .fetch_optional(&mut *self.read().await?)
                    .await?;
                    if let Some((had_name, had_region, false)) = &now
                        && name.is_none_or(|n| had_name.as_deref() == Some(n))
                        && region.is_none_or(|r| had_region.as_deref() == Some(r))
                    {
                        return Ok(());
                    }
                    let mut w = self.write().await?;
                    let mut tx = w.begin_with($begin).await?;
                    sqlx::query(
                        "UPDATE agents SET name = COALESCE($1, name), region = COALESCE($2, region) WHERE id = $3",
                    )
                    .bind(name)
                    .bind(region)
                    .bind(agent_id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE runs SET lease_expires_ms = $1 WHERE agent_id = $2 AND state IN ($3, $4)",
                    )
                    .bind(lease_until_ms)
                    .bind(agent_id)
                    .bind(state::PREPARING)
                    .bind(state::RUNNING)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn sync_bench<'a>(&'a self, b: BenchReport<'a>) -> Fut<'a, String> {
                Box::pin(async move {
                    let mut w = self.write().await?;
                    let mut tx = w.begin_with($begin).await?;
                    let known: Option<(String,)> = sqlx::query_as(
                        "SELECT bench_id FROM benches WHERE agent_id = $1 AND reported_bench_id = $2",
                    )
                    .bind(b.agent_id)
                    .bind(b.reported_bench_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let bench_id = match known {
                        Some((id,)) => id,
                        None => {
                            // The reported id, or the first `<id>-N` no other agent of the
                            // workspace holds.
                            let mut candidate = b.reported_bench_id.to_string();
                            let mut n = 1;
                            loop {
                                let taken: Option<(String,)> = sqlx::query_as(
                                    "SELECT agent_id FROM benches WHERE workspace_id = $1 AND bench_id = $2",
                                )
                                .bind(b.workspace_id)
                                .bind(&candidate)
                                .fetch_optional(&mut *tx)
                                .await?;
                                if taken.is_none() {
                                    break candidate;
                                }
                                n += 1;
                                candidate = format!("{}-{n}", b.reported_bench_id);
                            }
                        }
                    };
                    sqlx::query(
                        "INSERT INTO benches (workspace_id, bench_id, agent_id, reported_bench_id, name, \
                         status, current_run_id, health_status, summary, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (workspace_id, bench_id) DO UPDATE SET name = excluded.name, \
                         status = excluded.status, current_run_id = excluded.current_run_id, \
                         health_status = excluded.health_status, summary = excluded.summary, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(b.workspace_id)
                    .bind(&bench_id)
                    .bind(b.agent_id)
                    .bind(b.reported_bench_id)
                    .bind(b.name)
                    .bind(b.status)
                    .bind(b.current_run_id)
                    .bind(b.health_status)
                    .bind(b.summary)
                    .bind(b.now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM bench_labels WHERE workspace_id = $1 AND bench_id = $2")
                        .bind(b.workspace_id)
                        .bind(&bench_id)
                        .execute(&mut *tx)
                        .await?;
                    for label in b.labels {
                        sqlx::query(
                            "INSERT INTO bench_labels (workspace_id, bench_id, label) VALUES ($1, $2, $3) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(b.workspace_id)
                        .bind(&bench_id)
                        .bind(label)
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query("DELETE FROM bench_warnings WHERE workspace_id = $1 AND bench_id = $2")
                        .bind(b.workspace_id)
                        .bind(&bench_id)
                        .execute(&mut *tx)
                        .await?;
                    for (check, concern, message) in b.concerns {
                        sqlx::query(
                            "INSERT INTO bench_warnings (workspace_id, bench_id, check_id, concern, message) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        )
                        .bind(b.workspace_id)
                        .bind(&bench_id)
                        .bind(check)
                        .bind(concern)
                        .bind(message)
                        .execute(&mut *tx)
                        .await?;
                    }
                    // The health history: a row whenever the status differs from the last.
                    let status = b.health_status.unwrap_or("missing");
                    let last: Option<(String,)> = sqlx::query_as(
                        "SELECT status FROM bench_health_history WHERE workspace_id = $1 \
                         AND bench_id = $2 ORDER BY seq DESC LIMIT 1",
                    )
                    .bind(b.workspace_id)
                    .bind(&bench_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if last.as_ref().map(|l| l.0.as_str()) != Some(status) {
                        sqlx::query(
                            "INSERT INTO bench_health_history (workspace_id, bench_id, status, summary, \
                             changed_at) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(b.workspace_id)
                        .bind(&bench_id)
                        .bind(status)
                        .bind(b.health_summary)
                        .bind(b.now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(bench_id)
                })
            }

            fn benches<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<BenchRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, BenchRow>(
                        "SELECT bench_id, agent_id, name, status, current_run_id, health_status, summary, \
                         updated_at FROM benches WHERE workspace_id = $1 ORDER BY bench_id",
                    )
                    .bind(workspace_id)
                    .fetch_all(&mut *self.read().await?)
                    .await?)
                })
            }

            fn bench_agent<'a>(
                &'a self,
                workspace_id: &'a str,
                bench_id: &'a str,
            ) -> Fut<'a, Option<String>> {
                Box::pin(async move {
                    let row: Option<(String,)> = sqlx::query_as(
                        "SELECT agent_id FROM benches WHERE workspace_id = $1 AND bench_id = $2",
                    )
                    .bind(workspace_id)
                    .bind(bench_id)
                    .fetch_optional(&mut *self.read().await?)
                    .await?;
                    Ok(row.map(|r| r.0))
                })
            }

            fn agents<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<AgentRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, AgentRow>(
                        "SELECT id, name, machine_id, machine_name, version, region, last_seen_at \
                         FROM agents WHERE workspace_id = $1 ORDER BY id",
                    )
                    .bind(workspace_id)
                    .fetch_all(&mut *self.read().await?)
                    .await?)
                })
            }

            fn insert_run<'a>(&'a self, r: NewRun<'a>) -> Fut<'a, RunRow> {
                Box::pin(async move {
                    let insert = sqlx::query_as::<_, RunRow>(concat!(
                        "INSERT INTO runs (id, workspace_id, bench_id, state, suite_yaml, artifact_name, \
                         skip_flash, verbose_steps, created_at, priority, tags, capabilities) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ",
                        $crate::store::sql::run_cols!()
                    ))
                    .bind(r.id)
                    .bind(r.workspace_id)
                    .bind(r.bench_id)
                    .bind(state::QUEUED)
                    .bind(r.suite_yaml)
                    .bind(r.artifact_name)
                    .bind(r.skip_flash)
                    .bind(r.verbose)
                    .bind(r.created_at)
                    .bind(r.priority)
                    .bind(r.tags)
                    .bind(r.capabilities);
                    if r.needs.is_empty() && r.uses.is_empty() {
                        // One statement: no transaction held across awaits.
                        return Ok(insert.fetch_one(&mut *self.write().await?).await?);
                    }
                    // One transaction: a run is never claimable before its needs are known.
                    let mut w = self.write().await?;
                    let mut tx = w.begin_with($begin).await?;
                    for label in r.needs {
                        sqlx::query("INSERT INTO run_needs (run_id, label) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                            .bind(r.id)
                            .bind(label)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for concern in r.uses {
                        sqlx::query("INSERT INTO run_uses (run_id, concern) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                            .bind(r.id)
                            .bind(concern)
                            .execute(&mut *tx)
                            .await?;
                    }
                    let row = insert.fetch_one(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(row)
                })
            }

            fn run<'a>(&'a self, workspace_id: &'a str, id: &'a str) -> Fut<'a, Option<RunRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, RunRow>(concat!(
                        "SELECT ",
                        $crate::store::sql::run_cols!(),
                        " FROM runs WHERE workspace_id = $1 AND id = $2"
                    ))
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(&mut *self.read().await?)
                    .await?)
                })
            }

            fn runs<'a>(&'a self, workspace_id: &'a str, limit: i64) -> Fut<'a, Vec<RunRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, RunRow>(concat!(
                        "SELECT ",
                        $crate::store::sql::run_cols!(),
                        " FROM runs WHERE workspace_id = $1 ORDER BY seq DESC LIMIT $2"
                    ))
                    .bind(workspace_id)
                    .bind(limit)
                    .fetch_all(&mut *self.read().await?)
                    .await?)
                })
            }

            fn claim<'a>(
                &'a self,
                workspace_id: &'a str,
                agent_id: &'a str,
                lease_until_ms: i64,
                now: &'a str,
                seen_since: &'a str,
            ) -> Fut<'a, Option<RunRow>> {
                Box::pin(async move {
                    // Most polls find nothing: look on a reader first, without the write
                    // lock. A run queued after this look wakes the poll, which claims again.
                    let any: Option<(String, String)> =
                        sqlx::query_as(concat!(
                            $crate::store::sql::pick_run!(""),
                            "SELECT id, bench_id FROM p"
                        ))
                            .bind(workspace_id)
                            .bind(agent_id)
                            .bind(seen_since)
                            .fetch_optional(&mut *self.read().await?)
                            .await?;
                    if any.is_none() {
                        return Ok(None);
                    }
                    // Choice and update in one statement: on SQLite, whose one writer
                    // serialises claims, the write lock is never held across an await of
                    // this task; on PostgreSQL the choice locks the run it returns
                    // (`$pick_lock`, skipping runs other claims hold), so the update finds
                    // it still queued — its `state = 'queued'` guard stays the last word.
                    let claim = sqlx::query_as::<_, RunRow>(concat!(
                        $crate::store::sql::pick_run!($pick_lock),
                        "UPDATE runs SET state = 'preparing', agent_id = $2, \
                         bench_id = (SELECT bench_id FROM p), fence = fence + 1, \
                         lease_expires_ms = $4, assigned_at = $5 \
                         WHERE id = (SELECT id FROM p) AND state = 'queued' RETURNING ",
                        $crate::store::sql::run_cols!()
                    ))
                    .bind(workspace_id)
                    .bind(agent_id)
                    .bind(seen_since)
                    .bind(lease_until_ms)
                    .bind(now);
                    if $pick_lock.is_empty() {
                        return Ok(claim.fetch_optional(&mut *self.write().await?).await?);
                    }
                    let mut w = self.write().await?;
                    let mut tx = w.begin_with($begin).await?;
                    // Claims run side by side (PostgreSQL): this agent's bench rows are
                    // locked first, in a statement of their own so that the choice's
                    // snapshot is taken after the lock — two polls of one agent never put
                    // two runs on one bench.
                    sqlx::query("UPDATE benches SET agent_id = agent_id WHERE agent_id = $1")
                        .bind(agent_id)
                        .execute(&mut *tx)
                        .await?;
                    let claimed = claim.fetch_optional(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(claimed)
                })
            }

            fn append_events<'a>(
                &'a self,
                run_id: &'a str,
                events: Vec<NewEvent>,
                now: &'a str,
            ) -> Fut<'a, Appended> {
                Box::pin(async move {
                    let mut w = self.write().await?;
                    let mut tx = w.begin_with($begin).await?;
                    // Updating the run's row first takes its row lock (PostgreSQL), so two
                    // event calls for one run never read the same last seq; it also reads
                    // the highest stored number.
                    let head: Option<(i64, String, i64)> = sqlx::query_as(
                        "UPDATE runs SET last_event_seq = last_event_seq WHERE id = $1 \
                         RETURNING last_event_seq, state, \
                         (SELECT COALESCE(MAX(e.seq), 0) FROM run_events e WHERE e.run_id = $1)",
                    )
                    .bind(run_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let (last, run_state, max) = head.unwrap_or((0, String::new(), 0));
                    let seqs: Vec<Option<i64>> = events.iter().map(|e| e.agent_seq).collect();
                    let (new, replayed) = match $crate::store::sequence(last, &seqs) {
                        Ok(v) => v,
                        Err(gap) => return Ok(gap),
                    };
                    let top = new
                        .iter()
                        .filter_map(|&k| events[k].agent_seq)
                        .fold(last, i64::max);
                    self.insert_events(&mut tx, run_id, max + 1, &events, &new).await?;
                    // The highest agent seq, and the first events mark the run running.
                    if top > last || run_state == state::PREPARING {
                        sqlx::query(
                            "UPDATE runs SET last_event_seq = $1, \
                             started_at = CASE WHEN state = $2 THEN $3 ELSE started_at END, \
                             state = CASE WHEN state = $2 THEN $4 ELSE state END WHERE id = $5",
                        )
                        .bind(top)
                        .bind(state::PREPARING)
                        .bind(now)
                        .bind(state::RUNNING)
                        .bind(run_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(Appended::Stored { stored: new.len(), replayed })
                })
            }

            fn events<'a>(&'a self, run_id: &'a str) -> Fut<'a, Vec<(i64, String)>> {
                Box::pin(async move {
                    Ok(
                        sqlx::query_as("SELECT seq, body FROM run_events WHERE run_id = $1 ORDER BY seq")
                            .bind(run_id)
                            .fetch_all(&mut *self.read().await?)
                            .await?,
                    )
                })
            }

            fn set_artifacts<'a>(&'a self, run_id: &'a str, size: i64, sha256: &'a str) -> Fut<'a, ()> {
                Box::pin(async move {
                    sqlx::query("UPDATE runs SET artifacts_size = $1, artifacts_sha256 = $2 WHERE id = $3")
                        .bind(size)
                        .bind(sha256)
                        .bind(run_id)
                        .execute(&mut *self.write().await?)
                        .await?;
                    Ok(())
                })
            }

            fn complete<'a>(
                &'a self,
                run_id: &'a str,
                agent_id: &'a str,
                c: Completion<'a>,
                cancelled: (i32, &'a str),
            ) -> Fut<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE runs SET \
                         state = CASE WHEN cancel_requested_at IS NULL THEN $1 ELSE 'cancelled' END, \
                         exit_code = CASE WHEN cancel_requested_at IS NULL THEN $2 ELSE $11 END, \
                         error = CASE WHEN cancel_requested_at IS NULL THEN $3 \
                           ELSE 'cancelled by a user; the agent reported: ' || COALESCE($3, $1) END, \
                         failure = CASE WHEN cancel_requested_at IS NULL THEN $4 ELSE $12 END, \
                         started_at = COALESCE(started_at, $5), finished_at = $6, lease_expires_ms = NULL \
                         WHERE id = $7 AND agent_id = $8 AND state IN ($9, $10)",
                    )
                    .bind(c.state)
                    .bind(c.exit_code)
                    .bind(c.error)
                    .bind(c.failure)
                    .bind(c.started_at)
                    .bind(c.finished_at)
                    .bind(run_id)
                    .bind(agent_id)
                    .bind(state::PREPARING)
                    .bind(state::RUNNING)
                    .bind(cancelled.0)
                    .bind(cancelled.1)
                    .execute(&mut *self.write().await?)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn expire_leases<'a>(&'a self, now_ms: i64, c: Completion<'a>) -> Fut<'a, Vec<String>> {
                Box::pin(async move {
                    // Through each workspace's index of runs by state: the active runs only,
                    // not a scan of every stored run.
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "UPDATE runs SET state = $1, exit_code = $2, error = $3, failure = $4, \
                         finished_at = $5, lease_expires_ms = NULL \
                         WHERE workspace_id IN (SELECT id FROM workspaces) \
                           AND state IN ($6, $7) AND lease_expires_ms < $8 RETURNING id",
                    )
                    .bind(c.state)
                    .bind(c.exit_code)
                    .bind(c.error)
                    .bind(c.failure)
                    .bind(c.finished_at)
                    .bind(state::PREPARING)
                    .bind(state::RUNNING)
                    .bind(now_ms)
                    .fetch_all(&mut *self.write().await?)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }

            fn set_firmware<'a>(&'a self, run_id: &'a str, f: &'a FirmwareRow) -> Fut<'a, ()> {
                Box::pin(async move {
                    sqlx::query("INSERT INTO run_firmware (run_id, name, size, sha256) VALUES ($1, $2, $3, $4)")
                        .bind(run_id)
                        .bind(&f.name)
                        .bind(f.size)
                        .bind(&f.sha256)
                        .execute(&mut *self.write().await?)
                        .await?;
                    Ok(())
                })
            }

            fn firmware<'a>(&'a self, run_id: &'a str) -> Fut<'a, Option<FirmwareRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, FirmwareRow>(
                        "SELECT name, size, sha256 FROM run_firmware WHERE run_id = $1",
                    )
                    .bind(run_id)
                    .fetch_optional(&mut *self.read().await?)
                    .await?)
                })
            }

            fn firmware_grant<'a>(&'a self, run_id: &'a str) -> Fut<'a, Option<FirmwareGrant>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, FirmwareGrant>(
                        "SELECT r.state, r.fence, t.hash AS token_hash, f.name FROM runs r \
                         JOIN tokens t ON t.id = r.agent_id AND t.revoked_at IS NULL \
                         JOIN run_firmware f ON f.run_id = r.id WHERE r.id = $1",
                    )
                    .bind(run_id)
                    .fetch_optional(&mut *self.read().await?)
                    .await?)
                })
            }

            fn counts<'a>(&'a self, online_since: &'a str) -> Fut<'a, Counts> {
                Box::pin(async move {
                    let runs_by_state: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT state, COUNT(*) FROM runs GROUP BY state ORDER BY state",
                    )
                    .fetch_all(&mut *self.read().await?)
                    .await?;
                    let (agents, agents_online): (i64, i64) = sqlx::query_as(
                        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN last_seen_at >= $1 THEN 1 ELSE 0 END), 0) \
                         FROM agents",
                    )
                    .bind(online_since)
                    .fetch_one(&mut *self.read().await?)
                    .await?;
                    Ok(Counts {
                        runs_by_state,
                        agents_online,
                        agents,
                    })
                })
            }

            fn prunable_runs<'a>(
                &'a self,
                created_before: &'a str,
                keep_per_workspace: Option<i64>,
                limit: i64,
            ) -> Fut<'a, Vec<String>> {
                Box::pin(async move {
                    // Rank counts every run of the workspace (active ones too), so the newest
                    // `keep` runs are kept whatever their state.
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "SELECT id FROM (SELECT id, seq, state, created_at, ROW_NUMBER() OVER \
                           (PARTITION BY workspace_id ORDER BY seq DESC) AS pos FROM runs) ranked \
                         WHERE state IN ($1, $2) AND (created_at < $3 OR ($4 IS NOT NULL AND pos > $4)) \
                         ORDER BY seq LIMIT $5",
                    )
                    .bind(state::DONE)
                    .bind(state::FAILED)
                    .bind(created_before)
                    .bind(keep_per_workspace)
                    .bind(limit)
                    .fetch_all(&mut *self.read().await?)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }

            fn delete_run<'a>(&'a self, run_id: &'a str) -> Fut<'a, bool> {
                Box::pin(async move {
                    let mut w = self.write().await?;
                    let mut tx = w.begin_with($begin).await?;
                    let ended: Option<(String,)> =
                        sqlx::query_as("SELECT state FROM runs WHERE id = $1 AND state IN ($2, $3)")
                            .bind(run_id)
                            .bind(state::DONE)
                            .bind(state::FAILED)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if ended.is_none() {
                        return Ok(false);
                    }
                    for table in [
                        "DELETE FROM run_events WHERE run_id = $1",
                        "DELETE FROM run_firmware WHERE run_id = $1",
                        "DELETE FROM runs WHERE id = $1",
                    ] {
                        sqlx::query(table).bind(run_id).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(true)
                })
            }
        }
    };
}

pub(super) use {impl_store, pick_run, run_cols};
