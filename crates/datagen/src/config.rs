//! The generator's settings: corruption rates per source and the shape of the population, read from
//! TOML and overridable from the command line. The defaults and their reasoning are in
//! `docs/datagen.md`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DatagenError;

/// A class of corruption, recorded per record in the truth table under its `name()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    NameNoDiacritics,
    NameNfd,
    NameTcvn3,
    NameVni,
    NameDStroke,
    NameToneStyle,
    NameIY,
    NameRegionalVariant,
    NameTypo,
    NameSurnameTypo,
    NameUpper,
    NameOrder,
    NameRotation,
    DobYearOnly,
    DobDayMonthSwap,
    DobYearOffByOne,
    DobOtherFormat,
    DobTwoDigitYear,
    PinDigitError,
    PinTransposition,
    PinPrefixTypo,
    PinOldCmnd,
    PinMissing,
    AddressOldUnits,
    Duplicate,
    DuplicateNewPin,
    DuplicateCmndOnly,
}

impl Class {
    pub const ALL: [Class; 27] = [
        Class::NameNoDiacritics,
        Class::NameNfd,
        Class::NameTcvn3,
        Class::NameVni,
        Class::NameDStroke,
        Class::NameToneStyle,
        Class::NameIY,
        Class::NameRegionalVariant,
        Class::NameTypo,
        Class::NameSurnameTypo,
        Class::NameUpper,
        Class::NameOrder,
        Class::NameRotation,
        Class::DobYearOnly,
        Class::DobDayMonthSwap,
        Class::DobYearOffByOne,
        Class::DobOtherFormat,
        Class::DobTwoDigitYear,
        Class::PinDigitError,
        Class::PinTransposition,
        Class::PinPrefixTypo,
        Class::PinOldCmnd,
        Class::PinMissing,
        Class::AddressOldUnits,
        Class::Duplicate,
        Class::DuplicateNewPin,
        Class::DuplicateCmndOnly,
    ];

    /// The name used in config files, flags and the truth table.
    pub fn name(self) -> &'static str {
        match self {
            Class::NameNoDiacritics => "name_no_diacritics",
            Class::NameNfd => "name_nfd",
            Class::NameTcvn3 => "name_tcvn3",
            Class::NameVni => "name_vni",
            Class::NameDStroke => "name_d_stroke",
            Class::NameToneStyle => "name_tone_style",
            Class::NameIY => "name_i_y",
            Class::NameRegionalVariant => "name_regional_variant",
            Class::NameTypo => "name_typo",
            Class::NameSurnameTypo => "name_surname_typo",
            Class::NameUpper => "name_upper",
            Class::NameOrder => "name_order",
            Class::NameRotation => "name_rotation",
            Class::DobYearOnly => "dob_year_only",
            Class::DobDayMonthSwap => "dob_day_month_swap",
            Class::DobYearOffByOne => "dob_year_off_by_one",
            Class::DobOtherFormat => "dob_other_format",
            Class::DobTwoDigitYear => "dob_two_digit_year",
            Class::PinDigitError => "pin_digit_error",
            Class::PinTransposition => "pin_transposition",
            Class::PinPrefixTypo => "pin_prefix_typo",
            Class::PinOldCmnd => "pin_old_cmnd",
            Class::PinMissing => "pin_missing",
            Class::AddressOldUnits => "address_old_units",
            Class::Duplicate => "duplicate",
            Class::DuplicateNewPin => "duplicate_new_pin",
            Class::DuplicateCmndOnly => "duplicate_cmnd_only",
        }
    }

    /// Classes that add records to the population database rather than change one.
    pub fn population_only(self) -> bool {
        matches!(
            self,
            Class::Duplicate | Class::DuplicateNewPin | Class::DuplicateCmndOnly
        )
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which input database a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Population,
    CivilServants,
}

impl Source {
    pub const ALL: [Source; 2] = [Source::Population, Source::CivilServants];

    /// The name of the source's directory, of its config table and of the truth's `source` value.
    pub fn name(self) -> &'static str {
        match self {
            Source::Population => "population",
            Source::CivilServants => "civil_servants",
        }
    }
}

/// Per-record probability of each class, among the records where the class can apply (a name without
/// Đ cannot lose its stroke). Classes of one group (name encoding; word order; typo; birth-date error;
/// birth-date format; ID error; duplicate) are mutually exclusive, and each still occurs at its own
/// rate: the rates of a group must sum to at most 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Rates([f64; Class::ALL.len()]);

impl Rates {
    pub fn get(&self, class: Class) -> f64 {
        self.0[class as usize]
    }

    pub fn set(&mut self, class: Class, rate: f64) {
        self.0[class as usize] = rate;
    }

    /// Rates of the classes given; every other class is off (0). The defaults leave off the
    /// classes `HARD_TOML` turns on (surname typos, rotated names, two-digit years, PIN prefix
    /// typos, duplicates under a new PIN or a CMND only), so the default dataset, and every figure
    /// measured on it, stays as it was.
    fn from_pairs(pairs: &[(Class, f64)]) -> Self {
        let mut rates = Rates([0.0; Class::ALL.len()]);
        for &(class, rate) in pairs {
            rates.set(class, rate);
        }
        rates
    }

