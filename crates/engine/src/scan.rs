//! Scan: an input's records as Arrow batches of text columns, read by DataFusion.
//!
//! Every column the job uses is read as text, whatever its type in the file: standardisation works on
//! the text as the source wrote it, and type inference would otherwise turn PINs into integers and
//! drop their leading zeros. Parquet columns come as string views (`Utf8View`: values are not copied
//! out of the decoded pages), CSV columns as strings (`Utf8`); [`Text`] reads either.

use std::io::ErrorKind::InvalidData;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, StringViewArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use khop_vn::text::{Encoding, Undecodable, decode_bytes};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::ParquetMetaDataReader;
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::spec::{Input, InputFormat};
use crate::storage::{self, Object};

/// The columns of one input a job reads, in a fixed order: the id first.
pub fn columns_of(input: &Input) -> Vec<String> {
    let mut columns = vec![input.id.clone()];
    for cols in input.columns.values() {
        for c in cols.names() {
            if !columns.iter().any(|x| x == c) {
                columns.push(c.to_owned());
            }
        }
    }
    columns
}

/// The files of an input, sorted: a directory (or an object-store prefix) is read whole (its files
/// of the input's format); an empty match is a clear error rather than an empty table.
pub fn input_files(input: &Input) -> Result<Vec<String>, EngineError> {
    let path = input.path.as_str();
    let extension = match input.format {
        InputFormat::Parquet => "parquet",
        InputFormat::Csv => "csv",
    };
    let local = std::path::Path::new(path);
    let files: Vec<String> = if storage::is_url(path) {
        let error = |e: EngineError| EngineError::Input {
            source_name: input.name.clone(),
            message: e.to_string(),
        };
        let prefix = Object::at(path).map_err(error)?;
        let listed = prefix.list().map_err(error)?;
        let exact = listed.iter().any(|(o, _)| o.path == prefix.path);
        listed
            .into_iter()
            .filter(|(o, _)| exact || o.path.extension() == Some(extension))
            .map(|(o, _)| o.to_string())
            .collect()
    } else if local.is_dir() {
        let mut files: Vec<String> = std::fs::read_dir(local)
            .map_err(|e| EngineError::Input {
                source_name: input.name.clone(),
                message: format!("{path}: {e}"),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == extension))
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    } else if local.is_file() {
        vec![path.to_owned()]
    } else {
        vec![]
    };
    if files.is_empty() {
        return Err(EngineError::Input {
            source_name: input.name.clone(),
            message: format!("no .{extension} files at {path}"),
        });
    }
    Ok(files)
}

/// A line of a CSV input that could not be read as a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRow {
    /// Zero-based record number in the input, in file order (bad rows count as records).
    pub row: u64,
    /// The id field, when the line had one where the header says.
    pub record_id: String,
    pub reason: String,
}

/// One batch of an input: text columns named as in `columns_of(input)`, the record number of each
/// row, and the lines before and among them that could not be read.
pub struct Scanned {
    pub batch: RecordBatch,
    pub rows: Vec<u64>,
    pub bad: Vec<BadRow>,
}

/// A run of whole row groups of one Parquet file: a `standardise` task's share of its input when the
/// file is larger than `execution.task_rows` (see [`pieces`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// Row groups `first_group .. first_group + groups` of the file.
    pub first_group: usize,
    pub groups: usize,
    /// The file's row where the piece starts, and the piece's rows.
    pub first_row: u64,
    pub rows: u64,
    /// Rows of the whole input (every file of the side): the piece's share of it bounds the sample
    /// the task keeps.
    pub input_rows: u64,
}

/// The errors of reading one file of an input, each naming the file: those another attempt may get
/// past (IO, the object store) and those of the file's own bytes, which every attempt meets alike.
#[derive(Clone)]
struct FileErrors {
    source_name: String,
    file: String,
}

impl FileErrors {
    fn new(input: &Input, file: &str) -> Self {
        FileErrors {
            source_name: input.name.clone(),
            file: file.to_owned(),
        }
    }

    fn io(&self, message: impl std::fmt::Display) -> EngineError {
        EngineError::Input {
            source_name: self.source_name.clone(),
            message: format!("{}: {message}", self.file),
        }
    }

    fn bad(&self, message: impl std::fmt::Display) -> EngineError {
        EngineError::BadInput {
            source_name: self.source_name.clone(),
            message: format!("{}: {message}", self.file),
        }
    }
}

/// Rows per row group of a Parquet file, from its footer.
pub fn row_groups(input: &Input, file: &str) -> Result<Vec<u64>, EngineError> {
    Ok(parquet_metadata(input, file)?
        .metadata()
        .row_groups()
        .iter()
        .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
        .collect())
}

/// The columns of one file of `input`, in the file's order: a Parquet file's schema, a CSV file's
/// header (read as the job reads it: its delimiter and encoding, a byte order mark skipped, names
/// trimmed). For a job that does not know them yet (`khop profile`).
pub fn file_columns(input: &Input, file: &str) -> Result<Vec<String>, EngineError> {
    match input.format {
        InputFormat::Parquet => Ok(parquet_metadata(input, file)?
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()),
        InputFormat::Csv => Ok(open_csv(input, file)?
            .1
            .iter()
            .map(|h| h.trim().to_owned())
            .collect()),
    }
}

/// A Parquet file's footer, from the file system or its object store.
fn parquet_metadata(input: &Input, file: &str) -> Result<ArrowReaderMetadata, EngineError> {
    let errors = FileErrors::new(input, file);
    if storage::is_url(file) {
        let object = Object::at(file).map_err(|e| errors.io(e))?;
        let errors = errors.clone();
        Ok(storage::block_on(async move { parquet_footer(&object, &errors).await })?.1)
    } else {
        let reader = std::fs::File::open(file).map_err(|e| errors.io(e))?;
        ArrowReaderMetadata::load(&reader, ArrowReaderOptions::default()).map_err(|e| errors.bad(e))
    }
}

/// Cuts a file of row groups (rows per group) into pieces of at most `task_rows` rows, each a run of
/// whole row groups (a larger group is a piece alone). `input_rows` is left 0 for the caller.
pub fn pieces(groups: &[u64], task_rows: u64) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut row = 0u64;
    for (g, &rows) in groups.iter().enumerate() {
        match pieces.last_mut() {
            Some(p) if p.rows + rows <= task_rows => {
                p.groups += 1;
                p.rows += rows;
            }
            _ => pieces.push(Piece {
                first_group: g,
                groups: 1,
                first_row: row,
                rows,
                input_rows: 0,
            }),
        }
        row += rows;
    }
    pieces
}

