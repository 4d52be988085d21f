//! Criterion benchmarks of the comparison kernels and the standardisers, single-threaded, so the
//! elements/s criterion prints are comparisons (or values) per second per core.
//!
//! `cargo bench -p khop-benches --bench kernels` (figures and machine in `benches/README.md`).
//!
//! Inputs are built here, deterministically, from short hard-coded lists of Vietnamese surnames,
//! middle and given names and the province reference of `khop-vn`, corrupted with `khop_vn::text` the
//! way the generator does (NFD, capitals, no diacritics, TCVN3/VNI mojibake, old tone style, i/y,
//! typos, surname last). Groups:
//! 1. `name_key`: the string kernels of the name levels on name-part keys (ASCII, as the engine
//!    compares them): `exact_key` (equality), `jaro_winkler`, `damerau` (`strsim::osa_distance`).
//! 2. `gamma`: `Compiled::gamma` for each of the 9 comparisons of the generator's job
//!    (`crates/datagen/src/job.toml`) and `gamma_vector` for all 9, on pairs of standardised records
//!    (half true matches written differently, half other people).
//! 3. `standardise`: `parse_name` + `name_key` of the three parts (per name, by written form),
//!    `parse_date`, `parse_id`, `resolve_province`, per value; `record/*`: whole records of either
//!    source through the engine's `standardise_batch` (every field and the blocking keys), per record.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use khop_engine::JobSpec;
use khop_engine::compare::{Scratch, compile, gamma_vector};
use khop_engine::standardise::{Table, standardise_batch};
use khop_vn::Sex;
use khop_vn::admin::resolve_province;
use khop_vn::date::parse_date;
use khop_vn::id::{IdNumber, format_pin, parse_id};
use khop_vn::name::{name_key, parse_name};
use khop_vn::reference::old_provinces;
use khop_vn::text::{
    Legacy, ToneStyle, fold_diacritics, nfd, swap_i_y, to_mojibake, with_tone_style,
};

/// Pairs (or values) per iteration of every benchmark.
const N: usize = 1000;

const SURNAMES: &[&str] = &[
    "Nguyễn", "Nguyễn", "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ",
    "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý",
];
const MIDDLES: &[&str] = &[
    "Văn",
    "Thị",
    "Đức",
    "Minh",
    "Ngọc",
    "Thanh",
    "Hữu",
    "Quốc",
    "Thị Thu",
    "Văn Hoàng",
    "Xuân",
    "Kim",
    "Công",
    "Phương",
    "Thị Ngọc",
    "",
];
const GIVENS: &[&str] = &[
    "An", "Anh", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hằng", "Hoa", "Hòa", "Hùng", "Hương",
    "Huy", "Khánh", "Lan", "Linh", "Long", "Mai", "Minh", "Nam", "Nga", "Ngọc", "Nhung", "Phong",
    "Phúc", "Quang", "Sơn", "Tâm", "Thảo", "Thủy", "Trang", "Trung", "Tuấn", "Việt", "Vy", "Yến",
    "Quý", "Khoa", "Thúy", "Hạnh",
];

/// splitmix64: a fixed, dependency-free stream of numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// The written forms of a name that the benchmarks mix.
const FORMS: &[&str] = &[
    "nfc",
    "nfc",
    "nfc",
    "nfd",
    "upper",
    "ascii",
    "tcvn3",
    "vni",
    "old_tone",
    "i_y",
    "typo",
    "surname_last",
];

#[derive(Clone, Copy)]
struct Name {
    surname: &'static str,
    middle: &'static str,
    given: &'static str,
}

impl Name {
    fn random(rng: &mut Rng) -> Self {
        Name {
            surname: rng.pick(SURNAMES),
            middle: rng.pick(MIDDLES),
            given: rng.pick(GIVENS),
        }
    }

