//! Records: the rows of the two input databases and of the truth table, built as Arrow batches.
//!
//! Each record is a pure function of `(seed, config, source, record index)`; a batch is any contiguous
//! range of records. Which person a record belongs to is decided here too: duplicates in the population
//! database, and the sample of civil servants.

use std::sync::Arc;

use arrow::array::{ArrayRef, ListBuilder, RecordBatch, StringBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use khop_vn::Sex;
use khop_vn::date::days_in_month;
use khop_vn::reference::{new_by_code, old_provinces};

use crate::DatagenError;
use crate::config::{Class, DatagenConfig, Source};
use crate::corrupt::{Applied, Corruptor, Tally};
use crate::model::{REFERENCE_YEAR, WORKING_AGES};
use crate::person::{People, Person, commune_name, reform_commune};
use crate::rng::{Permutation, Rng, hash3, stream};

/// The schema of a source's records.
pub fn schema(source: Source) -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let mut fields = vec![
        text("record_id", false),
        text("full_name", false),
        text("sex", false),
        text("date_of_birth", false),
        text("pin", true),
    ];
    if source == Source::Population {
        fields.push(text("cmnd", true));
    }
    fields.extend([
        text("place_of_birth", false),
        text("address_commune", false),
        text("address_province", false),
        text("phone", true),
    ]);
    if source == Source::CivilServants {
        fields.extend([
            text("agency", false),
            text("position", false),
            text("start_date", false),
        ]);
    }
    Arc::new(Schema::new(fields))
}

/// The schema of the truth table.
pub fn truth_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("record_id", DataType::Utf8, false),
        Field::new("person_id", DataType::UInt64, false),
        Field::new(
            "corruptions",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            false,
        ),
    ]))
}

pub fn record_id(source: Source, index: u64) -> String {
    match source {
        Source::Population => format!("DC{index:010}"),
        Source::CivilServants => format!("CB{index:09}"),
    }
}

/// Everything needed to produce any record of a dataset.
#[derive(Debug)]
pub struct Dataset {
    pub seed: u64,
    pub population: u64,
    pub civil_servants: u64,
    pub config: DatagenConfig,
    pub people: People,
    /// Civil servants with a counterpart: the person ids, in the order they were sampled.
    matched: Vec<u64>,
    /// Number of civil servants without a counterpart.
    pub unmatched: u64,
    /// Spreads the unmatched civil servants among the matched ones.
    order: Permutation,
}

impl Dataset {
    pub fn new(
        seed: u64,
        population: u64,
        civil_servants: u64,
        config: DatagenConfig,
    ) -> Result<Self, DatagenError> {
        let unmatched = (civil_servants as f64 * config.unmatched_share).round() as u64;
        let people = People::new(seed, population, unmatched, &config)?;
        let mut dataset = Dataset {
            seed,
            population,
            civil_servants,
            people,
            matched: Vec::new(),
            unmatched,
            order: Permutation::new(civil_servants, seed, 3),
            config,
        };
        dataset.matched = dataset.sample_civil_servants(civil_servants - unmatched)?;
        Ok(dataset)
    }

    /// The duplicate class of population record `index` if it is a second record of someone else:
    /// one draw laid over the bands of the three classes, in a stream of its own.
    fn duplicate_class(&self, index: u64) -> Option<Class> {
        let u = unit(hash3(self.seed, stream::DUPLICATE, index));
        let mut upper = 0.0;
        DUPLICATES.into_iter().find(|&class| {
            upper += self.config.population.get(class);
            u < upper
        })
    }

    /// The person a duplicate record belongs to: someone with a record of their own, and with an old
    /// ID on file where the duplicate shows only that.
    fn duplicate_of(&self, index: u64, class: Class) -> Option<u64> {
        (1..=64u64)
            .map(|attempt| {
                hash3(self.seed, stream::DUPLICATE, index ^ (attempt << 48)) % self.population
            })
            .find(|&q| {
                q != index
                    && self.duplicate_class(q).is_none()
                    && (class != Class::DuplicateCmndOnly || self.people.get(q).cmnd.is_some())
            })
    }

