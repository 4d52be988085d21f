//! People: the true attributes behind the records, each a pure function of `(seed, person id)`.
//!
//! Birth province, sex and birth year are assigned by **stratification**: the slots `0..n` are divided
//! among (province, sex, age) strata in exact proportion to the model, and a pseudo-random permutation
//! maps each person id to a slot. A person's rank within their stratum then gives the 6-digit serial of
//! their PIN through a bijection, so every PIN is unique without any table of issued numbers, and the
//! marginals are exact rather than merely expected.
//!
//! Ids `0..population` are people of the population database. Ids from `population` on are the
//! civil servants with no counterpart there; they come from a second, working-age stratification whose
//! ranks continue after the first one's, so their PINs are unique too.

use khop_vn::Sex;
use khop_vn::id::format_pin;
use std::collections::HashMap;
use std::sync::LazyLock;

use khop_vn::reference::{OldProvince, new_by_code, new_provinces, old_provinces};

use crate::DatagenError;
use crate::model::{MAX_AGE, MIN_AGE, MODEL, REFERENCE_YEAR, WORKING_AGES, is_southern, sex_index};
use crate::rng::{Permutation, Rng, hash3, stream};

/// Serials are 6 digits. Ranks of regular PINs stay below this bound; the serials above it (in
/// permuted order) are kept for the re-issued PINs of duplicate records.
const SERIALS: u64 = 1_000_000;
const REGULAR_SERIALS: u64 = 750_000;
/// A multiplier coprime to 10^6: `rank -> rank * A + B (mod 10^6)` is a bijection.
const SERIAL_MULTIPLIER: u64 = 387_577;

const AGES: usize = (MAX_AGE - MIN_AGE + 1) as usize;

fn bucket_parts(bucket: usize) -> (usize, Sex, i32) {
    let age = (bucket % AGES) as i32 + MIN_AGE;
    let sex = if (bucket / AGES).is_multiple_of(2) {
        Sex::Male
    } else {
        Sex::Female
    };
    (bucket / AGES / 2, sex, age)
}

/// Exact counts of slots per stratum, by the largest-remainder method.
#[derive(Debug)]
struct Strata {
    /// `cumulative[b]` is the first slot of bucket `b`; the last entry is the total.
    cumulative: Vec<u64>,
}

impl Strata {
    fn new(total: u64, weight: impl Fn(usize) -> f64, buckets: usize) -> Self {
        let weights: Vec<f64> = (0..buckets).map(weight).collect();
        let sum: f64 = weights.iter().sum();
        let quotas: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
        let mut counts: Vec<u64> = quotas.iter().map(|q| q.floor() as u64).collect();
        let assigned: u64 = counts.iter().sum();
        let mut by_remainder: Vec<usize> = (0..buckets).collect();
        // Ties broken by index: the order is part of the data's definition.
        by_remainder.sort_by(|&a, &b| {
            let (ra, rb) = (quotas[a] - quotas[a].floor(), quotas[b] - quotas[b].floor());
            rb.total_cmp(&ra).then(a.cmp(&b))
        });
        for &b in by_remainder.iter().take((total - assigned) as usize) {
            counts[b] += 1;
        }
        let mut cumulative = Vec::with_capacity(buckets + 1);
        let mut acc = 0;
        cumulative.push(0);
        for c in counts {
            acc += c;
            cumulative.push(acc);
        }
        Strata { cumulative }
    }

    fn count(&self, bucket: usize) -> u64 {
        self.cumulative[bucket + 1] - self.cumulative[bucket]
    }

    /// The bucket of a slot and the slot's rank within it.
    fn locate(&self, slot: u64) -> (usize, u64) {
        let bucket = self.cumulative.partition_point(|&c| c <= slot) - 1;
        (bucket, slot - self.cumulative[bucket])
    }
}