    fn words(&self, surname_last: bool) -> String {
        let mut words = vec![];
        if !surname_last {
            words.push(self.surname);
        }
        words.extend(self.middle.split(' ').filter(|w| !w.is_empty()));
        words.push(self.given);
        if surname_last {
            words.push(self.surname);
        }
        words.join(" ")
    }

    /// The name written in `form`.
    fn written(&self, form: &str, rng: &mut Rng) -> String {
        let nfc = self.words(false);
        match form {
            "nfd" => nfd(&nfc),
            "upper" => nfc.to_uppercase(),
            "ascii" => fold_diacritics(&nfc),
            "tcvn3" => to_mojibake(&nfc, Legacy::Tcvn3),
            "vni" => to_mojibake(&nfc, Legacy::Vni),
            "old_tone" => with_tone_style(&nfc, ToneStyle::Old),
            "i_y" => swap_i_y(&nfc),
            "typo" => typo(&nfc, rng),
            "surname_last" => self.words(true),
            _ => nfc,
        }
    }
}

/// One letter of the last word dropped, doubled or swapped with its neighbour.
fn typo(s: &str, rng: &mut Rng) -> String {
    let start = s.rfind(' ').map_or(0, |i| i + 1);
    let (head, last) = s.split_at(start);
    let mut chars: Vec<char> = last.chars().collect();
    let i = rng.below(chars.len());
    match rng.below(3) {
        0 if chars.len() > 2 => {
            chars.remove(i);
        }
        1 if i + 1 < chars.len() => chars.swap(i, i + 1),
        _ => chars.insert(i, chars[i]),
    }
    format!("{head}{}", chars.into_iter().collect::<String>())
}

/// The three part keys of a written name, as the engine stores them.
fn part_keys(written: &str) -> [String; 3] {
    let p = parse_name(written).unwrap_or_default();
    [
        name_key(&p.surname),
        name_key(&p.middle),
        name_key(&p.given),
    ]
}

/// `N` pairs of name-part keys (surname, middle, given; empty parts skipped, as the engine returns the
/// null level for them): half from two written forms of one name, half from two different names.
fn key_pairs() -> Vec<(String, String)> {
    let mut rng = Rng(1);
    let mut pairs = Vec::with_capacity(N);
    while pairs.len() < N {
        let a = Name::random(&mut rng);
        let b = if pairs.len() % 2 == 0 {
            a
        } else {
            Name::random(&mut rng)
        };
        let (fa, fb) = (rng.pick(FORMS), rng.pick(FORMS));
        let ka = part_keys(&a.written(fa, &mut rng));
        let kb = part_keys(&b.written(fb, &mut rng));
        for (x, y) in ka.into_iter().zip(kb) {
            if !x.is_empty() && !y.is_empty() && pairs.len() < N {
                pairs.push((x, y));
            }
        }
    }
    pairs
}

fn name_kernels(c: &mut Criterion) {
    let pairs = key_pairs();
    let mut group = c.benchmark_group("name_key");
    group.throughput(Throughput::Elements(pairs.len() as u64));
    group.bench_function("exact_key", |b| {
        b.iter(|| {
            black_box(&pairs)
                .iter()
                .filter(|(x, y)| black_box(x.as_str()) == black_box(y.as_str()))
                .count()
        })
    });
    group.bench_function("jaro_winkler", |b| {
        b.iter(|| {
            black_box(&pairs)
                .iter()
                .filter(|(x, y)| strsim::jaro_winkler(x, y) >= 0.85)
                .count()
        })
    });
    group.bench_function("damerau", |b| {
        b.iter(|| {
            black_box(&pairs)
                .iter()
                .filter(|(x, y)| strsim::osa_distance(x, y) <= 1)
                .count()
        })
    });
    group.finish();
}

/// One person, the truth both sources write in their own ways.
struct Person {
    name: Name,
    sex: Sex,
    year: i32,
    month: u32,
    day: u32,
    province: usize,
    pin: String,
    cmnd: String,
    phone: String,
}