/// Reads the job's columns of `file` (of `input`), or of its `piece`, in row order, calling `each`
/// per batch; record numbers are the rows of the file (from `piece.first_row`). Parquet goes through
/// DataFusion (on a small runtime of its own), reading only the piece's row groups; CSV through
/// [`CsvRecords`], so that a malformed line becomes a rejected record instead of failing the whole
/// scan (a CSV file is never cut into pieces).
pub fn scan(
    input: &Input,
    file: &str,
    piece: Option<&Piece>,
    batch_rows: usize,
    mut each: impl FnMut(Scanned) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    if input.format == InputFormat::Csv {
        return scan_csv(input, file, batch_rows, each);
    }
    let wanted = columns_of(input);
    let errors = FileErrors::new(input, file);
    let error = |message: String| errors.io(message);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| error(e.to_string()))?;
    // Where DataFusion reads the file from: the local file system, or the object's bucket in a
    // store of this scan's own (its connections belong to this scan's runtime).
    let (store_url, object, location, size, metadata) = if storage::is_url(file) {
        let object = Object::at_with_own_store(file).map_err(|e| error(e.to_string()))?;
        let (size, metadata) = runtime.block_on(parquet_footer(&object, &errors))?;
        let location = object.path.to_string();
        (
            object.bucket.clone(),
            Some(object),
            location,
            size,
            metadata,
        )
    } else {
        let path = std::fs::canonicalize(file).map_err(|e| error(e.to_string()))?;
        let reader = std::fs::File::open(&path).map_err(|e| error(e.to_string()))?;
        let size = reader.metadata().map_err(|e| error(e.to_string()))?.len();
        let metadata = ArrowReaderMetadata::load(&reader, ArrowReaderOptions::default())
            .map_err(|e| errors.bad(e))?;
        let location = path.to_string_lossy().into_owned();
        (
            ObjectStoreUrl::local_filesystem(),
            None,
            location,
            size,
            metadata,
        )
    };
    let file_schema = metadata.schema().clone();
    let groups = metadata.metadata().num_row_groups();
    let mut projection = Vec::with_capacity(wanted.len());
    for column in &wanted {
        match file_schema.index_of(column) {
            Ok(i) => projection.push(i),
            Err(_) => {
                let available: Vec<&str> = file_schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                return Err(errors.bad(format!(
                    "column `{column}` not found (columns: {})",
                    available.join(", ")
                )));
            }
        }
    }
    let mut access = ParquetAccessPlan::new_none(groups);
    let (first, count) = piece.map_or((0, groups), |p| (p.first_group, p.groups));
    if first + count > groups {
        return Err(errors.bad(format!(
            "row groups {first}..{} asked, the file has {groups}",
            first + count
        )));
    }
    for g in first..first + count {
        access.scan(g);
    }
    let mut next_row = piece.map_or(0, |p| p.first_row);
    let schema = Arc::new(Schema::new(
        wanted
            .iter()
            .map(|c| Field::new(c, DataType::Utf8View, true))
            .collect::<Vec<_>>(),
    ));
    // The file is decoded on the scan's runtime while this thread hands the previous batch to `each`:
    // decoding overlaps standardising. Two batches at most wait in the channel.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<RecordBatch, String>>(2);
    let decoder = runtime.spawn(async move {
        let decode = async {
            let ctx =
                SessionContext::new_with_config(SessionConfig::new().with_batch_size(batch_rows));
            if let Some(object) = &object {
                ctx.register_object_store(store_url.as_ref(), object.store.clone());
            }
            // Text columns are read as string views: a value points into the decoded page (or
            // its dictionary) instead of being copied into one buffer that grows as it fills.
            let source = ParquetSource::new(Arc::new(Schema::new(
                file_schema
                    .fields()
                    .iter()
                    .map(|f| match f.data_type() {
                        DataType::Utf8 | DataType::LargeUtf8 => {
                            Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View))
                        }
                        _ => f.clone(),
                    })
                    .collect::<Vec<_>>(),
            )));
            let partitioned = PartitionedFile::new(location, size).with_extension(access);
            let config = FileScanConfigBuilder::new(store_url, Arc::new(source))
                .with_file(partitioned)
                .with_batch_size(Some(batch_rows))
                .with_projection_indices(Some(projection))
                .map_err(|e| e.to_string())?
                .build();
            // One file in one partition: rows come in file order.
            let exec = DataSourceExec::from_data_source(config);
            let mut stream = exec.execute(0, ctx.task_ctx()).map_err(|e| e.to_string())?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| e.to_string())?;
                let columns = batch
                    .columns()
                    .iter()
                    .map(|c| {
                        if c.data_type() == &DataType::Utf8View {
                            Ok(c.clone())
                        } else {
                            // Through `Utf8`: every type that has a text form casts to it.
                            cast(c, &DataType::Utf8).and_then(|a| cast(&a, &DataType::Utf8View))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                let batch =
                    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
                if sender.send(Ok(batch)).await.is_err() {
                    // The consumer stopped (its own error): nothing more to decode for.
                    return Ok(());
                }
            }
            Ok::<(), String>(())
        };
        if let Err(e) = decode.await {
            let _ = sender.send(Err(e)).await;
        }
    });
    while let Some(batch) = receiver.blocking_recv() {
        let batch = batch.map_err(error)?;
        let rows = (next_row..next_row + batch.num_rows() as u64).collect();
        next_row += batch.num_rows() as u64;
        each(Scanned {
            batch,
            rows,
            bad: Vec::new(),
        })?;
    }
    runtime
        .block_on(decoder)
        .map_err(|e| error(format!("decoding stopped: {e}")))
}

/// The CSV half of [`scan`]: the file is read and parsed on a thread of its own, a batch ahead of
/// `each` (which standardises the batch before), as Parquet is decoded on its own runtime.
fn scan_csv(
    input: &Input,
    file: &str,
    batch_rows: usize,
    mut each: impl FnMut(Scanned) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<Scanned, EngineError>>(1);
    std::thread::scope(|scope| {
        let parse = move || {
            let sent = |scanned| sender.send(Ok(scanned)).is_ok();
            if let Err(e) = read_csv(input, file, batch_rows, sent) {
                let _ = sender.send(Err(e));
            }
        };
        std::thread::Builder::new()
            .name("khop-csv".into())
            .spawn_scoped(scope, parse)
            .map_err(|e| EngineError::Other(format!("no thread to read {file}: {e}")))?;
        let result = receiver
            .iter()
            .try_for_each(|scanned| scanned.and_then(&mut each));
        // Stops the reading thread at its next batch, if `each` failed before the end.
        drop(receiver);
        result
    })
}

