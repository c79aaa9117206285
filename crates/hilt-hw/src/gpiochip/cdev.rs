//! The kernel side of [`super::LocalChip`]: the GPIO character device uAPI v2 through the
//! `gpiocdev` crate (sync API). Kept to plain calls; the logic around them is in
//! `local.rs`, tested with a fake.

use std::path::Path;

use gpiocdev::line::{Bias as CBias, EdgeDetection, EdgeKind, Value};
use hilt_model::bench::{Bias, Direction, Edge};

use super::local::{Cdev, CdevError, CdevEvent, CdevRequest};
use super::{LineRequest, Transition};

/// EBUSY as `std::io::Error` prints it.
const EBUSY: &str = "(os error 16)";

pub(crate) struct Gpiocdev;

fn error(e: gpiocdev::Error) -> CdevError {
    let text = e.to_string();
    if text.contains(EBUSY) {
        CdevError::Busy
    } else {
        CdevError::Other(text)
    }
}

fn chip(path: &str) -> Result<gpiocdev::chip::Chip, CdevError> {
    if !Path::new(path).exists() {
        return Err(CdevError::NoChip);
    }
    gpiocdev::chip::Chip::from_path(path).map_err(error)
}

impl Cdev for Gpiocdev {
    fn num_lines(&self, path: &str) -> Result<u32, CdevError> {
        Ok(chip(path)?.info().map_err(error)?.num_lines)
    }

    fn holder(&self, path: &str, line: u32) -> Result<Option<String>, CdevError> {
        let info = chip(path)?.line_info(line).map_err(error)?;
        Ok(info.used.then_some(info.consumer))
    }

    fn request(
        &self,
        path: &str,
        lines: &[LineRequest],
        consumer: &str,
    ) -> Result<Box<dyn CdevRequest>, CdevError> {
        if !Path::new(path).exists() {
            return Err(CdevError::NoChip);
        }
        let mut b = gpiocdev::Request::builder();
        b.on_chip(path).with_consumer(consumer);
        for r in lines {
            b.with_line(r.line);
            match r.direction {
                Direction::Output => {
                    b.as_output(Value::Inactive);
                }
                Direction::Input => {
                    b.as_input();
                    if let Some(edge) = r.edge {
                        b.with_edge_detection(match edge {
                            Edge::Rising => EdgeDetection::RisingEdge,
                            Edge::Falling => EdgeDetection::FallingEdge,
                            Edge::Both => EdgeDetection::BothEdges,
                        });
                    }
                }
            }
            if let Some(bias) = r.bias {
                b.with_bias(match bias {
                    Bias::Disabled => CBias::Disabled,
                    Bias::PullUp => CBias::PullUp,
                    Bias::PullDown => CBias::PullDown,
                });
            }
        }
        Ok(Box::new(Lines(b.request().map_err(error)?)))
    }
}

struct Lines(gpiocdev::Request);

impl CdevRequest for Lines {
    fn set(&mut self, line: u32, level: bool) -> Result<(), CdevError> {
        let v = if level {
            Value::Active
        } else {
            Value::Inactive
        };
        self.0.set_value(line, v).map_err(error)
    }

    fn get(&mut self, line: u32) -> Result<bool, CdevError> {
        Ok(self.0.value(line).map_err(error)? == Value::Active)
    }

    fn next_event(&mut self) -> Result<Option<CdevEvent>, CdevError> {
        if !self.0.has_edge_event().map_err(error)? {
            return Ok(None);
        }
        let e = self.0.read_edge_event().map_err(error)?;
        Ok(Some(CdevEvent {
            line: e.offset,
            transition: match e.kind {
                EdgeKind::Rising => Transition::Rising,
                EdgeKind::Falling => Transition::Falling,
            },
            timestamp_ns: e.timestamp_ns,
        }))
    }
}