fn people(n: usize, rng: &mut Rng) -> Vec<Person> {
    let provinces = old_provinces();
    (0..n)
        .map(|i| {
            let province = rng.below(provinces.len());
            let p = &provinces[province];
            let sex = if rng.below(2) == 0 {
                Sex::Male
            } else {
                Sex::Female
            };
            let year = 1950 + rng.below(56) as i32;
            let prefix = p.cmnd_prefixes.first().map_or("0", String::as_str);
            let cmnd = format!(
                "{prefix}{:0>w$}",
                rng.below(10_000_000),
                w = 9 - prefix.len()
            );
            Person {
                name: Name::random(rng),
                sex,
                year,
                month: 1 + rng.below(12) as u32,
                day: 1 + rng.below(28) as u32,
                province,
                pin: format_pin(p.pin_code, sex, year, i as u32 * 37 + 11),
                cmnd: cmnd[..9].to_owned(),
                phone: format!("09{:08}", rng.below(100_000_000)),
            }
        })
        .collect()
}

/// One digit changed, or two neighbours swapped.
fn digit_typo(s: &str, rng: &mut Rng) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = rng.below(b.len() - 1);
    if rng.below(2) == 0 {
        b[i] = b'0' + (b[i] - b'0' + 1) % 10;
    } else {
        b.swap(i, i + 1);
    }
    String::from_utf8(b).unwrap_or_default()
}

