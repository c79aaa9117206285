//! gpio_set, gpio_get, gpio_expect, gpio_wait_edge. Suites speak logical values; the
//! line's `active_high` maps them to physical levels.

use std::time::{Duration, Instant};

use hilt_model::bench::{Edge, GpioLine};
use hilt_model::run::{Category, Failure};
use hilt_model::suite::{GpioExpect, GpioGet, GpioSet, GpioWaitEdge};

use super::{Exec, StepError, StepResult};
use crate::classify::hw_failure;
use crate::data;

const POLL: Duration = Duration::from_millis(1);
/// Longest single wait handed to a backend that waits itself.
const EDGE_SLICE: Duration = Duration::from_millis(500);

impl Exec<'_> {
    fn line_cfg(&self, node: &str, line: &str) -> Result<GpioLine, StepError> {
        self.bench
            .nodes
            .get(node)
            .and_then(|n| n.gpio.get(line))
            .cloned()
            .ok_or_else(|| {
                StepError::Run(Failure::new(
                    Category::ConfigError,
                    format!("node `{node}` has no GPIO line `{line}`"),
                ))
            })
    }

    pub(super) fn gpio_log_path(&self, node: &str) -> String {
        self.node_log(node, "gpio.log").display().to_string()
    }

    /// Drives a line to a logical value.
    pub fn gpio_write(&mut self, node: &str, line: &str, value: bool) -> Result<(), StepError> {
        let cfg = self.line_cfg(node, line)?;
        let physical = value == cfg.active_high;
        let log_path = self.gpio_log_path(node);
        let g = self
            .session
            .gpio
            .get_mut(node)
            .ok_or_else(|| not_open(node))?;
        g.log.line(&format!(
            "SET {line} logical={} physical={}",
            value as u8, physical as u8
        ));
        g.lines.set(line, physical).map_err(|e| {
            StepError::Run(
                hw_failure(&e)
                    .with_detail("node", node.to_string())
                    .with_detail("line", line.to_string())
                    .with_artifact("gpio_log", log_path),
            )
        })
    }

    /// Reads a line's logical value.
    fn gpio_read(&mut self, node: &str, line: &str, log: bool) -> Result<bool, StepError> {
        let cfg = self.line_cfg(node, line)?;
        let log_path = self.gpio_log_path(node);
        let g = self
            .session
            .gpio
            .get_mut(node)
            .ok_or_else(|| not_open(node))?;
        let physical = g.lines.get(line).map_err(|e| {
            StepError::Run(
                hw_failure(&e)
                    .with_detail("node", node.to_string())
                    .with_detail("line", line.to_string())
                    .with_artifact("gpio_log", log_path),
            )
        })?;
        let value = physical == cfg.active_high;
        if log {
            g.log.line(&format!(
                "GET {line} logical={} physical={}",
                value as u8, physical as u8
            ));
        }
        Ok(value)
    }

    pub(super) fn gpio_set(&mut self, s: &GpioSet) -> StepResult {
        self.gpio_write(&s.node, &s.line, s.value)?;
        Ok(data!("node_name" => s.node, "line" => s.line, "value" => s.value))
    }

    pub(super) fn gpio_get(&mut self, s: &GpioGet) -> StepResult {
        let v = self.gpio_read(&s.node, &s.line, true)?;
        if let Some(want) = s.expect
            && want != v
        {
            return Err(StepError::Test(self.gpio_miss(
                &s.node,
                format!(
                    "GPIO {}.{} read {} but {} was expected",
                    s.node, s.line, v as u8, want as u8
                ),
            )));
        }
        Ok(data!("node_name" => s.node, "line" => s.line, "value" => v))
    }

    pub(super) fn gpio_expect(&mut self, s: &GpioExpect, within: Duration) -> StepResult {
        let deadline = Instant::now() + within;
        let mut last = None;
        loop {
            let v = self.gpio_read(&s.node, &s.line, last.is_none())?;
            if last != Some(v) {
                last = Some(v);
            }
            if v == s.value {
                self.log_gpio(
                    &s.node,
                    &format!("EXPECT {} value={} matched", s.line, v as u8),
                );
                return Ok(data!("node_name" => s.node, "line" => s.line, "value" => v));
            }
            if Instant::now() >= deadline {
                self.log_gpio(
                    &s.node,
                    &format!("EXPECT {} value={} timed out", s.line, s.value as u8),
                );
                return Err(StepError::Test(self.gpio_miss(
                    &s.node,
                    format!(
                        "GPIO {}.{} did not read {} within {} ms (last read {})",
                        s.node,
                        s.line,
                        s.value as u8,
                        within.as_millis(),
                        v as u8
                    ),
                )));
            }
            self.sleep(POLL)?;
        }
    }

    /// Waits on the backend itself where it can (remote_gpio waits on the agent, so no
    /// edge falls between two samples), in slices so a cancel is seen. `None`: the backend
    /// cannot wait and the caller samples.
    fn backend_edge(
        &mut self,
        s: &GpioWaitEdge,
        deadline: Instant,
    ) -> Result<Option<bool>, StepError> {
        let cfg = self.line_cfg(&s.node, &s.line)?;
        // Logical edges of an active-low line are the opposite physical edges.
        let physical = match (cfg.active_high, s.edge) {
            (true, e) | (false, e @ Edge::Both) => e,
            (false, Edge::Rising) => Edge::Falling,
            (false, Edge::Falling) => Edge::Rising,
        };
        let log_path = self.gpio_log_path(&s.node);
        loop {
            if self.cancel.is_cancelled() {
                return Err(StepError::Cancelled);
            }
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(EDGE_SLICE);
            let g = self
                .session
                .gpio
                .get_mut(&s.node)
                .ok_or_else(|| not_open(&s.node))?;
            let waited = g.lines.wait_edge(&s.line, physical, slice).map_err(|e| {
                StepError::Run(
                    hw_failure(&e)
                        .with_detail("node", s.node.clone())
                        .with_detail("line", s.line.clone())
                        .with_artifact("gpio_log", log_path.clone()),
                )
            })?;
            match waited {
                None => return Ok(None),
                Some(true) => return Ok(Some(true)),
                Some(false) if Instant::now() >= deadline => return Ok(Some(false)),
                Some(false) => {}
            }
        }
    }

    fn edge_timed_out(&mut self, s: &GpioWaitEdge, within: Duration) -> StepError {
        self.log_gpio(
            &s.node,
            &format!("WAIT_EDGE {} edge={} timed out", s.line, s.edge.as_str()),
        );
        StepError::Test(self.gpio_miss(
            &s.node,
            format!(
                "GPIO edge wait timed out on {}.{}: edge={} within {} ms",
                s.node,
                s.line,
                s.edge.as_str(),
                within.as_millis()
            ),
        ))
    }

    pub(super) fn gpio_wait_edge(&mut self, s: &GpioWaitEdge, within: Duration) -> StepResult {
        let deadline = Instant::now() + within;
        match self.backend_edge(s, deadline)? {
            Some(true) => {
                // The level after the edge tells which edge `both` saw.
                let v = self.gpio_read(&s.node, &s.line, false)?;
                let e = match s.edge {
                    Edge::Both if v => Edge::Rising,
                    Edge::Both => Edge::Falling,
                    e => e,
                };
                self.log_gpio(
                    &s.node,
                    &format!("WAIT_EDGE {} edge={} seen", s.line, e.as_str()),
                );
                return Ok(data!("node_name" => s.node, "line" => s.line, "edge" => e.as_str()));
            }
            Some(false) => return Err(self.edge_timed_out(s, within)),
            None => {}
        }
        let mut prev = self.gpio_read(&s.node, &s.line, true)?;
        loop {
            if Instant::now() >= deadline {
                return Err(self.edge_timed_out(s, within));
            }
            self.sleep(POLL)?;
            let v = self.gpio_read(&s.node, &s.line, false)?;
            let seen = match (prev, v) {
                (false, true) => Some(Edge::Rising),
                (true, false) => Some(Edge::Falling),
                _ => None,
            };
            prev = v;
            if let Some(e) = seen
                && (s.edge == Edge::Both || s.edge == e)
            {
                self.log_gpio(
                    &s.node,
                    &format!("WAIT_EDGE {} edge={} seen", s.line, e.as_str()),
                );
                return Ok(data!("node_name" => s.node, "line" => s.line, "edge" => e.as_str()));
            }
        }
    }

    fn log_gpio(&mut self, node: &str, text: &str) {
        if let Some(g) = self.session.gpio.get_mut(node) {
            g.log.line(text);
        }
    }

    fn gpio_miss(&self, node: &str, message: String) -> Failure {
        Failure::new(Category::GpioExpectationFailed, message)
            .with_artifact("gpio_log", self.gpio_log_path(node))
    }
}

fn not_open(node: &str) -> StepError {
    StepError::Run(Failure::new(
        Category::GpioLineUnreachable,
        format!("GPIO of node `{node}` is not open"),
    ))
}