/// Reads CSV `file` of `input` in batches of `batch_rows` records, handing each to `send` until it
/// says stop (false). Malformed records are bad rows with their reason; IO errors and a file that is
/// not CSV in its encoding at all are errors.
fn read_csv(
    input: &Input,
    file: &str,
    batch_rows: usize,
    mut send: impl FnMut(Scanned) -> bool,
) -> Result<(), EngineError> {
    let wanted = columns_of(input);
    let mut next_row = 0u64;
    let errors = FileErrors::new(input, file);
    let encoding = input.csv_options().encoding();
    let (mut records, header) = open_csv(input, file)?;
    // A file that is no CSV in its encoding fails every attempt alike; an IO error may not.
    let read_error = |e: std::io::Error| match e.kind() {
        InvalidData => errors.bad(e),
        _ => errors.io(e),
    };
    records.expect_fields(header.len());
    let mut positions = Vec::with_capacity(wanted.len());
    for column in &wanted {
        match header.iter().position(|h| h.trim() == column) {
            Some(p) => positions.push(p),
            None => {
                return Err(errors.bad(format!(
                    "column `{column}` not found (columns: {})",
                    header.join(", ")
                )));
            }
        }
    }
    // A header cell, as the reasons of rejected records name it.
    let column_name = |i: usize| match header.get(i) {
        Some(name) => format!("column `{}`", name.trim()),
        None => format!("field {}", i + 1),
    };
    loop {
        let mut builders: Vec<arrow::array::StringBuilder> = wanted
            .iter()
            .map(|_| arrow::array::StringBuilder::new())
            .collect();
        let mut rows = Vec::new();
        let mut bad = Vec::new();
        let mut done = false;
        while rows.len() < batch_rows {
            let line = records.line();
            let record = match records.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => {
                    done = true;
                    break;
                }
                Err(e) => return Err(read_error(e)),
            };
            if record.len() == 1 && record.field(0).is_empty() && record.unclosed.is_none() {
                continue; // a blank line is no record
            }
            let row = next_row;
            next_row += 1;
            if let Some(field) = record.unclosed {
                bad.push(BadRow {
                    row,
                    record_id: record.field(positions[0]).to_owned(),
                    reason: format!(
                        "{file} line {line}: unclosed quote in {}",
                        column_name(field)
                    ),
                });
                continue;
            }
            if record.len() != header.len() {
                bad.push(BadRow {
                    row,
                    record_id: record.field(positions[0]).to_owned(),
                    reason: format!(
                        "{file} line {line}: {} fields where the header has {}",
                        record.len(),
                        header.len()
                    ),
                });
                continue;
            }
            if let Some((column, e)) = record.undecodable {
                bad.push(BadRow {
                    row,
                    record_id: record.field(positions[0]).to_owned(),
                    reason: format!(
                        "{file} line {line}: {} is not {} text: {} (csv.encoding)",
                        column_name(column),
                        encoding.name(),
                        not_text(column + 1, e)
                    ),
                });
                continue;
            }
            for (b, &p) in builders.iter_mut().zip(&positions) {
                let value = record.field(p);
                if value.is_empty() {
                    b.append_null();
                } else {
                    b.append_value(value);
                }
            }
            rows.push(row);
        }
        let schema = text_schema(&wanted);
        let columns: Vec<ArrayRef> = builders
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(schema, columns)?;
        if (batch.num_rows() > 0 || !bad.is_empty()) && !send(Scanned { batch, rows, bad }) {
            return Ok(()); // the consumer stopped (its own error)
        }
        if done {
            break;
        }
    }
    Ok(())
}

/// The records of a CSV file, from the file system or an object store.
type CsvFile = CsvRecords<std::io::BufReader<Box<dyn std::io::Read>>>;

/// A CSV file of `input` opened as records, its header read (checked as text in the input's encoding,
/// with no quote left open).
fn open_csv(input: &Input, file: &str) -> Result<(CsvFile, Vec<String>), EngineError> {
    let errors = FileErrors::new(input, file);
    let reader: Box<dyn std::io::Read> = if storage::is_url(file) {
        Box::new(
            Object::at(file)
                .and_then(|o| o.sequential_reader())
                // The object's error names it already.
                .map_err(|e| EngineError::Input {
                    source_name: input.name.clone(),
                    message: e.to_string(),
                })?,
        )
    } else {
        Box::new(std::fs::File::open(file).map_err(|e| errors.io(e))?)
    };
    let options = input.csv_options();
    let encoding = options.encoding();
    let mut records = CsvRecords::new(
        std::io::BufReader::with_capacity(1 << 20, reader),
        options.delimiter(),
        encoding,
    );
    // A file that is no CSV in its encoding fails every attempt alike; an IO error may not.
    let read_error = |e: std::io::Error| match e.kind() {
        InvalidData => errors.bad(e),
        _ => errors.io(e),
    };
    let header = match records.next_record().map_err(read_error)? {
        Some(header) => {
            if let Some((column, e)) = header.undecodable {
                return Err(errors.bad(format!(
                    "the header is not {} text: {} (csv.encoding)",
                    encoding.name(),
                    not_text(column + 1, e)
                )));
            }
            if let Some(field) = header.unclosed {
                return Err(errors.bad(format!(
                    "line 1: the header's field {} opens a quote it never closes",
                    field + 1
                )));
            }
            header.to_vec()
        }
        None => return Err(errors.bad("the file is empty: no header")),
    };
    Ok((records, header))
}

/// Bytes of a Parquet object's tail fetched first: the footer of the job's inputs (a few row groups
/// of a few columns) fits, so one request usually brings the size and the whole footer.
const PARQUET_TAIL: u64 = 64 << 10;

/// A Parquet object's size and the metadata in its footer: the tail first (which tells the size),
/// then the rest of the footer if the tail did not hold it all.
async fn parquet_footer(
    object: &Object,
    errors: &FileErrors,
) -> Result<(u64, ArrowReaderMetadata), EngineError> {
    parquet_footer_from(object, PARQUET_TAIL, errors).await
}

async fn parquet_footer_from(
    object: &Object,
    tail_bytes: u64,
    errors: &FileErrors,
) -> Result<(u64, ArrowReaderMetadata), EngineError> {
    let bad = |m: &dyn std::fmt::Display| errors.bad(m);
    let (size, tail) = object.tail(tail_bytes).await.map_err(|e| errors.io(e))?;
    if size < 12 || tail.len() < 8 {
        return Err(bad(&"too short for a Parquet file"));
    }
    let end = &tail[tail.len() - 8..];
    if &end[4..] != b"PAR1" {
        return Err(bad(&"not a Parquet file (no PAR1 at its end)"));
    }
    let length = u64::from(u32::from_le_bytes([end[0], end[1], end[2], end[3]]));
    if length + 12 > size {
        return Err(bad(&"a Parquet footer longer than the file"));
    }
    let footer = if length + 8 <= tail.len() as u64 {
        tail.slice(tail.len() - 8 - length as usize..tail.len() - 8)
    } else {
        object
            .get_range(size - 8 - length..size - 8)
            .await
            .map_err(|e| errors.io(e))?
    };
    let metadata = ParquetMetaDataReader::decode_metadata(&footer).map_err(|e| bad(&e))?;
    let metadata = ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::default())
        .map_err(|e| bad(&e))?;
    Ok((size, metadata))
}

/// Where a CSV field stops being text: its column (1-based), the byte and its offset in the field
/// (never the field's content: it is personal data).
fn not_text(column: usize, e: Undecodable) -> String {
    format!(
        "byte 0x{:02X} at offset {} of field {column}",
        e.byte, e.offset
    )
}