fn column(values: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

/// The civil-servant source: tidy, PINs only, day-first dates.
fn civil_servants(people: &[Person], rng: &mut Rng) -> RecordBatch {
    let provinces = old_provinces();
    let mut cols: [Vec<String>; 8] = Default::default();
    for (i, p) in people.iter().enumerate() {
        let form = if rng.below(4) == 0 {
            rng.pick(FORMS)
        } else {
            "nfc"
        };
        let prov = &provinces[p.province];
        let row = [
            format!("cs{i}"),
            p.name.written(form, rng),
            if p.sex == Sex::Male { "Nam" } else { "Nữ" }.to_owned(),
            format!("{:02}/{:02}/{}", p.day, p.month, p.year),
            p.pin.clone(),
            prov.official_name.clone(),
            format!("Số {}, đường Lê Lợi, {}", 1 + rng.below(200), prov.name),
            p.phone.clone(),
        ];
        for (c, v) in cols.iter_mut().zip(row) {
            c.push(v);
        }
    }
    let names = [
        "record_id",
        "full_name",
        "sex",
        "date_of_birth",
        "pin",
        "place_of_birth",
        "address_province",
        "phone",
    ];
    RecordBatch::try_from_iter(names.into_iter().zip(cols.map(column))).expect("batch")
}

/// The population source: the same people written worse (corrupted names, ISO or partial or swapped
/// dates, old CMNDs, mistyped IDs and phones, provinces without diacritics).
fn population(people: &[Person], rng: &mut Rng) -> RecordBatch {
    let provinces = old_provinces();
    let mut cols: [Vec<String>; 9] = Default::default();
    for (i, p) in people.iter().enumerate() {
        let prov = &provinces[p.province];
        let dob = match rng.below(10) {
            0 => p.year.to_string(),
            1 => format!("{}-{:02}-{:02}", p.year, p.day.min(12), p.month),
            2 => format!("{}", p.year + 1),
            _ => format!("{}-{:02}-{:02}", p.year, p.month, p.day),
        };
        let (pin, cmnd) = match rng.below(10) {
            0..=2 => (String::new(), p.cmnd.clone()),
            3 => (digit_typo(&p.pin, rng), String::new()),
            4 => (p.pin.clone(), p.cmnd.clone()),
            _ => (p.pin.clone(), String::new()),
        };
        let phone = match rng.below(4) {
            0 => format!("+84 {}", &p.phone[1..]),
            1 => digit_typo(&p.phone, rng),
            _ => p.phone.clone(),
        };
        let row = [
            format!("pop{i}"),
            p.name.written(rng.pick(FORMS), rng),
            if p.sex == Sex::Male { "M" } else { "F" }.to_owned(),
            dob,
            pin,
            cmnd,
            fold_diacritics(&prov.name),
            format!("Xã Tân Phú, huyện Châu Thành, tỉnh {}", prov.name),
            phone,
        ];
        for (c, v) in cols.iter_mut().zip(row) {
            c.push(v);
        }
    }
    let names = [
        "record_id",
        "full_name",
        "sex",
        "date_of_birth",
        "pin",
        "cmnd",
        "place_of_birth",
        "address_province",
        "phone",
    ];
    RecordBatch::try_from_iter(names.into_iter().zip(cols.map(column))).expect("batch")
}

/// The generator's job spec and two standardised tables of `N / 2` records each.
fn tables() -> (JobSpec, Table, Table) {
    let text = include_str!("../../crates/datagen/src/job.toml").replace("{format}", "csv");
    let spec = JobSpec::from_toml(&text, Path::new("/nonexistent")).expect("job spec");
    let mut rng = Rng(2);
    let people = people(N / 2, &mut rng);
    let a = standardise_batch(&spec, &spec.inputs[0], &civil_servants(&people, &mut rng));
    let b = standardise_batch(&spec, &spec.inputs[1], &population(&people, &mut rng));
    assert_eq!((a.len(), b.len()), (N / 2, N / 2));
    (spec, a, b)
}

fn gamma_kernels(c: &mut Criterion) {
    let (spec, a, b) = tables();
    let comparisons = compile(&spec);
    assert_eq!(comparisons.len(), 9);
    // Each record against its own other record (a true match) and against another person's.
    let n = a.len();
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| [(i, i), (i, (i * 7 + 13) % n)])
        .collect();
    let mut scratch = Scratch::default();
    // The inputs are what they claim: true pairs agree (first level) far more often than others.
    for comparison in &comparisons {
        let mut first = [0usize; 2];
        let mut null = 0;
        for &(ra, rb) in &pairs {
            let gamma = comparison.gamma(&a, ra, &b, rb, &mut scratch);
            first[usize::from(ra != rb)] += usize::from(gamma == 1);
            null += usize::from(gamma == 0);
        }
        eprintln!(
            "gamma/{}: first level in {:.0}% of true pairs, {:.0}% of others; null in {:.0}%",
            comparison.name,
            100.0 * first[0] as f64 / n as f64,
            100.0 * first[1] as f64 / n as f64,
            100.0 * null as f64 / pairs.len() as f64,
        );
        assert!(
            first[0] > first[1],
            "{}: inputs do not match",
            comparison.name
        );
    }
    let mut group = c.benchmark_group("gamma");
    group.throughput(Throughput::Elements(pairs.len() as u64));
    for comparison in &comparisons {
        group.bench_function(comparison.name.as_str(), |bench| {
            bench.iter(|| {
                black_box(&pairs).iter().fold(0u64, |acc, &(ra, rb)| {
                    acc + u64::from(comparison.gamma(&a, ra, &b, rb, &mut scratch))
                })
            })
        });
    }
    group.bench_function("gamma_vector_9", |bench| {
        bench.iter(|| {
            black_box(&pairs).iter().fold(0u64, |acc, &(ra, rb)| {
                acc ^ gamma_vector(&comparisons, &a, ra, &b, rb, &mut scratch)
            })
        })
    });
    group.finish();
}

