//! The results store: a sled database of runs and their signals, separate from recordings
//! so recordings stay immutable. Each run has a JSON summary; its signals are kept as the
//! exact JSONL lines the signals file gets, in order.

use std::path::Path;

use super::{LogError, Result};

/// A results database.
pub struct ResultsStore {
    db: sled::Db,
    runs: sled::Tree,
    signals: sled::Tree,
}

/// One stored run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRun {
    pub id: u64,
    pub summary: serde_json::Value,
    pub signals: u64,
}

impl ResultsStore {
    /// Opens or creates the store at `dir`.
    ///
    /// # Errors
    /// On storage failure.
    pub fn open(dir: &Path) -> Result<ResultsStore> {
        let db = sled::Config::new().path(dir).cache_capacity(16 << 20).open()?;
        Ok(ResultsStore { runs: db.open_tree("runs")?, signals: db.open_tree("signals")?, db })
    }

    /// Starts a run and returns its id (increasing across runs).
    ///
    /// # Errors
    /// On storage failure.
    pub fn begin_run(&self) -> Result<RunWriter> {
        let id = self.runs.last()?.map_or(1, |(k, _)| super::store::key_seq(&k) + 1);
        self.runs.insert(id.to_be_bytes(), b"{}".as_slice())?;
        Ok(RunWriter { db: self.db.clone(), runs: self.runs.clone(), signals: self.signals.clone(), id, next: 0 })
    }

    /// Every run, oldest first.
    ///
    /// # Errors
    /// On storage failure or an unreadable summary.
    pub fn runs(&self) -> Result<Vec<StoredRun>> {
        let mut out = Vec::new();
        for item in self.runs.iter() {
            let (k, v) = item?;
            let id = super::store::key_seq(&k);
            let summary = serde_json::from_slice(&v).map_err(|e| LogError::CorruptMeta(format!("run {id}: {e}")))?;
            let signals = self.signals.scan_prefix(id.to_be_bytes()).count() as u64;
            out.push(StoredRun { id, summary, signals });
        }
        Ok(out)
    }

    /// The signal lines of run `id`, in order.
    ///
    /// # Errors
    /// On storage failure.
    pub fn signals(&self, id: u64) -> Result<Vec<String>> {
        self.signals
            .scan_prefix(id.to_be_bytes())
            .values()
            .map(|v| Ok(String::from_utf8_lossy(&v?).into_owned()))
            .collect()
    }
}

/// Appends one run's signals.
pub struct RunWriter {
    db: sled::Db,
    runs: sled::Tree,
    signals: sled::Tree,
    pub id: u64,
    next: u64,
}

impl RunWriter {
    /// # Errors
    /// On storage failure.
    pub fn signal(&mut self, line: &str) -> Result<()> {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&self.id.to_be_bytes());
        key[8..].copy_from_slice(&self.next.to_be_bytes());
        self.next += 1;
        self.signals.insert(key, line.trim_end().as_bytes())?;
        Ok(())
    }

    /// Stores the run's summary and makes everything durable.
    ///
    /// # Errors
    /// On storage failure.
    pub fn finish(self, summary: &serde_json::Value) -> Result<()> {
        let json = serde_json::to_vec(summary).map_err(|e| LogError::Encode(e.to_string()))?;
        self.runs.insert(self.id.to_be_bytes(), json)?;
        self.db.flush()?;
        Ok(())
    }
}
