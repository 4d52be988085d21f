//! `khop link` end to end: generated data, the job `khop datagen` writes, real Parquet outputs read
//! back; quality, accounting of every record, determinism across thread counts, rejects.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use khop_datagen::{DatagenConfig, DatagenSpec, Format, generate};
use khop_engine::{JobSpec, Silent, run_job};

use crate::support::{parquet_schema, person_ids, read_parquet_dir, strings};

struct Linked {
    _dir: tempfile::TempDir,
    data: PathBuf,
    output: PathBuf,
}

fn dataset(dir: &Path, population: u64, civil_servants: u64, format: Format) {
    dataset_with(
        dir,
        population,
        civil_servants,
        format,
        DatagenConfig::default(),
    );
}

fn dataset_with(
    dir: &Path,
    population: u64,
    civil_servants: u64,
    format: Format,
    config: DatagenConfig,
) {
    let spec = DatagenSpec {
        population,
        civil_servants,
        seed: 11,
        format,
        config,
        threads: None,
    };
    generate(&spec, dir).unwrap();
}

fn job(data: &Path, output: &Path, threads: usize) -> JobSpec {
    let text = std::fs::read_to_string(data.join("job.toml")).unwrap();
    let mut spec = JobSpec::from_toml(&text, data).unwrap();
    spec.output = output.to_owned();
    spec.execution.threads = threads;
    spec
}

/// One linked dataset shared by the tests of this module.
static LINKED: LazyLock<Linked> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset(&data, 120_000, 6_000, Format::Parquet);
    let output = dir.path().join("out");
    run_job(&job(&data, &output, 0), &Silent).unwrap();
    Linked {
        _dir: dir,
        data,
        output,
    }
});

#[test]
fn outputs_have_the_documented_columns() {
    let l = &*LINKED;
    let expect = |dir: &str, columns: &[&str]| {
        let schema = parquet_schema(&l.output.join(dir).join("part-00000.parquet"));
        let batches = read_parquet_dir(&l.output.join(dir), "part-");
        for c in columns {
            assert!(schema.field_with_name(c).is_ok(), "{dir}: no column {c}");
        }
        batches
    };
    expect(
        "pairs",
        &[
            "left_source",
            "left_id",
            "right_source",
            "right_id",
            "match_weight",
            "match_probability",
            "gamma_surname",
            "gamma_date_of_birth",
            "gamma_ids",
            "rule",
        ],
    );
    expect("clusters", &["source", "record_id", "entity_id"]);
    let reconciliation = expect(
        "reconciliation",
        &[
            "left_id",
            "status",
            "right_id",
            "match_probability",
            "ids_differs",
            "right_ids",
            "date_of_birth_differs",
            "right_date_of_birth",
        ],
    );
    let rows: usize = reconciliation.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 6_000, "one reconciliation row per civil servant");
    expect("rejects", &["source", "record_id", "row", "reason"]);
    for file in ["model.json", "summary.json"] {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(l.output.join(file)).unwrap()).unwrap();
        assert!(v.is_object(), "{file}");
    }
}

#[test]
fn every_input_record_is_accounted_for() {
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(LINKED.output.join("summary.json")).unwrap())
            .unwrap();
    let sources = summary["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    for s in sources {
        let (input, accepted, rejected) = (
            s["input"].as_u64().unwrap(),
            s["accepted"].as_u64().unwrap(),
            s["rejected"].as_u64().unwrap(),
        );
        assert_eq!(input, accepted + rejected, "{s}");
    }
    assert_eq!(sources[0]["input"], 6_000);
    assert_eq!(sources[1]["input"], 120_000);
    let statuses = summary["statuses"].as_object().unwrap();
    let total: u64 = statuses.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 6_000);
}

