//! `khop datagen` end to end: generate real Parquet files, read them back, check them against the
//! model, the configuration and the truth.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use khop_datagen::{Class, DatagenConfig, DatagenSpec, Format, Manifest, Source, generate};
use khop_vn::Sex;
use khop_vn::date::parse_date;
use khop_vn::id::{IdNumber, parse_id};

use crate::support::{corruption_lists, person_ids, read_parquet_dir, strings};

const POPULATION: u64 = 200_000;
const CIVIL_SERVANTS: u64 = 20_000;

struct Generated {
    _dir: tempfile::TempDir,
    path: PathBuf,
    manifest: Manifest,
}

/// One dataset shared by the tests of this module: generating it is the expensive part.
static DATA: LazyLock<Generated> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let manifest = generate(&spec(POPULATION, CIVIL_SERVANTS, None), &path).unwrap();
    Generated {
        _dir: dir,
        path,
        manifest,
    }
});

fn spec(population: u64, civil_servants: u64, threads: Option<usize>) -> DatagenSpec {
    DatagenSpec {
        population,
        civil_servants,
        seed: 7,
        format: Format::Parquet,
        config: DatagenConfig::default(),
        threads,
    }
}

struct Records {
    ids: Vec<Option<String>>,
    names: Vec<Option<String>>,
    sexes: Vec<Option<String>>,
    dobs: Vec<Option<String>>,
    pins: Vec<Option<String>>,
    truth_ids: Vec<Option<String>>,
    persons: Vec<u64>,
    corruptions: Vec<Vec<String>>,
}

fn load(path: &Path, source: Source) -> Records {
    let batches = read_parquet_dir(&path.join(source.name()), "part-");
    let truth = read_parquet_dir(&path.join("truth"), source.name());
    Records {
        ids: strings(&batches, "record_id"),
        names: strings(&batches, "full_name"),
        sexes: strings(&batches, "sex"),
        dobs: strings(&batches, "date_of_birth"),
        pins: strings(&batches, "pin"),
        truth_ids: strings(&truth, "record_id"),
        persons: person_ids(&truth),
        corruptions: corruption_lists(&truth),
    }
}

/// A binomial proportion within `sigmas` standard errors of `p`, plus a small absolute slack.
fn assert_rate(what: &str, hits: u64, trials: u64, p: f64, sigmas: f64) {
    assert!(trials > 0, "{what}: no trials");
    let observed = hits as f64 / trials as f64;
    let tolerance = sigmas * (p * (1.0 - p) / trials as f64).sqrt() + 1e-3;
    assert!(
        (observed - p).abs() <= tolerance,
        "{what}: observed {observed:.5} over {trials}, expected {p:.5} ± {tolerance:.5}"
    );
}

#[test]
fn layout_and_counts() {
    let d = &*DATA;
    for source in Source::ALL {
        let records = load(&d.path, source);
        let expected = match source {
            Source::Population => POPULATION,
            Source::CivilServants => CIVIL_SERVANTS,
        };
        assert_eq!(records.ids.len() as u64, expected, "{}", source.name());
        assert_eq!(d.manifest.source(source).records, expected);
        for file in &d.manifest.source(source).files {
            assert!(d.path.join(file).is_file(), "{file}");
        }
    }
    assert!(d.path.join("datagen.toml").is_file());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["population"]["records"], POPULATION);
}

#[test]
fn every_record_appears_in_the_truth_exactly_once() {
    for source in Source::ALL {
        let r = load(&DATA.path, source);
        let ids: HashSet<&str> = r.ids.iter().map(|i| i.as_deref().unwrap()).collect();
        assert_eq!(ids.len(), r.ids.len(), "record ids are unique");
        let mut seen = HashSet::new();
        for id in &r.truth_ids {
            let id = id.as_deref().unwrap();
            assert!(ids.contains(id), "truth row for unknown record");
            assert!(seen.insert(id), "record twice in the truth");
        }
        assert_eq!(seen.len(), ids.len());
    }
}

#[test]
fn the_truth_never_appears_in_the_inputs() {
    for source in Source::ALL {
        let batches = read_parquet_dir(&DATA.path.join(source.name()), "part-");
        let schema = batches[0].schema();
        for forbidden in ["person_id", "corruptions", "source"] {
            assert!(schema.field_with_name(forbidden).is_err(), "{forbidden}");
        }
    }
}

