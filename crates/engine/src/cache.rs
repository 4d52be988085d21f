//! Cache: an input's standardised records kept between jobs (the input's `cache` location in the
//! spec), so that a reference database that many jobs link against (the population register,
//! against the civil servants this month, the insurance records the next) is scanned and
//! standardised once, not by every job.
//!
//! A `standardise` task of a cached input looks up its piece (a file, or a run of row groups of one)
//! by a fingerprint of everything its standardised records depend on: the khop build, the file (path,
//! size, modification time or object version), the row groups, the input's id column, column
//! mapping, CSV options and conventions, the spec's fields, standardisers and date rules, and the
//! blocking rules' keys. A hit replays the
//! records, rejects and counts that scanning and standardising gave; a miss scans as usual and writes
//! an entry beside its work. Nothing else is cached: what follows standardisation (duplicate ids,
//! records without a blocking key, pruning by the other side, the sample, term frequencies) runs on
//! the replayed records as it does on scanned ones. A changed file or build misses and writes a new
//! entry, which replaces the stale ones (below); a changed spec writes an entry beside the others,
//! for the jobs of each spec. Entries may be deleted at any time.
//!
//! Layout: `<cache>/<slot>/<generation>-<piece>/meta.json` and the Arrow IPC file of records it
//! names, one record batch per chunk of [`crate::standardise::standardise_input`]. Each part is 16
//! hex digits of a hash: the slot, of what the entry is of (the file's path, the input's columns,
//! the fields and the blocking keys); the generation, of the khop build and the file's version; the
//! piece, of its row groups. Once a task has written its entry, it deletes the other generations of
//! its slot: they are of an older file or build, whose entries would never be read again (a cache
//! would otherwise grow by the size of the input at every rebuild or change of the file).
//!
//! **Invariant:** an entry is read only when its `meta.json` holds the task's fingerprint text in full
//! (a hash collision misses), and `meta.json` is written only after the records file it names is
//! complete under a name no other writer uses: an entry is whole or absent, however many tasks and
//! jobs write it at once. So a job's results are the same with a hit, a miss, or no cache. A cache
//! that cannot be read or written costs the job its speed-up, never its results: the task logs a
//! warning and standardises from the input.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::mpsc::SyncSender;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::exchange::table_schema;
use crate::scan::Piece;
use crate::spec::{Input, JobSpec};
use crate::standardise::{FieldReport, Reject};
use crate::storage::{self, Object, ScratchFiles};

/// Changes whenever what an entry holds, or how it is laid out, changes. Entries of format 1 lay
/// directly under the cache location (`<cache>/<hash>/meta.json`); they are never read, and may be
/// deleted.
const FORMAT: u32 = 3;

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
    pub reports: Vec<FieldReport>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    fingerprint: String,
    /// The records file, in the entry's directory.
    records: String,
    batches: Vec<CachedBatch>,
}

