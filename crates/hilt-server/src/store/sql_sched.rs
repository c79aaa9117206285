//! The SQL of [`Scheduling`](super::Scheduling), written once for every backend like
//! `sql.rs` (`$N` placeholders, SQL both SQLite and PostgreSQL accept).

macro_rules! impl_sched {
    ($store:ty, $begin:literal) => {
        impl Scheduling for $store {
            fn bench_labels<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<BenchLabel>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, BenchLabel>(
                        "SELECT bench_id, label FROM bench_labels WHERE workspace_id = $1 \
                         ORDER BY bench_id, label",
                    )
                    .bind(workspace_id)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn bench_warnings<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<BenchWarning>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, BenchWarning>(
                        "SELECT bench_id, check_id, concern, message FROM bench_warnings \
                         WHERE workspace_id = $1 ORDER BY bench_id, check_id",
                    )
                    .bind(workspace_id)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn health_history<'a>(
                &'a self,
                workspace_id: &'a str,
                bench_id: &'a str,
            ) -> Fut<'a, Vec<HealthChangeRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, HealthChangeRow>(
                        "SELECT status, summary, changed_at FROM bench_health_history \
                         WHERE workspace_id = $1 AND bench_id = $2 ORDER BY seq DESC LIMIT 100",
                    )
                    .bind(workspace_id)
                    .bind(bench_id)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn queued_needs<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<QueuedNeed>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, QueuedNeed>(
                        "SELECT n.run_id, n.label FROM run_needs n JOIN runs r ON r.id = n.run_id \
                         WHERE r.workspace_id = $1 AND r.state = 'queued'",
                    )
                    .bind(workspace_id)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn open_runs<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<RunRow>> {
                Box::pin(async move {
                    // Without the suite texts (up to 256 KiB each): the queue view needs
                    // only the scheduling columns.
                    Ok(sqlx::query_as::<_, RunRow>(
                        "SELECT seq, id, workspace_id, bench_id, state, '' AS suite_yaml, artifact_name, \
                         skip_flash, verbose_steps, agent_id, fence, lease_expires_ms, exit_code, error, \
                         failure, created_at, started_at, finished_at, artifacts_size, artifacts_sha256, \
                         priority, tags, capabilities, cancel_requested_at FROM runs WHERE workspace_id = $1 \
                         AND state IN ('queued', 'preparing', 'running') ORDER BY seq",
                    )
                    .bind(workspace_id)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn run_uses<'a>(&'a self, run_id: &'a str) -> Fut<'a, Vec<String>> {
                Box::pin(async move {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "SELECT concern FROM run_uses WHERE run_id = $1 ORDER BY concern",
                    )
                    .bind(run_id)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }

            fn finished<'a>(&'a self, workspace_id: &'a str, limit: i64) -> Fut<'a, Vec<Finished>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, Finished>(
                        "SELECT bench_id, started_at, finished_at FROM runs WHERE workspace_id = $1 \
                         AND state IN ('done', 'failed') AND started_at IS NOT NULL \
                         ORDER BY seq DESC LIMIT $2",
                    )
                    .bind(workspace_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn candidate_agents<'a>(
                &'a self,
                workspace_id: &'a str,
                run_id: &'a str,
            ) -> Fut<'a, Vec<String>> {
                Box::pin(async move {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "SELECT DISTINCT b.agent_id FROM runs r JOIN benches b \
                           ON b.workspace_id = r.workspace_id \
                         WHERE r.workspace_id = $1 AND r.id = $2 \
                           AND (r.bench_id = '' OR b.bench_id = r.bench_id) \
                           AND NOT EXISTS (SELECT 1 FROM run_needs n WHERE n.run_id = r.id \
                             AND NOT EXISTS (SELECT 1 FROM bench_labels l \
                               WHERE l.workspace_id = b.workspace_id AND l.bench_id = b.bench_id \
                                 AND l.label = n.label))",
                    )
                    .bind(workspace_id)
                    .bind(run_id)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }

            fn finish_queued<'a>(
                &'a self,
                workspace_id: &'a str,
                run_id: &'a str,
                c: Completion<'a>,
            ) -> Fut<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE runs SET state = $1, exit_code = $2, error = $3, failure = $4, \
                         finished_at = $5 WHERE workspace_id = $6 AND id = $7 AND state = 'queued'",
                    )
                    .bind(c.state)
                    .bind(c.exit_code)
                    .bind(c.error)
                    .bind(c.failure)
                    .bind(c.finished_at)
                    .bind(workspace_id)
                    .bind(run_id)
                    .execute(&self.writer)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn request_cancel<'a>(
                &'a self,
                workspace_id: &'a str,
                run_id: &'a str,
                now: &'a str,
                deadline_ms: i64,
            ) -> Fut<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, $1), \
                         cancel_deadline_ms = COALESCE(cancel_deadline_ms, $2) \
                         WHERE workspace_id = $3 AND id = $4 AND state IN ('preparing', 'running')",
                    )
                    .bind(now)
                    .bind(deadline_ms)
                    .bind(workspace_id)
                    .bind(run_id)
                    .execute(&self.writer)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn cancel_requested<'a>(&'a self, agent_id: &'a str) -> Fut<'a, Vec<String>> {
                Box::pin(async move {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "SELECT id FROM runs WHERE agent_id = $1 AND state IN ('preparing', 'running') \
                         AND cancel_requested_at IS NOT NULL ORDER BY seq",
                    )
                    .bind(agent_id)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }

            fn expire_cancels<'a>(&'a self, now_ms: i64, c: Completion<'a>) -> Fut<'a, Vec<String>> {
                Box::pin(async move {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "UPDATE runs SET state = $1, exit_code = $2, error = $3, failure = $4, \
                         finished_at = $5, lease_expires_ms = NULL \
                         WHERE state IN ('preparing', 'running') AND cancel_deadline_ms < $6 \
                         RETURNING id",
                    )
                    .bind(c.state)
                    .bind(c.exit_code)
                    .bind(c.error)
                    .bind(c.failure)
                    .bind(c.finished_at)
                    .bind(now_ms)
                    .fetch_all(&self.writer)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }

            fn forget_agents<'a>(&'a self, before: &'a str) -> Fut<'a, Vec<String>> {
                Box::pin(async move {
                    // Most sweeps find nobody: look before taking the write lock.
                    let any: Option<(String,)> =
                        sqlx::query_as("SELECT id FROM agents WHERE last_seen_at < $1 LIMIT 1")
                            .bind(before)
                            .fetch_optional(&self.pool)
                            .await?;
                    if any.is_none() {
                        return Ok(Vec::new());
                    }
                    let mut tx = self.writer.begin_with($begin).await?;
                    let gone: Vec<(String,)> =
                        sqlx::query_as("SELECT id FROM agents WHERE last_seen_at < $1 ORDER BY id")
                            .bind(before)
                            .fetch_all(&mut *tx)
                            .await?;
                    for (agent,) in &gone {
                        sqlx::query(
                            "DELETE FROM bench_labels WHERE EXISTS (SELECT 1 FROM benches b \
                             WHERE b.agent_id = $1 AND b.workspace_id = bench_labels.workspace_id \
                             AND b.bench_id = bench_labels.bench_id)",
                        )
                        .bind(agent)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(
                            "DELETE FROM bench_warnings WHERE EXISTS (SELECT 1 FROM benches b \
                             WHERE b.agent_id = $1 AND b.workspace_id = bench_warnings.workspace_id \
                             AND b.bench_id = bench_warnings.bench_id)",
                        )
                        .bind(agent)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query("DELETE FROM benches WHERE agent_id = $1")
                            .bind(agent)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query("DELETE FROM agents WHERE id = $1")
                            .bind(agent)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(gone.into_iter().map(|r| r.0).collect())
                })
            }
        }
    };
}

pub(super) use impl_sched;