/// The schema of a batch of nullable text `columns` (a CSV file's, as scanned).
pub(crate) fn text_schema(columns: &[impl AsRef<str>]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.as_ref(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// A batch of text `columns`, each column's values given by `value` (for tests that standardise a
/// few records).
#[cfg(test)]
pub(crate) fn text_batch<'a>(
    columns: &[String],
    value: impl Fn(&str) -> Vec<Option<&'a str>>,
) -> RecordBatch {
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|c| Arc::new(StringArray::from(value(c))) as ArrayRef)
        .collect();
    RecordBatch::try_new(text_schema(columns), arrays).expect("columns of one length")
}

/// A text column of a scanned batch: string views as Parquet is read, strings as CSV is (and as
/// [`crate::standardise::standardise_batch`]'s callers build their batches).
#[derive(Clone, Debug)]
pub enum Text {
    Strings(StringArray),
    Views(StringViewArray),
}

impl Text {
    /// Row `row`'s text, `""` when it is null.
    #[inline]
    pub fn get(&self, row: usize) -> &str {
        match self {
            Text::Strings(c) if !c.is_null(row) => c.value(row),
            Text::Views(c) if !c.is_null(row) => c.value(row),
            _ => "",
        }
    }
}

/// A text column of a scanned batch; all nulls where the batch has no such text column.
pub fn text(batch: &RecordBatch, column: &str) -> Text {
    let column = batch.column_by_name(column);
    if let Some(views) = column.and_then(|c| c.as_any().downcast_ref::<StringViewArray>()) {
        return Text::Views(views.clone());
    }
    Text::Strings(
        column
            .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
            .unwrap_or_else(|| StringArray::new_null(batch.num_rows())),
    )
}

/// Records of a CSV file (RFC 4180: fields separated by a delimiter, optionally in double quotes with
/// `""` for a quote, line breaks allowed inside quotes), in any [`Encoding`]: the structure is found
/// in the bytes (every encoding here writes ASCII as ASCII and nothing else below 0x80), then the
/// fields are decoded. A UTF-8 byte order mark is skipped. It fails only on IO, and on a file that
/// starts as no file in its encoding does (a UTF-16 byte order mark, or a UTF-8 one in an 8-bit
/// encoding); a field that is not text is reported with its record ([`CsvRecord::undecodable`]).
///
/// A quoted field may span lines, but a stray quote must not swallow the records after it: when a
/// quoted field is still open at the end of its first line, the record it makes is kept only if
/// the quote closes before the end of the file, within [`MAX_RECORD_BYTES`] of lines, right before
/// a delimiter or a line break, and the record has the header's number of fields
/// ([`CsvRecords::expect_fields`]). Otherwise the record is its first line alone
/// ([`CsvRecord::unclosed`]) and the lines after it are read again as records of their own: every
/// physical record is counted.
///
/// A record's fields are kept one after another in one buffer, reused from record to record; a
/// UTF-8 record is checked once, whole, and its buffer becomes its text without a copy.
pub struct CsvRecords<R> {
    reader: R,
    line: u64,
    /// The physical line being parsed.
    buf: Vec<u8>,
    /// Lines read past the first line of a record whose quote was never closed: read again, before
    /// the reader's, from `replay_at`.
    replay: Vec<u8>,
    replay_at: usize,
    /// The lines of the record being parsed after its first, while a quoted field spans them.
    held: Vec<u8>,
    /// The header's number of fields, once known: a record spanning lines must have as many.
    fields: Option<usize>,
    delimiter: u8,
    encoding: Encoding,
    /// The current record's fields, unquoted, one after another: bytes while it is parsed, text once
    /// decoded; `ends[i]` is where field `i` ends in each.
    bytes: Vec<u8>,
    text: String,
    ends: Vec<usize>,
}

/// The most bytes the lines of a record after its first may hold: a quoted field still open past
/// them is taken for a quote never closed (a legitimate multi-line field, an address or a note,
/// holds far less), so a stray quote never reads more of the file than this ahead.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The state of a record's parse from one physical line to the next.
struct LineParse {
    delimiter: u8,
    quoted: bool,
    /// Where the current field starts in the record's bytes.
    field_start: usize,
    /// A quote closed with more of its field after it (`"Lê"n`): read as text on a record's first
    /// line, but on a line after it the sign that the quote closed was another field's opening.
    stray: bool,
}

impl LineParse {
    /// Adds the fields of `line` to the record's `bytes` (unquoted), each field's end to `ends`.
    #[inline]
    fn line(&mut self, line: &[u8], bytes: &mut Vec<u8>, ends: &mut Vec<usize>) {
        let mut i = 0;
        while i < line.len() {
            let b = line[i];
            i += 1;
            if self.quoted {
                if b != b'"' {
                    bytes.push(b);
                } else if line.get(i) == Some(&b'"') {
                    bytes.push(b'"');
                    i += 1;
                } else {
                    self.quoted = false;
                    self.stray |= !matches!(line.get(i), None | Some(b'\r' | b'\n'))
                        && line.get(i) != Some(&self.delimiter);
                }
            } else if b == self.delimiter {
                ends.push(bytes.len());
                self.field_start = bytes.len();
            } else if b == b'"' && bytes.len() == self.field_start {
                self.quoted = true;
            } else if b != b'\r' && b != b'\n' {
                bytes.push(b);
            }
        }
    }
}

/// One record of a CSV file, borrowed from its [`CsvRecords`] until the next is read.
#[derive(Debug)]
pub struct CsvRecord<'a> {
    text: &'a str,
    ends: &'a [usize],
    /// The first field that is not text in the file's encoding, and where in it; that field is given
    /// with U+FFFD for what could not be read.
    pub undecodable: Option<(usize, Undecodable)>,
    /// The field whose opening quote was never closed (see [`CsvRecords`]): the record is its first
    /// line alone, that field cut at the line's end.
    pub unclosed: Option<usize>,
}

impl CsvRecord<'_> {
    /// The number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i` (`""` past the last).
    pub fn field(&self, i: usize) -> &str {
        match self.ends.get(i) {
            Some(&end) => {
                let start = if i == 0 { 0 } else { self.ends[i - 1] };
                self.text.get(start..end).unwrap_or_default()
            }
            None => "",
        }
    }

    /// The fields, owned.
    pub fn to_vec(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.field(i).to_owned()).collect()
    }
}

impl<R: std::io::BufRead> CsvRecords<R> {
    pub fn new(reader: R, delimiter: u8, encoding: Encoding) -> Self {
        CsvRecords {
            reader,
            line: 1,
            buf: Vec::new(),
            replay: Vec::new(),
            replay_at: 0,
            held: Vec::new(),
            fields: None,
            delimiter,
            encoding,
            bytes: Vec::new(),
            text: String::new(),
            ends: Vec::new(),
        }
    }

