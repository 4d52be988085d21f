//! Storage: where a job's inputs and scratch files live. A path is a local (or network-mounted)
//! directory; a URL `s3://bucket/prefix` is an object store: Amazon S3 or any S3-compatible store
//! (MinIO, Ceph RGW). How to reach a store (endpoint, region, credentials) comes from the
//! environment of each process that touches it (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`; see docs/operations.md), never from the job spec:
//! specs travel through the Raft log and into logs, secrets must not.
//!
//! **Invariant:** a scratch file is written once under a key of its own (the task attempt is in it)
//! and appears whole or not at all: a local file is renamed into place, an object is one PUT or one
//! completed multipart upload. Readers never see half a file and nothing is ever overwritten, so a
//! reader may fetch any byte range of an object at any time.
//!
//! The engine's tasks are synchronous (they run on worker threads and rayon); object-store calls
//! are async. They run on one small runtime of this module ([`block_on`]), which owns the
//! connection pools of the stores it caches (one store per bucket per process).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::EngineError;
use crate::exchange::{IpcFile, write_ipc};
use crate::spec::JobSpec;

/// The URL schemes a location may use.
pub const SCHEMES: &[&str] = &["s3"];

/// Objects up to this size are uploaded with one PUT; larger ones in parts of this size.
const PART_BYTES: usize = 16 << 20;

/// What a reader of an object fetches at least per request. Random access (an IPC file's footer,
/// then one batch: its metadata, then its body, read exactly) fetches little beyond what is read, so
/// that a task reading one partition's batch does not fetch its neighbours; a sequential read (a CSV
/// file) fetches in large runs, each request costing a round trip.
const RANDOM_READ_AHEAD: u64 = 64 << 10;
const SEQUENTIAL_READ_AHEAD: u64 = 8 << 20;

/// Whether a location is a URL rather than a local path.
pub fn is_url(location: &str) -> bool {
    location.contains("://")
}

/// Checks an object-store URL without connecting: a supported scheme and a bucket. The message
/// names what is wrong, for the spec error that carries the field's path.
pub fn check_url(location: &str) -> Result<(), String> {
    let url = url::Url::parse(location).map_err(|e| format!("`{location}`: {e}"))?;
    if !SCHEMES.contains(&url.scheme()) {
        return Err(format!(
            "`{location}`: the scheme `{}` is not supported (use a path, or {})",
            url.scheme(),
            SCHEMES
                .iter()
                .map(|s| format!("{s}://bucket/prefix"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{location}`: no bucket"));
    }
    Ok(())
}

fn storage_error(location: &impl std::fmt::Display, e: impl std::fmt::Display) -> EngineError {
    EngineError::Other(format!("{location}: {e}"))
}

/// The runtime that runs every object-store call of this process.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("khop-storage")
            .enable_all()
            .build()
            .expect("the storage runtime starts")
    })
}

/// Runs `f` on the storage runtime and waits for it. Safe from any thread, also one of another
/// runtime (it waits on a channel, not by entering a runtime).
pub fn block_on<T: Send + 'static>(
    f: impl Future<Output = Result<T, EngineError>> + Send + 'static,
) -> Result<T, EngineError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv()
        .map_err(|_| EngineError::Other("an object-store call was dropped".into()))?
}

/// A bucket's store, built from the environment.
fn build_store(scheme: &str, bucket: &str) -> Result<Arc<dyn ObjectStore>, EngineError> {
    match scheme {
        "s3" => AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| storage_error(&format!("{scheme}://{bucket}"), e)),
        other => Err(EngineError::Other(format!(
            "object store `{other}://` is not supported"
        ))),
    }
}

/// An object (or a prefix of objects) in a store.
#[derive(Clone, Debug)]
pub struct Object {
    pub store: Arc<dyn ObjectStore>,
    /// `scheme://bucket`: what DataFusion registers the store under.
    pub bucket: ObjectStoreUrl,
    pub path: ObjectPath,
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.bucket.as_str(), self.path)
    }
}

impl Object {
    /// The object a URL names, in the process's store of its bucket (built once, then shared).
    pub fn at(location: &str) -> Result<Object, EngineError> {
        Self::open(location, true)
    }

    /// The same in a store of its own, for code that drives it from a runtime other than this
    /// module's (a scan's DataFusion session): a shared store's pooled connections belong to the
    /// runtime that opened them.
    pub fn at_with_own_store(location: &str) -> Result<Object, EngineError> {
        Self::open(location, false)
    }

