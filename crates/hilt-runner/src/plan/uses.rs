//! What a suite uses on its bench, walked once. Both the lock specs and the hardware the
//! session opens derive from this one set.

use std::collections::BTreeSet;

use hilt_model::bench::{Bench, FlashBackend};
use hilt_model::suite::{Step, Suite};

/// The bench objects a suite touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uses {
    /// Nodes named by any step.
    pub nodes: BTreeSet<String>,
    /// `(node, transport)` pairs: those named by steps, fault-recovery oracles, and the
    /// self-identification transport of every used node.
    pub transports: BTreeSet<(String, String)>,
    /// Used nodes with GPIO lines: every line of such a node is opened and locked.
    pub gpio_nodes: BTreeSet<String>,
    /// Nodes whose flash probe or port a `flash` (unless skip-flash) or `reset` step uses.
    pub flash_nodes: BTreeSet<String>,
    /// Bench resources (power switches, instruments) named by steps.
    pub resources: BTreeSet<String>,
    /// `run_external` targets.
    pub external_targets: BTreeSet<String>,
    /// Remote hosts named by `ssh_exec` / `upload` / `download` (hilt extension).
    pub hosts: BTreeSet<String>,
}

impl Uses {
    pub fn of(bench: &Bench, suite: &Suite, skip_flash: bool) -> Uses {
        let mut u = Uses::default();
        for step in suite.tests.iter().flat_map(|t| &t.steps) {
            if let Some(host) = step.host() {
                u.hosts.insert(host.to_string());
            }
            if let Some(node) = step.node() {
                u.nodes.insert(node.to_string());
                if let Some(t) = step.transport() {
                    u.transports.insert((node.to_string(), t.to_string()));
                }
            }
            let mut recovery = |node: &str, transport: &str| {
                u.transports
                    .insert((node.to_string(), transport.to_string()));
            };
            match step {
                Step::Flash(s) if !skip_flash => {
                    u.flash_nodes.insert(s.node.clone());
                }
                Step::Reset(s) => {
                    u.flash_nodes.insert(s.node.clone());
                }
                Step::FaultInjectGpioGlitch(f) => {
                    recovery(&f.recovery.node, &f.recovery.transport);
                    u.nodes.insert(f.node.clone());
                }
                Step::FaultInjectPowerGlitch(f) => {
                    recovery(&f.recovery.node, &f.recovery.transport);
                    u.resources.insert(f.resource.clone());
                }
                Step::FaultInjectUartNoise(f) => {
                    recovery(&f.recovery.node, &f.recovery.transport);
                }
                Step::PowerSet(s) | Step::PowerExpect(s) => {
                    u.resources.insert(s.resource.clone());
                }
                Step::PowerCycle(s) => {
                    u.resources.insert(s.resource.clone());
                }
                Step::Measure(m) => {
                    u.resources.insert(m.resource.clone());
                }
                Step::RunExternal(r) => {
                    u.external_targets.insert(r.target.clone());
                }
                _ => {}
            }
        }
        for node in &u.nodes {
            let Some(n) = bench.nodes.get(node) else {
                continue;
            };
            if !n.gpio.is_empty() {
                u.gpio_nodes.insert(node.clone());
            }
            if let Some(si) = n.dut.as_ref().and_then(|d| d.self_identification.as_ref()) {
                u.transports.insert((node.clone(), si.transport.clone()));
            }
            // hilt extension: an emulated node's board is opened whenever the node is used.
            if let Some(FlashBackend::Qemu { board }) = n.flash.as_ref().map(|f| &f.backend) {
                u.resources.insert(board.clone());
            }
        }
        for (node, name) in &u.transports {
            if let Some(board) = bench
                .nodes
                .get(node)
                .and_then(|n| n.transports.get(name))
                .and_then(|t| t.qemu_board())
            {
                u.resources.insert(board.to_string());
            }
        }
        u
    }
}
