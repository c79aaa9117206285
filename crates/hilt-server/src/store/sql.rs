//! The SQL of the store, written once for every backend: `$N` placeholders (SQLite reads
//! them too) and only SQL both SQLite and PostgreSQL accept. [`impl_store!`] implements
//! [`Store`](super::Store) for a struct with a `pool` field of the backend's pool type;
//! its second argument is how a transaction that writes begins (SQLite needs
//! `BEGIN IMMEDIATE`: a deferred transaction that reads and then writes fails with
//! `database is locked` at once when another connection wrote meanwhile).

/// The columns of a [`RunRow`](super::RunRow), for `concat!` into static SQL.
macro_rules! run_cols {
    () => {
        "id, workspace_id, bench_id, state, suite_yaml, artifact_name, skip_flash, verbose_steps, \
         agent_id, fence, lease_expires_ms, exit_code, error, failure, created_at, started_at, \
         finished_at, artifacts_size, artifacts_sha256"
    };
}

macro_rules! impl_store {
    ($store:ty, $begin:literal) => {
        impl Store for $store {
            fn ensure_bootstrap<'a>(&'a self, hash: &'a str, now: &'a str) -> Fut<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.pool.begin_with($begin).await?;
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
                    .fetch_optional(&self.pool)
                    .await?)
                })
            }

            fn workspace_by_name<'a>(&'a self, name: &'a str) -> Fut<'a, Option<WorkspaceRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, WorkspaceRow>(
                        "SELECT id, name, created_at FROM workspaces WHERE name = $1",
                    )
                    .bind(name)
                    .fetch_optional(&self.pool)
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
                    .execute(&self.pool)
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
                    .fetch_optional(&self.pool)
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
                            .execute(&self.pool)
                            .await?
                        }
                        None => {
                            sqlx::query(
                                "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                            )
                            .bind(now)
                            .bind(id)
                            .execute(&self.pool)
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
                    .fetch_one(&self.pool)
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
                    .execute(&self.pool)
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
                    let mut tx = self.pool.begin_with($begin).await?;
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
                    let mut tx = self.pool.begin_with($begin).await?;
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
                    .fetch_all(&self.pool)
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
                    .fetch_optional(&self.pool)
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
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn insert_run<'a>(&'a self, r: NewRun<'a>) -> Fut<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO runs (id, workspace_id, bench_id, state, suite_yaml, artifact_name, \
                         skip_flash, verbose_steps, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(r.id)
                    .bind(r.workspace_id)
                    .bind(r.bench_id)
                    .bind(state::QUEUED)
                    .bind(r.suite_yaml)
                    .bind(r.artifact_name)
                    .bind(r.skip_flash)
                    .bind(r.verbose)
                    .bind(r.created_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
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
                    .fetch_optional(&self.pool)
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
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn claim<'a>(
                &'a self,
                workspace_id: &'a str,
                agent_id: &'a str,
                lease_until_ms: i64,
                now: &'a str,
            ) -> Fut<'a, Option<RunRow>> {
                Box::pin(async move {
                    // One statement: SQLite runs it under its single writer lock, so two agents
                    // polling at once never get the same run.
                    // Health gate: only healthy or degraded benches are scheduled; failing, unknown
                    // or missing health never is.
                    Ok(sqlx::query_as::<_, RunRow>(concat!(
                        "UPDATE runs SET state = 'preparing', agent_id = $1, fence = fence + 1, \
                         lease_expires_ms = $2, assigned_at = $3 \
                         WHERE state = 'queued' AND id = ( \
                           SELECT r.id FROM runs r JOIN benches b \
                             ON b.workspace_id = r.workspace_id AND b.bench_id = r.bench_id \
                           WHERE r.workspace_id = $4 AND r.state = 'queued' AND b.agent_id = $5 \
                             AND b.health_status IN ('healthy', 'degraded') \
                             AND NOT EXISTS (SELECT 1 FROM runs a WHERE a.workspace_id = r.workspace_id \
                               AND a.bench_id = r.bench_id AND a.state IN ('preparing', 'running')) \
                           ORDER BY r.seq LIMIT 1) \
                         RETURNING ",
                        $crate::store::sql::run_cols!()
                    ))
                    .bind(agent_id)
                    .bind(lease_until_ms)
                    .bind(now)
                    .bind(workspace_id)
                    .bind(agent_id)
                    .fetch_optional(&self.pool)
                    .await?)
                })
            }

            fn append_events<'a>(
                &'a self,
                run_id: &'a str,
                events: Vec<NewEvent>,
                now: &'a str,
            ) -> Fut<'a, Appended> {
                Box::pin(async move {
                    let mut tx = self.pool.begin_with($begin).await?;
                    // Updating the run's row first takes its row lock (PostgreSQL), so two
                    // event calls for one run never read the same last seq.
                    let last: Option<(i64,)> = sqlx::query_as(
                        "UPDATE runs SET last_event_seq = last_event_seq WHERE id = $1 RETURNING last_event_seq",
                    )
                    .bind(run_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let last = last.map(|r| r.0).unwrap_or(0);
                    let seqs: Vec<Option<i64>> = events.iter().map(|e| e.agent_seq).collect();
                    let (new, replayed) = match $crate::store::sequence(last, &seqs) {
                        Ok(v) => v,
                        Err(gap) => return Ok(gap),
                    };
                    let (max,): (i64,) =
                        sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM run_events WHERE run_id = $1")
                            .bind(run_id)
                            .fetch_one(&mut *tx)
                            .await?;
                    let mut top = last;
                    for (i, &k) in new.iter().enumerate() {
                        let e = &events[k];
                        sqlx::query(
                            "INSERT INTO run_events (run_id, seq, event_type, body, agent_seq) \
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(run_id)
                        .bind(max + 1 + i as i64)
                        .bind(&e.kind)
                        .bind(&e.body)
                        .bind(e.agent_seq)
                        .execute(&mut *tx)
                        .await?;
                        top = top.max(e.agent_seq.unwrap_or(0));
                    }
                    if top > last {
                        sqlx::query("UPDATE runs SET last_event_seq = $1 WHERE id = $2")
                            .bind(top)
                            .bind(run_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    sqlx::query("UPDATE runs SET state = $1, started_at = $2 WHERE id = $3 AND state = $4")
                        .bind(state::RUNNING)
                        .bind(now)
                        .bind(run_id)
                        .bind(state::PREPARING)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Appended::Stored { stored: new.len(), replayed })
                })
            }

            fn events<'a>(&'a self, run_id: &'a str) -> Fut<'a, Vec<(i64, String)>> {
                Box::pin(async move {
                    Ok(
                        sqlx::query_as("SELECT seq, body FROM run_events WHERE run_id = $1 ORDER BY seq")
                            .bind(run_id)
                            .fetch_all(&self.pool)
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
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                })
            }

            fn complete<'a>(
                &'a self,
                run_id: &'a str,
                agent_id: &'a str,
                c: Completion<'a>,
            ) -> Fut<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE runs SET state = $1, exit_code = $2, error = $3, failure = $4, \
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
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn expire_leases<'a>(&'a self, now_ms: i64, c: Completion<'a>) -> Fut<'a, Vec<String>> {
                Box::pin(async move {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "UPDATE runs SET state = $1, exit_code = $2, error = $3, failure = $4, \
                         finished_at = $5, lease_expires_ms = NULL \
                         WHERE state IN ($6, $7) AND lease_expires_ms < $8 RETURNING id",
                    )
                    .bind(c.state)
                    .bind(c.exit_code)
                    .bind(c.error)
                    .bind(c.failure)
                    .bind(c.finished_at)
                    .bind(state::PREPARING)
                    .bind(state::RUNNING)
                    .bind(now_ms)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }
        }
    };
}

pub(super) use {impl_store, run_cols};