/// One piece's place in an input's cache.
#[derive(Clone)]
pub(crate) struct Entry {
    files: ScratchFiles,
    /// The entry's slot and its directory in it (`<generation>-<piece>`), relative to the cache
    /// location; `generation` is the directory name's first part.
    slot: PathBuf,
    generation: String,
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
            let print = fingerprint(spec, input, file, piece)?;
            let files = if storage::is_url(location) {
                ScratchFiles::Objects(Object::at(location)?)
            } else {
                ScratchFiles::Dir(PathBuf::from(location))
            };
            let slot = PathBuf::from(hex(&print.slot));
            let generation = hex(&print.generation);
            Ok(Entry {
                files,
                dir: slot.join(format!("{generation}-{}", hex(&print.piece))),
                slot,
                generation,
                fingerprint: print.text(),
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
            .spawn(move || files.write_ipc(&key, &schema, receiver));
        Writer {
            entry: self.clone(),
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

    /// Deletes the entries of this entry's slot from other generations (older files or builds). A
    /// failure is logged: it leaves stale entries, which are never read.
    fn remove_other_generations(&self) {
        let remove = || -> Result<usize, EngineError> {
            let mut removed = 0;
            for name in self.files.subdirs(&self.slot)? {
                if name.split_once('-').map(|g| g.0) != Some(self.generation.as_str()) {
                    self.files.remove_dir(&self.slot.join(&name))?;
                    removed += 1;
                }
            }
            Ok(removed)
        };
        match remove() {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(slot = %self.slot.display(), removed, "stale input cache entries removed")
            }
            Err(e) => {
                tracing::warn!(slot = %self.slot.display(), error = %e, "stale input cache entries not removed")
            }
        }
    }
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
    /// The table schema of the entry's records.
    pub(crate) fn schema(&self) -> &SchemaRef {
        self.entry.schema()
    }

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
        match result {
            Ok(()) => self.entry.remove_other_generations(),
            Err(e) => {
                tracing::warn!(entry = %self.entry.dir.display(), error = %e, "input cache entry not written")
            }
        }
    }
}

/// 16 hex digits of a text's hash: a part of an entry's path.
fn hex(text: &str) -> String {
    format!("{:016x}", crate::hash::hash_str(text))
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

/// Everything the standardised records of a piece depend on, as text, in three parts: the entry's
/// slot, generation and piece (see the module's doc).
#[derive(Debug, PartialEq)]
struct Fingerprint {
    slot: String,
    generation: String,
    piece: String,
}

impl Fingerprint {
    /// The whole of it, which an entry must hold to be read.
    fn text(&self) -> String {
        format!("{}{}{}", self.slot, self.generation, self.piece)
    }
}

/// The fingerprint of `file` (or its `piece`) of `input`.
fn fingerprint(
    spec: &JobSpec,
    input: &Input,
    file: &str,
    piece: Option<&Piece>,
) -> Result<Fingerprint, EngineError> {
    let mut slot = String::new();
    let _ = writeln!(slot, "khop standardised records, cache format {FORMAT}");
    let _ = writeln!(slot, "file {file}");
    let _ = writeln!(slot, "format {:?}, id column {:?}", input.format, input.id);
    if let Some(csv) = &input.csv {
        // Only when set, so that the entries of inputs without it keep their slots.
        let _ = writeln!(slot, "csv {:?} {:?}", csv.delimiter, csv.encoding());
    }
    for (field, standardiser) in &spec.fields {
        let columns = input.columns.get(field).map(|c| c.names());
        let _ = writeln!(slot, "field {field:?} {standardiser:?} from {columns:?}");
        if *standardiser == crate::spec::Standardiser::Date {
            // The rules, not the reference day: a job a day later reads the same dates.
            let _ = writeln!(slot, "dates {:?}", spec.date_rules(input, field));
        }
    }
    if !input.conventions.id_repair.is_empty() {
        let _ = writeln!(slot, "id repair {:?}", input.conventions.id_repair);
    }
    for rule in &spec.blocking {
        let _ = writeln!(slot, "rule keys {:?}", rule.keys);
    }
    let generation = format!("build {}\nfile version {}\n", build()?, version(file)?);
    let piece = match piece {
        Some(p) => format!(
            "row groups {} to {}\n",
            p.first_group,
            p.first_group + p.groups
        ),
        None => "the whole file\n".to_owned(),
    };
    Ok(Fingerprint {
        slot,
        generation,
        piece,
    })
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

    /// A directory holding a CSV file of one record, the file's path, and a dedupe of it cached in
    /// the directory's `cache`.
    fn cached_file() -> (tempfile::TempDir, String, JobSpec) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("people.csv");
        std::fs::write(&file, "id,name,dob\n1,Nguyễn Văn An,1990-01-02\n").unwrap();
        let cache = format!("cache = \"{}\"", dir.path().join("cache").display());
        let text = crate::spec::tests::people_dedupe(&cache, "");
        let spec = JobSpec::from_toml(&text, dir.path()).unwrap();
        (dir, file.to_string_lossy().into_owned(), spec)
    }

    #[test]
    fn the_fingerprint_changes_with_the_file_the_spec_and_the_piece() {
        let (_dir, file, spec) = cached_file();
        let print = |spec: &JobSpec, piece: Option<&Piece>| {
            fingerprint(spec, &spec.inputs[0], &file, piece).unwrap()
        };
        let first = print(&spec, None);
        assert_eq!(first, print(&spec, None), "the same piece, the same print");

        let mut other_rule = spec.clone();
        other_rule.blocking[0].keys = vec!["name.surname_key".into()];
        let mut other_column = spec.clone();
        other_column.inputs[0].id = "record_id".into();
        let mut other_encoding = spec.clone();
        other_encoding.inputs[0].csv = Some(crate::spec::CsvOptions {
            encoding: "windows-1258".into(),
            ..Default::default()
        });
        let piece = Piece {
            first_group: 2,
            groups: 3,
            first_row: 0,
            rows: 10,
            input_rows: 100,
        };
        // What changes, and in which part: the slot (what the entry is of), the generation (the
        // file's version and the build) or the piece.
        for (changed, print) in [
            ("blocking keys", print(&other_rule, None)),
            ("id column", print(&other_column, None)),
            ("encoding", print(&other_encoding, None)),
        ] {
            assert_ne!(first.slot, print.slot, "{changed}");
            assert_eq!(first.generation, print.generation, "{changed}");
        }
        let other_piece = print(&spec, Some(&piece));
        assert_ne!(first.piece, other_piece.piece);
        assert_eq!(
            (&first.slot, &first.generation),
            (&other_piece.slot, &other_piece.generation)
        );
        // Comparisons and thresholds do not change standardised records.
        let mut other_threshold = spec.clone();
        other_threshold.thresholds.match_ = 0.99;
        assert_eq!(first, print(&other_threshold, None));

        std::fs::write(&file, "id,name,dob\n1,Nguyễn Văn An,1990-01-03\n2,B,1990\n").unwrap();
        let changed = print(&spec, None);
        assert_ne!(first.generation, changed.generation, "the file changed");
        assert_eq!((&first.slot, &first.piece), (&changed.slot, &changed.piece));
    }

    #[test]
    fn an_entry_is_read_only_once_complete_and_only_for_its_fingerprint() {
        let (dir, file, spec) = cached_file();
        let input = &spec.inputs[0];
        let entry = Entry::of(&spec, input, &file, None).unwrap();
        assert!(entry.read().is_none(), "empty cache");

        let table = crate::standardise::Plan::new(&spec, input).empty_table();
        let batch = crate::exchange::table_to_batch(entry.schema(), table).unwrap();
        let cached = CachedBatch {
            lines: 1,
            bad: vec![],
            chunks: vec![CachedChunk {
                rejects: vec![],
                reports: vec![
                    FieldReport::default(),
                    FieldReport {
                        unread: 1,
                        shapes: [("99/9/99".to_owned(), 1)].into(),
                        repaired: [("pin".to_owned(), 2)].into(),
                    },
                ],
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
            ..Entry::of(&spec, input, &file, None).unwrap()
        };
        assert!(other.read().is_none());
        // A damaged meta.json is a miss, not an error.
        let meta = dir.path().join("cache").join(&entry.dir).join("meta.json");
        std::fs::write(&meta, "{").unwrap();
        assert!(entry.read().is_none());
    }

    /// Writes an empty finished entry for `entry`.
    fn write_empty(spec: &JobSpec, entry: &Entry) {
        let table = crate::standardise::Plan::new(spec, &spec.inputs[0]).empty_table();
        let batch = crate::exchange::table_to_batch(entry.schema(), table).unwrap();
        let mut writer = entry.writer();
        writer.push(
            CachedBatch {
                lines: 0,
                bad: vec![],
                chunks: vec![CachedChunk::default()],
            },
            vec![batch],
        );
        writer.finish();
    }

    #[test]
    fn a_new_entry_replaces_those_of_older_files_and_builds_only() {
        let (_dir, file, spec) = cached_file();
        let input = &spec.inputs[0];
        let piece = |first_group| Piece {
            first_group,
            groups: 1,
            first_row: 0,
            rows: 1,
            input_rows: 2,
        };
        let (first, second) = (piece(0), piece(1));
        let old: Vec<Entry> = [&first, &second]
            .map(|p| Entry::of(&spec, input, &file, Some(p)).unwrap())
            .into_iter()
            .collect();
        for entry in &old {
            write_empty(&spec, entry);
        }
        // Another slot of the same cache: the same file under other blocking keys.
        let mut other_rules = spec.clone();
        other_rules.blocking[0].keys = vec!["name.given_key".into()];
        let other_slot = Entry::of(&other_rules, input, &file, Some(&first)).unwrap();
        write_empty(&other_rules, &other_slot);
        assert_eq!(old[0].slot, old[1].slot);
        assert_ne!(old[0].slot, other_slot.slot);
        for entry in old.iter().chain([&other_slot]) {
            assert!(entry.read().is_some(), "{}", entry.dir.display());
        }

        // The file changes (a new generation): the first piece's new entry removes both old ones,
        // not the other slot's.
        std::fs::write(&file, "id,name,dob\n1,Nguyễn Văn An,1990-01-03\n").unwrap();
        let new = Entry::of(&spec, input, &file, Some(&first)).unwrap();
        assert_eq!(new.slot, old[0].slot);
        write_empty(&spec, &new);
        assert!(new.read().is_some());
        let slot_dirs = new.files.subdirs(&new.slot).unwrap();
        assert_eq!(
            slot_dirs,
            vec![new.dir.file_name().unwrap().to_string_lossy().into_owned()]
        );
        assert!(
            other_slot.read().is_some(),
            "another slot's entry was removed"
        );

        // The second piece of the new generation is written beside the first, removing nothing.
        let new_second = Entry::of(&spec, input, &file, Some(&second)).unwrap();
        write_empty(&spec, &new_second);
        assert!(new.read().is_some() && new_second.read().is_some());
        assert_eq!(new.files.subdirs(&new.slot).unwrap().len(), 2);
    }
}