    fn open(location: &str, shared: bool) -> Result<Object, EngineError> {
        static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
        check_url(location).map_err(EngineError::Other)?;
        let url = url::Url::parse(location).map_err(|e| storage_error(&location, e))?;
        let (scheme, bucket_name) = (url.scheme(), url.host_str().unwrap_or_default());
        let bucket = ObjectStoreUrl::parse(format!("{scheme}://{bucket_name}"))
            .map_err(|e| storage_error(&location, e))?;
        let store = if shared {
            let mut stores = lock(STORES.get_or_init(Default::default));
            match stores.get(bucket.as_str()) {
                Some(store) => store.clone(),
                None => {
                    let store = build_store(scheme, bucket_name)?;
                    stores.insert(bucket.as_str().to_owned(), store.clone());
                    store
                }
            }
        } else {
            build_store(scheme, bucket_name)?
        };
        let path =
            ObjectPath::from_url_path(url.path()).map_err(|e| storage_error(&location, e))?;
        Ok(Object {
            store,
            bucket,
            path,
        })
    }

    /// The object at `key` (a relative path of plain components) under this prefix.
    pub fn child(&self, key: &Path) -> Result<Object, EngineError> {
        let mut path = self.path.clone();
        for component in key.components() {
            match component {
                Component::Normal(part) => {
                    path = path.clone().join(part.to_string_lossy().as_ref());
                }
                _ => {
                    return Err(EngineError::Other(format!(
                        "{self}: `{}` is not a relative key",
                        key.display()
                    )));
                }
            }
        }
        Ok(Object {
            path,
            ..self.clone()
        })
    }

    /// The object's size in bytes.
    pub fn size(&self) -> Result<u64, EngineError> {
        let o = self.clone();
        block_on(async move { o.head().await })
    }

    /// The object's version: its size, modification time, entity tag and version id (where the
    /// store keeps them).
    pub fn version(&self) -> Result<String, EngineError> {
        let o = self.clone();
        block_on(async move {
            let m = o
                .store
                .head(&o.path)
                .await
                .map_err(|e| storage_error(&o, e))?;
            Ok(format!(
                "{} bytes modified {} tag {:?} version {:?}",
                m.size, m.last_modified, m.e_tag, m.version
            ))
        })
    }

    /// The object's size, from a runtime the caller drives.
    pub async fn head(&self) -> Result<u64, EngineError> {
        self.store
            .head(&self.path)
            .await
            .map(|m| m.size)
            .map_err(|e| storage_error(self, e))
    }

    /// Bytes `range` of the object, from a runtime the caller drives.
    pub async fn get_range(&self, range: Range<u64>) -> Result<Bytes, EngineError> {
        self.store
            .get_range(&self.path, range)
            .await
            .map_err(|e| storage_error(self, e))
    }

    /// The object's size and its last `bytes` bytes (all of it when smaller), in one request, from a
    /// runtime the caller drives: what a reader of a file that keeps its index at its end (IPC,
    /// Parquet) needs first.
    pub async fn tail(&self, bytes: u64) -> Result<(u64, Bytes), EngineError> {
        let options = GetOptions {
            range: Some(GetRange::Suffix(bytes)),
            ..GetOptions::default()
        };
        let got = self
            .store
            .get_opts(&self.path, options)
            .await
            .map_err(|e| storage_error(self, e))?;
        let size = got.meta.size;
        let tail = got.bytes().await.map_err(|e| storage_error(self, e))?;
        Ok((size, tail))
    }

