//! Output files: Parquet datasets (a directory of `part-NNNNN.parquet`) and JSON documents, written
//! under a temporary name and renamed when complete.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::EngineError;

/// Rows per output file.
const FILE_ROWS: usize = 1 << 20;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::Output(format!("{}: {e}", path.display()))
}

/// Writes a dataset directory `dir` from batches of one schema, replacing the Parquet files an earlier
/// run left there. An empty dataset is one file with the schema and no rows, so readers still find
/// the columns. Files hold [`FILE_ROWS`] rows (cut at a batch's end), row groups [`ROW_GROUP_ROWS`].
/// `distinct` names the columns whose values are all or nearly all different (record ids): they
/// are written without a dictionary ([`properties`]).
pub fn write_dataset(
    dir: &Path,
    schema: SchemaRef,
    distinct: &[&str],
    batches: impl IntoIterator<Item = RecordBatch>,
) -> Result<Vec<PathBuf>, EngineError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path
            .extension()
            .is_some_and(|e| e == "parquet" || e == "tmp")
        {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    let props = properties(distinct);
    let mut files = Vec::new();
    let mut writer: Option<DatasetFile> = None;
    for batch in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        if let Some(w) = writer.take_if(|w| w.rows >= FILE_ROWS) {
            files.push(w.close()?);
        }
        let w = match &mut writer {
            Some(w) => w,
            None => writer.insert(DatasetFile::create(dir, files.len(), &schema, &props)?),
        };
        w.write(batch)?;
    }
    let last = match writer {
        Some(w) => w,
        None => DatasetFile::create(dir, 0, &schema, &props)?,
    };
    files.push(last.close()?);
    Ok(files)
}

/// Rows per row group.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// How a dataset's files are written: Snappy, [`ROW_GROUP_ROWS`] per row group, and every column
/// dictionary-encoded but those of `distinct`. A dictionary of values that never repeat only costs:
/// the writer hashes each value into it until it passes its page size limit (about 80 k ids), then
/// writes the rest of the row group plain anyway; that hashing was a third of the CPU time of
/// writing a 10 M link's outputs.
fn properties(distinct: &[&str]) -> WriterProperties {
    distinct
        .iter()
        .fold(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS)),
            |props, column| props.set_column_dictionary_enabled(ColumnPath::from(*column), false),
        )
        .build()
}

/// One Parquet file of a dataset being written. Rows are gathered into row groups as `ArrowWriter`
/// cuts them, but a row group's columns are encoded side by side (rayon) and then appended in order:
/// the same bytes as `ArrowWriter` writes, encoded on every core (encoding, dictionaries and Snappy
/// are most of an output's cost, and the `write` task writes large outputs).
struct DatasetFile {
    file: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// The rows of the row group being gathered.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    row_groups: usize,
    rows: usize,
    tmp: PathBuf,
    path: PathBuf,
}

impl DatasetFile {
    fn create(
        dir: &Path,
        n: usize,
        schema: &SchemaRef,
        props: &WriterProperties,
    ) -> Result<DatasetFile, EngineError> {
        let path = dir.join(format!("part-{n:05}.parquet"));
        let tmp = path.with_extension("tmp");
        let file = File::create(&tmp).map_err(io(&tmp))?;
        // `ArrowWriter` puts the Arrow schema in the file's metadata; its parts do the rest.
        let (file, factory) = ArrowWriter::try_new(file, schema.clone(), Some(props.clone()))?
            .into_serialized_writer()?;
        Ok(DatasetFile {
            file,
            factory,
            schema: schema.clone(),
            pending: Vec::new(),
            pending_rows: 0,
            row_groups: 0,
            rows: 0,
            tmp,
            path,
        })
    }

    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        self.rows += batch.num_rows();
        let mut at = 0;
        while at < batch.num_rows() {
            let take = (ROW_GROUP_ROWS - self.pending_rows).min(batch.num_rows() - at);
            self.pending.push(batch.slice(at, take));
            self.pending_rows += take;
            at += take;
            if self.pending_rows == ROW_GROUP_ROWS {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Writes the gathered rows as a row group.
    fn flush(&mut self) -> Result<(), EngineError> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let slices = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        // Per slice, its leaf columns in the writers' order.
        let leaves = slices
            .iter()
            .map(|batch| {
                let mut leaves = Vec::new();
                for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
                    leaves.extend(compute_leaves(field, column)?);
                }
                Ok(leaves)
            })
            .collect::<Result<Vec<Vec<ArrowLeafColumn>>, ParquetError>>()?;
        let chunks = self
            .factory
            .create_column_writers(self.row_groups)?
            .into_par_iter()
            .enumerate()
            .map(|(c, mut writer)| {
                for slice in &leaves {
                    writer.write(&slice[c])?;
                }
                writer.close()
            })
            .collect::<Result<Vec<ArrowColumnChunk>, ParquetError>>()?;
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.row_groups += 1;
        Ok(())
    }