/// Where people live: an old province and a commune index in it, and the same place after the reform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Residence {
    /// Index into `old_provinces()`.
    pub old_province: usize,
    pub old_commune: u16,
    pub new_code: u8,
    pub new_commune: u16,
}

/// The truth about one person.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: u64,
    pub sex: Sex,
    pub birth_year: i32,
    pub birth_month: u8,
    pub birth_day: u8,
    /// Index into `old_provinces()` of the province where the birth was registered.
    pub birth_province: usize,
    pub surname: &'static str,
    pub middles: Vec<&'static str>,
    pub given: &'static str,
    /// The 12-digit personal ID number.
    pub pin: String,
    /// The old 9-digit ID number, for part of those born before 1995.
    pub cmnd: Option<String>,
    pub residence: Residence,
    pub phone: Option<String>,
    bucket: usize,
}

impl Person {
    /// The name in its canonical form: surname, middle names, given name.
    pub fn full_name(&self) -> String {
        let mut name = String::with_capacity(32);
        name.push_str(self.surname);
        for m in &self.middles {
            name.push(' ');
            name.push_str(m);
        }
        name.push(' ');
        name.push_str(self.given);
        name
    }

    pub fn birth_province(&self) -> &'static OldProvince {
        &old_provinces()[self.birth_province]
    }

    pub fn age(&self) -> i32 {
        REFERENCE_YEAR - self.birth_year
    }

    /// A new PIN as issued again after the old one was cancelled (wrong data at registration): the
    /// same prefix, a serial from the range regular PINs never use.
    pub fn reissued_pin(&self, seed: u64, record: u64) -> String {
        let spare = SERIALS - REGULAR_SERIALS;
        let rank = REGULAR_SERIALS + hash3(seed, stream::DUPLICATE, record) % spare;
        self.pin_with_rank(seed, rank)
    }

    fn pin_with_rank(&self, seed: u64, rank: u64) -> String {
        let offset = hash3(seed, stream::SERIAL, self.bucket as u64) % SERIALS;
        let serial = (rank * SERIAL_MULTIPLIER + offset) % SERIALS;
        format_pin(
            self.birth_province().pin_code,
            self.sex,
            self.birth_year,
            serial as u32,
        )
    }
}

/// Draws people. Built once per dataset; cheap to share between threads.
#[derive(Debug)]
pub struct People {
    seed: u64,
    population: u64,
    main: Strata,
    main_permutation: Permutation,
    extra: Strata,
    extra_permutation: Permutation,
    moved_share: f64,
    cmnd_share: f64,
    phone_share: f64,
}

impl People {
    /// People for a population of `population` ids and `extra` working-age people outside it.
    pub fn new(
        seed: u64,
        population: u64,
        extra: u64,
        config: &crate::DatagenConfig,
    ) -> Result<Self, DatagenError> {
        let model = &*MODEL;
        let buckets = old_provinces().len() * 2 * AGES;
        let weight = |working_only: bool| {
            move |b: usize| {
                let (province, _, age) = bucket_parts(b);
                if working_only && !WORKING_AGES.contains(&age) {
                    0.0
                } else {
                    model.province_weights[province] * model.age_weights[(age - MIN_AGE) as usize]
                }
            }
        };
        let main = Strata::new(population, weight(false), buckets);
        let extra_strata = Strata::new(extra, weight(true), buckets);
        let largest = (0..buckets)
            .map(|b| main.count(b) + extra_strata.count(b))
            .max()
            .unwrap_or(0);
        if largest >= REGULAR_SERIALS {
            return Err(DatagenError::Config(format!(
                "population of {population}: {largest} people would share one birth province, sex \
                 and year, more than the {REGULAR_SERIALS} PIN serials kept for them"
            )));
        }
        Ok(People {
            seed,
            population,
            main,
            main_permutation: Permutation::new(population, seed, 1),
            extra: extra_strata,
            extra_permutation: Permutation::new(extra, seed, 2),
            moved_share: config.moved_share,
            cmnd_share: config.cmnd_share,
            phone_share: config.phone_share,
        })
    }