    /// The objects under this prefix (the prefix itself when it is an object), sorted by path.
    pub fn list(&self) -> Result<Vec<(Object, u64)>, EngineError> {
        let o = self.clone();
        let found = block_on(async move {
            let mut found: Vec<(ObjectPath, u64)> = Vec::new();
            let mut listing = o.store.list(Some(&o.path));
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| storage_error(&o, e))?;
                found.push((meta.location, meta.size));
            }
            if found.is_empty()
                && let Ok(meta) = o.store.head(&o.path).await
            {
                found.push((meta.location, meta.size));
            }
            Ok(found)
        })?;
        let mut found: Vec<(Object, u64)> = found
            .into_iter()
            .map(|(path, size)| {
                (
                    Object {
                        path,
                        ..self.clone()
                    },
                    size,
                )
            })
            .collect();
        found.sort_by(|a, b| a.0.path.as_ref().cmp(b.0.path.as_ref()));
        Ok(found)
    }

    /// Uploads bytes as the object, in one PUT.
    pub fn put(&self, bytes: Vec<u8>) -> Result<(), EngineError> {
        let o = self.clone();
        block_on(async move {
            o.store
                .put(&o.path, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| storage_error(&o, e))
        })
    }

    /// Uploads a local file as the object: one PUT when small, else a multipart upload, which the
    /// store makes visible only when complete.
    pub fn put_file(&self, file: &Path) -> Result<(), EngineError> {
        let size = std::fs::metadata(file)
            .map_err(|e| storage_error(&file.display(), e))?
            .len();
        if size <= PART_BYTES as u64 {
            let bytes = std::fs::read(file).map_err(|e| storage_error(&file.display(), e))?;
            return self.put(bytes);
        }
        let (o, file) = (self.clone(), file.to_owned());
        block_on(async move {
            let fail = |e: &dyn std::fmt::Display| storage_error(&o, e);
            let upload = o.store.put_multipart(&o.path).await.map_err(|e| fail(&e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut reader = std::fs::File::open(&file).map_err(|e| fail(&e))?;
            let mut buf = vec![0u8; PART_BYTES];
            loop {
                let n = reader.read(&mut buf).map_err(|e| fail(&e))?;
                if n == 0 {
                    break;
                }
                writer.wait_for_capacity(4).await.map_err(|e| fail(&e))?;
                writer.write(&buf[..n]);
            }
            writer.finish().await.map(|_| ()).map_err(|e| fail(&e))
        })
    }

    /// Deletes every object under this prefix.
    pub fn remove_all(&self) -> Result<u64, EngineError> {
        let o = self.clone();
        block_on(async move {
            let listing = o.store.list(Some(&o.path)).map(|m| m.map(|m| m.location));
            let mut deleted = o.store.delete_stream(listing.boxed());
            let mut count = 0;
            while let Some(done) = deleted.next().await {
                done.map_err(|e| storage_error(&o, e))?;
                count += 1;
            }
            Ok(count)
        })
    }

    /// A reader of the object that fetches byte ranges as it is read and seeks for free, for
    /// random access. Its first request fetches the object's tail, which tells its size too (an IPC
    /// reader reads the footer first): one round trip where a HEAD and a GET would take two.
    pub fn reader(&self) -> Result<ObjectReader, EngineError> {
        let o = self.clone();
        let (size, tail) = block_on(async move { o.tail(RANDOM_READ_AHEAD).await })?;
        Ok(ObjectReader {
            object: self.clone(),
            size,
            read_ahead: RANDOM_READ_AHEAD,
            position: 0,
            buffer_start: size.saturating_sub(tail.len() as u64),
            buffer: tail,
        })
    }

    /// The same for reading from start to end.
    pub fn sequential_reader(&self) -> Result<ObjectReader, EngineError> {
        self.reader_with(SEQUENTIAL_READ_AHEAD)
    }

    fn reader_with(&self, read_ahead: u64) -> Result<ObjectReader, EngineError> {
        Ok(ObjectReader {
            size: self.size()?,
            object: self.clone(),
            read_ahead,
            position: 0,
            buffer: Bytes::new(),
            buffer_start: 0,
        })
    }
}

/// `Read + Seek` over an object: each read outside what was last fetched fetches the range from
/// there: what the read asks for, and at least `read_ahead` bytes. Arrow's IPC reader seeks to the
/// footer, then to each batch it is asked for, so a task fetches only the batches it needs.
pub struct ObjectReader {
    object: Object,
    size: u64,
    read_ahead: u64,
    position: u64,
    buffer: Bytes,
    buffer_start: u64,
}

impl Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.size || out.is_empty() {
            return Ok(0);
        }
        let buffered = self.buffer_start..self.buffer_start + self.buffer.len() as u64;
        if !buffered.contains(&self.position) {
            let end = (self.position + self.read_ahead.max(out.len() as u64)).min(self.size);
            let (o, range) = (self.object.clone(), self.position..end);
            self.buffer =
                block_on(async move { o.get_range(range).await }).map_err(std::io::Error::other)?;
            self.buffer_start = self.position;
        }
        let offset = (self.position - self.buffer_start) as usize;
        let n = out.len().min(self.buffer.len() - offset);
        out[..n].copy_from_slice(&self.buffer[offset..offset + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for ObjectReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
        };
        self.position = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.position)
    }
}