#[test]
fn quality_on_generated_data() {
    let l = &*LINKED;
    let report = khop_engine::eval::evaluate(
        &l.data.join("truth"),
        &l.output,
        &khop_engine::eval::TruthColumns::default(),
    )
    .unwrap();
    assert!(report.pairs.precision >= 0.998, "{:?}", report.pairs);
    assert!(report.pairs.recall >= 0.995, "{:?}", report.pairs);
    // The civil servants with no counterpart must not be matched to anyone.
    let wrongly_matched: u64 = ["matched", "ambiguous"]
        .iter()
        .filter_map(|s| report.no_counterpart.get(*s))
        .sum();
    let no_counterpart: u64 = report.no_counterpart.values().sum();
    assert_eq!(no_counterpart, 30, "{:?}", report.no_counterpart);
    assert_eq!(wrongly_matched, 0, "{:?}", report.no_counterpart);
}

/// Asserts that two jobs wrote the same pairs, clusters, reconciliation, rejects and model, byte for
/// byte.
fn assert_same_outputs(a: &Path, b: &Path, what: &str) {
    let files = |root: &Path, dir: &str| -> Vec<(String, Vec<u8>)> {
        let mut f: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        f.sort();
        f
    };
    for dir in [
        "pairs",
        "clusters",
        "reconciliation",
        "duplicates",
        "rejects",
    ] {
        if !a.join(dir).exists() {
            assert!(!b.join(dir).exists(), "{dir} only in {}", b.display());
            continue;
        }
        assert!(files(a, dir) == files(b, dir), "{dir} differs {what}");
    }
    let model = |root: &Path| std::fs::read(root.join("model.json")).unwrap();
    assert!(model(a) == model(b), "model.json differs {what}");
}

#[test]
fn the_same_job_gives_the_same_files_whatever_the_threads() {
    let l = &*LINKED;
    let other = tempfile::tempdir().unwrap();
    run_job(&job(&l.data, other.path(), 1), &Silent).unwrap();
    assert_same_outputs(&l.output, other.path(), "between thread counts");
}

/// Every partition cut into slices (as a skewed one would be): the same pairs, scores, clusters and
/// reconciliation as the job cut by partitions only.
#[test]
fn a_job_with_partitions_cut_into_slices_gives_the_same_files() {
    let l = &*LINKED;
    let other = tempfile::tempdir().unwrap();
    let mut spec = job(&l.data, other.path(), 0);
    spec.execution.split_above = 0.0;
    spec.execution.split_min_pairs = 0;
    spec.execution.max_slices = 5;
    let summary = run_job(&spec, &Silent).unwrap();
    let split = &summary.skew.split;
    assert!(split.len() > 60, "{split:?}");
    assert!(
        split.iter().all(|s| (2..=5).contains(&s.slices)),
        "{split:?}"
    );
    assert_same_outputs(
        &l.output,
        other.path(),
        "when partitions are cut into slices",
    );
    let read = |root: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(root.join("summary.json")).unwrap()).unwrap()
    };
    let (whole, sliced) = (read(&l.output), read(other.path()));
    assert!(whole["skew"]["split"].as_array().unwrap().is_empty());
    assert_eq!(
        sliced["skew"]["split"].as_array().unwrap().len(),
        split.len()
    );
    for key in [
        "candidate_pairs",
        "rules",
        "pairs_written",
        "matches",
        "entities",
        "statuses",
    ] {
        assert_eq!(whole[key], sliced[key], "summary.json: {key}");
    }
}

/// `compare` reading every partition's records laid out one after another (`execution.rows_above =
/// 0`) gives the same files as reading them from their columns (what the default does at this size).
#[test]
fn records_laid_out_for_compare_give_the_same_files() {
    let l = &*LINKED;
    let other = tempfile::tempdir().unwrap();
    let mut spec = job(&l.data, other.path(), 0);
    spec.execution.rows_above = 0.0;
    run_job(&spec, &Silent).unwrap();
    assert_same_outputs(
        &l.output,
        other.path(),
        "when compare reads records laid out",
    );
}

