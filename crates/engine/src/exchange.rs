//! Exchange: what one task hands to the next, as files. Standardised records travel as Arrow IPC files
//! (one record batch per partition, read back one batch at a time); small results as JSON. Where every
//! task runs in one process, an IPC file is its batches in memory ([`crate::storage::MemoryFiles`]),
//! read back the same way.
//!
//! **Invariant:** every file is written under a temporary name and renamed when complete, and every
//! task attempt writes files of its own (the attempt id is in the name), so a late or failed attempt
//! never overwrites the files of the attempt that was committed.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, UInt8Array, UInt32Array, UInt64Array};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Schema, SchemaRef, UInt8Type, UInt32Type, UInt64Type,
};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;

use crate::EngineError;
use crate::spec::{Input, JobSpec, Standardiser};
use crate::standardise::{FieldValues, Plan, Strings, Table};

const NAME_PARTS: [&str; 6] = [
    "surname",
    "middle",
    "given",
    "surname_key",
    "middle_key",
    "given_key",
];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::Other(format!("{}: {e}", path.display()))
}

/// The Arrow schema of an input's standardised records: `_row`, `_id`, the columns of each field this
/// input maps (named `field.part`), and one `_key{rule}` column per blocking rule.
pub fn table_schema(spec: &JobSpec, input: &Input) -> SchemaRef {
    let mut fields = vec![
        Field::new("_row", DataType::UInt64, false),
        Field::new("_id", DataType::Utf8, false),
    ];
    for (name, standardiser) in &spec.fields {
        if !input.columns.contains_key(name) {
            continue;
        }
        let text = |part: &str| Field::new(format!("{name}.{part}"), DataType::Utf8, false);
        match standardiser {
            Standardiser::VnName | Standardiser::PersonName => {
                fields.extend(NAME_PARTS.iter().map(|p| text(p)))
            }
            Standardiser::Date => fields.push(Field::new(name, DataType::UInt32, false)),
            Standardiser::VnId => fields.extend([text("pin"), text("cmnd")]),
            Standardiser::VnProvince => fields.extend([
                Field::new(format!("{name}.new"), DataType::UInt8, false),
                Field::new(format!("{name}.old"), DataType::UInt8, false),
            ]),
            Standardiser::Sex => fields.push(Field::new(name, DataType::UInt8, false)),
            Standardiser::Phone | Standardiser::Text | Standardiser::Id => {
                fields.push(Field::new(name, DataType::Utf8, false))
            }
        }
    }
    for rule in 0..spec.blocking.len() {
        fields.push(Field::new(format!("_key{rule}"), DataType::UInt64, false));
    }
    Arc::new(Schema::new(fields))
}