/// Where a job's tasks hand files to each other ([`crate::spec::Execution::scratch`]). Tasks name
/// their files by keys relative to it (`03-compare/00012-a7.pairs.arrow`), so the committed
/// outputs that carry the keys mean the same on every worker, whatever its mount points.
#[derive(Clone, Debug)]
pub enum ScratchFiles {
    Dir(PathBuf),
    Objects(Object),
    /// Files held in this process's memory, in front of a location that takes what does not fit:
    /// only where every task of the job runs in this process (the embedded default).
    Memory(Arc<MemoryFiles>),
}

impl ScratchFiles {
    /// The scratch location of a job: `.khop-scratch` under the output, or under
    /// `execution.scratch` a directory of the job's own, `job-<hash of the output path>`: many jobs
    /// may share one scratch location, and removing one job's files must not touch another's (two
    /// jobs with one output would overwrite each other's outputs anyway).
    pub fn of(spec: &JobSpec) -> Result<ScratchFiles, EngineError> {
        let job = format!(
            "job-{:016x}",
            crate::hash::hash_str(&spec.output.to_string_lossy())
        );
        match &spec.execution.scratch {
            Some(url) if is_url(url) => Object::at(url)?
                .child(Path::new(&job))
                .map(ScratchFiles::Objects),
            Some(dir) => Ok(ScratchFiles::Dir(Path::new(dir).join(job))),
            None => Ok(ScratchFiles::Dir(spec.output.join(".khop-scratch"))),
        }
    }

    /// The job's scratch files in this process's memory, up to `execution.scratch_memory_mib`, in
    /// front of its scratch location ([`ScratchFiles::of`]), which takes the files that do not fit.
    /// Every caller in the process gets the same files for the job until [`remove_scratch`] drops
    /// them: for tasks that all run in this process (`khop link`, its in-process workers), which
    /// then hand their files to each other without encoding, writing, reading back and checking
    /// them. Never for a cluster's workers: the others could not read the files.
    pub fn in_process(spec: &JobSpec) -> Result<ScratchFiles, EngineError> {
        let spill = ScratchFiles::of(spec)?;
        let mut jobs = lock(in_process_jobs());
        let files = jobs.entry(spill.location()).or_insert_with(|| {
            Arc::new(MemoryFiles {
                budget: usize::try_from(spec.execution.scratch_memory_mib)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(1 << 20),
                used: AtomicUsize::new(0),
                ipc: Mutex::default(),
                json: Mutex::default(),
                spill: spill.clone(),
            })
        });
        Ok(ScratchFiles::Memory(files.clone()))
    }

    /// Where the files are: a directory or an object-store prefix (for memory, where the files that
    /// do not fit go).
    fn location(&self) -> String {
        match self {
            ScratchFiles::Dir(dir) => dir.display().to_string(),
            ScratchFiles::Objects(prefix) => prefix.to_string(),
            ScratchFiles::Memory(memory) => memory.spill.location(),
        }
    }

    /// The path of a key in a scratch directory. An absolute key is taken as it is (outputs
    /// committed before keys were relative).
    fn local(dir: &Path, key: &Path) -> PathBuf {
        dir.join(key)
    }

    /// Writes batches as the Arrow IPC file `key`.
    pub fn write_ipc(
        &self,
        key: &Path,
        schema: &SchemaRef,
        batches: impl IntoIterator<Item = Result<RecordBatch, EngineError>>,
    ) -> Result<(), EngineError> {
        match self {
            ScratchFiles::Dir(dir) => write_ipc(&Self::local(dir, key), schema, batches),
            ScratchFiles::Objects(prefix) => {
                let object = prefix.child(key)?;
                let spool = tempfile::tempdir().map_err(|e| storage_error(&"spool", e))?;
                let file = spool.path().join("file.arrow");
                write_ipc(&file, schema, batches)?;
                object.put_file(&file)
            }
            ScratchFiles::Memory(memory) => memory.write_ipc(key, schema, &mut batches.into_iter()),
        }
    }

    /// Writes a JSON document as the file `key`.
    pub fn write_json(&self, key: &Path, value: &impl serde::Serialize) -> Result<(), EngineError> {
        match self {
            ScratchFiles::Dir(dir) => crate::output::write_json(&Self::local(dir, key), value),
            ScratchFiles::Objects(prefix) => {
                let object = prefix.child(key)?;
                let mut text =
                    serde_json::to_string_pretty(value).map_err(|e| storage_error(&object, e))?;
                text.push('\n');
                object.put(text.into_bytes())
            }
            ScratchFiles::Memory(memory) => {
                let text =
                    serde_json::to_string(value).map_err(|e| storage_error(&key.display(), e))?;
                if !memory.reserve(text.len()) {
                    return memory.spill.write_json(key, value);
                }
                if let Some(previous) = memory.lock_json().insert(key.to_owned(), text) {
                    memory.release(previous.len());
                }
                Ok(())
            }
        }
    }

