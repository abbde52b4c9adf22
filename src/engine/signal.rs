//! Signals: what detectors and strategies report, and their one JSON rendering.
//!
//! Every signal line has `seq` (the record that caused it), `ts` (that record's
//! `ts_exchange`, ns), `exchange`, `symbol` (canonical BASE/QUOTE), `detector`, `params`,
//! then the detector's own fields in a fixed order. The rendering is the single place
//! signal JSON is made, so files, digests and alerts agree byte for byte.

use serde::Serialize;

use crate::model::{Exchange, InstrumentId, Nanos, SymbolTable};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    pub seq: u64,
    pub ts: Nanos,
    pub exchange: Exchange,
    pub instrument: InstrumentId,
    /// The detector's name: `waves`, `volatility`, `volume`, or a strategy's.
    pub detector: &'static str,
    /// The detector's parameters in canonical spelling, to tell two instances apart.
    pub params: String,
    pub body: SignalBody,
}

/// Each detector's own fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SignalBody {
    Wave {
        dir: &'static str,
        start_ts: Nanos,
        start_price: f64,
        end_ts: Nanos,
        end_price: f64,
        change_pct: f64,
    },
    Volatility {
        regime: &'static str,
        ratio: f64,
        sigma_short: f64,
        sigma_long: f64,
        bucket_start: Nanos,
    },
    Volume {
        bucket_start: Nanos,
        volume: f64,
        baseline: f64,
        ratio: f64,
        quote_volume: f64,
    },
    /// Free-form fields from user strategies, in insertion order.
    Custom(serde_json::Map<String, serde_json::Value>),
}

impl Signal {
    /// The JSON line (without newline) for this signal.
    pub fn to_json(&self, symbols: &SymbolTable) -> String {
        let mut row = serde_json::Map::new();
        row.insert("seq".into(), self.seq.into());
        row.insert("ts".into(), self.ts.into());
        row.insert("exchange".into(), self.exchange.as_str().into());
        row.insert(
            "symbol".into(),
            symbols.get(self.instrument).map_or(serde_json::Value::Null, |i| i.symbol.as_str().into()),
        );
        row.insert("detector".into(), self.detector.into());
        row.insert("params".into(), self.params.as_str().into());
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&self.body) {
            row.extend(fields);
        }
        serde_json::Value::Object(row).to_string()
    }
}