fn standardisers(c: &mut Criterion) {
    let mut rng = Rng(3);
    let mut group = c.benchmark_group("standardise");
    group.throughput(Throughput::Elements(N as u64));
    let names = |form: Option<&str>, rng: &mut Rng| -> Vec<String> {
        (0..N)
            .map(|_| {
                let name = Name::random(rng);
                let form = form.unwrap_or_else(|| rng.pick(FORMS));
                name.written(form, rng)
            })
            .collect()
    };
    for form in [
        None,
        Some("nfc"),
        Some("ascii"),
        Some("nfd"),
        Some("tcvn3"),
        Some("vni"),
    ] {
        let inputs = names(form, &mut rng);
        let id = format!("parse_name+name_key/{}", form.unwrap_or("mixed"));
        group.bench_function(id.as_str(), |b| {
            b.iter(|| {
                black_box(&inputs)
                    .iter()
                    .map(|s| part_keys(s).iter().map(String::len).sum::<usize>())
                    .sum::<usize>()
            })
        });
    }

    // Whole records as the engine standardises them (every field and the blocking keys), from the
    // same generated people the gamma benchmarks use.
    let text = include_str!("../../crates/datagen/src/job.toml").replace("{format}", "csv");
    let spec = JobSpec::from_toml(&text, Path::new("/nonexistent")).expect("job spec");
    let mut records_rng = Rng(5);
    let records_people = people(N, &mut records_rng);
    for (id, input, batch) in [
        (
            "record/civil_servant",
            0,
            civil_servants(&records_people, &mut records_rng),
        ),
        (
            "record/population",
            1,
            population(&records_people, &mut records_rng),
        ),
    ] {
        group.bench_function(id, |b| {
            b.iter(|| standardise_batch(&spec, &spec.inputs[input], black_box(&batch)).len())
        });
    }

    let dates: Vec<String> = (0..N)
        .map(|_| {
            let (y, m, d) = (1950 + rng.below(56), 1 + rng.below(12), 1 + rng.below(28));
            match rng.below(8) {
                0 => format!("{y}-{m:02}-{d:02}"),
                1 => format!("{d}/{m}/{y}"),
                2 => format!("{y}"),
                3 => format!("00/{m:02}/{y}"),
                4 => format!("{y}{m:02}{d:02}"),
                5 => format!("ngày {d} tháng {m} năm {y}"),
                6 => format!("{d:02}/{m:02}/{y} 00:00:00"),
                _ => format!("{d:02}/{m:02}/{y}"),
            }
        })
        .collect();
    group.bench_function("parse_date", |b| {
        b.iter(|| {
            black_box(&dates)
                .iter()
                .filter(|s| parse_date(s).is_ok())
                .count()
        })
    });

    let mut people_rng = Rng(4);
    let ids: Vec<String> = people(N, &mut people_rng)
        .into_iter()
        .map(|p| match rng.below(8) {
            0 => p.cmnd,
            1 => p.pin.trim_start_matches('0').to_owned(),
            2 => format!("{} {} {}", &p.pin[..4], &p.pin[4..8], &p.pin[8..]),
            3 => digit_typo(&p.pin, &mut rng)[..11].to_owned(),
            4 => "không có".to_owned(),
            _ => p.pin,
        })
        .collect();
    group.bench_function("parse_id", |b| {
        b.iter(|| {
            black_box(&ids)
                .iter()
                .filter(|s| matches!(parse_id(s), IdNumber::Pin(_) | IdNumber::Cmnd9 { .. }))
                .count()
        })
    });

    let provinces = old_provinces();
    let places: Vec<String> = (0..N)
        .map(|_| {
            let p = &provinces[rng.below(provinces.len())];
            match rng.below(6) {
                0 => p.official_name.clone(),
                1 => fold_diacritics(&p.name),
                2 => format!("Số 12, đường Lê Lợi, phường 3, {}", p.official_name),
                3 => format!("Xã Tân Phú huyện Châu Thành tỉnh {}", p.name),
                4 => p.name.to_uppercase(),
                _ => p.name.clone(),
            }
        })
        .collect();
    group.bench_function("resolve_province", |b| {
        b.iter(|| {
            black_box(&places)
                .iter()
                .filter(|s| resolve_province(s).is_some())
                .count()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = kernels;
    config = config();
    targets = name_kernels, gamma_kernels, standardisers
}
criterion_main!(kernels);