    /// Distinct working-age people with their own population record, in a fixed pseudo-random
    /// order: an affine walk `k -> a*k + b (mod n)` visits every id once without any memory.
    fn sample_civil_servants(&self, count: u64) -> Result<Vec<u64>, DatagenError> {
        let n = self.population;
        let mut chosen = Vec::with_capacity(count as usize);
        if count == 0 {
            return Ok(chosen);
        }
        let mut a = (hash3(self.seed, stream::CIVIL_SERVANT_SAMPLE, 0) % n.max(1)) | 1;
        while gcd(a, n) != 1 {
            a += 2;
        }
        let b = hash3(self.seed, stream::CIVIL_SERVANT_SAMPLE, 1) % n;
        for k in 0..n {
            let id = ((u128::from(a) * u128::from(k) + u128::from(b)) % u128::from(n)) as u64;
            if self.duplicate_class(id).is_none() && WORKING_AGES.contains(&self.people.age(id)) {
                chosen.push(id);
                if chosen.len() as u64 == count {
                    return Ok(chosen);
                }
            }
        }
        Err(DatagenError::Config(format!(
            "--civil-servants: only {} working-age people in a population of {n}, {count} needed",
            chosen.len()
        )))
    }

    /// The person behind population record `index`, and its duplicate class if it is a second record.
    fn population_person(&self, index: u64) -> (u64, Option<Class>) {
        if let Some(class) = self.duplicate_class(index)
            && let Some(target) = self.duplicate_of(index, class)
        {
            return (target, Some(class));
        }
        (index, None)
    }

    /// The person behind civil-servant record `index`.
    pub fn civil_servant_person(&self, index: u64) -> u64 {
        let k = self.order.apply(index);
        if k < self.unmatched {
            self.population + k
        } else {
            self.matched[(k - self.unmatched) as usize]
        }
    }

    pub fn records(&self, source: Source) -> u64 {
        match source {
            Source::Population => self.population,
            Source::CivilServants => self.civil_servants,
        }
    }

    /// Records `range` of `source` and their truth, as two batches; the tally counts their corruptions.
    pub fn batch(
        &self,
        source: Source,
        range: std::ops::Range<u64>,
        tally: &mut Tally,
    ) -> Result<(RecordBatch, RecordBatch), DatagenError> {
        let mut columns = Columns::new(source, (range.end - range.start) as usize);
        for index in range {
            self.push_record(source, index, &mut columns, tally);
        }
        columns.finish(source)
    }

