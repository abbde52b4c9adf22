//! Fuzz target: any bytes, resealed with a valid checksum so the decoder itself is reached,
//! must decode to records or an error, never panic or abort.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    tapedeck::log::fuzz_decode_block(&mut bytes);
});