    /// The IPC file `key`, open for reading batches.
    pub fn ipc(&self, key: &Path) -> Result<IpcFile, EngineError> {
        self.open_ipc(key, None)
    }

    /// The IPC file `key` with only the columns `names` of `schema` (the file's schema) decoded.
    pub fn ipc_columns(
        &self,
        key: &Path,
        schema: &Schema,
        names: &[&str],
    ) -> Result<IpcFile, EngineError> {
        let projection = names
            .iter()
            .map(|n| schema.index_of(n))
            .collect::<Result<Vec<_>, _>>()?;
        self.open_ipc(key, Some(projection))
    }

    fn open_ipc(&self, key: &Path, projection: Option<Vec<usize>>) -> Result<IpcFile, EngineError> {
        match self {
            ScratchFiles::Dir(dir) => IpcFile::open_projected(&Self::local(dir, key), projection),
            ScratchFiles::Objects(prefix) => {
                let reader = prefix.child(key)?.reader()?;
                IpcFile::from_reader(Box::new(reader), projection)
            }
            ScratchFiles::Memory(memory) => match memory.batches(key) {
                Some(batches) => Ok(IpcFile::in_memory(batches, projection)),
                None => memory.spill.open_ipc(key, projection),
            },
        }
    }

    /// The text of the file `key`.
    pub fn read_to_string(&self, key: &Path) -> Result<String, EngineError> {
        match self {
            ScratchFiles::Dir(dir) => {
                let path = Self::local(dir, key);
                std::fs::read_to_string(&path).map_err(|e| storage_error(&path.display(), e))
            }
            ScratchFiles::Objects(prefix) => {
                let mut text = String::new();
                let object = prefix.child(key)?;
                object
                    .sequential_reader()?
                    .read_to_string(&mut text)
                    .map_err(|e| storage_error(&object, e))?;
                Ok(text)
            }
            ScratchFiles::Memory(memory) => match memory.lock_json().get(key) {
                Some(text) => Ok(text.clone()),
                None => memory.spill.read_to_string(key),
            },
        }
    }

    /// The names of the directories right under `key` (for an object store, the next part of the
    /// paths of the objects under it), sorted; none when `key` is absent. Files held in memory have
    /// no directories.
    pub fn subdirs(&self, key: &Path) -> Result<Vec<String>, EngineError> {
        let mut names: Vec<String> = match self {
            ScratchFiles::Dir(dir) => {
                let path = Self::local(dir, key);
                match std::fs::read_dir(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(storage_error(&path.display(), e)),
                    Ok(entries) => entries
                        .filter_map(Result::ok)
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect(),
                }
            }
            ScratchFiles::Objects(prefix) => {
                let parent = prefix.child(key)?;
                parent
                    .list()?
                    .into_iter()
                    .filter_map(|(object, _)| {
                        let mut rest = object.path.prefix_match(&parent.path)?;
                        let first = rest.next()?;
                        // An object right under `key` is a file, not a directory.
                        rest.next().map(|_| first.as_ref().to_owned())
                    })
                    .collect()
            }
            ScratchFiles::Memory(_) => Vec::new(),
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Removes the directory `key` and everything under it; an absent one is no error.
    pub fn remove_dir(&self, key: &Path) -> Result<(), EngineError> {
        match self {
            ScratchFiles::Dir(dir) => {
                let path = Self::local(dir, key);
                match std::fs::remove_dir_all(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(storage_error(&path.display(), e))
                    }
                    _ => Ok(()),
                }
            }
            ScratchFiles::Objects(prefix) => prefix.child(key)?.remove_all().map(|_| ()),
            ScratchFiles::Memory(_) => Ok(()),
        }
    }

    /// Removes every scratch file of the job.
    pub fn remove_all(&self) -> Result<(), EngineError> {
        match self {
            ScratchFiles::Dir(_) | ScratchFiles::Objects(_) => self.remove_dir(Path::new("")),
            ScratchFiles::Memory(memory) => {
                memory.clear();
                memory.spill.remove_all()
            }
        }
    }
}

/// The jobs' scratch files in this process's memory, by scratch location ([`ScratchFiles::in_process`]).
fn in_process_jobs() -> &'static Mutex<HashMap<String, Arc<MemoryFiles>>> {
    static JOBS: OnceLock<Mutex<HashMap<String, Arc<MemoryFiles>>>> = OnceLock::new();
    JOBS.get_or_init(Mutex::default)
}