/// The same for a dedupe job (the generated population against itself, the job benches/vs_splink.sh
/// runs), whose slices go by each pair's first record.
#[test]
fn a_dedupe_job_with_partitions_cut_into_slices_gives_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset(&data, 30_000, 100, Format::Parquet);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/jobs/dedupe.toml"),
    )
    .unwrap();
    let spec = |output: &Path| {
        let mut spec = JobSpec::from_toml(&text, &data).unwrap();
        spec.output = output.to_owned();
        spec
    };
    let (whole, sliced) = (dir.path().join("whole"), dir.path().join("sliced"));
    let summary = run_job(&spec(&whole), &Silent).unwrap();
    assert!(summary.skew.split.is_empty());
    assert!(summary.matches > 10, "{summary:?}");
    let mut cut = spec(&sliced);
    cut.execution.split_above = 0.0;
    cut.execution.split_min_pairs = 0;
    cut.execution.max_slices = 3;
    // And compare reading records laid out, one side's rows standing for both.
    cut.execution.rows_above = 0.0;
    let summary = run_job(&cut, &Silent).unwrap();
    assert!(summary.skew.split.len() > 60, "{:?}", summary.skew);
    assert_same_outputs(
        &whole,
        &sliced,
        "when dedupe partitions are cut into slices and compare reads records laid out",
    );
}

/// Rewrites a Parquet file with row groups of `rows` rows.
fn rewrite_with_row_groups(path: &Path, rows: usize) {
    let batches = read_parquet_dir(path.parent().unwrap(), "part-");
    let schema = batches[0].schema();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    for b in &batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
}

/// A large file is cut into standardise tasks of whole row groups (`execution.task_rows`), so that
/// it spreads across workers: the same files as when each file is one task.
#[test]
fn a_file_cut_into_row_group_tasks_gives_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset(&data, 40_000, 2_000, Format::Parquet);
    let population = data.join("population/part-00000.parquet");
    rewrite_with_row_groups(&population, 3_000);
    let (whole, cut) = (dir.path().join("whole"), dir.path().join("cut"));
    let mut spec = job(&data, &whole, 0);
    spec.execution.task_rows = 1 << 40;
    let standardise_tasks = |spec: &JobSpec| {
        let planner = khop_engine::task::Planner::new(spec.clone()).unwrap();
        let first = planner.next(&[]).unwrap().unwrap();
        first.tasks.len()
    };
    assert_eq!(standardise_tasks(&spec), 1);
    let whole_summary = run_job(&spec, &Silent).unwrap();
    let mut pieces = job(&data, &cut, 0);
    pieces.execution.task_rows = 7_000; // two row groups of 3,000 a task
    // The population is the second side, planned after the first side's stages: look at it through
    // a dedupe of the population alone.
    let mut population_only = pieces.clone();
    population_only.inputs.remove(0);
    population_only.mode = khop_engine::spec::Mode::Dedupe;
    assert_eq!(standardise_tasks(&population_only), 7); // 14 row groups, 2 a task
    let cut_summary = run_job(&pieces, &Silent).unwrap();
    assert_same_outputs(&whole, &cut, "when a file is cut into row-group tasks");
    assert_same_counts(
        &whole_summary,
        &cut_summary,
        "when a file is cut into row-group tasks",
    );
}

/// Asserts that two jobs counted the same records per source: read, accepted, rejected, pruned, and
/// values not understood per field.
fn assert_same_counts(a: &khop_engine::Summary, b: &khop_engine::Summary, what: &str) {
    assert_eq!(a.sources.len(), b.sources.len(), "{what}");
    for (a, b) in a.sources.iter().zip(&b.sources) {
        assert_eq!(
            (a.input, a.accepted, a.rejected, a.pruned, &a.invalid_values),
            (b.input, b.accepted, b.rejected, b.pruned, &b.invalid_values),
            "{}: {what}",
            a.name
        );
    }
}

