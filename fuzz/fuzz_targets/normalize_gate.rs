//! Fuzz target: arbitrary text through the Gate normalizer must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapedeck::model::Exchange;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = std::str::from_utf8(data) {
        tapedeck::exchange::fuzz_normalize(Exchange::Gate, frame);
    }
});
