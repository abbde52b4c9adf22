//! `wave-follow`: buy when a down wave is confirmed (the price has risen at least
//! `amplitude` off a trough), sell the whole position when an up wave is confirmed.
//!
//! It trades on the signals of its own `waves` detector (same amplitude, timeframe, ma),
//! picked out by detector name and canonical params. No IO, no clock.

use crate::detect::{Args, DetectorSpec, waves};
use crate::engine::{Context, OrderSide, Signal, SignalBody, Size, Strategy};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub waves: waves::Params,
    /// Fraction of equity per entry.
    pub size: f64,
}

impl Params {
    pub(crate) fn from_args(args: &mut Args) -> Result<Params, String> {
        Ok(Params { waves: waves::Params::from_args(args)?, size: super::size(args)? })
    }
}

pub struct WaveFollow {
    params: Params,
    /// The canonical params of the waves detector whose signals this strategy follows.
    waves_params: String,
}

impl WaveFollow {
    pub fn new(params: Params) -> Self {
        WaveFollow { params, waves_params: DetectorSpec::Waves(params.waves).build().params() }
    }
}

impl Strategy for WaveFollow {
    fn name(&self) -> &'static str {
        "wave-follow"
    }

    fn params(&self) -> String {
        format!("{},size={}", self.waves_params, self.params.size)
    }

    fn timeframe_s(&self) -> Option<u32> {
        Some(self.params.waves.timeframe_s)
    }

    fn on_signal(&mut self, ctx: &mut Context, signal: &Signal) {
        if signal.detector != "waves" || signal.params != self.waves_params {
            return;
        }
        let SignalBody::Wave { dir, .. } = &signal.body else { return };
        let instrument = signal.instrument;
        match *dir {
            "down" if ctx.is_flat(instrument) => {
                ctx.market(instrument, OrderSide::Buy, Size::Fraction(self.params.size));
            }
            "up" if ctx.position(instrument) > 0.0
                && !ctx
                    .open_orders()
                    .any(|o| o.request.instrument == instrument && o.request.side == OrderSide::Sell) =>
            {
                ctx.market(instrument, OrderSide::Sell, Size::All);
            }
            _ => {}
        }
    }
}
