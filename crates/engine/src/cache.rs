//! Cache: an input's standardised records kept between jobs (the input's `cache` location in the
//! spec), so that a reference database that many jobs link against (the population register,
//! against the civil servants this month, the insurance records the next) is scanned and
//! standardised once, not by every job.
//!
//! A `standardise` task of a cached input looks up its piece (a file, or a run of row groups of one)
//! by a fingerprint of everything its standardised records depend on: the khop build, the file (path,
//! size, modification time or object version), the row groups, the input's id column and column
//! mapping, the spec's fields and standardisers, and the blocking rules' keys. A hit replays the
//! records, rejects and counts that scanning and standardising gave; a miss scans as usual and writes
//! an entry beside its work. Nothing else is cached: what follows standardisation (duplicate ids,
//! records without a blocking key, pruning by the other side, the sample, term frequencies) runs on
//! the replayed records as it does on scanned ones. A changed file, spec or build misses and writes a
//! new entry; entries are never read again once stale, and may be deleted at any time.
//!
//! Layout: `<cache>/<16 hex digits of the fingerprint's hash>/meta.json` and the Arrow IPC file of
//! records it names, one record batch per chunk of [`crate::standardise::standardise_input`].
//!
//! **Invariant:** an entry is read only when its `meta.json` holds the task's fingerprint text in full
//! (a hash collision misses), and `meta.json` is written only after the records file it names is
//! complete under a name no other writer uses: an entry is whole or absent, however many tasks and
//! jobs write it at once. So a job's results are the same with a hit, a miss, or no cache. A cache
//! that cannot be read or written costs the job its speed-up, never its results: the task logs a
//! warning and standardises from the input.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::exchange::table_schema;
use crate::scan::Piece;
use crate::spec::{Input, JobSpec};
use crate::standardise::Reject;
use crate::storage::{self, Object, ScratchFiles};

/// Changes whenever what an entry holds, or how it is laid out, changes.
const FORMAT: u32 = 1;

/// What one scanned batch of the input gave: the lines it took, those that could not be read as
/// records, and its chunks (each one record batch of the entry's records file, in order).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CachedBatch {
    pub lines: u64,
    pub bad: Vec<Reject>,
    pub chunks: Vec<CachedChunk>,
}

/// What standardising one chunk gave besides its records: records without an id, and per field the
/// values present but not understood.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CachedChunk {
    pub rejects: Vec<Reject>,
    pub invalid: Vec<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    fingerprint: String,
    /// The records file, in the entry's directory.
    records: String,
    batches: Vec<CachedBatch>,
}

/// One piece's place in an input's cache.
pub(crate) struct Entry {
    files: ScratchFiles,
    /// The entry's directory, relative to the cache location.
    dir: PathBuf,
    fingerprint: String,
    schema: SchemaRef,
}

/// A hit: the batches of what scanning gave, and the chunks of records of each, in order.
pub(crate) struct Hit {
    pub batches: Vec<CachedBatch>,
    pub chunks: Vec<RecordBatch>,
}

impl Entry {
    /// The entry of `file` (or its `piece`) of `input`; `None` when the input has no cache, or when
    /// the piece's version or this build cannot be told (a warning says why: the task standardises
    /// from the input without a cache).
    pub(crate) fn of(
        spec: &JobSpec,
        input: &Input,
        file: &str,
        piece: Option<&Piece>,
    ) -> Option<Entry> {
        let location = input.cache.as_deref()?;
        let entry = || -> Result<Entry, EngineError> {
            let fingerprint = fingerprint(spec, input, file, piece)?;
            let files = if storage::is_url(location) {
                ScratchFiles::Objects(Object::at(location)?)
            } else {
                ScratchFiles::Dir(PathBuf::from(location))
            };
            Ok(Entry {
                files,
                dir: PathBuf::from(format!("{:016x}", crate::hash::hash_str(&fingerprint))),
                fingerprint,
                schema: table_schema(spec, input),
            })
        };
        entry()
            .inspect_err(
                |e| tracing::warn!(input = %input.name, error = %e, "input cache not used"),
            )
            .ok()
    }

