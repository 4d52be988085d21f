use super::*;
use crate::JobSpec;
use crate::profile::tests::{Draw, value};
use crate::profile::{Options, profile};
use crate::spec::{Mode, Standardiser};

/// Writes a CSV file of `rows` records with one column per `(name, generator)`, the record number
/// in a first column `id_column`, and returns its path.
fn csv(
    dir: &Path,
    file: &str,
    id_column: &str,
    columns: &[(&str, &str)],
    rows: usize,
    seed: u64,
) -> String {
    let mut d = Draw::new(seed);
    let mut text = String::from(id_column);
    for (name, _) in columns {
        text.push(',');
        text.push_str(name);
    }
    text.push('\n');
    for i in 0..rows {
        let _ = write!(text, "{file}{i}");
        for (_, generator) in columns {
            text.push(',');
            text.push_str(&value(generator, i, &mut d));
        }
        text.push('\n');
    }
    let path = dir.join(format!("{file}.csv"));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The suggested spec for `paths`, loaded as `khop link` loads it.
fn suggested(dir: &Path, paths: &[String]) -> (String, JobSpec) {
    let profiles: Vec<Profiled> = paths
        .iter()
        .map(|p| profile(p, &Options::default()).unwrap())
        .collect();
    let text = suggest(&profiles, dir).unwrap();
    let spec = JobSpec::from_toml(&text, dir).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, spec)
}

fn rules(spec: &JobSpec) -> Vec<(String, Vec<String>)> {
    spec.blocking
        .iter()
        .map(|r| (r.name.clone(), r.keys.clone()))
        .collect()
}

fn owned(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

#[test]
fn two_vietnamese_exports_with_unfamiliar_names_make_a_link_job() {
    let dir = tempfile::tempdir().unwrap();
    let small = csv(
        dir.path(),
        "can_bo",
        "ma_hs",
        &[
            ("ho_ten", "name"),
            ("gioi", "sex"),
            ("ngay_sinh", "dmy"),
            ("so_cccd", "pin"),
            ("que_quan", "province"),
            ("dt", "phone"),
            ("ma_so_thue", "tax_code"),
            ("ngay_vao_nganh", "dmy"),
        ],
        300,
        1,
    );
    let large = csv(
        dir.path(),
        "dan_cu",
        "id",
        &[
            ("hovaten", "name"),
            ("gioitinh", "sex"),
            ("ngaysinh", "iso"),
            ("sodinhdanh", "pin"),
            ("cmnd", "cmnd"),
            ("noisinh", "province"),
            ("so_dien_thoai", "phone"),
        ],
        600,
        2,
    );
    let (text, spec) = suggested(dir.path(), &[small, large]);
    assert_eq!(spec.mode, Mode::Link, "{text}");
    assert_eq!(spec.inputs[0].name, "can_bo");
    assert_eq!(spec.inputs[0].id, "ma_hs");
    assert_eq!(spec.inputs[1].id, "id");
    // Paths beside the spec are written relative to it.
    assert!(text.contains("path = \"can_bo.csv\""), "{text}");
    let fields: Vec<(&str, Standardiser)> =
        spec.fields.iter().map(|(f, s)| (f.as_str(), *s)).collect();
    assert_eq!(
        fields,
        [
            ("dt", Standardiser::Phone),
            ("gioi", Standardiser::Sex),
            ("ho_ten", Standardiser::VnName),
            ("ids", Standardiser::VnId),
            ("ngay_sinh", Standardiser::Date),
            ("que_quan", Standardiser::VnProvince),
        ],
        "{text}"
    );
    let columns = |i: usize, field: &str| spec.inputs[i].columns[field].names().join(",");
    assert_eq!(columns(0, "ids"), "so_cccd");
    assert_eq!(columns(1, "ids"), "sodinhdanh,cmnd");
    assert_eq!(columns(1, "ho_ten"), "hovaten");
    assert_eq!(columns(1, "ngay_sinh"), "ngaysinh");
    // The tax code and the start date have no counterpart: left out, and said so.
    assert!(
        text.contains("ma_so_thue (identifier), ngay_vao_nganh (date)"),
        "{text}"
    );
    assert_eq!(
        rules(&spec),
        [
            ("pin".to_owned(), owned(&["ids.pin"])),
            ("dt".to_owned(), owned(&["dt"])),
            (
                "dob_names".to_owned(),
                owned(&["ngay_sinh.sorted", "ho_ten.surname_key", "ho_ten.given_key"])
            ),
            (
                "year_names".to_owned(),
                owned(&["ngay_sinh.year", "ho_ten.tokens_key", "que_quan"])
            ),
        ],
        "{text}"
    );
    assert_eq!(spec.training.prior_rule.as_deref(), Some("pin"));
    let comparisons: Vec<&str> = spec.comparisons.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        comparisons,
        [
            "surname",
            "middle_name",
            "given_name",
            "ngay_sinh",
            "ids",
            "gioi",
            "que_quan",
            "dt"
        ]
    );
}

