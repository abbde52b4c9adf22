//! Copying a recording between locations (sled directory ↔ JetStream stream), record for
//! record. Uses only [`Reader`] and [`Writer`], so it works for any pair of backends, and
//! stops at the first block it cannot verify rather than copying around it (`repair` is the
//! tool that skips damage, and says so).

use super::{LogError, Reader, Result, Writer, WriterConfig};

/// What a copy moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    pub records: u64,
    pub symbols: usize,
}

/// Copies every record of `from` into a new recording at `to`, with the same seqs, symbols
/// and metadata (plus this command line). `progress` is called with the records copied so far.
///
/// # Errors
/// When `from` cannot be read or has a corrupt block, or `to` already holds records or
/// cannot be written.
pub fn copy(
    from: &std::path::Path,
    to: &std::path::Path,
    config: WriterConfig,
    mut progress: impl FnMut(u64),
) -> Result<CopyReport> {
    if !super::is_remote(to) && to.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(LogError::CorruptMeta(format!("{} is not empty; copy writes a new recording", to.display())));
    }
    let reader = Reader::open(from)?;
    let mut meta = reader.meta().clone();
    meta.command_lines.push(std::env::args().collect());
    meta.notes.insert("copy.from".into(), reader.location());
    let mut writer = Writer::open(to, meta, config)?;
    if writer.next_seq() > 0 || !writer.symbols().is_empty() {
        return Err(LogError::CorruptMeta(format!(
            "{} already holds a recording ({} records); copy writes a new one",
            to.display(),
            writer.next_seq()
        )));
    }
    for (id, instrument) in reader.symbols().iter() {
        let assigned = writer.intern(instrument)?;
        if assigned != id {
            return Err(LogError::CorruptMeta(format!("symbol {} was interned as {}", id.0, assigned.0)));
        }
    }
    let mut records = 0u64;
    for block in reader.prefetch_from(0) {
        for record in block?.records {
            let seq = record.seq;
            let assigned = writer.append(record)?;
            debug_assert_eq!(seq, assigned);
            records += 1;
        }
        progress(records);
    }
    writer.close()?;
    Ok(CopyReport { records, symbols: reader.symbols().len() })
}