    fn close(mut self) -> Result<PathBuf, EngineError> {
        self.flush()?;
        self.file.close()?;
        std::fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        Ok(self.path)
    }
}

/// Writes a JSON document atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), EngineError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| EngineError::Output(format!("{}: {e}", path.display())))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n").map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{StringArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// Rows `range` as a batch of a number and a text column (many repeats, so dictionaries matter).
    fn batch(schema: &SchemaRef, range: std::ops::Range<u64>) -> RecordBatch {
        let numbers = UInt64Array::from_iter_values(range.clone());
        let texts = StringArray::from_iter_values(range.map(|i| format!("v{}", i % 977)));
        RecordBatch::try_new(schema.clone(), vec![Arc::new(numbers), Arc::new(texts)]).unwrap()
    }

    #[test]
    fn datasets_are_the_bytes_arrow_writer_writes() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("n", DataType::UInt64, false),
            Field::new("t", DataType::Utf8, false),
        ]));
        // Batches that cut row groups anywhere, and cross the file size once.
        let mut cuts = vec![
            0u64, 3, 100_000, 250_001, 250_002, 900_000, 1_100_000, 1_300_000,
        ];
        cuts.dedup();
        let batches: Vec<RecordBatch> = cuts
            .windows(2)
            .map(|w| batch(&schema, w[0]..w[1]))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let files = write_dataset(dir.path(), schema.clone(), &["n"], batches.clone()).unwrap();
        assert_eq!(
            files.len(),
            2,
            "a new file once a file holds {FILE_ROWS} rows"
        );

        // The same rows through ArrowWriter, file by file as write_dataset cut them.
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_column_dictionary_enabled(ColumnPath::from("n"), false)
            .build();
        let first_file = batches.iter().scan(0usize, |rows, b| {
            let before = *rows;
            *rows += b.num_rows();
            Some(before < FILE_ROWS)
        });
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (batch, first) in batches.iter().zip(first_file) {
            if first { a.push(batch) } else { b.push(batch) }
        }
        for (file, part) in files.iter().zip([a, b]) {
            let mut expected = Vec::new();
            let mut writer =
                ArrowWriter::try_new(&mut expected, schema.clone(), Some(props.clone())).unwrap();
            for batch in part {
                writer.write(batch).unwrap();
            }
            writer.close().unwrap();
            assert!(
                std::fs::read(file).unwrap() == expected,
                "{}",
                file.display()
            );
            // `n`, named distinct, is written plain; `t` with its dictionary.
            let reader =
                parquet::file::reader::SerializedFileReader::new(File::open(file).unwrap())
                    .unwrap();
            for group in parquet::file::reader::FileReader::metadata(&reader).row_groups() {
                assert!(group.column(0).dictionary_page_offset().is_none());
                assert!(group.column(1).dictionary_page_offset().is_some());
            }
        }

        // Empty: one file with the schema.
        let empty = tempfile::tempdir().unwrap();
        let files = write_dataset(empty.path(), schema.clone(), &[], []).unwrap();
        assert_eq!(files.len(), 1);
    }
}