#[test]
fn bad_records_are_rejected_with_a_reason_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset(&data, 2_000, 200, Format::Csv);
    // Spoil four civil-servant records: a missing id, a repeated id, one with nothing to block on, and
    // a malformed line.
    let path = data.join("civil_servants/part-00000.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let blank_id = lines[1].split_once(',').unwrap().1.to_owned();
    lines[1] = format!(",{blank_id}");
    let first_id = lines[2].split(',').next().unwrap().to_owned();
    let rest = lines[3].split_once(',').unwrap().1.to_owned();
    lines[3] = format!("{first_id},{rest}");
    let id4 = lines[4].split(',').next().unwrap().to_owned();
    lines[4] = format!("{id4},,Nam,,,,,,,,,");
    lines[5] = format!("{},one field too many", lines[5]);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let output = dir.path().join("out");
    let summary = run_job(&job(&data, &output, 0), &Silent).unwrap();
    let cs = &summary.sources[0];
    assert_eq!(cs.input, 200);
    assert_eq!(cs.rejected, 4, "{cs:?}");
    assert_eq!(cs.accepted + cs.rejected, cs.input);

    let rejects = read_parquet_dir(&output.join("rejects"), "part-");
    let reasons: Vec<String> = strings(&rejects, "reason").into_iter().flatten().collect();
    assert!(
        reasons.iter().any(|r| r.contains("missing record id")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("duplicate record id")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("no blocking key")),
        "{reasons:?}"
    );

    // With a cache: the malformed line, the record without an id, the repeated id and the record
    // without a key come back from the cache as they came from the file.
    let cache = dir.path().join("cache");
    for (name, from_cache) in [("written", false), ("replayed", true)] {
        let out = dir.path().join(name);
        let again = run_job(&cached(job(&data, &out, 0), &cache), &Silent).unwrap();
        let what = format!("when the cache is {name}");
        assert_same_outputs(&output, &out, &what);
        assert_same_counts(&summary, &again, &what);
        for b in &again.sources {
            assert_eq!(b.from_cache, if from_cache { b.input } else { 0 }, "{name}");
        }
    }
}

/// One record of a CSV export opens a quote it never closes: that line alone is rejected, saying
/// where, and every other record is read; the input is counted from the file.
#[test]
fn an_unclosed_quote_rejects_its_line_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset(&data, 2_000, 200, Format::Csv);
    let path = data.join("civil_servants/part-00000.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let second_column = lines[0].split(',').nth(1).unwrap().to_owned();
    // Line 10 of the file: its second field opens a quote.
    let (id, rest) = lines[9].split_once(',').unwrap();
    lines[9] = format!("{id},\"{rest}");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let output = dir.path().join("out");
    let summary = run_job(&job(&data, &output, 0), &Silent).unwrap();
    let cs = &summary.sources[0];
    assert_eq!(
        (cs.input, cs.accepted, cs.rejected),
        (200, 199, 1),
        "{cs:?}"
    );
    let rejects = read_parquet_dir(&output.join("rejects"), "part-");
    let reasons: Vec<String> = strings(&rejects, "reason").into_iter().flatten().collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].ends_with(&format!(
            "line 10: unclosed quote in column `{second_column}`"
        )),
        "{reasons:?}"
    );
}

/// `spec` with every input cached at `cache`.
fn cached(mut spec: JobSpec, cache: &Path) -> JobSpec {
    for input in &mut spec.inputs {
        input.cache = Some(cache.to_string_lossy().into_owned());
    }
    spec
}