/// A lock that a panic elsewhere does not poison: every update under this module's locks is one
/// insert, remove or clear, never left half done.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a job's scratch files: those this process holds in memory for it, if any, and its scratch
/// location.
pub fn remove_scratch(spec: &JobSpec) -> Result<(), EngineError> {
    let spill = ScratchFiles::of(spec)?;
    if let Some(memory) = lock(in_process_jobs()).remove(&spill.location()) {
        tracing::debug!(
            files = memory.lock_ipc().len(),
            mib = memory.used() >> 20,
            "scratch files held in memory"
        );
        memory.clear();
    }
    spill.remove_all()
}

/// Scratch files in memory ([`ScratchFiles::Memory`]): an IPC file as its record batches, whose
/// buffers readers share (a read is a clone of reference-counted arrays, with no decoding and no
/// UTF-8 check: the batches were built and checked by this process), and JSON as its text.
///
/// **Invariant:** the files held use at most `budget` bytes (Arrow's memory size of an IPC file's
/// arrays, a JSON file's length); a file that would take the total past it is written whole to
/// `spill` instead, so memory stays bounded whatever the job's size. As in every scratch location,
/// a file appears whole or not at all: it is inserted once all its batches are built. Files are
/// held until [`remove_scratch`] (or [`ScratchFiles::remove_all`]).
pub struct MemoryFiles {
    budget: usize,
    used: AtomicUsize,
    ipc: Mutex<HashMap<PathBuf, HeldIpc>>,
    json: Mutex<HashMap<PathBuf, String>>,
    spill: ScratchFiles,
}

/// An IPC file held in memory: its batches and the bytes of the budget they take.
type HeldIpc = (Arc<[RecordBatch]>, usize);

impl std::fmt::Debug for MemoryFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryFiles")
            .field("budget", &self.budget)
            .field("used", &self.used.load(Ordering::Relaxed))
            .field("spill", &self.spill)
            .finish_non_exhaustive()
    }
}

