//! Files: one part of records and its truth, streamed batch by batch to Parquet or CSV.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::config::Source;
use crate::corrupt::Tally;
use crate::records::{Dataset, schema, truth_schema};
use crate::{BATCH_ROWS, DatagenError, PART_ROWS, io_error};

/// The format of the input databases. The truth is always Parquet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "parquet" => Ok(Format::Parquet),
            "csv" => Ok(Format::Csv),
            _ => Err(format!("unknown format `{s}` (parquet, csv)")),
        }
    }
}

pub(crate) struct PartOutput {
    pub file: String,
    pub truth_file: String,
    pub tally: Tally,
}

/// Parquet settings: Snappy (read everywhere: DuckDB, pandas, polars, Spark), one row group per batch,
/// and no dictionary for the columns that are nearly unique, where it only costs time.
fn parquet_properties(schema: &SchemaRef) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(BATCH_ROWS as usize));
    for field in schema.fields() {
        if matches!(
            field.name().as_str(),
            "record_id" | "full_name" | "pin" | "cmnd" | "phone" | "date_of_birth" | "person_id"
        ) {
            props =
                props.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    props.build()
}

enum Sink {
    Parquet(Box<ArrowWriter<BufWriter<File>>>),
    Csv(Box<arrow::csv::Writer<BufWriter<File>>>),
}

impl Sink {
    fn create(path: &Path, schema: SchemaRef, format: Format) -> Result<Self, DatagenError> {
        let file = BufWriter::with_capacity(1 << 20, File::create(path).map_err(io_error(path))?);
        Ok(match format {
            Format::Parquet => {
                let props = parquet_properties(&schema);
                Sink::Parquet(Box::new(ArrowWriter::try_new(file, schema, Some(props))?))
            }
            Format::Csv => Sink::Csv(Box::new(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(file),
            )),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), DatagenError> {
        match self {
            Sink::Parquet(w) => w.write(batch)?,
            Sink::Csv(w) => w.write(batch)?,
        }
        Ok(())
    }

    fn close(self, path: &Path) -> Result<(), DatagenError> {
        match self {
            Sink::Parquet(w) => {
                w.close()?;
            }
            Sink::Csv(w) => {
                let mut file = w.into_inner();
                std::io::Write::flush(&mut file).map_err(io_error(path))?;
            }
        }
        Ok(())
    }
}

/// Removes the data files an earlier run left in `dir`, and makes sure `dir` exists.
pub(crate) fn clear_dir(dir: &Path) -> Result<(), DatagenError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let ours = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("parquet" | "csv" | "tmp")
        );
        if ours && path.is_file() {
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

/// Writes part `part` of `source` and its truth. Files are written under a temporary name and renamed
/// when complete, so a crashed run never leaves a truncated file that looks whole.
pub(crate) fn write_part(
    dataset: &Dataset,
    source: Source,
    part: u64,
    format: Format,
    out: &Path,
) -> Result<PartOutput, DatagenError> {
    let file = format!("{}/part-{part:05}.{}", source.name(), format.name());
    let truth_file = format!("truth/{}-{part:05}.parquet", source.name());
    let (path, truth_path) = (out.join(&file), out.join(&truth_file));
    let (tmp, truth_tmp) = (path.with_extension("tmp"), truth_path.with_extension("tmp"));

    let mut sink = Sink::create(&tmp, schema(source), format)?;
    let mut truth = Sink::create(&truth_tmp, truth_schema(), Format::Parquet)?;
    let mut tally = Tally::default();
    let start = part * PART_ROWS;
    let end = (start + PART_ROWS).min(dataset.records(source));
    let mut batch_start = start;
    while batch_start < end {
        let batch_end = (batch_start + BATCH_ROWS).min(end);
        let (records, truth_batch) = dataset.batch(source, batch_start..batch_end, &mut tally)?;
        sink.write(&records)?;
        truth.write(&truth_batch)?;
        batch_start = batch_end;
    }
    sink.close(&tmp)?;
    truth.close(&truth_tmp)?;
    std::fs::rename(&tmp, &path).map_err(io_error(&path))?;
    std::fs::rename(&truth_tmp, &truth_path).map_err(io_error(&truth_path))?;
    Ok(PartOutput {
        file,
        truth_file,
        tally,
    })
}