    /// The national population database: run by one ministry, collected on standard forms and cleaned
    /// in 2021 (92.9% of forms reviewed), so its errors are rarer than the civil-servant database's.
    pub fn population_default() -> Self {
        use Class::*;
        Rates::from_pairs(&[
            (NameNoDiacritics, 0.004),
            (NameNfd, 0.005),
            (NameTcvn3, 0.001),
            (NameVni, 0.001),
            (NameDStroke, 0.005),
            (NameToneStyle, 0.05),
            (NameIY, 0.01),
            (NameRegionalVariant, 0.002),
            (NameTypo, 0.003),
            (NameUpper, 0.01),
            (NameOrder, 0.001),
            (DobYearOnly, 0.004),
            (DobDayMonthSwap, 0.002),
            (DobYearOffByOne, 0.002),
            (DobOtherFormat, 0.005),
            (PinDigitError, 0.001),
            (PinTransposition, 0.0005),
            (PinOldCmnd, 0.0),
            (PinMissing, 0.002),
            (AddressOldUnits, 0.05),
            (Duplicate, 0.003),
        ])
    }

    /// The civil-servant database: typed by hundreds of agencies' HR staff over decades, partly from
    /// legacy systems, and behind on the 2025 reform (only 9 agencies had synchronised by September 2025).
    pub fn civil_servants_default() -> Self {
        use Class::*;
        Rates::from_pairs(&[
            (NameNoDiacritics, 0.03),
            (NameNfd, 0.02),
            (NameTcvn3, 0.008),
            (NameVni, 0.005),
            (NameDStroke, 0.03),
            (NameToneStyle, 0.25),
            (NameIY, 0.05),
            (NameRegionalVariant, 0.01),
            (NameTypo, 0.02),
            (NameUpper, 0.05),
            (NameOrder, 0.01),
            (DobYearOnly, 0.01),
            (DobDayMonthSwap, 0.01),
            (DobYearOffByOne, 0.01),
            (DobOtherFormat, 0.05),
            (PinDigitError, 0.01),
            (PinTransposition, 0.005),
            (PinOldCmnd, 0.04),
            (PinMissing, 0.02),
            (AddressOldUnits, 0.35),
            (Duplicate, 0.0),
        ])
    }
}

/// A configuration with the corruptions of real exports that the defaults leave off (two-digit
/// years, PIN prefix and surname typos, rotated names, duplicates under a new PIN or a CMND only), at
/// the rates `docs/datagen.md` gives; for `khop datagen --config`.
pub const HARD_TOML: &str = include_str!("hard.toml");

/// Everything that shapes the generated data besides its size and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct DatagenConfig {
    pub population: Rates,
    pub civil_servants: Rates,
    /// Share of civil-servant records with no counterpart in the population database.
    pub unmatched_share: f64,
    /// Share of people born before 1995 whose old 9-digit ID is kept in the population database.
    pub cmnd_share: f64,
    /// Share of people living outside the province where their birth was registered.
    pub moved_share: f64,
    /// Share of records with a phone number.
    pub phone_share: f64,
}

impl Default for DatagenConfig {
    fn default() -> Self {
        DatagenConfig {
            population: Rates::population_default(),
            civil_servants: Rates::civil_servants_default(),
            unmatched_share: 0.005,
            cmnd_share: 0.6,
            moved_share: 0.2,
            phone_share: 0.85,
        }
    }
}

/// The TOML form: a `[generator]` table and one table of rates per source. Every key is optional.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    generator: GeneratorFile,
    #[serde(default)]
    population: BTreeMap<String, f64>,
    #[serde(default)]
    civil_servants: BTreeMap<String, f64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GeneratorFile {
    unmatched_share: Option<f64>,
    cmnd_share: Option<f64>,
    moved_share: Option<f64>,
    phone_share: Option<f64>,
}

fn check_share(path: &str, value: f64) -> Result<f64, DatagenError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(DatagenError::Config(format!(
            "`{path}` = {value}: must be between 0 and 1"
        )))
    }
}

