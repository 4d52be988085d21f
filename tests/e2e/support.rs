//! Reading back what khop wrote (every Parquet file of a directory, as Arrow batches), and running
//! the real `khop` binary.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// All batches of the Parquet files in `dir` whose names start with `prefix`, in file-name order.
pub fn read_parquet_dir(dir: &Path, prefix: &str) -> Vec<RecordBatch> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "parquet")
                && p.file_name().unwrap().to_string_lossy().starts_with(prefix)
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .flat_map(|p| {
            ParquetRecordBatchReaderBuilder::try_new(File::open(&p).unwrap())
                .unwrap()
                .build()
                .unwrap()
                .map(|b| b.unwrap())
        })
        .collect()
}

/// One string column of a set of batches; `None` for nulls.
pub fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let array = b
                .column_by_name(column)
                .unwrap_or_else(|| panic!("no column {column}"));
            let array = array.as_string::<i32>();
            (0..array.len())
                .map(|i| (!array.is_null(i)).then(|| array.value(i).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `corruptions` list column of truth batches.
pub fn corruption_lists(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let list = b.column_by_name("corruptions").unwrap().as_list::<i32>();
            (0..list.len())
                .map(|i| {
                    let values = list.value(i);
                    let values = values.as_string::<i32>();
                    (0..values.len())
                        .map(|j| values.value(j).to_owned())
                        .collect()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `person_id` column of truth batches.
pub fn person_ids(batches: &[RecordBatch]) -> Vec<u64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("person_id")
                .unwrap()
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

/// The Arrow schema of a Parquet file, whether or not it has rows.
pub fn parquet_schema(path: &Path) -> arrow::datatypes::SchemaRef {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .schema()
        .clone()
}

/// The `khop` binary: `$KHOP`, else the one cargo built beside this test (`target/<profile>/khop`;
/// `cargo test --workspace` builds it before running any test).
pub fn khop() -> PathBuf {
    if let Some(khop) = std::env::var_os("KHOP") {
        return khop.into();
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let khop = dir.join(format!("khop{}", std::env::consts::EXE_SUFFIX));
    assert!(
        khop.is_file(),
        "{} not found: build it (`cargo build -p khop`) or set KHOP",
        khop.display()
    );
    khop
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