    /// The 1-based line number where the next record starts.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Says how many fields the header has: from now on a record whose quoted field spans lines
    /// must have as many.
    pub fn expect_fields(&mut self, fields: usize) {
        self.fields = Some(fields);
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> std::io::Result<Option<CsvRecord<'_>>> {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.clear();
        self.ends.clear();
        self.held.clear();
        let first_line = self.line;
        let mut parse = LineParse {
            delimiter: self.delimiter,
            quoted: false,
            field_start: 0,
            stray: false,
        };
        // Where the first line's fields end, when it ends inside a quoted field.
        let mut first: Option<(usize, usize)> = None;
        let unclosed;
        loop {
            let read = self.read_line()?;
            if !read {
                if first_line == self.line {
                    self.bytes = bytes;
                    return Ok(None);
                }
                // The end of the file inside a quoted field.
                unclosed = parse.quoted;
                break;
            }
            if self.line == 1 {
                self.skip_byte_order_mark()?;
            }
            self.line += 1;
            if first.is_some() {
                self.held.extend_from_slice(&self.buf);
            }
            parse.line(&self.buf, &mut bytes, &mut self.ends);
            let fields = self.ends.len() + 1;
            let continued = first.is_some();
            if continued && parse.stray {
                unclosed = true;
                break;
            }
            if !parse.quoted {
                unclosed = continued && self.fields.is_some_and(|n| fields != n);
                break;
            }
            if !continued {
                parse.stray = false;
                let line_break = if self.buf.ends_with(b"\r\n") {
                    2
                } else {
                    usize::from(self.buf.ends_with(b"\n"))
                };
                first = Some((bytes.len() - line_break, self.ends.len()));
            } else if self.held.len() > MAX_RECORD_BYTES || self.fields.is_some_and(|n| fields > n)
            {
                unclosed = true;
                break;
            }
        }
        let unclosed = match first {
            Some((len, open_field)) if unclosed => {
                bytes.truncate(len);
                self.ends.truncate(open_field);
                self.reread_after(first_line);
                Some(open_field)
            }
            _ => None,
        };
        self.ends.push(bytes.len());
        let undecodable = self.decode(bytes);
        Ok(Some(CsvRecord {
            text: &self.text,
            ends: &self.ends,
            undecodable,
            unclosed,
        }))
    }

