//! The SQL of [`Scheduling`](super::Scheduling), written once for every backend like
//! `sql.rs` (`$N` placeholders, SQL both SQLite and PostgreSQL accept).
//! Dynamic IN-lists are built with [`sqlx::QueryBuilder`] (`push_bind`: the backend's own
//! placeholders, never a formatted value), at most [`IN_LIST`](super::sched::IN_LIST) ids
//! per statement.

/// The columns of a [`RunRow`](super::RunRow) without the suite text (up to 256 KiB each):
/// the queue view needs only the scheduling columns.
macro_rules! open_cols {
    () => {
        "seq, id, workspace_id, bench_id, state, '' AS suite_yaml, artifact_name, \
         skip_flash, verbose_steps, agent_id, fence, lease_expires_ms, exit_code, error, failure, \
         created_at, started_at, finished_at, artifacts_size, artifacts_sha256, priority, tags, \
         capabilities, cancel_requested_at"
    };
}

/// The columns of a [`QueueBench`](super::QueueBench) from `benches b` and its agent `a`
/// ([`with_agent`]).
macro_rules! queue_bench_cols {
    () => {
        "b.bench_id AS bench_id, b.agent_id, b.name, b.status, b.current_run_id, b.health_status, \
         b.summary, b.updated_at, a.last_seen_at AS agent_last_seen_at, \
         (b.status = 'busy' AND EXISTS (SELECT 1 FROM runs e WHERE e.workspace_id = b.workspace_id \
           AND e.id = b.current_run_id AND e.state NOT IN ('queued', 'preparing', 'running'))) \
           AS current_run_ended"
    };
}

/// Joins the agent `a` of bench `b`.
macro_rules! with_agent {
    () => {
        " LEFT JOIN agents a ON a.workspace_id = b.workspace_id AND a.id = b.agent_id"
    };
}

/// Bench `b` carries every label run `$2` needs.
macro_rules! carries {
    () => {
        "NOT EXISTS (SELECT 1 FROM run_needs n WHERE n.run_id = $2 \
           AND NOT EXISTS (SELECT 1 FROM bench_labels l WHERE l.workspace_id = b.workspace_id \
             AND l.bench_id = b.bench_id AND l.label = n.label))"
    };
}

/// Pushes `(?, ?, …)` binding `ids`.
pub(super) fn push_in<DB: sqlx::Database>(qb: &mut sqlx::QueryBuilder<DB>, ids: &[String])
where
    for<'t> &'t str: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    qb.push("(");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            qb.push(", ");
        }
        qb.push_bind(id.as_str());
    }
    qb.push(")");
}

