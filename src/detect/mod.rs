//! Built-in detectors and the `--detect NAME:key=value,...` spec that configures them.
//!
//! Detectors run inside the engine: no IO, no clock, no hash-order output. Indicator
//! arithmetic uses f64 in the order the formulas give (see docs/detectors.md); decimals
//! convert with `Decimal::to_f64`, which rounds exactly like parsing the decimal string.

pub mod volatility;
pub mod volume;
pub mod waves;

use std::collections::BTreeMap;

use crate::engine::Detector;
use crate::model::time::{format_timeframe, parse_timeframe};

/// A bad `--detect` spec, phrased to name the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--detect {detector}: {message}")]
pub struct SpecError {
    pub detector: String,
    pub message: String,
}

/// A parsed `NAME:key=value,...` spec with its defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorSpec {
    Waves(waves::Params),
    Volatility(volatility::Params),
    Volume(volume::Params),
}

impl DetectorSpec {
    pub fn build(&self) -> Box<dyn Detector> {
        match self {
            DetectorSpec::Waves(p) => Box::new(waves::Waves::new(*p)),
            DetectorSpec::Volatility(p) => Box::new(volatility::Volatility::new(*p)),
            DetectorSpec::Volume(p) => Box::new(volume::Volume::new(*p)),
        }
    }
}

impl std::str::FromStr for DetectorSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let (name, rest) = text.split_once(':').unwrap_or((text, ""));
        let err = |message: String| SpecError { detector: name.to_string(), message };
        let mut args = Args::parse(rest).map_err(err)?;
        let spec = match name {
            "waves" => DetectorSpec::Waves(waves::Params::from_args(&mut args).map_err(err)?),
            "volatility" => DetectorSpec::Volatility(volatility::Params::from_args(&mut args).map_err(err)?),
            "volume" => DetectorSpec::Volume(volume::Params::from_args(&mut args).map_err(err)?),
            other => {
                return Err(SpecError {
                    detector: other.to_string(),
                    message: "unknown detector (expected waves, volatility or volume)".into(),
                });
            }
        };
        args.finish().map_err(err)?;
        Ok(spec)
    }
}

/// `key=value` pairs, consumed by name so leftovers can be reported.
pub(crate) struct Args(BTreeMap<String, String>);

impl Args {
    pub(crate) fn parse(text: &str) -> Result<Args, String> {
        let mut map = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("expected key=value, got {part:?}"))?;
            if map.insert(k.trim().to_string(), v.trim().to_string()).is_some() {
                return Err(format!("{} is given twice", k.trim()));
            }
        }
        Ok(Args(map))
    }

    pub(crate) fn f64(&mut self, key: &str, default: f64) -> Result<f64, String> {
        match self.0.remove(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("{key} must be a number, got {v:?}")),
        }
    }

    pub(crate) fn usize(&mut self, key: &str, default: usize) -> Result<usize, String> {
        match self.0.remove(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{key} must be a whole number, got {v:?}")),
        }
    }

    pub(crate) fn timeframe(&mut self, key: &str, default: &str) -> Result<u32, String> {
        let v = self.0.remove(key).unwrap_or_else(|| default.to_string());
        parse_timeframe(&v).map_err(|e| format!("{key}: {e}"))
    }

    pub(crate) fn finish(self) -> Result<(), String> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!("unknown parameter {k:?}")),
        }
    }
}

/// Canonical spelling of a timeframe for `params` strings.
pub(crate) fn tf(seconds: u32) -> String {
    format_timeframe(seconds)
}

/// Per-instrument state, indexed by instrument id (never iterated into output).
pub(crate) fn slot<T: Default>(states: &mut Vec<T>, id: crate::model::InstrumentId) -> &mut T {
    let idx = id.0 as usize;
    if states.len() <= idx {
        states.resize_with(idx + 1, T::default);
    }
    &mut states[idx]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_parameter() {
        let cases = [
            ("waves:amplitude=0", "--detect waves: amplitude must be > 0"),
            ("waves:amplitude=-1", "--detect waves: amplitude must be > 0"),
            ("waves:ma=0", "--detect waves: ma must be at least 1"),
            ("waves:timeframe=7x", "--detect waves: timeframe: invalid timeframe \"7x\""),
            ("volatility:short=50,long=50", "--detect volatility: short must be less than long"),
            ("volatility:short=0", "--detect volatility: short must be at least 1"),
            ("volume:k=0", "--detect volume: k must be > 0"),
            ("volume:ma=0", "--detect volume: ma must be at least 1"),
            ("volume:min_quote=-5", "--detect volume: min_quote must be >= 0"),
            ("waves:amp=1", "--detect waves: unknown parameter \"amp\""),
            ("wave", "--detect wave: unknown detector"),
            ("waves:amplitude", "--detect waves: expected key=value"),
        ];
        for (spec, prefix) in cases {
            let err = spec.parse::<DetectorSpec>().unwrap_err().to_string();
            assert!(err.starts_with(prefix), "{spec}: {err}");
        }
    }

    #[test]
    fn defaults_and_canonical_params() {
        let cases = [
            ("waves", "amplitude=0.5,timeframe=1m,ma=1"),
            ("waves:amplitude=0.05,timeframe=10s", "amplitude=0.05,timeframe=10s,ma=1"),
            ("volatility", "timeframe=1m,short=20,long=120,high=1.5,low=0.67"),
            ("volume:timeframe=10s", "timeframe=10s,ma=20,k=3,min_quote=0"),
        ];
        for (spec, params) in cases {
            assert_eq!(spec.parse::<DetectorSpec>().unwrap().build().params(), params, "{spec}");
        }
    }
}