/// An input cache (`cache` in the spec): the first job writes both sides' standardised records, the
/// next replays them, and both give the files of the job without a cache. A job cut into other
/// row-group pieces, or with other blocking rules, reads its input again.
#[test]
fn a_job_from_its_input_cache_gives_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset(&data, 40_000, 2_000, Format::Parquet);
    rewrite_with_row_groups(&data.join("population/part-00000.parquet"), 5_000);
    let cache = dir.path().join("cache");
    let run = |name: &str, edit: &dyn Fn(&mut JobSpec)| {
        let output = dir.path().join(name);
        let mut spec = job(&data, &output, 0);
        edit(&mut spec);
        (output, run_job(&spec, &Silent).unwrap())
    };
    let (plain, plain_summary) = run("plain", &|_| {});
    let from_cache = |summary: &khop_engine::Summary| -> Vec<u64> {
        summary.sources.iter().map(|s| s.from_cache).collect()
    };
    assert_eq!(from_cache(&plain_summary), [0, 0]);
    let use_cache = |spec: &mut JobSpec| *spec = cached(spec.clone(), &cache);
    let (written, summary) = run("written", &use_cache);
    assert_eq!(from_cache(&summary), [0, 0]);
    assert_same_outputs(&plain, &written, "when the cache is written");
    let (replayed, summary) = run("replayed", &use_cache);
    assert_eq!(from_cache(&summary), [2_000, 40_000]);
    assert_same_outputs(&plain, &replayed, "when records come from the cache");
    assert_same_counts(&plain_summary, &summary, "when records come from the cache");
    // Cut into other pieces: the population's pieces miss (and are written), the civil servants hit.
    let (cut, summary) = run("cut", &|spec| {
        use_cache(spec);
        spec.execution.task_rows = 10_000;
    });
    assert_eq!(from_cache(&summary), [2_000, 0]);
    assert_same_outputs(&plain, &cut, "when other pieces are cached");
    let (_, summary) = run("cut again", &|spec| {
        use_cache(spec);
        spec.execution.task_rows = 10_000;
    });
    assert_eq!(from_cache(&summary), [2_000, 40_000]);
    // Other blocking keys: other standardised records, read from the files.
    let (_, summary) = run("rules", &|spec| {
        use_cache(spec);
        spec.blocking.pop();
    });
    assert_eq!(from_cache(&summary), [0, 0]);
}