    /// The cached piece, or `None` (a miss: no entry, a stale one, or one that cannot be read).
    pub(crate) fn read(&self) -> Option<Hit> {
        let meta = match self.files.read_to_string(&self.dir.join("meta.json")) {
            Ok(text) => text,
            // Not there: the usual miss, nothing to say.
            Err(_) => return None,
        };
        let hit = || -> Result<Option<Hit>, EngineError> {
            let meta: Meta = serde_json::from_str(&meta)
                .map_err(|e| EngineError::Other(format!("meta.json: {e}")))?;
            if meta.fingerprint != self.fingerprint {
                return Ok(None);
            }
            // Every chunk read and checked before the first is replayed: an entry found damaged
            // halfway could not be given up for the input any more.
            let key = self.dir.join(&meta.records);
            let count: usize = meta.batches.iter().map(|b| b.chunks.len()).sum();
            let records = self.files.ipc(&key)?.batches();
            if records != count {
                return Err(EngineError::Other(format!(
                    "{}: {records} record batches where meta.json lists {count} chunks",
                    meta.records,
                )));
            }
            // Each thread opens the file for itself, so that chunks are read, checked and decoded in
            // parallel.
            let chunks = (0..count)
                .into_par_iter()
                .map(|i| {
                    let chunk = self.files.ipc(&key)?.batch(i)?;
                    if chunk.schema() != self.schema {
                        return Err(EngineError::Other(format!(
                            "{}: chunk {i} is not of the records' schema",
                            meta.records
                        )));
                    }
                    Ok(chunk)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(Hit {
                batches: meta.batches,
                chunks,
            }))
        };
        hit()
            .inspect_err(|e| {
                tracing::warn!(entry = %self.dir.display(), error = %e, "input cache entry not read")
            })
            .ok()
            .flatten()
    }

    /// Starts writing the entry: its records file is written by a thread of its own as chunks come.
    pub(crate) fn writer(&self) -> Writer {
        let records = format!("records-{:016x}.arrow", unique());
        let (sender, receiver) = std::sync::mpsc::sync_channel(4);
        let (files, key, schema) = (
            self.files.clone(),
            self.dir.join(&records),
            self.schema.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("khop-cache".into())
            .spawn(move || write_records(&files, &key, &schema, receiver));
        Writer {
            entry: Entry {
                files: self.files.clone(),
                dir: self.dir.clone(),
                fingerprint: self.fingerprint.clone(),
                schema: self.schema.clone(),
            },
            records,
            batches: Vec::new(),
            sender: Some(sender),
            thread: thread.map_err(|e| EngineError::Other(e.to_string())),
        }
    }

    /// The table schema of the entry's records.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

fn write_records(
    files: &ScratchFiles,
    key: &Path,
    schema: &SchemaRef,
    chunks: Receiver<Result<RecordBatch, EngineError>>,
) -> Result<(), EngineError> {
    files.write_ipc(key, schema, chunks)
}

/// An entry being written ([`Entry::writer`]); dropped without [`Writer::finish`], it writes nothing
/// that will be read.
pub(crate) struct Writer {
    entry: Entry,
    records: String,
    batches: Vec<CachedBatch>,
    sender: Option<SyncSender<Result<RecordBatch, EngineError>>>,
    thread: Result<std::thread::JoinHandle<Result<(), EngineError>>, EngineError>,
}

impl Writer {
    /// Adds a scanned batch: its chunks' record batches are queued for the records file.
    pub(crate) fn push(&mut self, batch: CachedBatch, chunks: Vec<RecordBatch>) {
        debug_assert_eq!(batch.chunks.len(), chunks.len());
        self.batches.push(batch);
        if let Some(sender) = &self.sender {
            for chunk in chunks {
                if sender.send(Ok(chunk)).is_err() {
                    // The writing thread stopped on an error: `finish` reports it.
                    self.sender = None;
                    break;
                }
            }
        }
    }

    /// Completes the records file, then writes `meta.json`; a failure is logged, not returned (the
    /// task has its results either way).
    pub(crate) fn finish(mut self) {
        drop(self.sender.take());
        let thread = std::mem::replace(&mut self.thread, Err(EngineError::Other(String::new())));
        let written = thread.and_then(|t| {
            t.join()
                .unwrap_or_else(|_| Err(EngineError::Other("the writing thread panicked".into())))
        });
        let meta = Meta {
            fingerprint: std::mem::take(&mut self.entry.fingerprint),
            records: std::mem::take(&mut self.records),
            batches: std::mem::take(&mut self.batches),
        };
        let result = written.and_then(|()| {
            self.entry
                .files
                .write_json(&self.entry.dir.join("meta.json"), &meta)
        });
        if let Err(e) = result {
            tracing::warn!(entry = %self.entry.dir.display(), error = %e, "input cache entry not written");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Not finished (the task failed): the records file is abandoned before it is complete.
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Err(EngineError::Other("abandoned".into())));
        }
    }
}

/// A number no other writer of an entry uses: this process, the time, and a count.
fn unique() -> u64 {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    crate::hash::mix64(nanos ^ crate::hash::mix64(u64::from(std::process::id()) << 32 | count))
}

/// Everything the standardised records of `file` (or its `piece`) of `input` depend on, as text.
fn fingerprint(
    spec: &JobSpec,
    input: &Input,
    file: &str,
    piece: Option<&Piece>,
) -> Result<String, EngineError> {
    let mut f = String::new();
    let _ = writeln!(f, "khop standardised records, cache format {FORMAT}");
    let _ = writeln!(f, "build {}", build()?);
    let _ = writeln!(f, "file {file} {}", version(file)?);
    let _ = match piece {
        Some(p) => writeln!(
            f,
            "row groups {} to {}",
            p.first_group,
            p.first_group + p.groups
        ),
        None => writeln!(f, "the whole file"),
    };
    let _ = writeln!(f, "format {:?}, id column {:?}", input.format, input.id);
    for (field, standardiser) in &spec.fields {
        let columns = input.columns.get(field).map(|c| c.names());
        let _ = writeln!(f, "field {field:?} {standardiser:?} from {columns:?}");
    }
    for rule in &spec.blocking {
        let _ = writeln!(f, "rule keys {:?}", rule.keys);
    }
    Ok(f)
}

/// This build of khop: its version and its executable's size and modification time, so that a
/// rebuilt binary (whose standardisation may differ) never reads an older build's entries.
fn build() -> Result<&'static str, EngineError> {
    static BUILD: OnceLock<Result<String, String>> = OnceLock::new();
    BUILD
        .get_or_init(|| {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let meta = std::fs::metadata(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
            Ok(format!(
                "{} {} bytes modified {}",
                env!("CARGO_PKG_VERSION"),
                meta.len(),
                nanos(meta.modified().ok())
            ))
        })
        .as_deref()
        .map_err(|e| EngineError::Other(format!("this build cannot be told: {e}")))
}

/// The version of an input file: its size and modification time (an object's, with its entity tag).
fn version(file: &str) -> Result<String, EngineError> {
    if storage::is_url(file) {
        return Object::at(file)?.version();
    }
    let meta = std::fs::metadata(file).map_err(|e| EngineError::Other(format!("{file}: {e}")))?;
    Ok(format!(
        "{} bytes modified {}",
        meta.len(),
        nanos(meta.modified().ok())
    ))
}

fn nanos(time: Option<std::time::SystemTime>) -> u128 {
    time.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path) -> JobSpec {
        let text = format!(
            r#"
mode = "dedupe"
output = "out"
[[inputs]]
name = "people"
path = "people.csv"
format = "csv"
id = "id"
cache = "{}"
[inputs.columns]
name = "name"
dob = "dob"
[fields]
name = "vn_name"
dob = "date"
[[blocking]]
name = "dob"
keys = ["dob"]
[[comparisons]]
name = "name"
field = "name.given"
levels = [{{ kind = "exact" }}]
[thresholds]
match = 0.9
review = 0.5
"#,
            dir.join("cache").display()
        );
        JobSpec::from_toml(&text, dir).unwrap()
    }

    #[test]
    fn the_fingerprint_changes_with_the_file_the_spec_and_the_piece() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("people.csv");
        std::fs::write(&file, "id,name,dob\n1,Nguyễn Văn An,1990-01-02\n").unwrap();
        let file = file.to_string_lossy().into_owned();
        let spec = spec(dir.path());
        let print = |spec: &JobSpec, piece: Option<&Piece>| {
            fingerprint(spec, &spec.inputs[0], &file, piece).unwrap()
        };
        let first = print(&spec, None);
        assert_eq!(first, print(&spec, None), "the same piece, the same print");

        let mut other_rule = spec.clone();
        other_rule.blocking[0].keys = vec!["name.surname_key".into()];
        let mut other_column = spec.clone();
        other_column.inputs[0].id = "record_id".into();
        let piece = Piece {
            first_group: 2,
            groups: 3,
            first_row: 0,
            rows: 10,
            input_rows: 100,
        };
        for (changed, print) in [
            ("blocking keys", print(&other_rule, None)),
            ("id column", print(&other_column, None)),
            ("row groups", print(&spec, Some(&piece))),
        ] {
            assert_ne!(first, print, "{changed}");
        }
        // Comparisons and thresholds do not change standardised records.
        let mut other_threshold = spec.clone();
        other_threshold.thresholds.match_ = 0.99;
        assert_eq!(first, print(&other_threshold, None));

        std::fs::write(&file, "id,name,dob\n1,Nguyễn Văn An,1990-01-03\n2,B,1990\n").unwrap();
        assert_ne!(first, print(&spec, None), "the file changed");
    }