    fn push_record(&self, source: Source, index: u64, out: &mut Columns, tally: &mut Tally) {
        let (person_id, duplicate) = match source {
            Source::Population => self.population_person(index),
            Source::CivilServants => (self.civil_servant_person(index), None),
        };
        let mut person = self.people.get(person_id);
        let record_stream = match source {
            Source::Population => stream::POPULATION_RECORD,
            Source::CivilServants => stream::CIVIL_SERVANT_RECORD,
        };
        let rng = Rng::new(self.seed, record_stream, index);
        let rates = self.config.rates(source);
        let mut c = Corruptor::new(rates, rng, tally);

        let mut pin = person.pin.clone();
        if source == Source::Population {
            for class in DUPLICATES {
                c.note(class, duplicate == Some(class));
            }
            match duplicate {
                // A second record of the same person: a re-issued PIN, or the old ID only.
                Some(Class::Duplicate) => match c.rng.below(10) {
                    0..=3 => {}
                    4..=6 => pin = person.reissued_pin(self.seed, index),
                    _ => pin.clear(),
                },
                Some(Class::DuplicateNewPin) => {
                    pin = person.reissued_pin(self.seed, index);
                    // Registered again by another clerk: the birth day a few days off in a third.
                    if c.rng.chance(1.0 / 3.0) {
                        person.birth_day = nearby_day(&person, &mut c.rng);
                    }
                }
                Some(Class::DuplicateCmndOnly) => pin.clear(),
                _ => {}
            }
            // Often another address: people re-register where they moved.
            if duplicate.is_some() && c.rng.chance(0.5) {
                let province = c.rng.below(old_provinces().len() as u64) as usize;
                let commune = c.rng.below(u64::from(old_provinces()[province].communes)) as u16;
                let (new_code, new_commune) = reform_commune(province, commune);
                person.residence = crate::person::Residence {
                    old_province: province,
                    old_commune: commune,
                    new_code,
                    new_commune,
                };
            }
        }

        let mut name = c.name(&person);
        if duplicate == Some(Class::DuplicateNewPin) {
            name = c.retype(name);
        }
        out.record_id.append_value(record_id(source, index));
        out.full_name.append_value(name);
        out.sex.append_value(match person.sex {
            Sex::Male => "Nam",
            Sex::Female => "Nữ",
        });
        out.date_of_birth
            .append_value(c.birth_date(&person, source == Source::Population));
        let shown_pin = if pin.is_empty() {
            None
        } else {
            c.pin(&pin, person.cmnd.as_deref())
        };
        out.pin.append_option(shown_pin);
        if let Some(cmnd) = &mut out.cmnd {
            cmnd.append_option(person.cmnd.as_deref());
        }
        out.place_of_birth
            .append_value(&person.birth_province().official_name);
        let residence = person.residence;
        if c.maybe(Class::AddressOldUnits, true) {
            let old = &old_provinces()[residence.old_province];
            out.address_commune.append_value(commune_name(
                false,
                old.nso_code,
                residence.old_commune,
            ));
            out.address_province.append_value(&old.official_name);
        } else {
            let new = new_by_code(residence.new_code).expect("new province exists");
            out.address_commune
                .append_value(commune_name(true, new.code, residence.new_commune));
            out.address_province.append_value(&new.official_name);
        }
        out.phone.append_option(person.phone.as_deref());
        if let Some(job) = &mut out.job {
            job.push(&person, &mut c.rng);
        }

        out.truth_source.append_value(source.name());
        out.truth_record_id.append_value(record_id(source, index));
        out.truth_person.append_value(person_id);
        push_classes(&mut out.truth_corruptions, c.applied);
    }
}

/// The classes that make a population record a second record of someone else, in the order of their
/// bands.
const DUPLICATES: [Class; 3] = [
    Class::Duplicate,
    Class::DuplicateNewPin,
    Class::DuplicateCmndOnly,
];

/// Another day of the person's birth month, at most three days away.
fn nearby_day(person: &Person, rng: &mut Rng) -> u8 {
    let last = days_in_month(person.birth_year, person.birth_month).unwrap_or(28);
    let day = person.birth_day;
    let near: Vec<u8> = (day.saturating_sub(3).max(1)..=(day + 3).min(last))
        .filter(|&d| d != day)
        .collect();
    near[rng.below(near.len() as u64) as usize]
}

