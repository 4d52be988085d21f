//! Inputs and scratch files in an object store: `khop link` on `s3://` URLs against a real S3 server
//! (moto, see `common/s3.rs`) writes the same files as on local paths, leaves no scratch objects,
//! and a store it cannot use is a clear error.

#[path = "common/process.rs"]
mod process;
#[path = "common/s3.rs"]
mod s3;

use std::path::Path;
use std::process::{Command, Output};

use process::{KHOP, assert_same_files, datagen, run_ok};
use s3::{BUCKET, S3Server};

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// Rewrites a Parquet file with row groups of `rows` rows, so that `execution.task_rows` cuts it.
fn rewrite_with_row_groups(path: &Path, rows: usize) {
    rewrite_compressed(path, rows, parquet::basic::Compression::UNCOMPRESSED);
}

/// [`rewrite_with_row_groups`] with pages compressed by `compression`: the same records in other
/// bytes.
fn rewrite_compressed(path: &Path, rows: usize, compression: parquet::basic::Compression) {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows))
        .set_compression(compression)
        .build();
    let out = std::fs::File::create(path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(out, batches[0].schema(), Some(props)).unwrap();
    for b in &batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
}

#[test]
fn khop_link_reads_inputs_and_hands_files_over_an_object_store() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    datagen(&data, 20_000, 800, 5);
    let population = data.join("population/part-00000.parquet");
    rewrite_with_row_groups(&population, 3_000);
    // Small partitions and training keep the job short; task_rows cuts the population into four
    // standardise tasks of two row groups, each read from the store by byte ranges.
    let text = std::fs::read_to_string(data.join("job.toml"))
        .unwrap()
        .replace("partitions = 64", "partitions = 8\ntask_rows = 6000")
        .replace("u_pairs = 1000000", "u_pairs = 100000");
    assert!(
        text.contains("task_rows = 6000"),
        "the job has no [execution]"
    );
    std::fs::write(data.join("job.toml"), &text).unwrap();
    let local = dir.path().join("local");
    run_ok(
        Command::new(KHOP)
            .arg("link")
            .arg(data.join("job.toml"))
            .arg("--output")
            .arg(&local),
    );

    server.put("in/population/part-00000.parquet", &population);
    server.put(
        "in/civil_servants/part-00000.parquet",
        &data.join("civil_servants/part-00000.parquet"),
    );
    // The population as a prefix (listed), the civil servants as one object.
    let remote = text
        .replace(
            "path = \"population\"",
            &format!("path = \"s3://{BUCKET}/in/population\""),
        )
        .replace(
            "path = \"civil_servants\"",
            &format!("path = \"s3://{BUCKET}/in/civil_servants/part-00000.parquet\""),
        )
        .replace(
            "[execution]",
            &format!("[execution]\nscratch = \"s3://{BUCKET}/scratch/embedded\""),
        );
    assert_eq!(remote.matches("s3://").count(), 3);
    std::fs::write(data.join("job-s3.toml"), &remote).unwrap();
    // `khop link` of a job file of `data` with the store's environment.
    let link_on_store = |job: &str, out: &Path| {
        let mut link = Command::new(KHOP);
        link.arg("link")
            .arg(data.join(job))
            .arg("--output")
            .arg(out)
            .envs(server.env());
        run_ok(&mut link);
    };
    let on_store = dir.path().join("s3");
    link_on_store("job-s3.toml", &on_store);

    assert_same_files(&local, &on_store, "when inputs and scratch are on S3");
    let summary = |root: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(root.join("summary.json")).unwrap()).unwrap()
    };
    let (s1, s2) = (summary(&local), summary(&on_store));
    for key in ["sources", "candidate_pairs", "matches", "statuses"] {
        assert_eq!(s1[key], s2[key], "summary.json: {key}");
    }
    assert!(
        s2["sources"][1]["input"].as_u64() == Some(20_000),
        "{}",
        s2["sources"]
    );
    assert!(
        server.keys("scratch/").is_empty(),
        "scratch objects left: {:?}",
        server.keys("scratch/")
    );
    assert!(!on_store.join(".khop-scratch").exists());

    // The population cached on the store: its entries are written, then replayed; a new upload of
    // the file (the same records in other bytes) is a new generation, whose entries replace the
    // old ones (cache/<slot>/<generation>-<piece>/).
    let cached = remote.replace(
        &format!("path = \"s3://{BUCKET}/in/population\""),
        &format!("path = \"s3://{BUCKET}/in/population\"\ncache = \"s3://{BUCKET}/cache\""),
    );
    assert!(cached.contains("cache = "));
    std::fs::write(data.join("job-cached.toml"), &cached).unwrap();
    let generations = || -> Vec<String> {
        let mut found: Vec<String> = server
            .keys("cache/")
            .iter()
            .filter_map(|k| k.split('/').nth(2)?.split_once('-').map(|g| g.0.to_owned()))
            .collect();
        found.sort();
        found.dedup();
        found
    };
    let link_cached = |name: &str| -> serde_json::Value {
        let out = dir.path().join(name);
        link_on_store("job-cached.toml", &out);
        assert_same_files(&local, &out, &format!("{name}: with the population cached"));
        summary(&out)["sources"][1]["from_cache"].clone()
    };
    assert_eq!(link_cached("written"), 0);
    let first = generations();
    assert_eq!(first.len(), 1, "{:?}", server.keys("cache/"));
    assert_eq!(link_cached("replayed"), 20_000);
    rewrite_compressed(&population, 3_000, parquet::basic::Compression::SNAPPY);
    server.put("in/population/part-00000.parquet", &population);
    assert_eq!(link_cached("rewritten"), 0);
    let second = generations();
    assert_eq!(second.len(), 1, "{:?}", server.keys("cache/"));
    assert_ne!(first, second, "the new upload is not a new generation");
    // Four pieces, each a meta.json and a records file.
    assert_eq!(
        server.keys("cache/").len(),
        8,
        "{:?}",
        server.keys("cache/")
    );
    assert_eq!(link_cached("replayed again"), 20_000);
}

#[test]
fn a_store_that_cannot_be_used_is_a_clear_error() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    datagen(&data, 2_000, 100, 5);
    let text = std::fs::read_to_string(data.join("job.toml")).unwrap();
    let write = |name: &str, text: String| {
        let path = data.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    // A bucket that does not exist: the input is named, nothing panics.
    let missing = write(
        "missing.toml",
        text.replace(
            "path = \"population\"",
            "path = \"s3://no-such-bucket/population\"",
        ),
    );
    let out = run(Command::new(KHOP)
        .arg("link")
        .arg(&missing)
        .envs(server.env()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("input `population`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // An empty prefix: no files is an error, not an empty source.
    let empty = write(
        "empty.toml",
        text.replace(
            "path = \"population\"",
            &format!("path = \"s3://{BUCKET}/nothing-here\""),
        ),
    );
    let out = run(Command::new(KHOP)
        .arg("link")
        .arg(&empty)
        .envs(server.env()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no .parquet files at s3://khop/nothing-here"),
        "{stderr}"
    );
    // A scheme khop does not speak: refused by the spec check, with the field's path.
    let gcs = write(
        "gcs.toml",
        text.replace("path = \"population\"", "path = \"gs://bucket/population\""),
    );
    let out = run(Command::new(KHOP).arg("link").arg(&gcs));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("inputs[1].path") && stderr.contains("`gs` is not supported"),
        "{stderr}"
    );
}