    #[test]
    fn an_entry_is_read_only_once_complete_and_only_for_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("people.csv");
        std::fs::write(&file, "id,name,dob\n1,Nguyễn Văn An,1990-01-02\n").unwrap();
        let spec = spec(dir.path());
        let input = &spec.inputs[0];
        let entry = Entry::of(&spec, input, &file.to_string_lossy(), None).unwrap();
        assert!(entry.read().is_none(), "empty cache");

        let table = crate::standardise::Plan::new(&spec, input).empty_table();
        let batch = crate::exchange::table_to_batch(entry.schema(), table).unwrap();
        let cached = CachedBatch {
            lines: 1,
            bad: vec![],
            chunks: vec![CachedChunk {
                rejects: vec![],
                invalid: vec![0, 1],
            }],
        };
        // Abandoned before it is finished: nothing to read.
        let mut abandoned = entry.writer();
        abandoned.push(cached.clone(), vec![batch.clone()]);
        drop(abandoned);
        assert!(entry.read().is_none(), "an abandoned entry is read");

        let mut writer = entry.writer();
        writer.push(cached.clone(), vec![batch]);
        writer.finish();
        let hit = entry.read().expect("a finished entry");
        assert_eq!(hit.batches, vec![cached]);
        assert_eq!(hit.chunks.len(), 1);
        assert_eq!(hit.chunks[0].num_rows(), 0);

        // Another fingerprint with the same hash (a collision) reads nothing.
        let other = Entry {
            fingerprint: format!("{} and more", entry.fingerprint),
            ..Entry::of(&spec, input, &file.to_string_lossy(), None).unwrap()
        };
        assert!(other.read().is_none());
        // A damaged meta.json is a miss, not an error.
        let meta = dir.path().join("cache").join(&entry.dir).join("meta.json");
        std::fs::write(&meta, "{").unwrap();
        assert!(entry.read().is_none());
    }
}