impl MemoryFiles {
    fn lock_ipc(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, HeldIpc>> {
        lock(&self.ipc)
    }

    fn lock_json(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, String>> {
        lock(&self.json)
    }

    /// Drops every file held (readers holding batches keep theirs until they are done).
    fn clear(&self) {
        self.lock_ipc().clear();
        self.lock_json().clear();
        self.used.store(0, Ordering::Relaxed);
    }

    /// Takes `bytes` of the budget if that many are left.
    fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes)
                    .filter(|&total| total <= self.budget)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes of the budget in use.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn batches(&self, key: &Path) -> Option<Arc<[RecordBatch]>> {
        self.lock_ipc().get(key).map(|(batches, _)| batches.clone())
    }

    /// Holds the batches as the file `key` while they fit in the budget; from the first that does
    /// not, writes them all to `spill`, so a file larger than what is left never sits in memory.
    fn write_ipc(
        &self,
        key: &Path,
        schema: &SchemaRef,
        // Not generic: a spilled file is written through `ScratchFiles::write_ipc`, which is.
        batches: &mut dyn Iterator<Item = Result<RecordBatch, EngineError>>,
    ) -> Result<(), EngineError> {
        let mut held = Vec::new();
        let mut bytes = 0;
        while let Some(batch) = batches.next() {
            let batch = match batch.and_then(|b| Ok(b.with_schema(schema.clone())?)) {
                Ok(batch) => batch,
                Err(e) => {
                    self.release(bytes);
                    return Err(e);
                }
            };
            let size = batch.get_array_memory_size();
            if !self.reserve(size) {
                self.release(bytes);
                let rest = held.into_iter().chain([batch]).map(Ok).chain(batches);
                return self.spill.write_ipc(key, schema, rest);
            }
            bytes += size;
            held.push(batch);
        }
        let previous = self.lock_ipc().insert(key.to_owned(), (held.into(), bytes));
        if let Some((_, size)) = previous {
            self.release(size);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_urls_are_checked_without_connecting() {
        assert!(check_url("s3://bucket/some/prefix").is_ok());
        assert!(check_url("s3://bucket").is_ok());
        let refused = |url: &str, why: &str| {
            let e = check_url(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        };
        refused("gs://bucket/x", "scheme `gs` is not supported");
        refused("ftp://host/x", "scheme `ftp` is not supported");
        refused("s3:///no-bucket", "no bucket");
        refused("s3//bucket", "relative URL");
        assert!(is_url("s3://b/k") && !is_url("/data/people.parquet"));
    }

    fn in_memory(prefix: &str) -> Object {
        Object {
            store: Arc::new(object_store::memory::InMemory::new()),
            bucket: ObjectStoreUrl::parse("memory://").unwrap(),
            path: ObjectPath::from(prefix),
        }
    }

    #[test]
    fn an_object_reads_like_a_file_whatever_the_seeks() {
        let object = in_memory("data/blob");
        // Larger than the tail a random-access reader fetches first.
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        object.put(bytes.clone()).unwrap();
        let readers = [
            object.reader().unwrap(),
            object.reader_with(1).unwrap(),
            object.reader_with(7).unwrap(),
            object.reader_with(4096).unwrap(),
            object.sequential_reader().unwrap(),
        ];
        for (i, mut reader) in readers.into_iter().enumerate() {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            assert!(all == bytes, "reader {i}");
            for (to, at) in [
                (SeekFrom::Start(199_990), 199_990),
                (SeekFrom::End(-5_000), 195_000),
                (SeekFrom::Start(100_000), 100_000),
                (SeekFrom::Start(3), 3),
            ] {
                assert_eq!(reader.seek(to).unwrap(), at);
                let mut some = vec![0; 13];
                let n = reader.read(&mut some).unwrap();
                assert!(n > 0 && n <= 13);
                assert_eq!(&some[..n], &bytes[at as usize..at as usize + n]);
                // Back to where the read began: the same bytes again.
                assert_eq!(reader.seek(SeekFrom::Current(-(n as i64))).unwrap(), at);
                let mut again = vec![0; n];
                reader.read_exact(&mut again).unwrap();
                assert_eq!(again, some[..n]);
            }
            assert!(reader.seek(SeekFrom::Current(-100)).is_err());
            reader.seek(SeekFrom::End(0)).unwrap();
            assert_eq!(reader.read(&mut [0; 4]).unwrap(), 0);
        }
    }

    #[test]
    fn scratch_files_in_a_store_are_written_whole_read_by_batch_and_removed() {
        use arrow::array::{ArrayRef, UInt64Array};
        use arrow::datatypes::{DataType, Field};
        let files = ScratchFiles::Objects(in_memory("scratch/job-1"));
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::UInt64, false),
            Field::new("b", DataType::UInt64, false),
        ]));
        let batch = |from: u64| {
            let column = |k: u64| {
                Arc::new(UInt64Array::from_iter_values(
                    (from..from + 1000).map(|i| i * k),
                )) as ArrayRef
            };
            Ok(RecordBatch::try_new(schema.clone(), vec![column(1), column(3)]).unwrap())
        };
        let key = Path::new("03-compare/00001-a2.pairs.arrow");
        files
            .write_ipc(key, &schema, (0..5).map(|i| batch(i * 1000)))
            .unwrap();
        files
            .write_json(Path::new("04-train/00000-a3.tf.json"), &[1, 2])
            .unwrap();
        let mut file = files.ipc(key).unwrap();
        assert_eq!(file.batches(), 5);
        assert_eq!(file.batch(3).unwrap(), batch(3000).unwrap());
        assert_eq!(file.batch(1).unwrap(), batch(1000).unwrap());
        let b = files
            .ipc_columns(key, &schema, &["b"])
            .unwrap()
            .read_all()
            .unwrap();
        assert_eq!(b.len(), 5);
        assert_eq!(b[4].num_columns(), 1);
        assert_eq!(
            files
                .read_to_string(Path::new("04-train/00000-a3.tf.json"))
                .unwrap()
                .split_whitespace()
                .collect::<String>(),
            "[1,2]"
        );
        let ScratchFiles::Objects(prefix) = &files else {
            unreachable!()
        };
        assert_eq!(prefix.list().unwrap().len(), 2);
        files.remove_all().unwrap();
        assert!(prefix.list().unwrap().is_empty());
        assert!(files.ipc(key).is_err());
    }

    #[test]
    fn keys_under_a_prefix_are_plain_relative_paths() {
        let prefix = Object::at_with_own_store("s3://bucket/jobs/j1").unwrap();
        let child = prefix
            .child(Path::new("03-compare/00012-a7.pairs.arrow"))
            .unwrap();
        assert_eq!(
            child.to_string(),
            "s3://bucket/jobs/j1/03-compare/00012-a7.pairs.arrow"
        );
        assert!(prefix.child(Path::new("/etc/passwd")).is_err());
        assert!(prefix.child(Path::new("../other")).is_err());
    }