#[test]
fn ids_repeated_across_files_are_rejected_once_per_side() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset(&data, 2_000, 200, Format::Csv);
    // A second file per side: a copy of the first file's first record (its id again) and a record of
    // its own (the second record under a new id).
    let mut repeated = Vec::new();
    for source in ["civil_servants", "population"] {
        let text = std::fs::read_to_string(data.join(source).join("part-00000.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let id = lines[1].split(',').next().unwrap().to_owned();
        let second = format!("X{}", lines[2]);
        std::fs::write(
            data.join(source).join("part-00001.csv"),
            [lines[0], lines[1], second.as_str()].join("\n") + "\n",
        )
        .unwrap();
        repeated.push((source, id, lines.len() as u64 - 1));
    }

    let output = dir.path().join("out");
    let summary = run_job(&job(&data, &output, 0), &Silent).unwrap();
    for (s, input) in summary.sources.iter().zip([202, 2_002]) {
        assert_eq!(s.input, input, "{s:?}");
        assert_eq!(s.accepted + s.rejected, s.input, "{s:?}");
    }
    let rejects = read_parquet_dir(&output.join("rejects"), "part-");
    let reasons = strings(&rejects, "reason");
    let (sources, ids) = (strings(&rejects, "source"), strings(&rejects, "record_id"));
    let rows: Vec<u64> = rejects
        .iter()
        .flat_map(|b| {
            let rows = b.column_by_name("row").unwrap();
            let rows = rows
                .as_any()
                .downcast_ref::<arrow::array::UInt64Array>()
                .unwrap();
            rows.values().to_vec()
        })
        .collect();
    for (source, id, row) in repeated {
        let found: Vec<usize> = (0..reasons.len())
            .filter(|&i| {
                sources[i].as_deref() == Some(source)
                    && reasons[i]
                        .as_deref()
                        .is_some_and(|r| r.contains("duplicate record id"))
            })
            .collect();
        assert_eq!(found.len(), 1, "{source}: {found:?}");
        assert_eq!(ids[found[0]].as_deref(), Some(id.as_str()), "{source}");
        // The copy in the second file is the one rejected: rows count across the side's files.
        assert_eq!(rows[found[0]], row, "{source}");
    }
}

/// Rewrites the CSV file at `path` in `encoding` with `delimiter`, every field quoted, through
/// `each_field` (which may change a field before it is written).
fn reencode_csv(
    path: &Path,
    delimiter: u8,
    encoding: khop_vn::text::Encoding,
    each_field: impl Fn(&str) -> String,
) {
    use khop_engine::scan::CsvRecords;
    let utf8 = khop_vn::text::Encoding::Utf8;
    let text = std::fs::read(path).unwrap();
    let mut records = CsvRecords::new(text.as_slice(), b',', utf8);
    let mut bytes = Vec::new();
    while let Some(record) = records.next_record().unwrap() {
        assert_eq!(record.undecodable, None);
        for (i, field) in record.to_vec().iter().enumerate() {
            if i > 0 {
                bytes.push(delimiter);
            }
            let field = each_field(field).replace('"', "\"\"");
            bytes.push(b'"');
            bytes.extend(khop_vn::text::encode_bytes(&field, encoding).unwrap());
            bytes.push(b'"');
        }
        bytes.extend(b"\r\n");
    }
    std::fs::write(path, bytes).unwrap();
}

/// CSV files as older Vietnamese systems export them (Windows-1258 with semicolons, VNI with tabs)
/// give the same files as the same records in UTF-8; a record with a byte that is not text in its
/// file's encoding is rejected with its column named, and counted.
#[test]
fn csv_files_in_legacy_encodings_give_the_same_files_as_utf8() {
    use khop_engine::spec::CsvOptions;
    use khop_vn::text::{Encoding, Legacy};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Without names in TCVN3 or VNI mojibake: a file in one of the 8-bit encodings cannot hold them.
    let mut config = DatagenConfig::default();
    for path in [
        "population.name_tcvn3",
        "population.name_vni",
        "civil_servants.name_tcvn3",
        "civil_servants.name_vni",
    ] {
        config.set_rate(path, 0.0).unwrap();
    }
    dataset_with(&data, 2_000, 200, Format::Csv, config);
    let utf8 = dir.path().join("utf8");
    let summary = run_job(&job(&data, &utf8, 0), &Silent).unwrap();

    let sides = [
        ("civil_servants", b';', Encoding::Windows1258),
        ("population", b'\t', Encoding::Legacy(Legacy::Vni)),
    ];
    for (source, delimiter, encoding) in sides {
        // Windows-1258 has no eth: such records are typed with Đ, which khop reads alike.
        reencode_csv(
            &data.join(source).join("part-00000.csv"),
            delimiter,
            encoding,
            |f| f.replace('Ð', "Đ").replace('ð', "đ"),
        );
    }
    let legacy = |spec: &mut JobSpec| {
        for (input, (_, delimiter, encoding)) in spec.inputs.iter_mut().zip(sides) {
            input.csv = Some(CsvOptions {
                delimiter: char::from(delimiter),
                encoding: encoding.name().into(),
            });
        }
    };
    let encoded = dir.path().join("encoded");
    let mut spec = job(&data, &encoded, 0);
    legacy(&mut spec);
    let again = run_job(&spec, &Silent).unwrap();
    assert_same_outputs(&utf8, &encoded, "read from legacy encodings");
    assert_same_counts(&summary, &again, "read from legacy encodings");

    // A byte Windows-1258 leaves unassigned (0x8A) in the third civil servant's record.
    let path = data.join("civil_servants/part-00000.csv");
    let mut bytes = std::fs::read(&path).unwrap();
    let third = bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .nth(2)
        .unwrap()
        .0;
    let at = third + bytes[third..].iter().position(|&b| b == b';').unwrap() + 3;
    bytes.insert(at, 0x8A);
    std::fs::write(&path, bytes).unwrap();
    let spoiled = dir.path().join("spoiled");
    let mut spec = job(&data, &spoiled, 0);
    legacy(&mut spec);
    let summary = run_job(&spec, &Silent).unwrap();
    let cs = &summary.sources[0];
    assert_eq!((cs.input, cs.rejected), (200, 1), "{cs:?}");
    assert_eq!(cs.accepted + cs.rejected, cs.input);
    let rejects = read_parquet_dir(&spoiled.join("rejects"), "part-");
    let reasons: Vec<String> = strings(&rejects, "reason").into_iter().flatten().collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("line 4: column `full_name` is not windows-1258 text: byte 0x8A"),
        "{reasons:?}"
    );
}

