//! The statistical model of the population: name, age and province distributions, built once from the
//! tables under `crates/datagen/data/` and `khop-vn`'s reference tables. Sources and reasoning:
//! `crates/datagen/data/SOURCES.md`.

use std::collections::HashMap;
use std::sync::LazyLock;

use khop_vn::Sex;
use khop_vn::reference::{OldProvince, new_provinces, old_provinces};
use khop_vn::text::{ToneStyle, swap_i_y, with_tone_style};

use crate::rng::Cdf;

/// The reference date for ages: the middle of 2026.
pub const REFERENCE_YEAR: i32 = 2026;
/// Civil servants are drawn from people of these ages on the reference date.
pub const WORKING_AGES: std::ops::RangeInclusive<i32> = 22..=60;
/// The oldest age generated.
pub const MAX_AGE: i32 = 99;
/// The youngest age generated: the population is adult.
pub const MIN_AGE: i32 = 18;

/// A weighted list of names, sampled by its CDF.
#[derive(Debug)]
pub struct NameTable {
    pub names: Vec<String>,
    pub cdf: Cdf,
}

impl NameTable {
    fn new(rows: Vec<(String, f64)>) -> Self {
        let cdf = Cdf::new(rows.iter().map(|r| r.1));
        NameTable {
            names: rows.into_iter().map(|r| r.0).collect(),
            cdf,
        }
    }
}

/// Middle-name habits of one birth cohort (`middle_name_cohorts.csv`).
#[derive(Debug, Clone)]
pub struct Cohort {
    pub from: i32,
    pub to: i32,
    pub p_van: f64,
    pub p_thi: f64,
    pub p_two_middle_male: f64,
    pub p_two_middle_female: f64,
    pub p_maternal_surname: f64,
}

#[derive(Debug)]
pub struct Model {
    pub surnames: NameTable,
    pub given: [NameTable; 2],
    pub middle: [NameTable; 2],
    pub cohorts: Vec<Cohort>,
    /// Relative population of each old province, in `old_provinces()` order.
    pub province_weights: Vec<f64>,
    pub province_cdf: Cdf,
    /// Relative size of each single-year age `MIN_AGE..=MAX_AGE`.
    pub age_weights: Vec<f64>,
}

pub fn sex_index(sex: Sex) -> usize {
    match sex {
        Sex::Male => 0,
        Sex::Female => 1,
    }
}

fn data_rows(text: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').collect())
}

fn number(field: &str) -> f64 {
    // The tables are compiled in; a malformed number is a defect caught by every test.
    field
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("datagen table: bad number {field:?}"))
}

/// Names are stored in one tone-placement style (the old one, as in legal texts and the population
/// database) so that the `name_tone_style` corruption always means "the other style".
fn canonical(name: &str) -> String {
    with_tone_style(name, ToneStyle::Old)
}

fn build() -> Model {
    let surnames = NameTable::new(
        data_rows(include_str!("../data/surnames.csv"))
            .map(|f| (f[0].to_owned(), number(f[1])))
            .collect(),
    );
    let by_sex = |text: &'static str, sex: &str| {
        NameTable::new(
            data_rows(text)
                .filter(|f| f[0] == sex)
                .map(|f| (canonical(f[1]), number(f[2])))
                .collect(),
        )
    };
    let given_text = include_str!("../data/given_names.csv");
    let middle_text = include_str!("../data/middle_names.csv");
    let cohorts = data_rows(include_str!("../data/middle_name_cohorts.csv"))
        .map(|f| Cohort {
            from: number(f[0]) as i32,
            to: number(f[1]) as i32,
            p_van: number(f[2]),
            p_thi: number(f[3]),
            p_two_middle_male: number(f[4]),
            p_two_middle_female: number(f[5]),
            p_maternal_surname: number(f[6]),
        })
        .collect();

    let extra_population: Vec<(u8, f64)> =
        data_rows(include_str!("../data/province_population.csv"))
            .map(|f| (number(f[0]) as u8, number(f[1])))
            .collect();
    let province_weights: Vec<f64> = old_provinces()
        .iter()
        .map(|old| province_weight(old, &extra_population))
        .collect();
    let province_cdf = Cdf::new(province_weights.iter().copied());

    let mut age_weights = vec![0.0; (MAX_AGE - MIN_AGE + 1) as usize];
    for f in data_rows(include_str!("../data/age_pyramid.csv")) {
        let (from, to, percent) = (number(f[0]) as i32, number(f[1]) as i32, number(f[2]));
        for age in from..=to {
            age_weights[(age - MIN_AGE) as usize] = percent / f64::from(to - from + 1);
        }
    }

    Model {
        surnames,
        given: [by_sex(given_text, "M"), by_sex(given_text, "F")],
        middle: [by_sex(middle_text, "M"), by_sex(middle_text, "F")],
        cohorts,
        province_weights,
        province_cdf,
        age_weights,
    }
}

