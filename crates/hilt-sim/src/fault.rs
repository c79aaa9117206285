//! Faults injected on demand through the control socket.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// The firmware stops answering until reset or power cycle.
    Hang,
    /// Everything the DUT transmits is dropped.
    Silent,
    /// Line noise with this probability per output line.
    Noise(f64),
    /// Undo all faults.
    Clear,
}

impl Fault {
    /// Parses `hang`, `silent`, `noise <p>` or `clear`.
    pub fn parse(spec: &str) -> Result<Fault, String> {
        let words: Vec<&str> = spec.split_whitespace().collect();
        match words.as_slice() {
            ["hang"] => Ok(Fault::Hang),
            ["silent"] => Ok(Fault::Silent),
            ["clear"] => Ok(Fault::Clear),
            ["noise", p] => match p.parse::<f64>() {
                Ok(p) if p.is_finite() && (0.0..=1.0).contains(&p) => Ok(Fault::Noise(p)),
                _ => Err(format!(
                    "noise probability must be a number between 0 and 1, got '{p}'"
                )),
            },
            ["noise"] => Err("usage: fault noise <probability 0..1>".to_string()),
            [] => Err("usage: fault hang|silent|noise <p>|clear".to_string()),
            _ => Err(format!(
                "unknown fault '{}'; known faults: hang, silent, noise <p>, clear",
                spec.trim()
            )),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Hang => f.write_str("hang"),
            Fault::Silent => f.write_str("silent"),
            Fault::Noise(p) => write!(f, "noise {p}"),
            Fault::Clear => f.write_str("clear"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_all() {
        assert_eq!(Fault::parse("hang"), Ok(Fault::Hang));
        assert_eq!(Fault::parse(" silent "), Ok(Fault::Silent));
        assert_eq!(Fault::parse("noise 0.25"), Ok(Fault::Noise(0.25)));
        assert_eq!(Fault::parse("clear"), Ok(Fault::Clear));
        assert!(Fault::parse("noise 2").is_err());
        assert!(Fault::parse("noise nan").is_err());
        assert!(Fault::parse("noise").is_err());
        assert!(Fault::parse("").is_err());
        assert!(
            Fault::parse("melt")
                .unwrap_err()
                .contains("unknown fault 'melt'")
        );
        for f in [Fault::Hang, Fault::Silent, Fault::Noise(0.5), Fault::Clear] {
            assert_eq!(Fault::parse(&f.to_string()), Ok(f));
        }
    }
}
