//! send_uart and expect_uart.

use hilt_model::run::{Category, Failure, Source, checks};
use hilt_model::suite::{ExpectScope, ExpectUart, SendUart};

use super::{Exec, StepError, StepResult};
use crate::data;
use crate::plan::Resolved;
use crate::uart::{ExpectMiss, Uart};

impl Exec<'_> {
    fn uart(&mut self, node: &str, transport: &str) -> Result<&mut Uart, StepError> {
        self.session
            .uarts
            .get_mut(&(node.to_string(), transport.to_string()))
            .ok_or_else(|| {
                StepError::Run(Failure::new(
                    Category::ConfigError,
                    format!("transport {node}.{transport} is not open (is it a uart transport?)"),
                ))
            })
    }

    pub(super) fn send_uart(&mut self, s: &SendUart) -> StepResult {
        let u = self.uart(&s.node, &s.transport)?;
        u.send(s.data.as_bytes()).map_err(|e| {
            StepError::Run(
                Failure::new(
                    Category::UartFailed,
                    format!("UART write on {}.{} failed: {e}", s.node, s.transport),
                )
                .with_artifact("transport_log", u.log_path()),
            )
        })?;
        Ok(data!("node_name" => s.node, "transport_name" => s.transport, "bytes" => s.data.len()))
    }

    pub(super) fn expect_uart(&mut self, s: &ExpectUart, r: &Resolved) -> StepResult {
        let within = r.within;
        let cancel = self.cancel.clone();
        let Some((matcher, rule)) = &r.matcher else {
            return Err(StepError::Run(Failure::new(
                Category::ConfigError,
                "expect_uart needs `contains` or `regex`",
            )));
        };
        let rule = rule.clone();
        let since_mark = s.scope == Some(ExpectScope::SinceMark);
        let u = self.uart(&s.node, &s.transport)?;
        match u.expect(matcher, since_mark, within, &cancel) {
            Ok(found) => Ok(
                data!("node_name" => s.node, "transport_name" => s.transport, "matched" => found),
            ),
            Err(ExpectMiss::Cancelled) => Err(StepError::Cancelled),
            Err(ExpectMiss::Io(e)) => Err(StepError::Run(
                Failure::new(
                    Category::UartFailed,
                    format!("UART on {}.{} failed: {e}", s.node, s.transport),
                )
                .with_artifact("transport_log", u.log_path()),
            )),
            Err(ExpectMiss::Timeout {
                received_total,
                tail,
            }) => {
                let message = format!(
                    "Expectation not met on {}.{}: {rule} within {} ms. Recent transport tail: '{tail}'",
                    s.node,
                    s.transport,
                    within.as_millis()
                );
                let mut f = Failure::new(Category::UartExpectationFailed, message)
                    .with_artifact("transport_log", u.log_path())
                    .with_detail("match_rule", rule)
                    .with_detail("within_ms", within.as_millis() as u64)
                    .with_detail("bytes_received", received_total);
                if received_total == 0 {
                    // Silence since the port opened points at the bench, not the firmware.
                    f = f
                        .with_source(Source::BenchInfrastructure)
                        .with_explanation("Nothing at all was received on this port since the run opened it, so the device is probably not powered, not running, or not wired to this port.")
                        .with_suggestions([checks::DEVICE_POWERED, checks::UART_WIRING]);
                } else {
                    f = f.with_explanation("The device talked on this port, but not the expected text within the time limit: most likely the firmware behaved differently than the test expects.");
                }
                Err(StepError::Test(f))
            }
        }
    }
}