#[test]
fn separate_name_columns_and_another_identifier_make_text_fields() {
    // The state has too few values to block on; the postcode enough.
    let dir = tempfile::tempdir().unwrap();
    let columns = [
        ("given_name", "english_given"),
        ("surname", "english_surname"),
        ("date_of_birth", "ymd"),
        ("soc_sec_id", "tax_code"),
        ("state", "state"),
        ("postcode", "postcode"),
    ];
    let a = csv(dir.path(), "a", "rec_id", &columns, 400, 1);
    let b = csv(dir.path(), "b", "rec_id", &columns, 400, 2);
    let (text, spec) = suggested(dir.path(), &[a, b]);
    let fields: Vec<(&str, Standardiser)> =
        spec.fields.iter().map(|(f, s)| (f.as_str(), *s)).collect();
    assert_eq!(
        fields,
        [
            ("date_of_birth", Standardiser::Date),
            ("given_name", Standardiser::Text),
            ("postcode", Standardiser::Text),
            ("soc_sec_id", Standardiser::Id),
            ("state", Standardiser::Text),
            ("surname", Standardiser::Text),
        ],
        "{text}"
    );
    assert_eq!(
        rules(&spec),
        [
            ("soc_sec_id".to_owned(), owned(&["soc_sec_id"])),
            (
                "date_of_birth_surname".to_owned(),
                owned(&["date_of_birth", "surname"])
            ),
            (
                "date_of_birth_given_name".to_owned(),
                owned(&["date_of_birth", "given_name"])
            ),
            (
                "date_of_birth_postcode".to_owned(),
                owned(&["date_of_birth", "postcode"])
            ),
            (
                "surname_given_name".to_owned(),
                owned(&["surname", "given_name"])
            ),
            (
                "surname_postcode".to_owned(),
                owned(&["surname", "postcode"])
            ),
            (
                "given_name_postcode".to_owned(),
                owned(&["given_name", "postcode"])
            ),
            (
                "names_sound_alike".to_owned(),
                owned(&[
                    "surname.phonetic",
                    "given_name.phonetic",
                    "date_of_birth.year"
                ])
            ),
        ],
        "{text}"
    );
    assert_eq!(spec.training.prior_rule.as_deref(), Some("soc_sec_id"));
    let given = spec
        .comparisons
        .iter()
        .find(|c| c.name == "given_name")
        .unwrap();
    assert!(given.term_frequency, "{text}");
    assert_eq!(given.levels.len(), 3, "{text}");
}

#[test]
fn one_input_makes_a_dedupe_job_of_every_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(
        dir.path(),
        "dan_cu",
        "ma",
        &[
            ("ho_ten", "name"),
            ("ngay_sinh", "dmy"),
            ("pin", "pin"),
            ("cmnd", "cmnd"),
            ("xa", "commune"),
        ],
        300,
        3,
    );
    let (text, spec) = suggested(dir.path(), &[path]);
    assert_eq!(spec.mode, Mode::Dedupe, "{text}");
    assert_eq!(spec.inputs.len(), 1);
    let fields: Vec<&str> = spec.fields.keys().map(String::as_str).collect();
    assert_eq!(fields, ["ho_ten", "ids", "ngay_sinh", "xa"], "{text}");
    assert_eq!(
        spec.inputs[0].columns["ids"].names(),
        ["pin", "cmnd"],
        "{text}"
    );
    let names: Vec<&str> = spec.blocking.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["pin", "cmnd", "dob_names", "year_names"], "{text}");
    assert_eq!(
        spec.blocking[3].keys,
        owned(&["ngay_sinh.year_month", "ho_ten.tokens_key"])
    );
}

#[test]
fn an_input_without_a_record_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.csv");
    std::fs::write(&path, "gioi_tinh,ho\nNam,Lê\nNữ,Lê\nNam,Lê\n").unwrap();
    let profiled = profile(path.to_str().unwrap(), &Options::default()).unwrap();
    let err = suggest(&[profiled], dir.path()).err().unwrap().to_string();
    assert!(
        err.contains("no column has a value in every record"),
        "{err}"
    );
}

#[test]
fn field_names_are_valid_and_distinct() {
    // (column, field name)
    let cases: &[(&str, &str)] = &[
        ("Họ tên", "ho_ten"),
        ("2nd phone", "f_2nd_phone"),
        ("NGÀY-SINH", "ngay_sinh"),
        ("", "f_"),
    ];
    for &(column, expected) in cases {
        assert_eq!(identifier(column), expected, "{column}");
    }
}