impl DatagenConfig {
    /// Reads a config file's text over the defaults. Unknown keys and out-of-range values are refused
    /// with the path of the offending field.
    pub fn from_toml(text: &str) -> Result<Self, DatagenError> {
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| DatagenError::Config(e.to_string()))?;
        let mut config = DatagenConfig::default();
        let g = &file.generator;
        for (name, value, slot) in [
            (
                "unmatched_share",
                g.unmatched_share,
                &mut config.unmatched_share,
            ),
            ("cmnd_share", g.cmnd_share, &mut config.cmnd_share),
            ("moved_share", g.moved_share, &mut config.moved_share),
            ("phone_share", g.phone_share, &mut config.phone_share),
        ] {
            if let Some(value) = value {
                *slot = check_share(&format!("generator.{name}"), value)?;
            }
        }
        for (source, table) in [
            (Source::Population, &file.population),
            (Source::CivilServants, &file.civil_servants),
        ] {
            for (key, &value) in table {
                config.set_rate(&format!("{}.{key}", source.name()), value)?;
            }
        }
        Ok(config)
    }

    /// Sets one rate from a `source.class` path, as given by `--rate population.name_typo=0.01`.
    pub fn set_rate(&mut self, path: &str, value: f64) -> Result<(), DatagenError> {
        let (source, class) = path.split_once('.').ok_or_else(|| {
            DatagenError::Config(format!(
                "`{path}`: expected SOURCE.CLASS, e.g. civil_servants.name_typo"
            ))
        })?;
        let rates = match source {
            "population" => &mut self.population,
            "civil_servants" => &mut self.civil_servants,
            _ => {
                return Err(DatagenError::Config(format!(
                    "`{path}`: unknown source `{source}` (population, civil_servants)"
                )));
            }
        };
        let class = Class::from_name(class).ok_or_else(|| {
            let known: Vec<_> = Class::ALL.iter().map(|c| c.name()).collect();
            DatagenError::Config(format!(
                "`{path}`: unknown corruption class `{class}` (known: {})",
                known.join(", ")
            ))
        })?;
        if source == "civil_servants" && class.population_only() && value != 0.0 {
            return Err(DatagenError::Config(format!(
                "`{path}`: duplicates are generated in the population database only"
            )));
        }
        rates.set(class, check_share(path, value)?);
        Ok(())
    }

    pub fn rates(&self, source: Source) -> &Rates {
        match source {
            Source::Population => &self.population,
            Source::CivilServants => &self.civil_servants,
        }
    }

    /// The effective configuration as TOML, written beside the data so a dataset can be regenerated.
    pub fn to_toml(&self) -> String {
        let table = |rates: &Rates| -> BTreeMap<String, f64> {
            Class::ALL
                .iter()
                .map(|&c| (c.name().to_owned(), rates.get(c)))
                .collect()
        };
        let file = ConfigFile {
            generator: GeneratorFile {
                unmatched_share: Some(self.unmatched_share),
                cmnd_share: Some(self.cmnd_share),
                moved_share: Some(self.moved_share),
                phone_share: Some(self.phone_share),
            },
            population: table(&self.population),
            civil_servants: table(&self.civil_servants),
        };
        toml::to_string(&file).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_round_trip_and_are_unique() {
        for c in Class::ALL {
            assert_eq!(Class::from_name(c.name()), Some(c));
        }
        for (i, c) in Class::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i, "{c}");
        }
        let names: std::collections::BTreeSet<_> = Class::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Class::ALL.len());
    }

    #[test]
    fn toml_round_trips() {
        let mut config = DatagenConfig::default();
        config.set_rate("civil_servants.name_typo", 0.5).unwrap();
        config.moved_share = 0.25;
        assert_eq!(DatagenConfig::from_toml(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn bad_config_names_the_field() {
        let cases = [
            ("[population]\nname_tpyo = 0.1", "population.name_tpyo"),
            (
                "[civil_servants]\nname_typo = 1.5",
                "civil_servants.name_typo",
            ),
            (
                "[generator]\nunmatched_share = -1.0",
                "generator.unmatched_share",
            ),
            ("[generator]\nfoo = 1", "foo"),
            ("[populaton]\nname_typo = 0.1", "populaton"),
            (
                "[civil_servants]\nduplicate = 0.1",
                "civil_servants.duplicate",
            ),
            (
                "[civil_servants]\nduplicate_new_pin = 0.1",
                "civil_servants.duplicate_new_pin",
            ),
            (
                "[civil_servants]\nduplicate_cmnd_only = 0.1",
                "civil_servants.duplicate_cmnd_only",
            ),
        ];
        for (text, field) in cases {
            let err = DatagenConfig::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(field), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_harder_classes_are_off_by_default_and_on_in_the_hard_config() {
        let hard = DatagenConfig::from_toml(HARD_TOML).unwrap();
        let default = DatagenConfig::default();
        let cases = [
            (Source::CivilServants, Class::DobTwoDigitYear, 0.05),
            (Source::CivilServants, Class::NameSurnameTypo, 0.01),
            (Source::CivilServants, Class::NameRotation, 0.01),
            (Source::CivilServants, Class::PinPrefixTypo, 0.005),
            (Source::Population, Class::DuplicateNewPin, 0.005),
            (Source::Population, Class::DuplicateCmndOnly, 0.005),
        ];
        for (source, class, rate) in cases {
            assert_eq!(default.rates(source).get(class), 0.0, "{class}");
            assert_eq!(hard.rates(source).get(class), rate, "{class}");
        }
        let missing = |c: &DatagenConfig| c.rates(Source::CivilServants).get(Class::PinMissing);
        assert!(missing(&hard) > missing(&default));
    }
}
