//! Why a queued run waits, its position and an estimated start, from a snapshot of what
//! concerns the run: the benches that could take it (with their labels, warnings, agents
//! and recent durations) and the open runs that matter (the active runs on those benches,
//! the queued runs that could take one of them). [`Snapshot::for_run`] loads only that, for
//! one run; [`Snapshot::load`] loads the whole workspace once, for a list of runs. Both give
//! the same view.
//!
//! Position: 1 + the queued runs ahead of it (higher priority, or the same priority and
//! older) that could take one of its candidate benches.
//! Estimated start: each schedulable candidate bench (online, healthy or degraded on parts
//! the suite does not use) is free now, or when its current run is expected to end (its
//! mean duration minus the time it has run); the runs ahead are handed out in order to
//! whichever bench frees first, each for that bench's mean duration; the run starts when
//! the next bench frees after them. A bench's mean duration is that of its last
//! [`PER_BENCH`] finished runs, else that of the workspace's last [`RECENT`] finished runs,
//! else [`DEFAULT_RUN`].

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use hilt_api::QueueInfo;

use crate::App;
use crate::store::{
    BenchLabel, BenchRow, BenchWarning, Finished, QueueBench, QueuedNeed, RunRow, StoreError, state,
};

/// Finished runs per bench that make its mean duration.
pub const PER_BENCH: usize = 10;
/// Finished runs of the workspace that make the mean of a bench with none of its own.
pub const RECENT: usize = 100;
/// The duration assumed when nothing has finished yet.
pub const DEFAULT_RUN: Duration = Duration::from_secs(60);

pub struct Snapshot {
    now_ms: i64,
    lost_ms: i64,
    benches: Vec<BenchRow>,
    labels: HashMap<String, BTreeSet<String>>,
    warnings: HashMap<String, Vec<BenchWarning>>,
    agent_seen_ms: HashMap<String, i64>,
    open: Vec<RunRow>,
    /// Runs named by busy benches that have ended on this server.
    ended: BTreeSet<String>,
    needs: HashMap<String, BTreeSet<String>>,
    /// Per bench, the durations of its last [`PER_BENCH`] finished runs.
    durations: HashMap<String, Vec<i64>>,
    /// The mean of the workspace's last [`RECENT`] finished runs; read only when a bench in
    /// the snapshot has no duration of its own.
    recent_mean_ms: Option<i64>,
}

