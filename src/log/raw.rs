//! Raw frames (`--keep-raw`): every frame exactly as the venue sent it, with its receive
//! time, so a recording can be re-normalized after a parser fix. Stored in blocks in the
//! `raw` tree, checksummed like event blocks. No IO here; `store/` persists the bytes.

use crate::model::{Exchange, Nanos};

/// One frame as received.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct RawFrame {
    pub ts_recv: Nanos,
    pub exchange: Exchange,
    pub text: String,
}

const CFG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::NoLimit,
> = bincode::config::legacy();

/// `crc32 (u32 LE) | count (u32 LE) | bincode frames`.
pub(crate) fn encode(frames: &[RawFrame]) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; 8];
    out[4..8].copy_from_slice(&(frames.len() as u32).to_le_bytes());
    for frame in frames {
        bincode::encode_into_std_write(frame, &mut out, CFG).map_err(|e| e.to_string())?;
    }
    let crc = crc32fast::hash(&out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn verify(bytes: &[u8]) -> Result<u32, String> {
    if bytes.len() < 8 {
        return Err(format!("raw block is {} bytes, shorter than its header", bytes.len()));
    }
    let stored = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&bytes[4..]);
    if stored != computed {
        return Err(format!("raw block checksum mismatch (stored {stored:08x}, computed {computed:08x})"));
    }
    Ok(u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")))
}

/// How many frames a stored raw block holds.
pub(crate) fn count(bytes: &[u8]) -> Result<u32, String> {
    verify(bytes)
}

/// Decodes a stored raw block.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<RawFrame>, String> {
    let n = verify(bytes)?;
    let mut rest = &bytes[8..];
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (frame, used): (RawFrame, usize) = bincode::decode_from_slice(rest, CFG).map_err(|e| e.to_string())?;
        rest = &rest[used..];
        out.push(frame);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let frames: Vec<RawFrame> =
            (0..5).map(|i| RawFrame { ts_recv: i, exchange: Exchange::Gate, text: format!("{{\"n\":{i}}}") }).collect();
        let mut bytes = encode(&frames).unwrap();
        assert_eq!(decode(&bytes).unwrap(), frames);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(decode(&bytes).unwrap_err().contains("checksum mismatch"));
    }
}