    /// The next physical line into `buf` (with its `\n`), from the lines to read again first; false
    /// at the end of the file.
    fn read_line(&mut self) -> std::io::Result<bool> {
        self.buf.clear();
        let rest = &self.replay[self.replay_at..];
        if !rest.is_empty() {
            let n = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |p| p + 1);
            self.buf.extend_from_slice(&rest[..n]);
            self.replay_at += n;
            return Ok(true);
        }
        Ok(self.reader.read_until(b'\n', &mut self.buf)? > 0)
    }

    /// Goes back to the line after `first_line`: the lines held since are read again.
    fn reread_after(&mut self, first_line: u64) {
        let mut replay = std::mem::take(&mut self.held);
        replay.extend_from_slice(&self.replay[self.replay_at..]);
        self.held = std::mem::replace(&mut self.replay, replay);
        self.held.clear();
        self.replay_at = 0;
        self.line = first_line + 1;
    }

    /// Makes `bytes` (the fields, ending at `ends`) the record's text: in place when it is UTF-8
    /// text in the file's encoding (the two buffers swap roles), else field by field, with `ends`
    /// moved to where the fields end in the text.
    fn decode(&mut self, bytes: Vec<u8>) -> Option<(usize, Undecodable)> {
        // ASCII is itself in every encoding here; other bytes are UTF-8 text in UTF-8 only.
        let bytes = if self.encoding == Encoding::Utf8 || bytes.is_ascii() {
            match String::from_utf8(bytes) {
                Ok(text) => {
                    self.bytes = std::mem::replace(&mut self.text, text).into_bytes();
                    return None;
                }
                Err(e) => e.into_bytes(),
            }
        } else {
            bytes
        };
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        let mut undecodable = None;
        let mut start = 0;
        for (i, end) in self.ends.iter_mut().enumerate() {
            let field = &bytes[start..*end];
            match decode_bytes(field, self.encoding) {
                Ok(decoded) => text.push_str(&decoded),
                Err(e) => {
                    undecodable.get_or_insert((i, e));
                    text.push_str(&String::from_utf8_lossy(field));
                }
            }
            start = *end;
            *end = text.len();
        }
        self.text = text;
        self.bytes = bytes;
        undecodable
    }

    /// At the start of the file (in `buf`): drops a UTF-8 byte order mark, and refuses a file whose
    /// mark says it is not in the encoding it is read in.
    fn skip_byte_order_mark(&mut self) -> std::io::Result<()> {
        let refuse = |message: String| Err(std::io::Error::new(InvalidData, message));
        if self.buf.starts_with(&[0xFF, 0xFE]) || self.buf.starts_with(&[0xFE, 0xFF]) {
            return refuse(
                "the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as UTF-8, \
                 or convert it (iconv -f UTF-16 -t UTF-8)"
                    .into(),
            );
        }
        if self.buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            if self.encoding != Encoding::Utf8 {
                return refuse(format!(
                    "the file starts with a UTF-8 byte order mark but is read as {} (csv.encoding)",
                    self.encoding.name()
                ));
            }
            self.buf.drain(..3);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_cut_into_runs_of_whole_row_groups() {
        let cut = |groups: &[u64], task_rows| -> Vec<(usize, usize, u64, u64)> {
            pieces(groups, task_rows)
                .iter()
                .map(|p| (p.first_group, p.groups, p.first_row, p.rows))
                .collect()
        };
        assert_eq!(
            cut(&[10, 10, 10, 10, 5], 20),
            [(0, 2, 0, 20), (2, 2, 20, 20), (4, 1, 40, 5)]
        );
        // A group larger than a task is a task alone; one that fits goes with its neighbours.
        assert_eq!(
            cut(&[5, 50, 5, 5], 20),
            [(0, 1, 0, 5), (1, 1, 5, 50), (2, 2, 55, 10)]
        );
        assert_eq!(cut(&[7, 7, 7], 1 << 40), [(0, 3, 0, 21)]);
        assert!(cut(&[], 10).is_empty());
    }

    /// Parquet columns of any type a source may use come out as their text (string views), nulls
    /// as `""`; CSV columns as strings. Both read alike through [`Text`].
    #[test]
    fn columns_of_any_type_are_read_as_their_text() {
        use arrow::array::{Date32Array, Int64Array, LargeStringArray};
        use std::collections::BTreeMap;
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("number", DataType::Int64, true),
            Field::new("long", DataType::LargeUtf8, true),
            Field::new("day", DataType::Date32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
                Arc::new(Int64Array::from(vec![Some(7), None, Some(-12)])),
                Arc::new(LargeStringArray::from(vec![
                    Some("Nguyễn Văn An, a name longer than twelve bytes"),
                    Some("Lê"),
                    None,
                ])),
                Arc::new(Date32Array::from(vec![None, Some(0), Some(19_000)])),
            ],
        )
        .unwrap();
        let path = dir.path().join("typed.parquet");
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            schema,
            None,
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let csv = dir.path().join("typed.csv");
        std::fs::write(&csv, "id,number,long,day\na,7,x,\nb,,Lê,1970-01-01\n").unwrap();

        let columns = ["number", "long", "day"];
        let read = |file: &std::path::Path, format| {
            let input = Input {
                name: "typed".into(),
                path: file.to_string_lossy().into_owned(),
                format,
                id: "id".into(),
                columns: columns
                    .iter()
                    .map(|&c| (c.to_owned(), crate::spec::Columns::One(c.to_owned())))
                    .collect::<BTreeMap<_, _>>(),
                cache: None,
                csv: None,
                conventions: Default::default(),
            };
            let mut rows: Vec<Vec<String>> = Vec::new();
            scan(&input, &input.path, None, 2, |scanned| {
                let texts: Vec<Text> = ["id", "number", "long", "day"]
                    .iter()
                    .map(|c| text(&scanned.batch, c))
                    .collect();
                for r in 0..scanned.batch.num_rows() {
                    rows.push(texts.iter().map(|t| t.get(r).to_owned()).collect());
                }
                Ok(())
            })
            .unwrap();
            rows
        };
        assert_eq!(
            read(&path, InputFormat::Parquet),
            [
                [
                    "a",
                    "7",
                    "Nguyễn Văn An, a name longer than twelve bytes",
                    ""
                ],
                ["b", "", "Lê", "1970-01-01"],
                ["c", "-12", "", "2022-01-08"],
            ]
        );
        assert_eq!(
            read(&csv, InputFormat::Csv),
            [["a", "7", "x", ""], ["b", "", "Lê", "1970-01-01"]]
        );
    }

    /// The footer of a Parquet object, whether the first request's tail holds all of it or only its
    /// end: the same row groups as the file's own reader sees.
    #[test]
    fn a_parquet_footer_is_read_from_an_object_s_tail() {
        use arrow::array::UInt64Array;
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::UInt64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(UInt64Array::from_iter_values(0..10_000)) as ArrayRef],
        )
        .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(1_000))
            .build();
        let mut bytes = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let object = Object {
            store: Arc::new(object_store::memory::InMemory::new()),
            bucket: ObjectStoreUrl::parse("memory://").unwrap(),
            path: "in/people.parquet".into(),
        };
        object.put(bytes.clone()).unwrap();
        let errors = FileErrors {
            source_name: "people".into(),
            file: object.to_string(),
        };
        let groups = |m: &ArrowReaderMetadata| -> Vec<i64> {
            m.metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect()
        };
        for tail in [12, 64, PARQUET_TAIL] {
            let o = object.clone();
            let errors = errors.clone();
            let (size, metadata) =
                storage::block_on(async move { parquet_footer_from(&o, tail, &errors).await })
                    .unwrap();
            assert_eq!(size, bytes.len() as u64);
            assert_eq!(groups(&metadata), vec![1_000; 10], "tail of {tail} bytes");
        }
        let not_parquet = Object {
            path: "in/notes.parquet".into(),
            ..object.clone()
        };
        not_parquet
            .put(b"not a parquet file at all".to_vec())
            .unwrap();
        let e = storage::block_on(async move { parquet_footer(&not_parquet, &errors).await })
            .unwrap_err();
        assert!(e.to_string().contains("no PAR1"), "{e}");
        // Every attempt would read the same bytes.
        assert!(e.is_permanent(), "{e}");
    }

    /// The records of CSV `bytes`, each its fields or, where one is not text, the field's index.
    fn csv(bytes: &[u8], delimiter: u8, encoding: Encoding) -> Vec<Result<Vec<String>, usize>> {
        let mut r = CsvRecords::new(bytes, delimiter, encoding);
        let mut all = Vec::new();
        while let Some(record) = r.next_record().unwrap() {
            all.push(match record.undecodable {
                None => Ok(record.to_vec()),
                Some((field, _)) => Err(field),
            });
        }
        all
    }

    fn ok(records: &[&[&str]]) -> Vec<Result<Vec<String>, usize>> {
        records
            .iter()
            .map(|r| Ok(r.iter().map(|f| f.to_string()).collect()))
            .collect()
    }

    #[test]
    fn csv_records() {
        let text = "a,b,c\n1,\"x, y\",3\r\n\"say \"\"hi\"\"\",,\n\"multi\nline\",2,3\nlast,1";
        assert_eq!(
            csv(text.as_bytes(), b',', Encoding::Utf8),
            ok(&[
                &["a", "b", "c"],
                &["1", "x, y", "3"],
                &["say \"hi\"", "", ""],
                &["multi\nline", "2", "3"],
                &["last", "1"],
            ])
        );
        // Excel in a Vietnamese locale: semicolons, a byte order mark, CRLF.
        let text = "\u{FEFF}id;họ tên\r\n1;\"Lê; Lan\"\r\n";
        assert_eq!(
            csv(text.as_bytes(), b';', Encoding::Utf8),
            ok(&[&["id", "họ tên"], &["1", "Lê; Lan"]])
        );
        assert_eq!(
            csv(b"id\tname\n1\tAn,B\n", b'\t', Encoding::Utf8),
            ok(&[&["id", "name"], &["1", "An,B"]])
        );
    }

    /// Each encoding's bytes are read as the text they are; a field that is not text is reported,
    /// and the records after it are read.
    #[test]
    fn csv_records_in_each_encoding() {
        let rows = ["id,ho_ten", "1,Nguyễn Văn Hoà", "2,\"Đặng, Thị Thuý\""];
        for encoding in Encoding::ALL {
            let mut bytes = Vec::new();
            for row in rows {
                bytes.extend(khop_vn::text::encode_bytes(row, encoding).unwrap());
                bytes.extend(b"\r\n");
            }
            assert_eq!(
                csv(&bytes, b',', encoding),
                ok(&[
                    &["id", "ho_ten"],
                    &["1", "Nguyễn Văn Hoà"],
                    &["2", "Đặng, Thị Thuý"]
                ]),
                "{encoding:?}"
            );
        }
        // Windows-1258 bytes read as UTF-8; a byte Windows-1258 leaves unassigned.
        let bytes = b"id,name\n1,V\xe3n\n2,An\n3,\x8a\n";
        assert_eq!(
            csv(bytes, b',', Encoding::Utf8),
            [
                ok(&[&["id", "name"]]),
                vec![Err(1)],
                ok(&[&["2", "An"]]),
                vec![Err(1)]
            ]
            .concat()
        );
        assert_eq!(csv(bytes, b',', Encoding::Windows1258)[3], Err(1));
        assert_eq!(
            csv(bytes, b',', Encoding::Windows1258)[1],
            Ok(vec!["1".to_string(), "Văn".to_string()])
        );
    }

    #[test]
    fn csv_files_that_are_not_in_their_encoding_say_so() {
        let first = |bytes: &[u8], encoding| {
            CsvRecords::new(bytes, b',', encoding)
                .next_record()
                .unwrap_err()
                .to_string()
        };
        assert!(first(b"\xff\xfei\x00d\x00", Encoding::Utf8).contains("UTF-16"));
        let tcvn3 = Encoding::Legacy(khop_vn::text::Legacy::Tcvn3);
        assert!(first(b"\xef\xbb\xbfid\n", tcvn3).contains("UTF-8 byte order mark"));
    }

    /// A CSV input of file `path` with columns `id` and `name`, read in `encoding`.
    #[test]
    fn a_files_columns_are_its_header_or_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        // (bytes of a CSV file, delimiter, columns)
        let cases: &[(&[u8], char, &[&str])] = &[
            (b"id,name\n1,a\n", ',', &["id", "name"]),
            (
                b"\xEF\xBB\xBFma; ho ten ;\"ngay, sinh\"\n",
                ';',
                &["ma", "ho ten", "ngay, sinh"],
            ),
        ];
        for &(bytes, delimiter, expected) in cases {
            let path = dir.path().join("f.csv");
            std::fs::write(&path, bytes).unwrap();
            let mut input = csv_input(&path, Encoding::Utf8);
            input.csv = Some(crate::spec::CsvOptions {
                delimiter,
                ..Default::default()
            });
            let file = path.to_string_lossy();
            assert_eq!(file_columns(&input, &file).unwrap(), expected, "{bytes:?}");
        }
        let path = dir.path().join("f.parquet");
        let batch = text_batch(&["pin".to_owned(), "ho_ten".to_owned()], |_| {
            vec![Some("x")]
        });
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            batch.schema(),
            None,
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let mut input = csv_input(&path, Encoding::Utf8);
        input.format = InputFormat::Parquet;
        input.csv = None;
        assert_eq!(
            file_columns(&input, &path.to_string_lossy()).unwrap(),
            ["pin", "ho_ten"]
        );
    }

    fn csv_input(path: &std::path::Path, encoding: Encoding) -> Input {
        Input {
            name: "people".into(),
            path: path.to_string_lossy().into_owned(),
            format: InputFormat::Csv,
            id: "id".into(),
            columns: [("name".to_owned(), crate::spec::Columns::One("name".into()))]
                .into_iter()
                .collect(),
            cache: None,
            csv: Some(crate::spec::CsvOptions {
                encoding: encoding.name().into(),
                ..Default::default()
            }),
            conventions: Default::default(),
        }
    }

    /// What a scan of CSV `bytes` (in `encoding`) gives: each record by its number, a row as
    /// `id|name`, a bad row as its reason less the file's path. Records must be numbered 0, 1, 2...
    fn records_of(bytes: &[u8], encoding: Encoding) -> Result<Vec<String>, EngineError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.csv");
        std::fs::write(&path, bytes).unwrap();
        let input = csv_input(&path, encoding);
        let mut records: Vec<(u64, String)> = Vec::new();
        let prefix = format!("{} ", path.display());
        scan(&input, &input.path, None, 4, |scanned| {
            let (id, name) = (text(&scanned.batch, "id"), text(&scanned.batch, "name"));
            for (r, &row) in scanned.rows.iter().enumerate() {
                records.push((row, format!("{}|{}", id.get(r), name.get(r))));
            }
            for b in &scanned.bad {
                records.push((b.row, b.reason.trim_start_matches(&prefix).to_owned()));
            }
            Ok(())
        })?;
        records.sort();
        for (n, (row, _)) in records.iter().enumerate() {
            assert_eq!(
                *row, n as u64,
                "records numbered in file order: {records:?}"
            );
        }
        Ok(records.into_iter().map(|(_, r)| r).collect())
    }

    /// A quote left open never takes the records after it: its line is rejected and the lines after
    /// it read again, in every encoding; a quoted field that spans lines and makes a whole record is
    /// one record. Ragged lines are rejected with their line numbers.
    #[test]
    fn an_unclosed_quote_rejects_its_line_and_the_rest_is_read() {
        let unclosed = |line: u32, column: &str| format!("line {line}: unclosed quote in {column}");
        let cases: Vec<(&str, &str, Vec<String>)> = vec![
            (
                "the quote open till the end of the file",
                "id,name\n1,An\n2,\"Bình\n3,Chi\n4,Dũng\n",
                vec![
                    "1|An".into(),
                    unclosed(3, "column `name`"),
                    "3|Chi".into(),
                    "4|Dũng".into(),
                ],
            ),
            (
                "closed by a later line's quote, with fields too many",
                "id,name\n1,\"Lê, An\n2,Bình\n3,\"Chi, Hà\"\n4,Dũng\n",
                vec![
                    unclosed(2, "column `name`"),
                    "2|Bình".into(),
                    "3|Chi, Hà".into(),
                    "4|Dũng".into(),
                ],
            ),
            (
                "closed by a later line, with fields too few",
                "id,name\n\"1,An\n2\"\n3,Chi\n",
                vec![
                    unclosed(2, "column `id`"),
                    "line 3: 1 fields where the header has 2".into(),
                    "3|Chi".into(),
                ],
            ),
            (
                "on the last line, with and without its line break",
                "id,name\n1,An\n2,\"Bình",
                vec!["1|An".into(), unclosed(3, "column `name`")],
            ),
            (
                "a line that is a quote alone",
                "id,name\n\"\n1,An\r\n",
                vec![unclosed(2, "column `id`"), "1|An".into()],
            ),
            (
                "in a field past the header's",
                "id,name\n1,An,\"x\n2,Bình\n",
                vec![unclosed(2, "field 3"), "2|Bình".into()],
            ),
            (
                "a quoted field over lines that makes a whole record",
                "id,name\n1,\"Nguyễn\r\nVăn\n\nAn\"\r\n2,Bình\n",
                vec!["1|Nguyễn\r\nVăn\n\nAn".into(), "2|Bình".into()],
            ),
            (
                "ragged lines",
                "id,name\n1\n2,Bình,x\n\n3,Chi\n4,\"Dũng\",\n",
                vec![
                    "line 2: 1 fields where the header has 2".into(),
                    "line 3: 3 fields where the header has 2".into(),
                    "3|Chi".into(),
                    "line 6: 3 fields where the header has 2".into(),
                ],
            ),
        ];
        for (what, text, expected) in &cases {
            for encoding in Encoding::ALL {
                let mut bytes = khop_vn::text::encode_bytes(text, encoding).unwrap();
                let mut records = records_of(&bytes, encoding).unwrap();
                assert_eq!(&records, expected, "{what}, {encoding:?}");
                if !bytes.ends_with(b"\n") {
                    bytes.push(b'\n');
                    records = records_of(&bytes, encoding).unwrap();
                    assert_eq!(&records, expected, "{what}, line break added, {encoding:?}");
                }
            }
        }
    }

    /// The report of an export: 29 records, the ninth's quote never closed. Every record is counted,
    /// 28 read and the one rejected.
    #[test]
    fn one_unclosed_quote_loses_no_other_record() {
        let mut text = "id,name\n".to_owned();
        for n in 1..=29 {
            if n == 9 {
                text.push_str("9,\"Trần Thị, Hoa\n");
            } else {
                text.push_str(&format!("{n},\"Người {n}\"\n"));
            }
        }
        let records = records_of(text.as_bytes(), Encoding::Utf8).unwrap();
        assert_eq!(records.len(), 29);
        assert_eq!(records[8], "line 10: unclosed quote in column `name`");
        assert_eq!(records[9], "10|Người 10");
        assert_eq!(records.iter().filter(|r| r.contains('|')).count(), 28);
    }

    /// A quote open further than [`MAX_RECORD_BYTES`] of lines is taken for one never closed, though
    /// it closes later with the header's number of fields: the lines after it are records.
    #[test]
    fn a_quote_open_past_the_record_limit_is_unclosed() {
        let line = "a line of a long note\n";
        let lines = MAX_RECORD_BYTES / line.len() + 2;
        let mut text = "id\n\"opened".to_owned();
        text.push('\n');
        text.push_str(&line.repeat(lines));
        text.push_str("closed\"\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.csv");
        std::fs::write(&path, &text).unwrap();
        let input = Input {
            columns: Default::default(),
            ..csv_input(&path, Encoding::Utf8)
        };
        let (mut rows, mut bad) = (0, Vec::new());
        scan(&input, &input.path, None, 1 << 16, |scanned| {
            rows += scanned.rows.len();
            bad.extend(scanned.bad.into_iter().map(|b| (b.row, b.reason)));
            Ok(())
        })
        .unwrap();
        assert_eq!(rows, lines + 1);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 0);
        assert!(
            bad[0].1.ends_with("line 2: unclosed quote in column `id`"),
            "{bad:?}"
        );
        // Below the limit, the same field is one record.
        let text = "id\n\"opened\nclosed\"\n";
        std::fs::write(&path, text).unwrap();
        let mut records = 0;
        scan(&input, &input.path, None, 4, |scanned| {
            assert!(scanned.bad.is_empty());
            records += scanned.rows.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(records, 1);
    }

    /// Files no attempt can read fail at once, saying why and naming the file and column, never a
    /// record's content; an error another attempt may not meet is not permanent.
    #[test]
    fn files_that_cannot_be_read_as_they_are_are_permanent_errors() {
        let cases: [(&str, &[u8], &str); 5] = [
            ("empty", b"", "the file is empty: no header"),
            (
                "no id column",
                b"ma,name\n1,An\n",
                "column `id` not found (columns: ma, name)",
            ),
            ("UTF-16", b"\xff\xfei\x00d\x00", "UTF-16"),
            (
                "a header not text",
                b"id,n\x8a\n",
                "the header is not utf-8 text",
            ),
            (
                "a header quote never closed",
                b"id,\"name\n1,An\n",
                "line 1: the header's field 2 opens a quote it never closes",
            ),
        ];
        for (what, bytes, message) in cases {
            let e = records_of(bytes, Encoding::Utf8).unwrap_err();
            assert!(e.is_permanent(), "{what}: {e}");
            assert!(e.to_string().contains(message), "{what}: {e}");
            assert!(e.to_string().contains("people.csv"), "{what}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let missing = csv_input(&dir.path().join("gone.csv"), Encoding::Utf8);
        let e = scan(&missing, &missing.path, None, 4, |_| Ok(())).unwrap_err();
        assert!(!e.is_permanent(), "{e}");
        // Not Parquet, or no such column in it.
        let parquet = dir.path().join("people.parquet");
        std::fs::write(&parquet, b"id,name\n1,An\n").unwrap();
        let input = Input {
            format: InputFormat::Parquet,
            csv: None,
            ..csv_input(&parquet, Encoding::Utf8)
        };
        let e = scan(&input, &input.path, None, 4, |_| Ok(())).unwrap_err();
        assert!(e.is_permanent(), "{e}");
        let schema = Arc::new(Schema::new(vec![Field::new("ma", DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec!["1"])) as ArrayRef],
        )
        .unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&parquet).unwrap(),
            schema,
            None,
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let e = scan(&input, &input.path, None, 4, |_| Ok(())).unwrap_err();
        assert!(e.is_permanent(), "{e}");
        assert!(e.to_string().contains("column `id` not found"), "{e}");
    }

    /// Random bytes after a header (quotes, delimiters, line breaks, bytes of other encodings, bytes
    /// no encoding assigns): in every encoding the scan ends without an error, and every record is
    /// a row or a bad row, numbered 0, 1, 2... with none missing. No record takes more lines than
    /// it has; without quotes, every line that is not blank is a record.
    #[test]
    fn any_bytes_are_read_and_every_record_accounted_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("noise.csv");
        let mut state = 7u64;
        for (alphabet, quotes) in [
            (&b"a1 ,;\"\"\n\r\xc3\xa9\x8a\xff\xd4"[..], true),
            (&b"a1 ,;\n\r\xc3\xa9\x8a\xff\xd4"[..], false),
        ] {
            for file in 0..150 {
                let mut bytes = b"id,name\n".to_vec();
                for _ in 0..400 {
                    state = crate::hash::mix64(state);
                    bytes.push(alphabet[(state % alphabet.len() as u64) as usize]);
                }
                std::fs::write(&path, &bytes).unwrap();
                // Counted apart from the parser: the lines after the header with more than `\r`.
                let lines = bytes[b"id,name\n".len()..]
                    .split(|&b| b == b'\n')
                    .filter(|line| line.iter().any(|&b| b != b'\r'))
                    .count() as u64;
                for encoding in Encoding::ALL {
                    let input = csv_input(&path, encoding);
                    let mut numbers = Vec::new();
                    scan(&input, &input.path, None, 3, |scanned| {
                        assert_eq!(scanned.batch.num_rows(), scanned.rows.len());
                        numbers.extend(scanned.rows);
                        numbers.extend(scanned.bad.iter().map(|b| b.row));
                        Ok(())
                    })
                    .unwrap_or_else(|e| panic!("file {file}, {encoding:?}: {e}"));
                    numbers.sort_unstable();
                    let expected: Vec<u64> = (0..numbers.len() as u64).collect();
                    assert_eq!(numbers, expected, "file {file}, {encoding:?}");
                    if quotes {
                        assert!(numbers.len() as u64 <= lines, "file {file}, {encoding:?}");
                    } else {
                        assert_eq!(numbers.len() as u64, lines, "file {file}, {encoding:?}");
                    }
                }
            }
        }
    }
}