#[test]
fn uncorrupted_ids_are_valid_and_agree_with_sex_and_birth_year() {
    let mut checked = 0;
    for source in Source::ALL {
        let r = load(&DATA.path, source);
        for i in 0..r.ids.len() {
            let classes = &r.corruptions[i];
            if classes.iter().any(|c| {
                ["pin_", "dob_", "duplicate"]
                    .iter()
                    .any(|p| c.starts_with(p))
            }) {
                continue;
            }
            let pin = match parse_id(r.pins[i].as_deref().unwrap_or("")) {
                IdNumber::Pin(pin) => pin,
                other => panic!("uncorrupted record {i} has {other:?}"),
            };
            let sex = match r.sexes[i].as_deref() {
                Some("Nam") => Sex::Male,
                Some("Nữ") => Sex::Female,
                other => panic!("sex {other:?}"),
            };
            let dob = parse_date(r.dobs[i].as_deref().unwrap()).expect("uncorrupted date parses");
            assert!(dob.is_full());
            assert_eq!(pin.sex, sex);
            assert_eq!(pin.birth_year, dob.year);
            checked += 1;
        }
    }
    assert!(checked > 150_000, "{checked}");
}

#[test]
fn corruption_rates_match_the_configuration() {
    let d = &*DATA;
    for source in Source::ALL {
        let r = load(&d.path, source);
        let mut from_truth: HashMap<&str, u64> = HashMap::new();
        for classes in &r.corruptions {
            for c in classes {
                *from_truth.entry(c.as_str()).or_default() += 1;
            }
        }
        for (name, count) in &d.manifest.source(source).corruptions {
            assert_eq!(
                from_truth.get(name.as_str()).copied().unwrap_or(0),
                count.applied,
                "{}.{name}: manifest and truth disagree",
                source.name()
            );
            if count.rate > 0.0 {
                assert_rate(
                    &format!("{}.{name}", source.name()),
                    count.applied,
                    count.applicable,
                    count.rate,
                    5.0,
                );
            }
        }
    }
    let cs = &d.manifest.civil_servants.corruptions;
    // Classes that apply to a subset must still find plenty of records to apply to.
    for class in [
        Class::NameToneStyle,
        Class::NameDStroke,
        Class::PinOldCmnd,
        Class::DobDayMonthSwap,
    ] {
        assert!(cs[class.name()].applicable > 500, "{class}");
    }
}

#[test]
fn distributions_follow_the_model() {
    let r = load(&DATA.path, Source::Population);
    let clean: Vec<usize> = (0..r.ids.len())
        .filter(|&i| r.corruptions[i].iter().all(|c| !c.starts_with("name_")))
        .collect();
    let nguyen = clean
        .iter()
        .filter(|&&i| r.names[i].as_deref().unwrap().starts_with("Nguyễn "))
        .count();
    // Nguyễn is about a third of the population (NOTES §2.2: 31–38% by source; the model: 36.7%).
    assert_rate("Nguyễn", nguyen as u64, clean.len() as u64, 0.367, 5.0);

    let women = r
        .sexes
        .iter()
        .filter(|s| s.as_deref() == Some("Nữ"))
        .count();
    assert_rate("women", women as u64, r.sexes.len() as u64, 0.5, 5.0);

    // Văn and Thị are the traditional middle names: far more common among the old than the young.
    let mut traditional = [(0u64, 0u64); 2];
    for &i in &clean {
        let Ok(dob) = parse_date(r.dobs[i].as_deref().unwrap()) else {
            continue;
        };
        let name = r.names[i].as_deref().unwrap();
        let cohort = usize::from(dob.year >= 1990);
        traditional[cohort].1 += 1;
        if name.contains(" Văn ") || name.contains(" Thị ") {
            traditional[cohort].0 += 1;
        }
    }
    let share = |(hits, n): (u64, u64)| hits as f64 / n as f64;
    assert!(share(traditional[0]) > 0.55, "{:?}", traditional);
    assert!(share(traditional[1]) < 0.35, "{:?}", traditional);

    // The age pyramid: 30–34 is among the largest adult groups; 80+ is small.
    let ages: Vec<i32> = clean
        .iter()
        .filter_map(|&i| parse_date(r.dobs[i].as_deref().unwrap()).ok())
        .map(|d| 2026 - d.year)
        .collect();
    let in_range =
        |lo: i32, hi: i32| ages.iter().filter(|&&a| (lo..=hi).contains(&a)).count() as u64;
    let total: f64 = [
        2.9, 7.4, 7.6, 8.4, 8.6, 8.0, 7.3, 6.4, 5.8, 5.1, 4.2, 2.9, 1.8, 1.1, 0.7, 0.4,
    ]
    .iter()
    .sum();
    assert_rate(
        "ages 30-34",
        in_range(30, 34),
        ages.len() as u64,
        8.4 / total,
        6.0,
    );
    assert_rate(
        "ages 80-99",
        in_range(80, 99),
        ages.len() as u64,
        2.2 / total,
        6.0,
    );
}