    /// A job's spec whose scratch is `dir`, holding `mib` MiB in memory.
    fn spec_with_scratch(dir: &Path, mib: u64) -> JobSpec {
        let mut spec = JobSpec::from_toml(crate::spec::tests::GOOD, Path::new("/jobs")).unwrap();
        spec.execution.scratch = Some(dir.display().to_string());
        spec.execution.scratch_memory_mib = mib;
        spec
    }

    fn numbers(n: u64) -> (SchemaRef, RecordBatch) {
        use arrow::array::{StringArray, UInt64Array};
        use arrow::datatypes::{DataType, Field};
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::UInt64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter_values((0..n).map(|i| i.to_string()))),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    /// In-process scratch holds files in memory, shared by every caller for the job, read like
    /// files (batches, projections, JSON); a file past the budget goes whole to the scratch
    /// directory instead; removing the job's scratch drops both.
    #[test]
    fn in_process_scratch_holds_files_in_memory_up_to_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec_with_scratch(dir.path(), 1);
        let files = ScratchFiles::in_process(&spec).unwrap();
        let ScratchFiles::Memory(memory) = &files else {
            panic!("not in memory: {files:?}")
        };
        let job_dir = match ScratchFiles::of(&spec).unwrap() {
            ScratchFiles::Dir(d) => d,
            other => panic!("{other:?}"),
        };
        let (schema, small) = numbers(1000);
        let key = Path::new("00-standardise/00000-a1.partitions.arrow");
        files
            .write_ipc(key, &schema, [Ok(small.clone()), Ok(small.slice(10, 5))])
            .unwrap();
        files
            .write_json(Path::new("00-standardise/00000-a1.tf.json"), &[1, 2])
            .unwrap();
        assert!(memory.used() > 0);
        assert!(!job_dir.exists(), "nothing written to disk");
        // Another task of the job, in this process, reads what the first wrote.
        let other = ScratchFiles::in_process(&spec).unwrap();
        let mut file = other.ipc(key).unwrap();
        assert_eq!(file.batches(), 2);
        assert_eq!(file.batch(0).unwrap(), small);
        assert_eq!(file.batch(1).unwrap(), small.slice(10, 5));
        assert!(file.batch(2).is_err());
        let projected = other
            .ipc_columns(key, &schema, &["s"])
            .unwrap()
            .read_all()
            .unwrap();
        assert_eq!(projected[0], small.project(&[1]).unwrap());
        assert_eq!(
            other
                .read_to_string(Path::new("00-standardise/00000-a1.tf.json"))
                .unwrap(),
            "[1,2]"
        );

        // 200,000 numbers and their text are more than the MiB left: the whole file spills.
        let (_, large) = numbers(200_000);
        let used = memory.used();
        let spilled = Path::new("03-compare/00001-a2.gammas.arrow");
        files
            .write_ipc(spilled, &schema, [Ok(small.clone()), Ok(large.clone())])
            .unwrap();
        assert_eq!(
            memory.used(),
            used,
            "a spilled file takes none of the budget"
        );
        assert!(job_dir.join(spilled).exists());
        let read = files.ipc(spilled).unwrap().read_all().unwrap();
        assert_eq!(read, vec![small.clone(), large]);
        // A batch of another schema is refused, as a file writer refuses it.
        let (_, wrong) = numbers(3);
        let wrong = wrong.project(&[0]).unwrap();
        assert!(
            files
                .write_ipc(Path::new("x/y.arrow"), &schema, [Ok(wrong)])
                .is_err()
        );
        assert_eq!(memory.used(), used);

        remove_scratch(&spec).unwrap();
        assert!(!job_dir.exists());
        let again = ScratchFiles::in_process(&spec).unwrap();
        assert!(again.ipc(key).is_err(), "removed with the job's scratch");
        assert!(again.ipc(spilled).is_err());
        // 0 MiB: every file is written to the directory.
        let spec = spec_with_scratch(dir.path(), 0);
        remove_scratch(&spec).unwrap();
        let files = ScratchFiles::in_process(&spec).unwrap();
        files.write_ipc(key, &schema, [Ok(small)]).unwrap();
        assert!(job_dir.join(key).exists());
        remove_scratch(&spec).unwrap();
    }
}