/// How a test writes a full date.
type WriteDate = dyn Fn(khop_vn::date::PartialDate) -> String;

/// The records of the CSV file at `path`, header first.
fn read_csv(path: &Path) -> Vec<Vec<String>> {
    use khop_engine::scan::CsvRecords;
    let text = std::fs::read(path).unwrap();
    let mut records = CsvRecords::new(text.as_slice(), b',', khop_vn::text::Encoding::Utf8);
    let mut rows = Vec::new();
    while let Some(record) = records.next_record().unwrap() {
        rows.push(record.to_vec().iter().map(|f| f.to_string()).collect());
    }
    rows
}

/// Writes `rows` as a UTF-8 CSV file, every field quoted.
fn write_csv(path: &Path, rows: &[Vec<String>]) {
    let mut text = String::new();
    for row in rows {
        let fields: Vec<String> = row
            .iter()
            .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
            .collect();
        text.push_str(&fields.join(","));
        text.push_str("\r\n");
    }
    std::fs::write(path, text).unwrap();
}

/// Dates and IDs as real exports write them give the files the clean export gives: birth dates with
/// two-digit years (`d/m/yy`), or month first (`m/d/yyyy`), read by the column's convention; a
/// column of 10-digit tax codes mapped to the ID field before the PIN is not taken for PINs that lost
/// their zeros. The summary says how each column was read and what could not be, by shape.
#[test]
fn dates_and_ids_as_exports_write_them_give_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset(&data, 2_000, 200, Format::Csv);
    let clean = dir.path().join("clean");
    let summary = run_job(&job(&data, &clean, 0), &Silent).unwrap();

    let path = data.join("civil_servants/part-00000.csv");
    let original = read_csv(&path);
    let column = |name: &str| original[0].iter().position(|c| c == name).unwrap();
    let dob = column("date_of_birth");
    let rewrite = |date: &WriteDate| {
        let mut rows = original.clone();
        rows[0].push("ma_so_thue".into());
        for (i, row) in rows.iter_mut().enumerate().skip(1) {
            if let Ok(d) = khop_vn::date::parse_date(&row[dob])
                && d.is_full()
            {
                row[dob] = date(d);
            }
            // A personal tax code: 10 digits starting with 8.
            row.push(format!("80{:08}", i * 7919));
        }
        write_csv(&path, &rows);
    };
    let with_tax_codes = |output: &Path| {
        let mut spec = job(&data, output, 0);
        let columns = spec.inputs[0].columns.get_mut("ids").unwrap();
        let mut names: Vec<String> = columns.names().iter().map(|c| c.to_string()).collect();
        names.insert(0, "ma_so_thue".into());
        *columns = khop_engine::spec::Columns::Many(names);
        spec
    };
    let cases: [(&str, &WriteDate, &str); 2] = [
        (
            "two_digit_years",
            &|d| {
                let (m, dd) = (d.month.unwrap(), d.day.unwrap());
                format!("{dd}/{m}/{:02}", d.year % 100)
            },
            "day_first",
        ),
        (
            "month_first",
            &|d| {
                let (m, dd) = (d.month.unwrap(), d.day.unwrap());
                format!("{m:02}/{dd:02}/{}", d.year)
            },
            "month_first",
        ),
    ];
    for (name, date, order) in cases {
        rewrite(date);
        let output = dir.path().join(name);
        let again = run_job(&with_tax_codes(&output), &Silent).unwrap();
        assert_same_outputs(&clean, &output, name);
        let (before, after) = (&summary.sources[0], &again.sources[0]);
        assert_eq!(
            (after.input, after.accepted, after.rejected),
            (before.input, before.accepted, before.rejected),
            "{name}"
        );
        assert_eq!(after.conventions["date_of_birth"], order, "{name}");
        assert_eq!(
            after.conventions["ma_so_thue"], "leading zeros not restored",
            "{name}"
        );
        assert_eq!(after.repaired_ids.get("ma_so_thue"), None, "{name}");
        // Every record's tax code is a value the ID field could not read, reported by its shape.
        assert_eq!(after.invalid_values["ids"], 200, "{name}: {after:?}");
        assert_eq!(after.unread_shapes["ids"]["9999999999"], 200, "{name}");
        assert!(
            again
                .warnings
                .iter()
                .any(|w| w.contains("field `ids`") && w.contains("`9999999999`")),
            "{name}: {:?}",
            again.warnings
        );
        assert_eq!(
            after.invalid_values.get("date_of_birth"),
            before.invalid_values.get("date_of_birth"),
            "{name}"
        );
    }
}