#[test]
fn duplicates_and_unmatched_civil_servants() {
    let d = &*DATA;
    let population = load(&d.path, Source::Population);
    let civil = load(&d.path, Source::CivilServants);
    let in_population: HashSet<u64> = population.persons.iter().copied().collect();
    let unmatched = civil
        .persons
        .iter()
        .filter(|p| !in_population.contains(p))
        .count() as u64;
    assert_eq!(unmatched, d.manifest.unmatched_civil_servants);
    assert_eq!(unmatched, (CIVIL_SERVANTS as f64 * 0.005).round() as u64);
    let distinct: HashSet<u64> = civil.persons.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        civil.persons.len(),
        "one record per civil servant"
    );

    let mut records_per_person: HashMap<u64, u32> = HashMap::new();
    for p in &population.persons {
        *records_per_person.entry(*p).or_default() += 1;
    }
    let twice = records_per_person.values().filter(|&&n| n > 1).count() as u64;
    let dups = d.manifest.population.corruptions["duplicate"].applied;
    assert!(dups > 0);
    assert!(
        twice <= dups && twice * 10 >= dups * 9,
        "{twice} people twice, {dups} duplicates"
    );
}

/// Runs datagen with `threads` threads into a new directory and returns every file's bytes by path.
fn generate_files(population: u64, threads: usize, format: Format) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(population, 3_000, Some(threads));
    s.format = format;
    generate(&s, dir.path()).unwrap();
    let mut files = Vec::new();
    for sub in ["population", "civil_servants", "truth"] {
        for entry in std::fs::read_dir(dir.path().join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
            files.push((name, std::fs::read(&path).unwrap()));
        }
    }
    files.push((
        "manifest.json".into(),
        std::fs::read(dir.path().join("manifest.json")).unwrap(),
    ));
    files.sort();
    files
}

#[test]
fn the_same_seed_gives_the_same_bytes_whatever_the_threads() {
    // More than one part per source, so parts really are written by different threads.
    let population = khop_datagen::PART_ROWS + 70_000;
    let one = generate_files(population, 1, Format::Parquet);
    let three = generate_files(population, 3, Format::Parquet);
    assert!(
        one.iter()
            .filter(|(n, _)| n.starts_with("population/"))
            .count()
            > 1
    );
    assert_eq!(one.len(), three.len());
    for ((name_a, bytes_a), (name_b, bytes_b)) in one.iter().zip(&three) {
        assert_eq!(name_a, name_b);
        assert!(
            bytes_a == bytes_b,
            "{name_a} differs between 1 and 3 threads"
        );
    }
}

#[test]
fn csv_format_writes_csv_with_the_same_records() {
    let files = generate_files(20_000, 2, Format::Csv);
    let csv = &files
        .iter()
        .find(|(n, _)| n == "population/part-00000.csv")
        .expect("a CSV part")
        .1;
    let text = String::from_utf8(csv.clone()).unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("record_id,full_name,sex,date_of_birth,pin,cmnd")
    );
    assert_eq!(lines.count(), 20_000);
    assert!(
        files
            .iter()
            .any(|(n, _)| n == "truth/population-00000.parquet")
    );
}
