//! Scan: an input's records as Arrow batches of text columns, read by DataFusion.
//!
//! Every column the job uses is read as text (`Utf8`), whatever its type in the file: standardisation
//! works on the text as the source wrote it, and CSV type inference would otherwise turn PINs into
//! integers and drop their leading zeros.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;

use crate::EngineError;
use crate::spec::{Input, InputFormat};

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

/// Paths DataFusion should read: a directory is read whole (its files of the input's format), a glob is
/// expanded here so that an empty match is a clear error rather than an empty table.
fn table_paths(input: &Input) -> Result<Vec<String>, EngineError> {
    let path = input.path.as_str();
    let extension = match input.format {
        InputFormat::Parquet => "parquet",
        InputFormat::Csv => "csv",
    };
    let local = std::path::Path::new(path);
    let files: Vec<String> = if local.is_dir() {
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

/// Reads the header of a CSV file, so every column can be declared as text.
fn csv_header(path: &str) -> Result<Vec<String>, std::io::Error> {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(std::fs::File::open(path)?).read_line(&mut line)?;
    Ok(line
        .trim_end_matches(['\r', '\n'])
        .split(',')
        .map(|c| c.trim_matches('"').to_owned())
        .collect())
}

/// Reads the job's columns of `input`, in file order, calling `each` with batches of text columns
/// named as in `columns_of(input)`. Runs DataFusion on a small runtime of its own.
pub fn scan(
    input: &Input,
    batch_rows: usize,
    mut each: impl FnMut(RecordBatch) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let wanted = columns_of(input);
    let files = table_paths(input)?;
    let error = |message: String| EngineError::Input {
        source_name: input.name.clone(),
        message,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| error(e.to_string()))?;
    runtime.block_on(async {
        // One partition per file keeps the order of records deterministic (file order, row order).
        let config = SessionConfig::new()
            .with_batch_size(batch_rows)
            .with_target_partitions(1);
        let ctx = SessionContext::new_with_config(config);
        let frame = match input.format {
            InputFormat::Parquet => ctx
                .read_parquet(files.clone(), ParquetReadOptions::default())
                .await
                .map_err(|e| error(e.to_string()))?,
            InputFormat::Csv => {
                let header =
                    csv_header(&files[0]).map_err(|e| error(format!("{}: {e}", files[0])))?;
                let schema = Schema::new(
                    header
                        .iter()
                        .map(|c| Field::new(c, DataType::Utf8, true))
                        .collect::<Vec<_>>(),
                );
                let options = CsvReadOptions::new().has_header(true).schema(&schema);
                ctx.read_csv(files.clone(), options)
                    .await
                    .map_err(|e| error(e.to_string()))?
            }
        };
        let available: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for column in &wanted {
            if !available.contains(column) {
                return Err(error(format!(
                    "column `{column}` not found (columns: {})",
                    available.join(", ")
                )));
            }
        }
        let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let frame = frame
            .select_columns(&names)
            .map_err(|e| error(e.to_string()))?;
        let mut stream = frame
            .execute_stream()
            .await
            .map_err(|e| error(e.to_string()))?;
        let schema = Arc::new(Schema::new(
            wanted
                .iter()
                .map(|c| Field::new(c, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| error(e.to_string()))?;
            let columns = batch
                .columns()
                .iter()
                .map(|c| {
                    if c.data_type() == &DataType::Utf8 {
                        Ok(c.clone())
                    } else {
                        cast(c, &DataType::Utf8).map(|a| Arc::new(a) as ArrayRef)
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| error(e.to_string()))?;
            let batch =
                RecordBatch::try_new(schema.clone(), columns).map_err(|e| error(e.to_string()))?;
            each(batch)?;
        }
        Ok(())
    })
}

/// A text column of a scanned batch.
pub fn text(batch: &RecordBatch, column: &str) -> StringArray {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
        .unwrap_or_else(|| StringArray::new_null(batch.num_rows()))
}
