//! Built-in strategies and the `--strategy NAME --param k=v` spec that configures them.
//!
//! Strategies implement `engine::Strategy` and trade through its `Context`; they own no IO
//! and read no clock. Each built-in strategy names the detectors it reacts to, so a
//! backtest can add them to the engine and the strategy can pick out their signals by
//! detector name and canonical params.

pub mod volume_breakout;
pub mod wave_follow;

use crate::detect::{Args, DetectorSpec};
use crate::engine::Strategy;

/// Names of the built-in strategies, for help texts and errors.
pub const NAMES: &[&str] = &["wave-follow", "volume-breakout"];

/// A bad `--strategy`/`--param`, phrased to name the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategyError {
    #[error("--strategy {0}: unknown strategy (expected wave-follow or volume-breakout)")]
    Unknown(String),
    #[error("--param: {0}")]
    Param(String),
}

/// A built-in strategy with its parameters resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum StrategySpec {
    WaveFollow(wave_follow::Params),
    VolumeBreakout(volume_breakout::Params),
}

impl StrategySpec {
    /// Parses `NAME` with `key=value` parameters (defaults fill the rest).
    ///
    /// # Errors
    /// An unknown name, a malformed or unknown parameter, or an invalid value.
    pub fn parse(name: &str, params: &[String]) -> Result<StrategySpec, StrategyError> {
        let mut args = Args::parse(&params.join(",")).map_err(StrategyError::Param)?;
        let spec = match name {
            "wave-follow" => {
                StrategySpec::WaveFollow(wave_follow::Params::from_args(&mut args).map_err(StrategyError::Param)?)
            }
            "volume-breakout" => StrategySpec::VolumeBreakout(
                volume_breakout::Params::from_args(&mut args).map_err(StrategyError::Param)?,
            ),
            other => return Err(StrategyError::Unknown(other.to_string())),
        };
        args.finish().map_err(StrategyError::Param)?;
        Ok(spec)
    }

    pub fn name(&self) -> &'static str {
        match self {
            StrategySpec::WaveFollow(_) => "wave-follow",
            StrategySpec::VolumeBreakout(_) => "volume-breakout",
        }
    }

    pub fn build(&self) -> Box<dyn Strategy> {
        match self {
            StrategySpec::WaveFollow(p) => Box::new(wave_follow::WaveFollow::new(*p)),
            StrategySpec::VolumeBreakout(p) => Box::new(volume_breakout::VolumeBreakout::new(*p)),
        }
    }

    /// The detectors whose signals this strategy trades on.
    pub fn detectors(&self) -> Vec<DetectorSpec> {
        match self {
            StrategySpec::WaveFollow(p) => vec![DetectorSpec::Waves(p.waves)],
            StrategySpec::VolumeBreakout(p) => vec![DetectorSpec::Volume(p.volume)],
        }
    }

    /// The candle timeframe equity is sampled on (for per-candle returns).
    pub fn timeframe_s(&self) -> u32 {
        match self {
            StrategySpec::WaveFollow(p) => p.waves.timeframe_s,
            StrategySpec::VolumeBreakout(p) => p.volume.timeframe_s,
        }
    }
}

/// `size`: the fraction of equity per entry, in (0, 1].
pub(crate) fn size(args: &mut Args) -> Result<f64, String> {
    let size = args.f64("size", 1.0)?;
    if !(size > 0.0 && size <= 1.0) {
        return Err(format!("size must be in (0, 1] (a fraction of equity), got {size}"));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_flag() {
        let cases: [(&str, &[&str], &str); 6] = [
            ("wave", &[], "--strategy wave: unknown strategy"),
            ("wave-follow", &["size=0"], "--param: size must be in (0, 1]"),
            ("wave-follow", &["amplitude=-1"], "--param: amplitude must be > 0"),
            ("wave-follow", &["hold=3"], "--param: unknown parameter \"hold\""),
            ("volume-breakout", &["hold=0"], "--param: hold must be at least 1"),
            ("volume-breakout", &["stop_pct=-1"], "--param: stop_pct must be >= 0"),
        ];
        for (name, params, prefix) in cases {
            let params: Vec<String> = params.iter().map(|s| s.to_string()).collect();
            let err = StrategySpec::parse(name, &params).unwrap_err().to_string();
            assert!(err.starts_with(prefix), "{name} {params:?}: {err}");
        }
    }

    #[test]
    fn canonical_params() {
        let cases: [(&str, &[&str], &str); 3] = [
            ("wave-follow", &[], "amplitude=0.5,timeframe=1m,ma=1,size=1"),
            (
                "wave-follow",
                &["amplitude=0.05", "timeframe=10s", "size=0.5"],
                "amplitude=0.05,timeframe=10s,ma=1,size=0.5",
            ),
            ("volume-breakout", &[], "timeframe=1m,ma=20,k=3,min_quote=0,hold=5,size=1,stop_pct=1,take_pct=2"),
        ];
        for (name, params, want) in cases {
            let params: Vec<String> = params.iter().map(|s| s.to_string()).collect();
            assert_eq!(StrategySpec::parse(name, &params).unwrap().build().params(), want);
        }
    }
}