    /// The stratum and rank of a person: enough to know their sex, age and birth province.
    fn stratum(&self, id: u64) -> (usize, u64) {
        if id < self.population {
            self.main.locate(self.main_permutation.apply(id))
        } else {
            let (bucket, rank) = self
                .extra
                .locate(self.extra_permutation.apply(id - self.population));
            (bucket, self.main.count(bucket) + rank)
        }
    }

    /// The age of a person on the reference date, without drawing the rest of them.
    pub fn age(&self, id: u64) -> i32 {
        bucket_parts(self.stratum(id).0).2
    }

    pub fn get(&self, id: u64) -> Person {
        let model = &*MODEL;
        let (bucket, rank) = self.stratum(id);
        let (birth_province, sex, age) = bucket_parts(bucket);
        let mut rng = Rng::new(self.seed, stream::PERSON, id);

        let birth_year = REFERENCE_YEAR - age;
        let (birth_month, birth_day) = day_of_year(birth_year, rng.below(days_in_year(birth_year)));

        let province = &old_provinces()[birth_province];
        let surname = regional_surname(
            &model.surnames.names[model.surnames.cdf.sample(&mut rng)],
            is_southern(province),
            &mut rng,
        );
        let s = sex_index(sex);
        let cohort = model.cohort(birth_year);
        let mut middles = Vec::with_capacity(2);
        if rng.chance(cohort.p_maternal_surname) {
            let maternal = &model.surnames.names[model.surnames.cdf.sample(&mut rng)];
            middles.push(regional_surname(maternal, is_southern(province), &mut rng));
        }
        let traditional = match sex {
            Sex::Male => (cohort.p_van, "Văn", cohort.p_two_middle_male),
            Sex::Female => (cohort.p_thi, "Thị", cohort.p_two_middle_female),
        };
        if rng.chance(traditional.0) {
            middles.push(traditional.1);
        } else {
            middles.push(model.middle[s].names[model.middle[s].cdf.sample(&mut rng)].as_str());
        }
        if middles.len() < 2 && rng.chance(traditional.2) {
            middles.push(model.middle[s].names[model.middle[s].cdf.sample(&mut rng)].as_str());
        }
        let mut given = model.given[s].names[model.given[s].cdf.sample(&mut rng)].as_str();
        if middles.contains(&given) {
            // "Nguyễn Ngọc Ngọc" is not a name: draw once more, and accept what comes.
            given = model.given[s].names[model.given[s].cdf.sample(&mut rng)].as_str();
        }

        let cmnd = (birth_year < 1995 && rng.chance(self.cmnd_share)).then(|| {
            let prefixes = &province.cmnd_prefixes;
            let prefix = &prefixes[rng.below(prefixes.len() as u64) as usize];
            let rest = 9 - prefix.len() as u32;
            format!(
                "{prefix}{:0width$}",
                rng.below(10u64.pow(rest)),
                width = rest as usize
            )
        });

        let old_province = if rng.chance(self.moved_share) {
            model.province_cdf.sample(&mut rng)
        } else {
            birth_province
        };
        let old_commune = rng.below(u64::from(old_provinces()[old_province].communes)) as u16;
        let (new_code, new_commune) = reform_commune(old_province, old_commune);

        let phone = rng.chance(self.phone_share).then(|| {
            const PREFIXES: [&str; 24] = [
                "032", "033", "034", "035", "036", "037", "038", "039", "070", "076", "077", "078",
                "079", "081", "082", "083", "084", "085", "086", "088", "090", "091", "096", "098",
            ];
            format!(
                "{}{:07}",
                PREFIXES[rng.below(PREFIXES.len() as u64) as usize],
                rng.below(10_000_000)
            )
        });

        let mut person = Person {
            id,
            sex,
            birth_year,
            birth_month,
            birth_day,
            birth_province,
            surname,
            middles,
            given,
            pin: String::new(),
            cmnd,
            residence: Residence {
                old_province,
                old_commune,
                new_code,
                new_commune,
            },
            phone,
            bucket,
        };
        person.pin = person.pin_with_rank(self.seed, rank);
        person
    }
}