fn push_classes(list: &mut ListBuilder<StringBuilder>, applied: Applied) {
    for class in applied.classes() {
        list.values().append_value(class.name());
    }
    list.append(true);
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The civil-servant database's own fields.
struct JobColumns {
    agency: StringBuilder,
    position: StringBuilder,
    start_date: StringBuilder,
}

impl JobColumns {
    fn push(&mut self, person: &Person, rng: &mut Rng) {
        const MINISTRIES: [&str; 8] = [
            "Bộ Nội vụ",
            "Bộ Tài chính",
            "Bộ Y tế",
            "Bộ Giáo dục và Đào tạo",
            "Bộ Công an",
            "Bộ Tư pháp",
            "Bộ Nông nghiệp và Môi trường",
            "Bộ Xây dựng",
        ];
        const DEPARTMENTS: [&str; 6] = [
            "Sở Giáo dục và Đào tạo",
            "Sở Y tế",
            "Sở Tài chính",
            "Sở Nội vụ",
            "Sở Tư pháp",
            "Sở Xây dựng",
        ];
        const POSITIONS: [&str; 10] = [
            "Chuyên viên",
            "Chuyên viên chính",
            "Giáo viên",
            "Bác sĩ",
            "Kế toán viên",
            "Trưởng phòng",
            "Phó Trưởng phòng",
            "Cán sự",
            "Văn thư",
            "Thanh tra viên",
        ];
        let province = new_by_code(person.residence.new_code)
            .map(|p| p.short_name())
            .unwrap_or_default();
        let agency = match rng.below(10) {
            0 => MINISTRIES[rng.below(MINISTRIES.len() as u64) as usize].to_owned(),
            1..=5 => format!(
                "{} {province}",
                DEPARTMENTS[rng.below(DEPARTMENTS.len() as u64) as usize]
            ),
            _ => format!("UBND {province}"),
        };
        self.agency.append_value(agency);
        self.position
            .append_value(POSITIONS[rng.below(POSITIONS.len() as u64) as usize]);
        let first = person.birth_year + 22;
        let year = first + rng.below((REFERENCE_YEAR - first + 1).max(1) as u64) as i32;
        let month = 1 + rng.below(12);
        let day = 1 + rng.below(28);
        self.start_date
            .append_value(format!("{day:02}/{month:02}/{year:04}"));
    }
}

/// Builders for one batch of records and its truth.
struct Columns {
    record_id: StringBuilder,
    full_name: StringBuilder,
    sex: StringBuilder,
    date_of_birth: StringBuilder,
    pin: StringBuilder,
    cmnd: Option<StringBuilder>,
    place_of_birth: StringBuilder,
    address_commune: StringBuilder,
    address_province: StringBuilder,
    phone: StringBuilder,
    job: Option<JobColumns>,
    truth_source: StringBuilder,
    truth_record_id: StringBuilder,
    truth_person: UInt64Builder,
    truth_corruptions: ListBuilder<StringBuilder>,
}

impl Columns {
    fn new(source: Source, rows: usize) -> Self {
        let text = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        Columns {
            record_id: text(12),
            full_name: text(24),
            sex: text(3),
            date_of_birth: text(10),
            pin: text(12),
            cmnd: (source == Source::Population).then(|| text(9)),
            place_of_birth: text(16),
            address_commune: text(16),
            address_province: text(16),
            phone: text(10),
            job: (source == Source::CivilServants).then(|| JobColumns {
                agency: text(24),
                position: text(12),
                start_date: text(10),
            }),
            truth_source: text(14),
            truth_record_id: text(12),
            truth_person: UInt64Builder::with_capacity(rows),
            truth_corruptions: ListBuilder::new(StringBuilder::new())
                .with_field(Arc::new(Field::new("item", DataType::Utf8, false))),
        }
    }

    fn finish(mut self, source: Source) -> Result<(RecordBatch, RecordBatch), DatagenError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.record_id.finish()),
            Arc::new(self.full_name.finish()),
            Arc::new(self.sex.finish()),
            Arc::new(self.date_of_birth.finish()),
            Arc::new(self.pin.finish()),
        ];
        if let Some(cmnd) = &mut self.cmnd {
            columns.push(Arc::new(cmnd.finish()));
        }
        columns.extend([
            Arc::new(self.place_of_birth.finish()) as ArrayRef,
            Arc::new(self.address_commune.finish()),
            Arc::new(self.address_province.finish()),
            Arc::new(self.phone.finish()),
        ]);
        if let Some(job) = &mut self.job {
            columns.extend([
                Arc::new(job.agency.finish()) as ArrayRef,
                Arc::new(job.position.finish()),
                Arc::new(job.start_date.finish()),
            ]);
        }
        let records = RecordBatch::try_new(schema(source), columns)?;
        let truth = RecordBatch::try_new(
            truth_schema(),
            vec![
                Arc::new(self.truth_source.finish()),
                Arc::new(self.truth_record_id.finish()),
                Arc::new(self.truth_person.finish()),
                Arc::new(self.truth_corruptions.finish()),
            ],
        )?;
        Ok((records, truth))
    }
}
