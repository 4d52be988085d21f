//! `khop profile` on two exports whose columns have names khop has never seen: the job it suggests
//! links them within 0.002 F1 of the job written by hand for the same data, and its report never
//! shows a rare value.

use std::path::Path;
use std::process::Command;

use crate::support::{khop, person_ids, read_parquet_dir, run_ok, strings};

/// The generator's columns as two other systems might name them: the civil servants' HR export
/// and the population register's, each its own way.
const CIVIL_SERVANTS: &[(&str, &str)] = &[
    ("record_id", "ma_can_bo"),
    ("full_name", "ho_ten"),
    ("sex", "gioi_tinh"),
    ("date_of_birth", "ngay_sinh"),
    ("pin", "so_dinh_danh"),
    ("place_of_birth", "noi_sinh"),
    ("address_commune", "xa_phuong"),
    ("address_province", "tinh_thanh"),
    ("phone", "dien_thoai"),
    ("agency", "co_quan"),
    ("position", "chuc_vu"),
    ("start_date", "ngay_vao_nganh"),
];
const POPULATION: &[(&str, &str)] = &[
    ("record_id", "id_cong_dan"),
    ("full_name", "hovaten"),
    ("sex", "gioitinh"),
    ("date_of_birth", "ngaysinh"),
    ("pin", "sodinhdanh"),
    ("cmnd", "cmnd_cu"),
    ("place_of_birth", "noisinh"),
    ("address_commune", "xa"),
    ("address_province", "tinh"),
    ("phone", "sdt"),
];

/// Copies the generator's CSV file `from` to `to` with its header renamed.
fn renamed(from: &Path, to: &Path, names: &[(&str, &str)]) {
    let text = std::fs::read_to_string(from).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    let header: Vec<&str> = header
        .split(',')
        .map(|c| {
            names
                .iter()
                .find(|(old, _)| *old == c)
                .unwrap_or_else(|| panic!("no new name for {c}"))
                .1
        })
        .collect();
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, format!("{}\n{rest}", header.join(","))).unwrap();
}

/// The generator's truth as a CSV of `record_id,person_id`: without its `source` column, which
/// names the inputs as the generator's job does, not as a job that names them otherwise.
fn truth_csv(truth: &Path, to: &Path) {
    let mut text = String::from("record_id,person_id\n");
    for source in ["civil_servants", "population"] {
        let batches = read_parquet_dir(truth, source);
        let ids = strings(&batches, "record_id");
        for (id, person) in ids.iter().zip(person_ids(&batches)) {
            text.push_str(&format!("{},{person}\n", id.as_deref().unwrap()));
        }
    }
    std::fs::write(to, text).unwrap();
}

/// The pairs' F1 of a job's outputs against the generator's truth.
fn pairs_f1(truth: &Path, output: &Path) -> f64 {
    let eval = run_ok(
        Command::new(khop())
            .arg("eval")
            .arg("--truth")
            .arg(truth)
            .arg("--output")
            .arg(output)
            .arg("--json"),
    );
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    report
        .pointer("/pairs/f1")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("no pairs.f1 in {report}"))
}

#[test]
fn a_suggested_job_links_unfamiliar_exports_as_well_as_a_hand_written_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The corruptions of real exports, not only the defaults: two-digit years, surname typos,
    // rotated names, PIN prefix typos, duplicates under a new PIN.
    let hard = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/datagen/src/hard.toml");
    run_ok(
        Command::new(khop())
            .args([
                "datagen",
                "--population",
                "60000",
                "--civil-servants",
                "4000",
            ])
            .args(["--seed", "5", "--format", "csv", "--config"])
            .arg(&hard)
            .arg("--out")
            .arg(&data),
    );
    let exports = dir.path().join("exports");
    // One a file, the other a directory of files.
    let civil_servants = exports.join("can_bo.csv");
    let population = exports.join("dan_cu");
    renamed(
        &data.join("civil_servants/part-00000.csv"),
        &civil_servants,
        CIVIL_SERVANTS,
    );
    renamed(
        &data.join("population/part-00000.csv"),
        &population.join("part-00000.csv"),
        POPULATION,
    );

    let spec = exports.join("job.toml");
    let profiled = run_ok(
        Command::new(khop())
            .arg("profile")
            .arg(&civil_servants)
            .arg(&population)
            .arg("--json")
            .arg("--suggest")
            .arg(&spec),
    );
    let report: serde_json::Value = serde_json::from_slice(&profiled.stdout).unwrap();
    let kind = |input: usize, column: &str| {
        report[input]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == column)
            .and_then(|c| c["kind"].as_str())
            .unwrap_or_else(|| panic!("no {column} in {report}"))
            .to_owned()
    };
    for (input, column, expected) in [
        (0, "ho_ten", "name"),
        (0, "gioi_tinh", "sex"),
        (0, "ngay_sinh", "date"),
        (0, "so_dinh_danh", "vn_id"),
        (0, "noi_sinh", "province"),
        (0, "dien_thoai", "phone"),
        (0, "ma_can_bo", "identifier"),
        (1, "cmnd_cu", "vn_id"),
        (1, "xa", "text"),
    ] {
        assert_eq!(kind(input, column), expected, "{column}");
    }
    assert_eq!(report[0]["record_id"], "ma_can_bo");
    assert_eq!(report[1]["rows_read"], 60000);

    // The report shows frequent values (sex codes), never a person's name or number.
    let first = std::fs::read_to_string(&civil_servants).unwrap();
    let record: Vec<&str> = first.lines().nth(1).unwrap().split(',').collect();
    let stdout = String::from_utf8_lossy(&profiled.stdout);
    for value in [record[0], record[1], record[3], record[4], record[8]] {
        if value.is_empty() {
            continue;
        }
        assert!(!stdout.contains(value), "`{value}` in the profile");
    }
    assert!(stdout.contains("\"Nam\""), "frequent values are shown");

    let hand = dir.path().join("hand");
    run_ok(
        Command::new(khop())
            .arg("link")
            .arg(data.join("job.toml"))
            .arg("--output")
            .arg(&hand),
    );
    let suggested = dir.path().join("suggested");
    run_ok(
        Command::new(khop())
            .arg("link")
            .arg(&spec)
            .arg("--output")
            .arg(&suggested),
    );
    let truth = dir.path().join("truth.csv");
    truth_csv(&data.join("truth"), &truth);
    let (f1_hand, f1_suggested) = (pairs_f1(&truth, &hand), pairs_f1(&truth, &suggested));
    assert!(f1_hand > 0.99, "the hand-written job: F1 {f1_hand}");
    assert!(
        (f1_suggested - f1_hand).abs() <= 0.002,
        "suggested F1 {f1_suggested}, hand-written {f1_hand}\n{}",
        std::fs::read_to_string(&spec).unwrap()
    );
}