/// The surname tables keep Hoàng/Huỳnh and Vũ/Võ as one entry each (the national statistics do); the
/// region decides the spelling, as it does in life, with a minority of the other form everywhere.
fn regional_surname(entry: &'static str, southern: bool, rng: &mut Rng) -> &'static str {
    let (north, south) = match entry {
        "Hoàng/Huỳnh" => ("Hoàng", "Huỳnh"),
        "Vũ/Võ" => ("Vũ", "Võ"),
        _ => return entry,
    };
    let p_south = if southern { 0.8 } else { 0.05 };
    if rng.chance(p_south) { south } else { north }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_year(year: i32) -> u64 {
    if is_leap(year) { 366 } else { 365 }
}

/// Month and day of the zero-based `day` of `year`.
fn day_of_year(year: i32, mut day: u64) -> (u8, u8) {
    let lengths = [
        31,
        if is_leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    for (month, &len) in lengths.iter().enumerate() {
        if day < len {
            return (month as u8 + 1, day as u8 + 1);
        }
        day -= len;
    }
    (12, 31)
}

/// Per old province: the new province's code and commune count, where the province's communes start
/// among those of all the old provinces merged with it, and how many those are in total.
struct ReformGroup {
    new_code: u8,
    new_communes: u64,
    offset: u64,
    total: u64,
}

static REFORM: LazyLock<Vec<ReformGroup>> = LazyLock::new(|| {
    let olds = old_provinces();
    olds.iter()
        .map(|old| {
            let new = new_by_code(old.new_code).expect("every old province maps to a new one");
            let group = olds.iter().filter(|p| p.new_code == old.new_code);
            ReformGroup {
                new_code: new.code,
                new_communes: u64::from(new.communes),
                offset: group
                    .clone()
                    .take_while(|p| p.nso_code != old.nso_code)
                    .map(|p| u64::from(p.communes))
                    .sum(),
                total: group.map(|p| u64::from(p.communes)).sum(),
            }
        })
        .collect()
});

/// The commune a person lives in, after the 2025 reform: the old communes of the provinces merged into
/// one new province are laid end to end and spread evenly over the new communes. The real table
/// (10,605 rows) is not in the reference data; this keeps the property that matters for linkage: one
/// old place maps to one new place, consistently, and several old communes share a new one.
pub fn reform_commune(old_province: usize, old_commune: u16) -> (u8, u16) {
    let g = &REFORM[old_province];
    let index = (g.offset + u64::from(old_commune)) * g.new_communes / g.total;
    (g.new_code, index as u16)
}

/// Synthetic commune names, stable for a unit: `Xã Tân Phú`, `Phường An Hòa`. Real commune names are
/// not in the reference data; these only need to be plausible and consistent.
fn make_commune_name(new_units: bool, province_code: u8, index: u16) -> String {
    const FIRST: [&str; 24] = [
        "Tân", "An", "Phú", "Bình", "Hòa", "Long", "Mỹ", "Hưng", "Thuận", "Vĩnh", "Phước", "Thạnh",
        "Đông", "Tây", "Nam", "Bắc", "Xuân", "Quang", "Minh", "Đức", "Thanh", "Hải", "Trung",
        "Nghĩa",
    ];
    const SECOND: [&str; 24] = [
        "Phú", "Lợi", "Hiệp", "Thành", "Sơn", "Lâm", "Hòa", "Thịnh", "Lộc", "Yên", "Khánh", "Định",
        "Điền", "Phong", "Tiến", "Hà", "Giang", "Thủy", "Quý", "Lạc", "Tường", "Hưng", "Mỹ", "An",
    ];
    let key = (u64::from(new_units) << 40) | (u64::from(province_code) << 20) | u64::from(index);
    let h = hash3(0, stream::COMMUNE_NAME, key);
    let kind = if h.is_multiple_of(5) {
        "Phường"
    } else {
        "Xã"
    };
    let a = FIRST[((h >> 8) % FIRST.len() as u64) as usize];
    let mut b = SECOND[((h >> 16) % SECOND.len() as u64) as usize];
    if a == b {
        b = SECOND[((h >> 24) % SECOND.len() as u64) as usize];
    }
    format!("{kind} {a} {b}")
}

/// Every commune name, old units by old-province index, new units by new province code.
static COMMUNE_NAMES: LazyLock<[HashMap<u8, Vec<String>>; 2]> = LazyLock::new(|| {
    let old = old_provinces()
        .iter()
        .map(|p| {
            let names = (0..p.communes).map(|i| make_commune_name(false, p.nso_code, i));
            (p.nso_code, names.collect())
        })
        .collect();
    let new = new_provinces()
        .iter()
        .map(|p| {
            let names = (0..p.communes).map(|i| make_commune_name(true, p.code, i));
            (p.code, names.collect())
        })
        .collect();
    [old, new]
});

/// The name of commune `index` of a province, in the old (63) or new (34) units.
pub fn commune_name(new_units: bool, province_code: u8, index: u16) -> &'static str {
    COMMUNE_NAMES[usize::from(new_units)]
        .get(&province_code)
        .and_then(|names| names.get(usize::from(index)))
        .map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use khop_vn::id::{IdNumber, parse_id};

    fn people(n: u64, extra: u64) -> People {
        People::new(7, n, extra, &crate::DatagenConfig::default()).unwrap()
    }

    #[test]
    fn strata_counts_are_exact() {
        let s = Strata::new(1000, |b| [1.0, 2.0, 0.0, 1.0][b], 4);
        assert_eq!(
            (0..4).map(|b| s.count(b)).collect::<Vec<_>>(),
            [250, 500, 0, 250]
        );
        assert_eq!(s.locate(0), (0, 0));
        assert_eq!(s.locate(250), (1, 0));
        assert_eq!(s.locate(999), (3, 249));
    }

    #[test]
    fn pins_are_unique_and_valid() {
        let p = people(20_000, 500);
        let mut pins = std::collections::HashSet::new();
        for id in 0..20_500 {
            let person = p.get(id);
            assert!(pins.insert(person.pin.clone()), "duplicate PIN");
            match parse_id(&person.pin) {
                IdNumber::Pin(pin) => {
                    assert_eq!(pin.sex, person.sex);
                    assert_eq!(pin.birth_year, person.birth_year);
                    assert_eq!(pin.province_code, person.birth_province().pin_code);
                }
                other => panic!("invalid PIN {other:?}"),
            }
            if let Some(cmnd) = &person.cmnd {
                assert!(matches!(parse_id(cmnd), IdNumber::Cmnd9 { .. }), "{cmnd}");
            }
        }
    }

    #[test]
    fn extra_people_are_of_working_age() {
        let p = people(1000, 300);
        for id in 1000..1300 {
            assert!(WORKING_AGES.contains(&p.age(id)));
            assert_eq!(p.get(id).age(), p.age(id));
        }
    }

    #[test]
    fn dates_are_valid() {
        assert_eq!(day_of_year(2000, 0), (1, 1));
        assert_eq!(day_of_year(2000, 59), (2, 29));
        assert_eq!(day_of_year(2001, 59), (3, 1));
        assert_eq!(day_of_year(2001, 364), (12, 31));
    }

    #[test]
    fn reform_communes_stay_in_range() {
        for (i, old) in old_provinces().iter().enumerate() {
            for c in [0, old.communes - 1] {
                let (code, idx) = reform_commune(i, c);
                assert_eq!(code, old.new_code);
                assert!(idx < new_by_code(code).unwrap().communes);
            }
        }
    }
}