/// A person registered twice in the population (a second PIN, or only an old CMND) is one match,
/// not `ambiguous`: a civil servant's candidates are compared with each other, and the population's
/// duplicates they reveal are listed in `duplicates/` (issue 31, entities not rows).
#[test]
fn a_person_registered_twice_is_one_match_and_a_listed_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = khop_datagen::DatagenConfig::from_toml(khop_datagen::HARD_TOML).unwrap();
    dataset_with(&data, 60_000, 3_000, Format::Parquet, config);
    let output = dir.path().join("out");
    run_job(&job(&data, &output, 0), &Silent).unwrap();

    let truth = read_parquet_dir(&data.join("truth"), "");
    let person: std::collections::HashMap<String, u64> = strings(&truth, "record_id")
        .into_iter()
        .map(Option::unwrap)
        .zip(person_ids(&truth))
        .collect();
    let duplicates = read_parquet_dir(&output.join("duplicates"), "part-");
    let (a, b) = (
        strings(&duplicates, "right_id"),
        strings(&duplicates, "duplicate_id"),
    );
    assert!(
        a.len() >= 5,
        "the hard config registers people twice: {} found",
        a.len()
    );
    for (a, b) in a.iter().zip(&b) {
        let (a, b) = (a.as_deref().unwrap(), b.as_deref().unwrap());
        assert_eq!(person[a], person[b], "{a} and {b} are not one person");
    }

    // Matches above the threshold per civil servant, and their statuses.
    let pairs = read_parquet_dir(&output.join("pairs"), "part-");
    let probability: Vec<f64> = pairs
        .iter()
        .flat_map(|b| {
            let p = b.column_by_name("match_probability").unwrap();
            let p = arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(p);
            p.values().to_vec()
        })
        .collect();
    let mut matches: std::collections::HashMap<String, Vec<String>> = Default::default();
    for ((l, r), p) in strings(&pairs, "left_id")
        .into_iter()
        .zip(strings(&pairs, "right_id"))
        .zip(probability)
    {
        if p >= 0.95 {
            matches.entry(l.unwrap()).or_default().push(r.unwrap());
        }
    }
    let reconciliation = read_parquet_dir(&output.join("reconciliation"), "part-");
    let mut one_person_twice = 0;
    for (left, status) in strings(&reconciliation, "left_id")
        .into_iter()
        .zip(strings(&reconciliation, "status"))
    {
        let (left, status) = (left.unwrap(), status.unwrap());
        let Some(rights) = matches.get(&left) else {
            continue;
        };
        let people: std::collections::HashSet<u64> = rights.iter().map(|r| person[r]).collect();
        if rights.len() > 1 && people.len() == 1 {
            one_person_twice += 1;
            assert_eq!(
                status, "matched",
                "{left}: matches {rights:?} are one person"
            );
        }
    }
    assert!(
        one_person_twice >= 5,
        "{one_person_twice} civil servants with two records"
    );
}