fn ms(t: &str) -> Option<i64> {
    t.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// A finished run's duration, when its start and end are readable and in order.
fn duration(f: &Finished) -> Option<i64> {
    let a = f.started_at.as_deref().and_then(ms)?;
    let b = f.finished_at.as_deref().and_then(ms)?;
    (b >= a).then_some(b - a)
}

/// Submitted by tags/capabilities rather than a bench id: the runs with needs.
fn by_labels(r: &RunRow) -> bool {
    r.tags.is_some() || r.capabilities.is_some()
}

fn mean(d: &[i64]) -> Option<i64> {
    (!d.is_empty()).then(|| d.iter().sum::<i64>() / d.len() as i64)
}

/// Why one bench cannot take the run now.
enum Block {
    Offline,
    Health(String),
    Uses(String),
    Busy(String),
}

impl Snapshot {
    /// The whole workspace: for the queued runs of a list, which share it.
    pub async fn load(app: &App, ws: &str) -> Result<Snapshot, StoreError> {
        let s = &app.store;
        let benches = s.queue_benches(ws).await?;
        let labels = s.bench_labels(ws).await?;
        let warnings = s.bench_warnings(ws).await?;
        let needs = s.queued_needs(ws).await?;
        let open = s.open_runs(ws).await?;
        Self::assemble(app, ws, benches, labels, warnings, needs, open).await
    }

    /// What the queue view of `run` reads, and nothing else: its candidate benches with
    /// their labels, warnings, agents and durations; the active runs on them and the queued
    /// runs ahead of it that could take one of them, with the labels those need.
    pub async fn for_run(app: &App, ws: &str, run: &RunRow) -> Result<Snapshot, StoreError> {
        let s = &app.store;
        let benches = s.queue_candidates(run).await?;
        let ids: Vec<String> = benches.iter().map(|b| b.bench.bench_id.clone()).collect();
        let open = if ids.is_empty() {
            Vec::new()
        } else {
            s.open_runs_for(run, &ids).await?
        };
        // Only runs by labels need any (a run gives a bench id or labels, never both): a
        // queue of pinned runs reads none.
        let runs: Vec<String> = open
            .iter()
            .filter(|r| r.state == state::QUEUED)
            .chain(std::iter::once(run))
            .filter(|r| by_labels(r))
            .map(|r| r.id.clone())
            .collect();
        let needs = if runs.is_empty() {
            Vec::new()
        } else {
            s.needs_of(&runs).await?
        };
        // Labels matter only to runs that need some (`could_take`), warnings only on
        // degraded benches (`block`): not read otherwise (each statement costs).
        let labels = if needs.is_empty() || ids.is_empty() {
            Vec::new()
        } else {
            s.labels_of(ws, &ids).await?
        };
        let degraded: Vec<String> = benches
            .iter()
            .filter(|b| b.bench.health_status.as_deref() == Some("degraded"))
            .map(|b| b.bench.bench_id.clone())
            .collect();
        let warnings = if degraded.is_empty() {
            Vec::new()
        } else {
            s.warnings_of(ws, &degraded).await?
        };
        Self::assemble(app, ws, benches, labels, warnings, needs, open).await
    }

    async fn assemble(
        app: &App,
        ws: &str,
        benches: Vec<QueueBench>,
        bench_labels: Vec<BenchLabel>,
        bench_warnings: Vec<BenchWarning>,
        queued_needs: Vec<QueuedNeed>,
        open: Vec<RunRow>,
    ) -> Result<Snapshot, StoreError> {
        let s = &app.store;
        let mut labels: HashMap<String, BTreeSet<String>> = HashMap::new();
        for l in bench_labels {
            labels.entry(l.bench_id).or_default().insert(l.label);
        }
        let mut warnings: HashMap<String, Vec<BenchWarning>> = HashMap::new();
        for w in bench_warnings {
            warnings.entry(w.bench_id.clone()).or_default().push(w);
        }
        let mut needs: HashMap<String, BTreeSet<String>> = HashMap::new();
        for n in queued_needs {
            needs.entry(n.run_id).or_default().insert(n.label);
        }
        let mut agent_seen_ms = HashMap::new();
        // A bench that reports itself busy is free again only once the run it names has
        // ended on this server (as the claim judges it).
        let mut ended = BTreeSet::new();
        let mut rows = Vec::with_capacity(benches.len());
        for q in benches {
            if let Some(seen) = q.agent_last_seen_at.as_deref().and_then(ms) {
                agent_seen_ms.insert(q.bench.agent_id.clone(), seen);
            }
            if q.current_run_ended
                && let Some(id) = &q.bench.current_run_id
            {
                ended.insert(id.clone());
            }
            rows.push(q.bench);
        }
        let ids: Vec<String> = rows.iter().map(|b| b.bench_id.clone()).collect();
        let mut durations: HashMap<String, Vec<i64>> = HashMap::new();
        for f in s.finished_on(ws, &ids, PER_BENCH as i64).await? {
            if let Some(d) = duration(&f) {
                durations.entry(f.bench_id).or_default().push(d);
            }
        }
        let recent_mean_ms = if ids.iter().any(|b| !durations.contains_key(b)) {
            let recent: Vec<i64> = s
                .finished(ws, RECENT as i64)
                .await?
                .iter()
                .filter_map(duration)
                .collect();
            mean(&recent)
        } else {
            None
        };
        Ok(Snapshot {
            now_ms: crate::ids::now_ms(),
            lost_ms: app.settings.lease.as_millis() as i64,
            benches: rows,
            ended,
            labels,
            warnings,
            agent_seen_ms,
            open,
            needs,
            durations,
            recent_mean_ms,
        })
    }

    /// The agents of the snapshot's benches (for [`Snapshot::for_run`]: every agent with a
    /// bench that could take the run, whatever its health or load), each once.
    pub fn agents(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.benches.iter().map(|b| b.agent_id.as_str()).collect();
        set.into_iter().map(str::to_string).collect()
    }

    /// The agent of this bench was seen within the lease window.
    pub fn online(&self, agent_id: &str) -> bool {
        self.agent_seen_ms
            .get(agent_id)
            .is_some_and(|seen| self.now_ms - seen <= self.lost_ms)
    }

    pub fn agent_last_seen_ms(&self, agent_id: &str) -> Option<i64> {
        self.agent_seen_ms.get(agent_id).copied()
    }

    /// Whether bench `b` could ever take the run: its own, or one carrying all its labels.
    fn could_take(&self, run: &RunRow, b: &BenchRow) -> bool {
        if !(run.bench_id.is_empty() || b.bench_id == run.bench_id) {
            return false;
        }
        let Some(needs) = self.needs.get(&run.id) else {
            return true;
        };
        let have = self.labels.get(&b.bench_id);
        needs.iter().all(|n| have.is_some_and(|h| h.contains(n)))
    }

    /// Benches that could ever take the run.
    fn candidates<'s>(&'s self, run: &RunRow) -> Vec<&'s BenchRow> {
        self.benches
            .iter()
            .filter(|b| self.could_take(run, b))
            .collect()
    }

    fn active_on(&self, bench_id: &str) -> Option<&RunRow> {
        self.open.iter().find(|r| {
            r.bench_id == bench_id && (r.state == state::PREPARING || r.state == state::RUNNING)
        })
    }

    fn block(&self, b: &BenchRow, uses: &[String]) -> Option<Block> {
        if !self.online(&b.agent_id) {
            return Some(Block::Offline);
        }
        match b.health_status.as_deref() {
            Some("healthy") => {}
            Some("degraded") => {
                let hit = self
                    .warnings
                    .get(&b.bench_id)
                    .into_iter()
                    .flatten()
                    .find(|w| uses.contains(&w.concern));
                if let Some(w) = hit {
                    return Some(Block::Uses(format!("{} ({})", w.concern, w.check_id)));
                }
            }
            Some(other) => return Some(Block::Health(other.to_string())),
            None => return Some(Block::Health("missing".into())),
        }
        if let Some(r) = self.active_on(&b.bench_id) {
            return Some(Block::Busy(r.id.clone()));
        }
        let ended = b
            .current_run_id
            .as_ref()
            .is_some_and(|id| self.ended.contains(id));
        if b.status == "busy" && !ended {
            return Some(Block::Busy(
                b.current_run_id
                    .clone()
                    .unwrap_or_else(|| "(not of this server)".into()),
            ));
        }
        None
    }

    fn say(bench: &str, block: &Block) -> String {
        match block {
            Block::Offline => format!("agent of bench {bench} offline"),
            Block::Health(h) if h == "failing" => format!("bench {bench} is failing"),
            Block::Health(h) if h == "missing" => format!("bench {bench} reports no health"),
            Block::Health(h) if h == "malformed" => {
                format!("bench {bench} reports a malformed health")
            }
            Block::Health(h) => format!("bench {bench} health is {h}"),
            Block::Uses(what) => {
                format!("bench {bench} is degraded on {what}, which the suite uses")
            }
            Block::Busy(run) => format!("bench {bench} is busy with run {run}"),
        }
    }

    fn mean_ms(&self, bench_id: &str) -> i64 {
        self.durations
            .get(bench_id)
            .and_then(|d| mean(d))
            .or(self.recent_mean_ms)
            .unwrap_or(DEFAULT_RUN.as_millis() as i64)
    }

    /// What the run needs, as people say it: `tags a,b` / `capabilities c`.
    fn wanted(&self, run: &RunRow) -> String {
        let needs = self.needs.get(&run.id).cloned().unwrap_or_default();
        let pick = |p: &str| -> Vec<String> {
            needs
                .iter()
                .filter_map(|n| n.strip_prefix(p).map(str::to_string))
                .collect()
        };
        let (tags, caps) = (pick("tag:"), pick("cap:"));
        match (tags.is_empty(), caps.is_empty()) {
            (false, true) => format!("tags {}", tags.join(",")),
            (true, false) => format!("capabilities {}", caps.join(",")),
            _ => format!(
                "tags {} and capabilities {}",
                tags.join(","),
                caps.join(",")
            ),
        }
    }

    /// The queue view of a queued run; `uses` is what its suite uses.
    pub fn queue(&self, run: &RunRow, uses: &[String]) -> QueueInfo {
        let mine = self.candidates(run);
        // Runs ahead that could take one of this run's benches: checked against those
        // benches only, not every bench of the workspace (a pinned run has one).
        let ahead = self
            .open
            .iter()
            .filter(|q| q.state == state::QUEUED && q.id != run.id)
            .filter(|q| {
                q.priority > run.priority || (q.priority == run.priority && q.seq < run.seq)
            })
            .filter(|q| mine.iter().any(|b| self.could_take(q, b)))
            .count();
        let blocks: Vec<(&BenchRow, Option<Block>)> =
            mine.iter().map(|b| (*b, self.block(b, uses))).collect();
        let reason = if mine.is_empty() {
            if run.bench_id.is_empty() {
                format!(
                    "waiting: no bench with {} in this workspace",
                    self.wanted(run)
                )
            } else {
                format!(
                    "waiting: bench {} is not in this workspace any more",
                    run.bench_id
                )
            }
        } else if let Some((b, _)) = blocks.iter().find(|(_, k)| k.is_none()) {
            if ahead > 0 {
                format!("waiting: {ahead} earlier run(s) ahead")
            } else {
                format!("waiting: for the agent of bench {} to take it", b.bench_id)
            }
        } else if !run.bench_id.is_empty() {
            let (b, k) = &blocks[0];
            format!(
                "waiting: {}",
                Self::say(&b.bench_id, k.as_ref().unwrap_or(&Block::Offline))
            )
        } else if let Some((b, Some(k))) = blocks
            .iter()
            .find(|(_, k)| matches!(k, Some(Block::Busy(_))))
        {
            format!("waiting: {}", Self::say(&b.bench_id, k))
        } else {
            let why: Vec<String> = blocks
                .iter()
                .filter_map(|(b, k)| k.as_ref().map(|k| Self::say(&b.bench_id, k)))
                .collect();
            format!(
                "waiting: no online bench with {} can take it ({})",
                self.wanted(run),
                why.join("; ")
            )
        };
        // The estimate: benches that could take it once free.
        let mut free: Vec<(i64, i64, String)> = blocks
            .iter()
            .filter(|(_, k)| matches!(k, None | Some(Block::Busy(_))))
            .map(|(b, _)| {
                let mean = self.mean_ms(&b.bench_id);
                let at = match self.active_on(&b.bench_id) {
                    Some(r) => {
                        let began = r.started_at.as_deref().and_then(ms).unwrap_or(self.now_ms);
                        self.now_ms + (mean - (self.now_ms - began)).max(0)
                    }
                    None => self.now_ms,
                };
                (at, mean, b.bench_id.clone())
            })
            .collect();
        let (estimated_start_at, estimate_basis) = if free.is_empty() {
            (None, None)
        } else {
            for _ in 0..ahead {
                free.sort();
                free[0].0 += free[0].1;
            }
            free.sort();
            let means: Vec<String> = free
                .iter()
                .map(|(_, m, b)| format!("{b} {:.1} s", *m as f64 / 1000.0))
                .collect();
            (
                Some(crate::ids::ms_to_rfc3339(free[0].0)),
                Some(format!(
                    "{ahead} run(s) ahead handed to the first bench to free up; mean run time \
                     per bench from its last {PER_BENCH} finished runs ({}; {} s when unknown)",
                    means.join(", "),
                    DEFAULT_RUN.as_secs()
                )),
            )
        };
        QueueInfo {
            reason,
            position: ahead as u64 + 1,
            estimated_start_at,
            estimate_basis,
        }
    }
}
