//! The SPI step family: `spi_transfer` (full duplex, `expect` optional) and `spi_expect`
//! (`expect` required). The received bytes must equal `expect` byte for byte. Every
//! transfer goes to the transport log as BenchCI writes it (`transfer tx=9F 00 rx=FF EF`);
//! failures are classified by [`classify::spi_failure`](crate::classify::spi_failure).

use std::time::Instant;

use hilt_hw::spi::{self, hex};
use hilt_model::run::{Category, Failure};
use hilt_model::suite::SpiTransfer;
use hilt_model::validate::parse_hex_bytes;

use super::{Exec, StepError, StepResult};
use crate::classify::{BusOutcome, spi_failure};
use crate::data;

impl Exec<'_> {
    pub(super) fn spi(&mut self, s: &SpiTransfer) -> StepResult {
        // Validation parsed both strings already; a failure here is a configuration error.
        let parse = |field: &str, text: &str| {
            parse_hex_bytes(text).map_err(|e| {
                StepError::Run(Failure::new(
                    Category::ConfigError,
                    format!("spi `{field}` {text:?}: {e}"),
                ))
            })
        };
        let tx = parse("data", &s.data)?;
        let expect = match &s.expect {
            Some(e) => Some(parse("expect", e)?),
            None => None,
        };
        let d = self
            .session
            .spi
            .get_mut(&(s.node.clone(), s.transport.clone()))
            .ok_or_else(|| {
                StepError::Run(Failure::new(
                    Category::TransportOpenFailed,
                    format!("SPI transport {}.{} is not open", s.node, s.transport),
                ))
            })?;
        let what = format!(
            "SPI transfer of {} bytes on {}.{}",
            tx.len(),
            s.node,
            s.transport
        );
        let detail = |f: Failure, log_path: &str| {
            f.with_artifact("transport_log", log_path.to_string())
                .with_detail("node", s.node.clone())
                .with_detail("transport", s.transport.clone())
                .with_detail("tx", hex(&tx))
        };
        if let Some(e) = &expect
            && e.len() != tx.len()
        {
            // A full-duplex transfer receives exactly as many bytes as it sends.
            return Err(StepError::Run(detail(
                Failure::new(
                    Category::ConfigError,
                    format!(
                        "{what}: `expect` has {} bytes but a transfer of {} bytes receives {}",
                        e.len(),
                        tx.len(),
                        tx.len()
                    ),
                ),
                &d.log_path,
            )));
        }
        let started = Instant::now();
        let rx = match spi::transfer(d.dev.as_mut(), &d.cfg, &tx) {
            Ok(rx) => rx,
            Err(e) => {
                d.log.line(&format!("ERROR transfer tx={}: {e}", hex(&tx)));
                d.log.flush();
                return Err(match spi_failure(&e, &what) {
                    BusOutcome::Test(f) => StepError::Test(detail(f, &d.log_path)),
                    BusOutcome::Run(f) => StepError::Run(detail(f, &d.log_path)),
                });
            }
        };
        d.log.line(&format!(
            "transfer tx={} rx={} in {:.1} ms",
            hex(&tx),
            hex(&rx),
            started.elapsed().as_secs_f64() * 1000.0
        ));
        let out = data!("node_name" => s.node, "transport_name" => s.transport,
            "tx" => tx.clone(), "rx" => rx.clone());
        if let Some(want) = expect
            && want != rx
        {
            d.log.line(&format!(
                "MISMATCH expected={} got={}",
                hex(&want),
                hex(&rx)
            ));
            d.log.flush();
            return Err(StepError::Test(
                detail(
                    Failure::new(
                        Category::SpiExpectationFailed,
                        format!(
                            "SPI response mismatch: expected {}, got {} ({what})",
                            hex(&want),
                            hex(&rx)
                        ),
                    ),
                    &d.log_path,
                )
                .with_detail("expected", hex(&want))
                .with_detail("received", hex(&rx)),
            ));
        }
        Ok(out)
    }
}
