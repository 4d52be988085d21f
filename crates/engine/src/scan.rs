//! Scan: an input's records as Arrow batches of text columns, read by DataFusion.
//!
//! Every column the job uses is read as text (`Utf8`), whatever its type in the file: standardisation
//! works on the text as the source wrote it, and type inference would otherwise turn PINs into
//! integers and drop their leading zeros.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
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

/// The files of an input, sorted: a directory is read whole (its files of the input's format); an empty
/// match is a clear error rather than an empty table.
pub fn input_files(input: &Input) -> Result<Vec<String>, EngineError> {
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

/// Reads the job's columns of `files` (some of [`input_files`]), in file order, calling `each` per
/// batch; record numbers count from 0 at the first file. Parquet goes through DataFusion (on a small
/// runtime of its own); CSV through [`CsvRecords`], so that a malformed line becomes a rejected record
/// instead of failing the whole scan.
pub fn scan(
    input: &Input,
    files: &[String],
    batch_rows: usize,
    mut each: impl FnMut(Scanned) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let wanted = columns_of(input);
    if input.format == InputFormat::Csv {
        let mut next_row = 0u64;
        for file in files {
            let reader = std::fs::File::open(file).map_err(|e| EngineError::Input {
                source_name: input.name.clone(),
                message: format!("{file}: {e}"),
            })?;
            let mut records = CsvRecords::new(std::io::BufReader::with_capacity(1 << 20, reader));
            let header = records.next_record().map_err(|e| EngineError::Input {
                source_name: input.name.clone(),
                message: format!("{file}: {e}"),
            })?;
            let header = header.unwrap_or_default();
            let mut positions = Vec::with_capacity(wanted.len());
            for column in &wanted {
                match header.iter().position(|h| h.trim() == column) {
                    Some(p) => positions.push(p),
                    None => {
                        return Err(EngineError::Input {
                            source_name: input.name.clone(),
                            message: format!(
                                "{file}: column `{column}` not found (columns: {})",
                                header.join(", ")
                            ),
                        });
                    }
                }
            }
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
                    let fields = match records.next_record() {
                        Ok(Some(fields)) => fields,
                        Ok(None) => {
                            done = true;
                            break;
                        }
                        Err(e) => {
                            return Err(EngineError::Input {
                                source_name: input.name.clone(),
                                message: format!("{file}: {e}"),
                            });
                        }
                    };
                    if fields.len() == 1 && fields[0].is_empty() {
                        continue; // a blank line is no record
                    }
                    let row = next_row;
                    next_row += 1;
                    if fields.len() != header.len() {
                        bad.push(BadRow {
                            row,
                            record_id: fields.get(positions[0]).cloned().unwrap_or_default(),
                            reason: format!(
                                "{file} line {line}: {} fields where the header has {}",
                                fields.len(),
                                header.len()
                            ),
                        });
                        continue;
                    }
                    for (b, &p) in builders.iter_mut().zip(&positions) {
                        let value = &fields[p];
                        if value.is_empty() {
                            b.append_null();
                        } else {
                            b.append_value(value);
                        }
                    }
                    rows.push(row);
                }
                let schema = Arc::new(Schema::new(
                    wanted
                        .iter()
                        .map(|c| Field::new(c, DataType::Utf8, true))
                        .collect::<Vec<_>>(),
                ));
                let columns: Vec<ArrayRef> = builders
                    .iter_mut()
                    .map(|b| Arc::new(b.finish()) as ArrayRef)
                    .collect();
                let batch = RecordBatch::try_new(schema, columns)?;
                if batch.num_rows() > 0 || !bad.is_empty() {
                    each(Scanned { batch, rows, bad })?;
                }
                if done {
                    break;
                }
            }
        }
        return Ok(());
    }
    let mut next_row = 0u64;
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
        let frame = ctx
            .read_parquet(files.to_vec(), ParquetReadOptions::default())
            .await
            .map_err(|e| error(e.to_string()))?;
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
            let rows = (next_row..next_row + batch.num_rows() as u64).collect();
            next_row += batch.num_rows() as u64;
            each(Scanned {
                batch,
                rows,
                bad: Vec::new(),
            })?;
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

/// Records of a CSV file (RFC 4180: comma-separated, fields optionally in double quotes with `""` for a
/// quote, line breaks allowed inside quotes). It never fails on content, only on IO or bad UTF-8.
pub struct CsvRecords<R> {
    reader: R,
    line: u64,
    buf: String,
}

impl<R: std::io::BufRead> CsvRecords<R> {
    pub fn new(reader: R) -> Self {
        CsvRecords {
            reader,
            line: 1,
            buf: String::new(),
        }
    }

    /// The 1-based line number where the next record starts.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The next record's fields, or `None` at the end of the file.
    pub fn next_record(&mut self) -> std::io::Result<Option<Vec<String>>> {
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut started = false;
        loop {
            self.buf.clear();
            if self.reader.read_line(&mut self.buf)? == 0 {
                if !started {
                    return Ok(None);
                }
                fields.push(field);
                return Ok(Some(fields));
            }
            started = true;
            self.line += 1;
            let mut chars = self.buf.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '"' if quoted && chars.peek() == Some(&'"') => {
                        field.push('"');
                        chars.next();
                    }
                    '"' if quoted => quoted = false,
                    '"' if field.is_empty() => quoted = true,
                    ',' if !quoted => fields.push(std::mem::take(&mut field)),
                    '\r' | '\n' if !quoted => {}
                    _ => field.push(c),
                }
            }
            if !quoted {
                fields.push(field);
                return Ok(Some(fields));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records() {
        let text = "a,b,c\n1,\"x, y\",3\r\n\"say \"\"hi\"\"\",,\n\"multi\nline\",2,3\nlast,1";
        let mut r = CsvRecords::new(std::io::Cursor::new(text));
        let mut all = Vec::new();
        while let Some(f) = r.next_record().unwrap() {
            all.push(f);
        }
        assert_eq!(
            all,
            vec![
                vec!["a", "b", "c"],
                vec!["1", "x, y", "3"],
                vec!["say \"hi\"", "", ""],
                vec!["multi\nline", "2", "3"],
                vec!["last", "1"],
            ]
        );
    }
}
