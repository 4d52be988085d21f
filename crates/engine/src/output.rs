//! Output files: Parquet datasets (a directory of `part-NNNNN.parquet`) and JSON documents, written
//! under a temporary name and renamed when complete.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::EngineError;

/// Rows per output file.
const FILE_ROWS: usize = 1 << 20;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::Output(format!("{}: {e}", path.display()))
}

/// Writes a dataset directory `dir` from batches of one schema, replacing the Parquet files an earlier
/// run left there. An empty dataset is one file with the schema and no rows, so readers still find
/// the columns.
pub fn write_dataset(
    dir: &Path,
    schema: SchemaRef,
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
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let mut files = Vec::new();
    let mut writer: Option<(ArrowWriter<File>, PathBuf, PathBuf)> = None;
    let mut rows_in_file = 0;
    let open = |n: usize| -> Result<(ArrowWriter<File>, PathBuf, PathBuf), EngineError> {
        let path = dir.join(format!("part-{n:05}.parquet"));
        let tmp = path.with_extension("tmp");
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props.clone()))?;
        Ok((writer, tmp, path))
    };
    let close =
        |(w, tmp, path): (ArrowWriter<File>, PathBuf, PathBuf)| -> Result<PathBuf, EngineError> {
            w.close()?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            Ok(path)
        };
    for batch in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        if writer.is_none() || rows_in_file >= FILE_ROWS {
            if let Some(w) = writer.take() {
                files.push(close(w)?);
            }
            writer = Some(open(files.len())?);
            rows_in_file = 0;
        }
        if let Some((w, _, _)) = &mut writer {
            w.write(&batch)?;
        }
        rows_in_file += batch.num_rows();
    }
    let last = match writer {
        Some(w) => w,
        None => open(0)?,
    };
    files.push(close(last)?);
    Ok(files)
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