/// An old province's share: the population of the new province it went into (Resolution 202/2025, or
/// the GSO estimate for unmerged provinces), split among the merged old provinces by commune count.
fn province_weight(old: &OldProvince, extra_population: &[(u8, f64)]) -> f64 {
    let new = new_provinces()
        .iter()
        .find(|p| p.code == old.new_code)
        .expect("every old province maps to a new one");
    let population = new.population.map(|p| p as f64).unwrap_or_else(|| {
        extra_population
            .iter()
            .find(|(code, _)| *code == new.code)
            .map(|(_, p)| *p)
            .expect("province_population.csv covers every unmerged province")
    });
    let communes_in_group: f64 = old_provinces()
        .iter()
        .filter(|p| p.new_code == old.new_code)
        .map(|p| f64::from(p.communes))
        .sum();
    population * f64::from(old.communes) / communes_in_group
}

pub static MODEL: LazyLock<Model> = LazyLock::new(build);

impl Model {
    pub fn cohort(&self, birth_year: i32) -> &Cohort {
        self.cohorts
            .iter()
            .find(|c| (c.from..=c.to).contains(&birth_year))
            .unwrap_or_else(|| {
                if birth_year < self.cohorts[0].from {
                    &self.cohorts[0]
                } else {
                    &self.cohorts[self.cohorts.len() - 1]
                }
            })
    }
}

/// The spelling variants of one word of a name, computed once per word of the tables: corrupting
/// names word by word from these is many times cheaper than rewriting each record's string.
#[derive(Debug, Default)]
pub struct WordForms {
    /// The i/y variant (Lý → Lí), if the word has one.
    pub iy: Option<String>,
    /// The new tone placement (Thủy → Thuỷ), if it differs.
    pub tone: Option<String>,
    /// The new tone placement of the i/y variant (or of the word), if it differs from that.
    pub iy_tone: Option<String>,
}

impl WordForms {
    fn of(word: &str) -> Self {
        let differs = |form: String, from: &str| (form != from).then_some(form);
        // "Thị" → "Thỵ" would be no spelling anyone uses: the i/y variation is for names.
        let iy = if word == "Thị" {
            None
        } else {
            differs(swap_i_y(word), word)
        };
        let after_iy = iy.as_deref().unwrap_or(word);
        WordForms {
            tone: differs(with_tone_style(word, ToneStyle::New), word),
            iy_tone: differs(with_tone_style(after_iy, ToneStyle::New), after_iy),
            iy,
        }
    }
}

static WORD_FORMS: LazyLock<HashMap<&'static str, WordForms>> = LazyLock::new(|| {
    let model = &*MODEL;
    let tables = [&model.surnames, &model.middle[0], &model.middle[1]]
        .into_iter()
        .chain(&model.given);
    let words = tables
        .flat_map(|t| t.names.iter().map(String::as_str))
        .flat_map(|w| w.split('/'))
        .chain(["Văn", "Thị"]);
    words.map(|w| (w, WordForms::of(w))).collect()
});

/// The variants of a word of the name tables (a word from anywhere else has none).
pub fn word_forms(word: &str) -> &'static WordForms {
    static NONE: WordForms = WordForms {
        iy: None,
        tone: None,
        iy_tone: None,
    };
    WORD_FORMS.get(word).unwrap_or(&NONE)
}

/// Southern provinces (Quảng Nam and south) write Hoàng as Huỳnh and Vũ as Võ, by a Nguyễn-era taboo.
pub fn is_southern(old: &OldProvince) -> bool {
    old.nso_code >= 49
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_load() {
        let m = &*MODEL;
        assert!(m.surnames.names.len() > 50);
        assert_eq!(m.surnames.names[0], "Nguyễn");
        assert!(m.given[0].names.len() > 90 && m.given[1].names.len() > 90);
        assert_eq!(m.province_weights.len(), 63);
        assert!(m.province_weights.iter().all(|&w| w > 0.0));
        assert!(m.age_weights.iter().all(|&w| w > 0.0));
        assert_eq!(m.cohort(1950).p_van, m.cohorts[0].p_van);
        assert_eq!(m.cohort(2008).p_thi, m.cohorts.last().unwrap().p_thi);
    }

    #[test]
    fn word_forms() {
        let thuy = super::word_forms("Thủy");
        assert_eq!(thuy.tone.as_deref(), Some("Thuỷ"));
        assert_eq!(thuy.iy, None);
        assert_eq!(super::word_forms("Vy").iy.as_deref(), Some("Vi"));
        assert_eq!(super::word_forms("Thị").iy, None);
        assert!(super::word_forms("Huỳnh").tone.is_none());
        assert!(super::word_forms("not a table word").iy.is_none());
    }

    #[test]
    fn names_are_stored_in_old_tone_style() {
        assert!(MODEL.given[1].names.iter().any(|n| n == "Thủy"));
        assert!(!MODEL.given[1].names.iter().any(|n| n == "Thuỷ"));
    }
}