/// Keeps the newest `per_bench` rows of each bench (`rows` newest first).
pub(super) fn newest_per_bench(rows: Vec<super::Finished>, per_bench: i64) -> Vec<super::Finished> {
    let mut seen: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    rows.into_iter()
        .filter(|f| {
            let n = seen.entry(f.bench_id.clone()).or_default();
            *n += 1;
            *n <= per_bench
        })
        .collect()
}

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
                    .fetch_all(&mut *self.read().await?)
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
                    .fetch_all(&mut *self.read().await?)
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
                    .fetch_all(&mut *self.read().await?)
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
                    .fetch_all(&mut *self.read().await?)
                    .await?)
                })
            }

            fn open_runs<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<RunRow>> {
                Box::pin(async move {
                    // Without the suite texts (up to 256 KiB each): the queue view needs
                    // only the scheduling columns.
                    Ok(sqlx::query_as::<_, RunRow>(concat!(
                        "SELECT ",
                        $crate::store::sql_sched::open_cols!(),
                        " FROM runs WHERE workspace_id = $1 \
                         AND state IN ('queued', 'preparing', 'running') ORDER BY seq"
                    ))
                    .bind(workspace_id)
                    .fetch_all(&mut *self.read().await?)
                    .await?)
                })
            }

            fn run_uses<'a>(&'a self, run_id: &'a str) -> Fut<'a, Vec<String>> {
                Box::pin(async move {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "SELECT concern FROM run_uses WHERE run_id = $1 ORDER BY concern",
                    )
                    .bind(run_id)
                    .fetch_all(&mut *self.read().await?)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }

            fn finished<'a>(&'a self, workspace_id: &'a str, limit: i64) -> Fut<'a, Vec<Finished>> {
                Box::pin(async move {
                    // One index range per state (`runs_queue`), newest first: no sort of every
                    // finished run of the workspace. Of the latest `limit` per state, those
                    // that started (filtered after the limit, so a history of runs that never
                    // started is not walked to its end).
                    let mut rows = sqlx::query_as::<_, Finished>(
                        "SELECT seq, bench_id, started_at, finished_at FROM (SELECT seq, bench_id, \
                           started_at, finished_at FROM runs WHERE workspace_id = $1 AND state = 'done' \
                           ORDER BY seq DESC LIMIT $2) AS d WHERE d.started_at IS NOT NULL \
                         UNION ALL SELECT seq, bench_id, started_at, finished_at FROM (SELECT seq, \
                           bench_id, started_at, finished_at FROM runs WHERE workspace_id = $1 \
                           AND state = 'failed' ORDER BY seq DESC LIMIT $2) AS f \
                           WHERE f.started_at IS NOT NULL \
                         ORDER BY seq DESC",
                    )
                    .bind(workspace_id)
                    .bind(limit)
                    .fetch_all(&mut *self.read().await?)
                    .await?;
                    rows.truncate(usize::try_from(limit).unwrap_or(0));
                    Ok(rows)
                })
            }

            fn finished_on<'a>(
                &'a self,
                workspace_id: &'a str,
                bench_ids: &'a [String],
                per_bench: i64,
            ) -> Fut<'a, Vec<Finished>> {
                Box::pin(async move {
                    let mut rows = Vec::new();
                    for chunk in bench_ids.chunks($crate::store::sched::BENCHES_PER_UNION) {
                        // Per bench and state, one backward range of `runs_by_bench`.
                        let mut qb = self.builder("");
                        let mut first = true;
                        for bench in chunk {
                            for st in ["done", "failed"] {
                                if !first {
                                    qb.push(" UNION ALL ");
                                }
                                first = false;
                                qb.push(
                                    "SELECT seq, bench_id, started_at, finished_at FROM (SELECT seq, \
                                     bench_id, started_at, finished_at FROM runs WHERE workspace_id = ",
                                );
                                qb.push_bind(workspace_id);
                                qb.push(" AND bench_id = ");
                                qb.push_bind(bench.as_str());
                                qb.push(" AND state = ");
                                qb.push_bind(st);
                                // Filtered after the limit, as in `finished`.
                                qb.push(" ORDER BY seq DESC LIMIT ");
                                qb.push_bind(per_bench);
                                qb.push(") AS r WHERE r.started_at IS NOT NULL");
                            }
                        }
                        qb.push(" ORDER BY seq DESC");
                        rows.extend(qb.build_query_as::<Finished>().fetch_all(&mut *self.read().await?).await?);
                    }
                    rows.sort_by(|a, b| b.seq.cmp(&a.seq));
                    Ok($crate::store::sql_sched::newest_per_bench(rows, per_bench))
                })
            }

            fn queue_benches<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<$crate::store::QueueBench>> {
                Box::pin(async move {
                    Ok(sqlx::query_as::<_, $crate::store::QueueBench>(concat!(
                        "SELECT ",
                        $crate::store::sql_sched::queue_bench_cols!(),
                        " FROM benches b",
                        $crate::store::sql_sched::with_agent!(),
                        " WHERE b.workspace_id = $1 ORDER BY b.bench_id"
                    ))
                    .bind(workspace_id)
                    .fetch_all(&mut *self.read().await?)
                    .await?)
                })
            }

            fn queue_candidates<'a>(
                &'a self,
                run: &'a RunRow,
            ) -> Fut<'a, Vec<$crate::store::QueueBench>> {
                Box::pin(async move {
                    // One statement per case, each an index lookup, so that PostgreSQL plans
                    // it once (a union of the cases was re-planned at every call): its own
                    // bench (a primary key); the benches carrying the run's first label
                    // (`bench_labels_by_label`), checked for the rest, or every bench when
                    // it needs nothing.
                    let q = if run.bench_id.is_empty() {
                        sqlx::query_as::<_, $crate::store::QueueBench>(concat!(
                            "SELECT ",
                            $crate::store::sql_sched::queue_bench_cols!(),
                            " FROM benches b",
                            $crate::store::sql_sched::with_agent!(),
                            " WHERE b.workspace_id = $1 AND b.bench_id IN (SELECT f.bench_id \
                               FROM bench_labels f WHERE f.workspace_id = $1 AND f.label = \
                                 (SELECT MIN(m.label) FROM run_needs m WHERE m.run_id = $2)) AND ",
                            $crate::store::sql_sched::carries!(),
                            " UNION ALL SELECT ",
                            $crate::store::sql_sched::queue_bench_cols!(),
                            " FROM benches b",
                            $crate::store::sql_sched::with_agent!(),
                            " WHERE b.workspace_id = $1 \
                               AND NOT EXISTS (SELECT 1 FROM run_needs m WHERE m.run_id = $2) \
                             ORDER BY bench_id"
                        ))
                        .bind(run.workspace_id.as_str())
                        .bind(run.id.as_str())
                    } else {
                        sqlx::query_as::<_, $crate::store::QueueBench>(concat!(
                            "SELECT ",
                            $crate::store::sql_sched::queue_bench_cols!(),
                            " FROM benches b",
                            $crate::store::sql_sched::with_agent!(),
                            " WHERE b.workspace_id = $1 AND b.bench_id = $3 AND ",
                            $crate::store::sql_sched::carries!()
                        ))
                        .bind(run.workspace_id.as_str())
                        .bind(run.id.as_str())
                        .bind(run.bench_id.as_str())
                    };
                    Ok(q.fetch_all(&mut *self.read().await?).await?)
                })
            }

            fn labels_of<'a>(
                &'a self,
                workspace_id: &'a str,
                bench_ids: &'a [String],
            ) -> Fut<'a, Vec<BenchLabel>> {
                Box::pin(async move {
                    let mut rows = Vec::new();
                    for chunk in bench_ids.chunks($crate::store::sched::IN_LIST) {
                        let mut qb = self.builder(
                            "SELECT bench_id, label FROM bench_labels WHERE workspace_id = ",
                        );
                        qb.push_bind(workspace_id);
                        qb.push(" AND bench_id IN ");
                        $crate::store::sql_sched::push_in(&mut qb, chunk);
                        qb.push(" ORDER BY bench_id, label");
                        rows.extend(qb.build_query_as::<BenchLabel>().fetch_all(&mut *self.read().await?).await?);
                    }
                    Ok(rows)
                })
            }

            fn warnings_of<'a>(
                &'a self,
                workspace_id: &'a str,
                bench_ids: &'a [String],
            ) -> Fut<'a, Vec<BenchWarning>> {
                Box::pin(async move {
                    let mut rows = Vec::new();
                    for chunk in bench_ids.chunks($crate::store::sched::IN_LIST) {
                        let mut qb = self.builder(
                            "SELECT bench_id, check_id, concern, message FROM bench_warnings \
                             WHERE workspace_id = ",
                        );
                        qb.push_bind(workspace_id);
                        qb.push(" AND bench_id IN ");
                        $crate::store::sql_sched::push_in(&mut qb, chunk);
                        qb.push(" ORDER BY bench_id, check_id");
                        rows.extend(qb.build_query_as::<BenchWarning>().fetch_all(&mut *self.read().await?).await?);
                    }
                    Ok(rows)
                })
            }

            fn needs_of<'a>(&'a self, run_ids: &'a [String]) -> Fut<'a, Vec<QueuedNeed>> {
                Box::pin(async move {
                    let mut rows = Vec::new();
                    for chunk in run_ids.chunks($crate::store::sched::IN_LIST) {
                        let mut qb = self.builder(
                            "SELECT run_id, label FROM run_needs WHERE run_id IN ",
                        );
                        $crate::store::sql_sched::push_in(&mut qb, chunk);
                        rows.extend(qb.build_query_as::<QueuedNeed>().fetch_all(&mut *self.read().await?).await?);
                    }
                    Ok(rows)
                })
            }

            fn open_runs_for<'a>(
                &'a self,
                run: &'a RunRow,
                bench_ids: &'a [String],
            ) -> Fut<'a, Vec<RunRow>> {
                Box::pin(async move {
                    let mut rows: Vec<RunRow> = Vec::new();
                    for chunk in bench_ids.chunks($crate::store::sched::IN_LIST) {
                        // Both halves are ranges of `runs_by_bench` (a run by labels has
                        // bench_id '' while queued).
                        let mut qb = self.builder(
                            concat!("SELECT ", $crate::store::sql_sched::open_cols!(), " FROM runs q WHERE q.workspace_id = "),
                        );
                        qb.push_bind(run.workspace_id.as_str());
                        qb.push(" AND q.state IN ('preparing', 'running') AND q.bench_id IN ");
                        $crate::store::sql_sched::push_in(&mut qb, chunk);
                        qb.push(concat!(" UNION ALL SELECT ", $crate::store::sql_sched::open_cols!(), " FROM runs q WHERE q.workspace_id = "));
                        qb.push_bind(run.workspace_id.as_str());
                        qb.push(" AND q.state = 'queued' AND q.bench_id IN ('', ");
                        for (i, id) in chunk.iter().enumerate() {
                            if i > 0 {
                                qb.push(", ");
                            }
                            qb.push_bind(id.as_str());
                        }
                        qb.push(") AND q.id <> ");
                        qb.push_bind(run.id.as_str());
                        // `+q.priority`: not an index term, so SQLite takes the bench's
                        // range (`runs_by_bench`) instead of every run ahead in the
                        // workspace (`runs_by_priority`).
                        qb.push(" AND (+q.priority > ");
                        qb.push_bind(run.priority);
                        qb.push(" OR (+q.priority = ");
                        qb.push_bind(run.priority);
                        qb.push(" AND q.seq < ");
                        qb.push_bind(run.seq);
                        qb.push(
                            ")) AND EXISTS (SELECT 1 FROM benches c WHERE c.workspace_id = q.workspace_id \
                             AND (q.bench_id = '' OR q.bench_id = c.bench_id) AND c.bench_id IN ",
                        );
                        $crate::store::sql_sched::push_in(&mut qb, chunk);
                        qb.push(
                            " AND NOT EXISTS (SELECT 1 FROM run_needs n WHERE n.run_id = q.id \
                               AND NOT EXISTS (SELECT 1 FROM bench_labels l \
                                 WHERE l.workspace_id = c.workspace_id AND l.bench_id = c.bench_id \
                                   AND l.label = n.label)))",
                        );
                        for r in qb.build_query_as::<RunRow>().fetch_all(&mut *self.read().await?).await? {
                            // A run by labels may match benches of several chunks.
                            if !rows.iter().any(|o| o.id == r.id) {
                                rows.push(r);
                            }
                        }
                    }
                    rows.sort_by_key(|r| r.seq);
                    Ok(rows)
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
                    .execute(&mut *self.write().await?)
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
                    .execute(&mut *self.write().await?)
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
                    .fetch_all(&mut *self.read().await?)
                    .await?;
                    Ok(rows.into_iter().map(|r| r.0).collect())
                })
            }

            fn expire_cancels<'a>(&'a self, now_ms: i64, c: Completion<'a>) -> Fut<'a, Vec<String>> {
                Box::pin(async move {
                    // Through each workspace's index of runs by state: the active runs only,
                    // not a scan of every stored run.
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "UPDATE runs SET state = $1, exit_code = $2, error = $3, failure = $4, \
                         finished_at = $5, lease_expires_ms = NULL \
                         WHERE workspace_id IN (SELECT id FROM workspaces) \
                           AND state IN ('preparing', 'running') AND cancel_deadline_ms < $6 \
                         RETURNING id",
                    )
                    .bind(c.state)
                    .bind(c.exit_code)
                    .bind(c.error)
                    .bind(c.failure)
                    .bind(c.finished_at)
                    .bind(now_ms)
                    .fetch_all(&mut *self.write().await?)
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
                            .fetch_optional(&mut *self.read().await?)
                            .await?;
                    if any.is_none() {
                        return Ok(Vec::new());
                    }
                    let mut w = self.write().await?;
                    let mut tx = w.begin_with($begin).await?;
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

pub(super) use {carries, impl_sched, open_cols, queue_bench_cols, with_agent};