/// A table as one record batch of [`table_schema`]; the columns are moved, not copied.
pub fn table_to_batch(schema: &SchemaRef, table: Table) -> Result<RecordBatch, EngineError> {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(table.rows)),
        Arc::new(table.ids.into_array()),
    ];
    for values in table.fields.into_iter().flatten() {
        match values {
            FieldValues::Name {
                surname,
                middle,
                given,
                surname_key,
                middle_key,
                given_key,
            } => {
                for s in [surname, middle, given, surname_key, middle_key, given_key] {
                    columns.push(Arc::new(s.into_array()));
                }
            }
            FieldValues::Date(d) => columns.push(Arc::new(UInt32Array::from(d))),
            FieldValues::Id { pin, cmnd } => {
                columns.push(Arc::new(pin.into_array()));
                columns.push(Arc::new(cmnd.into_array()));
            }
            FieldValues::Province { new, old } => {
                columns.push(Arc::new(UInt8Array::from(new)));
                columns.push(Arc::new(UInt8Array::from(old)));
            }
            FieldValues::Sex(s) => columns.push(Arc::new(UInt8Array::from(s))),
            FieldValues::Text(s) => columns.push(Arc::new(s.into_array())),
        }
    }
    for keys in table.keys {
        columns.push(Arc::new(UInt64Array::from(keys)));
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// A record batch of [`table_schema`] back as a table of `input`'s records.
pub fn batch_to_table(
    spec: &JobSpec,
    input: &Input,
    batch: &RecordBatch,
) -> Result<Table, EngineError> {
    let bad = |what: &str| EngineError::Other(format!("standardised records: bad column {what}"));
    let mut columns = batch.columns().iter();
    let mut next = |what: &str| columns.next().cloned().ok_or_else(|| bad(what));
    let u64s = |a: &ArrayRef| -> Vec<u64> { a.as_primitive::<UInt64Type>().values().to_vec() };
    let strings = |a: &ArrayRef| Strings::from_array(a.as_string::<i32>());
    let rows = u64s(&next("_row")?);
    let ids = strings(&next("_id")?);
    let mut table = Plan::new(spec, input).empty_table();
    table.rows = rows;
    table.ids = ids;
    for (values, name) in table.fields.iter_mut().zip(spec.fields.keys()) {
        let Some(values) = values else { continue };
        match values {
            FieldValues::Name {
                surname,
                middle,
                given,
                surname_key,
                middle_key,
                given_key,
            } => {
                for s in [surname, middle, given, surname_key, middle_key, given_key] {
                    *s = strings(&next(name)?);
                }
            }
            FieldValues::Date(d) => {
                *d = next(name)?.as_primitive::<UInt32Type>().values().to_vec();
            }
            FieldValues::Id { pin, cmnd } => {
                *pin = strings(&next(name)?);
                *cmnd = strings(&next(name)?);
            }
            FieldValues::Province { new, old } => {
                *new = next(name)?.as_primitive::<UInt8Type>().values().to_vec();
                *old = next(name)?.as_primitive::<UInt8Type>().values().to_vec();
            }
            FieldValues::Sex(s) => *s = next(name)?.as_primitive::<UInt8Type>().values().to_vec(),
            FieldValues::Text(s) => *s = strings(&next(name)?),
        }
    }
    for keys in table.keys.iter_mut() {
        *keys = u64s(&next("_key")?);
    }
    Ok(table)
}

/// Writes batches of one schema as an Arrow IPC file, atomically.
pub fn write_ipc(
    path: &Path,
    schema: &SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch, EngineError>>,
) -> Result<(), EngineError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("tmp");
    let file = File::create(&tmp).map_err(io(&tmp))?;
    let written = (|| {
        let mut writer =
            FileWriter::try_new(std::io::BufWriter::with_capacity(1 << 20, file), schema)?;
        for batch in batches {
            writer.write(&batch?)?;
        }
        writer.finish()?;
        Ok(())
    })();
    if let Err(e) = written {
        // No half-written file is left behind (a cache keeps its directory for good).
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// What an IPC file is read from: a local file, or an object fetched by ranges
/// ([`crate::storage::ObjectReader`]).
pub trait ReadSeek: std::io::Read + std::io::Seek + Send {}

impl<T: std::io::Read + std::io::Seek + Send> ReadSeek for T {}

/// Bytes a local IPC file is read ahead by. Small: a reader seeks to each batch it reads, and a seek
/// empties the buffer, so what is read ahead past the batch is thrown away. A compare task reads one
/// small batch (its partition's records) of each of a side's files, and a buffer of 1 MiB read 20
/// times the bytes it used. A message's header comes with the buffer's first fill; a body larger than
/// the buffer is read straight into its own allocation.
const RANDOM_READ_BUFFER: usize = 64 << 10;

/// An Arrow IPC file open for reading single batches, or the batches of one held in memory
/// ([`crate::storage::MemoryFiles`]), read the same way.
pub struct IpcFile {
    source: IpcSource,
}

enum IpcSource {
    Reader(FileReader<Box<dyn ReadSeek>>),
    Memory {
        batches: Arc<[RecordBatch]>,
        projection: Option<Vec<usize>>,
    },
}

impl IpcFile {
    pub fn open(path: &Path) -> Result<IpcFile, EngineError> {
        Self::open_projected(path, None)
    }

    /// The file with only the columns at `projection` (of the file's schema) decoded.
    pub(crate) fn open_projected(
        path: &Path,
        projection: Option<Vec<usize>>,
    ) -> Result<IpcFile, EngineError> {
        let file = File::open(path).map_err(io(path))?;
        Self::from_reader(
            Box::new(std::io::BufReader::with_capacity(RANDOM_READ_BUFFER, file)),
            projection,
        )
    }

    /// The file read from `reader`, with only the columns at `projection` decoded.
    pub(crate) fn from_reader(
        reader: Box<dyn ReadSeek>,
        projection: Option<Vec<usize>>,
    ) -> Result<IpcFile, EngineError> {
        Ok(IpcFile {
            source: IpcSource::Reader(FileReader::try_new(reader, projection)?),
        })
    }

    /// A file's batches held in memory, with only the columns at `projection` read.
    pub(crate) fn in_memory(
        batches: Arc<[RecordBatch]>,
        projection: Option<Vec<usize>>,
    ) -> IpcFile {
        IpcFile {
            source: IpcSource::Memory {
                batches,
                projection,
            },
        }
    }

    pub fn batches(&self) -> usize {
        match &self.source {
            IpcSource::Reader(reader) => reader.num_batches(),
            IpcSource::Memory { batches, .. } => batches.len(),
        }
    }

    /// Batch `index` of the file.
    pub fn batch(&mut self, index: usize) -> Result<RecordBatch, EngineError> {
        let missing = || EngineError::Other(format!("no batch {index} in an IPC file"));
        match &mut self.source {
            IpcSource::Reader(reader) => {
                reader.set_index(index)?;
                match reader.next() {
                    Some(batch) => Ok(batch?),
                    None => Err(missing()),
                }
            }
            IpcSource::Memory {
                batches,
                projection,
            } => {
                let batch = batches.get(index).ok_or_else(missing)?;
                Ok(match projection {
                    Some(columns) => batch.project(columns)?,
                    None => batch.clone(),
                })
            }
        }
    }

    /// Every batch of the file, in order.
    pub fn read_all(mut self) -> Result<Vec<RecordBatch>, EngineError> {
        (0..self.batches()).map(|i| self.batch(i)).collect()
    }
}

/// A column of numbers of type `T` of a batch, by name.
pub fn number_column<T: ArrowPrimitiveType>(
    batch: &RecordBatch,
    name: &str,
) -> Result<Vec<T::Native>, EngineError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<T>())
        .map(|a| a.values().to_vec())
        .ok_or_else(|| {
            EngineError::Other(format!(
                "exchange file: no {} column `{name}`",
                T::DATA_TYPE
            ))
        })
}

/// A column of `u64` (row keys, hashes) of a batch, by name.
pub fn u64_column(batch: &RecordBatch, name: &str) -> Result<Vec<u64>, EngineError> {
    number_column::<UInt64Type>(batch, name)
}

/// A text column of a batch, by name.
pub fn text_column(batch: &RecordBatch, name: &str) -> Result<Strings, EngineError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .map(Strings::from_array)
        .ok_or_else(|| EngineError::Other(format!("exchange file: no text column `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standardise::standardise_batch;

    #[test]
    fn a_table_survives_the_round_trip_through_an_ipc_file() {
        let spec = JobSpec::from_toml(crate::spec::tests::GOOD, Path::new("/jobs")).unwrap();
        let input = &spec.inputs[0];
        let columns = crate::scan::columns_of(input);
        let value = |column: &str| -> Vec<Option<&str>> {
            match column {
                "id" => vec![Some("a1"), Some("a2"), Some("a3")],
                "full_name" => vec![Some("Nguyễn Văn An"), Some("Tran thi BINH"), None],
                "dob" => vec![Some("1990-01-02"), Some("1985"), Some("31/02/1990")],
                "pin" => vec![Some("001090012345"), None, Some("12")],
                _ => vec![None, None, Some("012345678")],
            }
        };
        let batch = crate::scan::text_batch(&columns, value);
        let table = standardise_batch(&spec, input, &batch);
        assert_eq!(table.len(), 3);
        let schema = table_schema(&spec, input);
        let out = table_to_batch(&schema, table.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.arrow");
        write_ipc(&path, &schema, [Ok(out.clone()), Ok(out)]).unwrap();
        let mut file = IpcFile::open(&path).unwrap();
        assert_eq!(file.batches(), 2);
        let back = batch_to_table(&spec, input, &file.batch(1).unwrap()).unwrap();
        assert_eq!(back.rows, table.rows);
        assert_eq!(back.keys, table.keys);
        for r in 0..3 {
            assert_eq!(back.ids.get(r), table.ids.get(r));
        }
        assert_eq!(format!("{:?}", back.fields), format!("{:?}", table.fields));
    }
}
