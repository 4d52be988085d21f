//! The job spec: what to link and how, read from TOML (`docs/job-spec.md`). Parsing refuses unknown
//! keys; [`JobSpec::validate`] checks the meaning of every value. Both name the offending field by its
//! path (`comparisons[2].levels[1].threshold`), so an operator can fix the file without reading code.

use std::collections::BTreeMap;
use std::path::PathBuf;

use khop_vn::date::{DateRules, DayMonthOrder};
use khop_vn::text::Encoding;
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::storage;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Source A (the first input) against source B (the second).
    Link,
    /// One source against itself.
    Dedupe,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    Parquet,
    Csv,
}

/// A field's column in an input: one column, or several whose values the standardiser combines (an ID
/// field fed by both a PIN and an old-ID column).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Columns {
    One(String),
    Many(Vec<String>),
}

impl Columns {
    pub fn names(&self) -> Vec<&str> {
        match self {
            Columns::One(c) => vec![c.as_str()],
            Columns::Many(cs) => cs.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The source's name in every output (`source`, `left_source`, `right_source`).
    pub name: String,
    /// A file or a directory of files (those of the input's format), or the same in an object store:
    /// `s3://bucket/key` or `s3://bucket/prefix` (see [`crate::storage`]). Relative paths are
    /// relative to the spec file.
    pub path: String,
    pub format: InputFormat,
    /// The column holding each record's unique id.
    pub id: String,
    /// Field name → column(s) of this input. Fields missing from an input are null there.
    pub columns: BTreeMap<String, Columns>,
    /// Where this input's standardised records are kept between jobs (a directory, or an
    /// object-store prefix): a job that reads the same files with the same fields and blocking keys
    /// replays them instead of scanning and standardising again (see [`crate::cache`]). For a
    /// reference database many jobs link against. Relative paths are relative to the spec file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// How a CSV input's bytes are read (`[inputs.csv]`): UTF-8 with commas when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvOptions>,
    /// How the input's ambiguous values are read (`[inputs.conventions]`): what is not set here is
    /// worked out from a sample of the input when the job is planned ([`crate::conventions`]) and
    /// written into the job's stored spec, so that every task reads the input alike.
    #[serde(default, skip_serializing_if = "Conventions::is_empty")]
    pub conventions: Conventions,
}

/// How an input's columns are read where a value alone does not say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Conventions {
    /// Date field → how `a/b/yyyy` with both parts at most 12 is read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub date_order: BTreeMap<String, DateOrder>,
    /// Column of a `vn_id` field → whether numbers that lost their leading zeros in a spreadsheet
    /// are restored (`false` for a column of another kind of number, such as 10-digit tax codes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id_repair: BTreeMap<String, bool>,
}

impl Conventions {
    pub fn is_empty(&self) -> bool {
        self.date_order.is_empty() && self.id_repair.is_empty()
    }
}

/// The order of day and month in a date column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    DayFirst,
    MonthFirst,
}

impl DateOrder {
    pub fn name(self) -> &'static str {
        match self {
            DateOrder::DayFirst => "day_first",
            DateOrder::MonthFirst => "month_first",
        }
    }
}

/// How dates are read (`[dates]`): which years are plausible, and the day two-digit years are read
/// against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dates {
    /// `YYYY-MM-DD`. A two-digit year is the latest year not after this day's year that ends in its
    /// digits (on 2026-12-07, `99` is 1999 and `26` is 2026): a date in a record is never in the
    /// future. When absent, the day the job is planned, written into the job's stored spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The plausible years of every date field (default 1880 to the reference year); a date outside
    /// is counted as not read.
    #[serde(default, skip_serializing_if = "YearRange::is_empty")]
    pub years: YearRange,
    /// Per date field, its own plausible years (historical records: `earliest = 1000`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, YearRange>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct YearRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<i32>,
}

impl YearRange {
    fn is_empty(&self) -> bool {
        self.earliest.is_none() && self.latest.is_none()
    }
}

/// The earliest year a date may have at all (`[dates]` may not go below it).
pub const EARLIEST_YEAR_ALLOWED: i32 = 1000;

impl Dates {
    /// The reference day's year, if the reference is set and a day as `YYYY-MM-DD`.
    fn reference_year(&self) -> Option<i32> {
        let reference = self.reference.as_deref()?;
        let b = reference.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        match khop_vn::date::parse_date(reference) {
            Ok(d) if d.is_full() => Some(d.year),
            _ => None,
        }
    }

    /// How `field` of an input read with `order` is parsed.
    pub fn rules(&self, field: &str, order: DateOrder) -> DateRules {
        let reference = self.reference_year();
        let own = self.fields.get(field).copied().unwrap_or_default();
        DateRules {
            earliest_year: own
                .earliest
                .or(self.years.earliest)
                .unwrap_or(khop_vn::date::EARLIEST_YEAR),
            latest_year: own
                .latest
                .or(self.years.latest)
                .or(reference)
                .unwrap_or(khop_vn::date::LATEST_YEAR),
            reference_year: reference,
            order: match order {
                DateOrder::DayFirst => DayMonthOrder::DayFirst,
                DateOrder::MonthFirst => DayMonthOrder::MonthFirst,
            },
        }
    }
}

impl Input {
    /// How the input's CSV files are read.
    pub fn csv_options(&self) -> CsvOptions {
        self.csv.clone().unwrap_or_default()
    }
}

/// How the bytes of a CSV input are read: files exported by Vietnamese systems are often not UTF-8
/// (Windows-1258, or the TCVN3 and VNI font encodings) and, from Excel in a Vietnamese locale,
/// separated by semicolons.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// The field separator: one ASCII character other than a quote or a line break.
    #[serde(default = "CsvOptions::comma")]
    pub delimiter: char,
    /// The files' character encoding, by name: `utf-8`, `windows-1258`, `tcvn3` or `vni`
    /// ([`Encoding::name`]).
    #[serde(default = "CsvOptions::utf8")]
    pub encoding: String,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: CsvOptions::comma(),
            encoding: CsvOptions::utf8(),
        }
    }
}

impl CsvOptions {
    fn comma() -> char {
        ','
    }

    fn utf8() -> String {
        Encoding::Utf8.name().to_owned()
    }

    /// The encoding (UTF-8 where the name is not one: [`JobSpec::validate`] refuses those).
    pub fn encoding(&self) -> Encoding {
        Encoding::from_name(&self.encoding).unwrap_or(Encoding::Utf8)
    }

    /// The delimiter's byte (a comma where it is not ASCII: [`JobSpec::validate`] refuses those).
    pub fn delimiter(&self) -> u8 {
        u8::try_from(self.delimiter)
            .ok()
            .filter(u8::is_ascii)
            .unwrap_or(b',')
    }
}

/// How a field's raw text becomes comparable values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standardiser {
    /// A Vietnamese personal name: mojibake repaired, NFC, one tone style, split into surname / middle /
    /// given (order variants put right), with accent-folded keys.
    VnName,
    /// A personal name of any language: `Given Middle Surname` or `Surname, Given Middle`, titles
    /// and suffixes left out, keys accent-folded (`khop_vn::name::parse_person_name`). The parts,
    /// keys and levels of `vn_name`.
    PersonName,
    /// A date in any common format; year-only and year-month dates kept as partial.
    Date,
    /// Personal ID numbers: 12-digit PINs and old 9-digit CMNDs, validated.
    VnId,
    /// A province in free text, old (63) or new (34) units, resolved across the 2025 reform.
    VnProvince,
    /// `Nam`/`Nữ`/`M`/`F`/`male`/`female`/`1`/`0`.
    Sex,
    /// A Vietnamese phone number, digits only, `+84`/`84` made `0`.
    Phone,
    /// Any text: NFC, trimmed, single spaces, lowercase.
    Text,
    /// An identifier of any scheme (a passport, a tax code, another country's or agency's number):
    /// letters uppercased and digits, separators removed (`khop_vn::id::normalise_identifier`);
    /// compared with the digit levels of `vn_id` and the edit distances.
    Id,
}

/// One level of a comparison. Levels are tried in order; the first that holds is the pair's level.
/// After the listed levels come an implicit "else" level and the "null" level (either side missing).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Level {
    /// Equal standardised values (for names: the canonical form, diacritics kept).
    Exact,
    /// Equal keys: accents folded, y/i, Huỳnh/Hoàng and Võ/Vũ merged (names), or equal text otherwise.
    ExactKey,
    /// The same name words in any order (names only).
    Tokens,
    JaroWinkler {
        threshold: f64,
    },
    Levenshtein {
        max: u32,
    },
    Damerau {
        max: u32,
    },
    /// The words of the two values pair up one to one in any order with at most `max` edits summed
    /// over the pairs (Damerau-Levenshtein, on the keys); with `missing_word`, one side may have one
    /// word more (a dropped middle name). For a whole name whose parts were written in another order
    /// or with a typo in the surname, where part-by-part comparison sees three differences.
    Words {
        max: u32,
        #[serde(default)]
        missing_word: bool,
    },
    /// Names, on `.surname` or `.given`: the surname of each side is the other's given name (the
    /// two written in each other's column), by their keys.
    SurnameGivenSwapped,
    /// Dates: both full, day and month swapped.
    DayMonthSwapped,
    SameYearMonth,
    SameYear,
    WithinYears {
        years: u16,
    },
    /// Dates: one side partial (year or year-month) and compatible with the other.
    Partial,
    /// IDs: one digit differs.
    OneDigit,
    Transposition,
    TwoDigits,
    /// PINs: the same province, century+sex and birth year (the first six digits), another serial:
    /// what a PIN re-issued to the same person looks like.
    SamePrefix,
    /// IDs: one side an old 9-digit CMND and the other a PIN; comparable only through the CMND.
    OldVsNew,
}

impl Level {
    pub fn name(&self) -> String {
        match self {
            Level::Exact => "exact".into(),
            Level::ExactKey => "exact_key".into(),
            Level::Tokens => "tokens".into(),
            Level::JaroWinkler { threshold } => format!("jaro_winkler>={threshold}"),
            Level::Levenshtein { max } => format!("levenshtein<={max}"),
            Level::Damerau { max } => format!("damerau<={max}"),
            Level::Words { max, missing_word } => {
                format!(
                    "words<={max}{}",
                    if *missing_word { "+missing" } else { "" }
                )
            }
            Level::SurnameGivenSwapped => "surname_given_swapped".into(),
            Level::DayMonthSwapped => "day_month_swapped".into(),
            Level::SameYearMonth => "same_year_month".into(),
            Level::SameYear => "same_year".into(),
            Level::WithinYears { years } => format!("within_{years}_years"),
            Level::Partial => "partial".into(),
            Level::OneDigit => "one_digit".into(),
            Level::Transposition => "transposition".into(),
            Level::TwoDigits => "two_digits".into(),
            Level::SamePrefix => "same_prefix".into(),
            Level::OldVsNew => "old_vs_new".into(),
        }
    }

    /// Whether this level applies to a field of the given standardiser.
    fn fits(&self, standardiser: Standardiser) -> bool {
        use Standardiser::*;
        match self {
            Level::Exact | Level::ExactKey => true,
            Level::Tokens | Level::SurnameGivenSwapped => {
                matches!(standardiser, VnName | PersonName)
            }
            Level::JaroWinkler { .. } | Level::Levenshtein { .. } | Level::Damerau { .. } => {
                matches!(standardiser, VnName | PersonName | Text | Phone | Id)
            }
            Level::Words { .. } => matches!(standardiser, VnName | PersonName | Text),
            Level::DayMonthSwapped
            | Level::SameYearMonth
            | Level::SameYear
            | Level::WithinYears { .. }
            | Level::Partial => standardiser == Date,
            Level::OneDigit | Level::Transposition | Level::TwoDigits => {
                matches!(standardiser, VnId | Id)
            }
            Level::SamePrefix | Level::OldVsNew => standardiser == VnId,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    /// Names the `gamma_<name>` column and the model's entries.
    pub name: String,
    /// A field, or for names a part of one: `full_name.given`, `full_name.surname`, `full_name.middle`.
    pub field: String,
    pub levels: Vec<Level>,
    /// Adjust the first exact level by how common the value is (Nguyễn agreeing says little).
    #[serde(default)]
    pub term_frequency: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlockingRule {
    pub name: String,
    /// Keys that must all be equal (and present). See `docs/job-spec.md` for each standardiser's keys.
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Random record pairs compared to estimate every u.
    #[serde(default = "default_u_pairs")]
    pub u_pairs: u64,
    #[serde(default = "default_em_iterations")]
    pub em_iterations: u32,
    #[serde(default = "default_em_tolerance")]
    pub em_tolerance: f64,
    /// The blocking rule whose pairs estimate the prior probability that two records match.
    pub prior_rule: Option<String>,
    /// The share of true matches the prior rule is assumed to find.
    #[serde(default = "default_prior_recall")]
    pub prior_recall: f64,
    /// Use a saved `model.json` instead of training.
    pub model: Option<PathBuf>,
}

fn default_seed() -> u64 {
    42
}
fn default_u_pairs() -> u64 {
    1_000_000
}
fn default_em_iterations() -> u32 {
    50
}
fn default_em_tolerance() -> f64 {
    1e-6
}
fn default_prior_recall() -> f64 {
    0.9
}

impl Default for Training {
    fn default() -> Self {
        Training {
            seed: default_seed(),
            u_pairs: default_u_pairs(),
            em_iterations: default_em_iterations(),
            em_tolerance: default_em_tolerance(),
            prior_rule: None,
            prior_recall: default_prior_recall(),
            model: None,
        }
    }
}

/// How records are grouped into entities (`[clusters]`, the `clusters/` output; see
/// `crate::finish::cluster`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Clusters {
    /// Pairs at or above this probability join records into one entity; default
    /// `thresholds.match`. A higher value keeps weak links from chaining people together.
    pub threshold: Option<f64>,
    /// The most records one entity may hold: a larger connected component is cut at its weakest
    /// links. Default: ten times the 99th percentile of the sizes of the components that hold more
    /// than one record, and at least 20.
    pub max_size: Option<u32>,
}

impl Clusters {
    /// The smallest automatic [`Clusters::max_size`].
    pub const MIN_AUTO_SIZE: u32 = 20;
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Pairs at or above this probability are matches (and, unless `[clusters]` says otherwise,
    /// join clusters).
    #[serde(rename = "match")]
    pub match_: f64,
    /// Pairs at or above this (and below `match`) need a person to look.
    pub review: f64,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// Hash partitions of the blocking keys: the unit of work of the compare and score tasks.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// A block with more candidate pairs than this is skipped with a warning (Nguyễn must never
    /// become one giant block). Make the rule more selective instead of raising it.
    #[serde(default = "default_max_block_pairs")]
    pub max_block_pairs: u64,
    /// Pairs below this probability are not written to `pairs/`.
    #[serde(default = "default_min_pair_probability")]
    pub min_pair_probability: f64,
    /// A partition whose record pairs (left records × right records; dedupe: n(n−1)/2) exceed this
    /// multiple of the partitions' mean, and `split_min_pairs`, is compared and scored in slices, so
    /// that one hot partition does not keep the whole job waiting.
    #[serde(default = "default_split_above")]
    pub split_above: f64,
    #[serde(default = "default_split_min_pairs")]
    pub split_min_pairs: u64,
    /// The most slices a partition is split into; 1 never splits.
    #[serde(default = "default_max_slices")]
    pub max_slices: u32,
    /// The most rows a `standardise` task reads: a Parquet file with more is cut into runs of whole
    /// row groups, one task each, so that a large file spreads across workers. A row group larger
    /// than this is one task. CSV files are one task each.
    #[serde(default = "default_task_rows")]
    pub task_rows: u64,
    /// A `compare` task reads its partition's records laid out one after another (a few cache lines
    /// each) instead of from their columns once the partition has more than this many candidate
    /// pairs per record of its two sides, and records enough (100 000) that their columns outgrow the
    /// cache; 0 always, a large number never. Does not change the results.
    #[serde(default = "default_rows_above")]
    pub rows_above: f64,
    /// Worker threads for CPU work; 0 uses every core. Does not change the results.
    #[serde(default)]
    pub threads: usize,
    /// Where tasks hand their files to each other (standardised records by partition, scored pairs):
    /// a directory every worker can read and write, or an object-store prefix `s3://bucket/prefix`
    /// (see [`crate::storage`]). Default: `.khop-scratch` under the output; removed when the job
    /// ends. Relative paths are relative to the spec file.
    #[serde(default)]
    pub scratch: Option<String>,
    /// Mebibytes of scratch files a job run in one process (`khop link`) holds in memory instead of
    /// writing them to `scratch`; files past it are written there. 0 writes every file. A cluster's
    /// tasks run on many hosts and always hand files through `scratch`.
    #[serde(default = "default_scratch_memory_mib")]
    pub scratch_memory_mib: u64,
    /// Written when the job is planned, not by hand: the `partitions` the spec asked for, where
    /// the planner lowered them to the inputs' size ([`crate::limits`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions_asked: Option<u32>,
}

fn default_partitions() -> u32 {
    64
}
fn default_max_block_pairs() -> u64 {
    250_000
}
fn default_min_pair_probability() -> f64 {
    0.01
}
fn default_split_above() -> f64 {
    2.0
}
fn default_rows_above() -> f64 {
    1.0
}
fn default_split_min_pairs() -> u64 {
    10_000_000
}
fn default_max_slices() -> u32 {
    16
}
fn default_task_rows() -> u64 {
    262_144
}
fn default_scratch_memory_mib() -> u64 {
    2048
}

impl Default for Execution {
    fn default() -> Self {
        Execution {
            partitions: default_partitions(),
            max_block_pairs: default_max_block_pairs(),
            min_pair_probability: default_min_pair_probability(),
            split_above: default_split_above(),
            split_min_pairs: default_split_min_pairs(),
            max_slices: default_max_slices(),
            task_rows: default_task_rows(),
            rows_above: default_rows_above(),
            threads: 0,
            scratch: None,
            scratch_memory_mib: default_scratch_memory_mib(),
            partitions_asked: None,
        }
    }
}

/// A linkage job.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub mode: Mode,
    /// Where the outputs go. Relative paths are relative to the spec file.
    pub output: PathBuf,
    pub inputs: Vec<Input>,
    /// Field name → standardiser.
    pub fields: BTreeMap<String, Standardiser>,
    pub blocking: Vec<BlockingRule>,
    pub comparisons: Vec<Comparison>,
    #[serde(default)]
    pub training: Training,
    pub thresholds: Thresholds,
    #[serde(default)]
    pub execution: Execution,
    #[serde(default)]
    pub dates: Dates,
    #[serde(default)]
    pub clusters: Clusters,
}

/// The keys a field of each standardiser offers to blocking rules (`field` alone, or `field.key`).
pub fn block_keys(standardiser: Standardiser) -> &'static [&'static str] {
    match standardiser {
        Standardiser::VnName | Standardiser::PersonName => &[
            "key",
            "tokens_key",
            "surname_key",
            "middle_key",
            "given_key",
        ],
        Standardiser::Date => &["", "year", "year_month", "sorted"],
        Standardiser::VnId => &["pin", "cmnd"],
        Standardiser::VnProvince => &["", "old"],
        Standardiser::Text => &["", "folded", "initial", "prefix3", "prefix5", "phonetic"],
        Standardiser::Sex | Standardiser::Phone | Standardiser::Id => &[""],
    }
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> EngineError {
    EngineError::Spec {
        path: path.into(),
        message: message.into(),
    }
}

fn check_name(path: &str, name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("`{name}`: use letters, digits and _ (it names output columns)"),
        ))
    }
}

impl JobSpec {
    /// Parses and validates a spec. `base` is the directory relative paths are taken from.
    pub fn from_toml(text: &str, base: &std::path::Path) -> Result<Self, EngineError> {
        // Two steps, so that a bad value is reported with its path (`comparisons[2].levels[0]`) and
        // not only a line number: TOML syntax first, then the spec's structure.
        let value: toml::Value = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start].lines().count().max(1));
            invalid(
                line.map_or("spec".into(), |l| format!("line {l}")),
                e.message().to_owned(),
            )
        })?;
        let mut spec: JobSpec = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            invalid(
                if path == "." { "spec".into() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        spec.validate()?;
        spec.resolve_paths(base);
        Ok(spec)
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        if self.output.is_relative() {
            self.output = base.join(&self.output);
        }
        for input in &mut self.inputs {
            if !storage::is_url(&input.path) && std::path::Path::new(&input.path).is_relative() {
                input.path = base.join(&input.path).to_string_lossy().into_owned();
            }
            if let Some(cache) = &mut input.cache
                && !storage::is_url(cache)
                && std::path::Path::new(cache).is_relative()
            {
                *cache = base.join(&*cache).to_string_lossy().into_owned();
            }
        }
        if let Some(model) = &mut self.training.model
            && model.is_relative()
        {
            *model = base.join(&*model);
        }
        if let Some(scratch) = &mut self.execution.scratch
            && !storage::is_url(scratch)
            && std::path::Path::new(scratch).is_relative()
        {
            *scratch = base.join(&*scratch).to_string_lossy().into_owned();
        }
    }

    /// The standardiser of a field reference `field` or `field.part`.
    pub fn field_of<'a>(
        &self,
        reference: &'a str,
    ) -> Option<(&'a str, Option<&'a str>, Standardiser)> {
        let (field, part) = match reference.split_once('.') {
            Some((f, p)) => (f, Some(p)),
            None => (reference, None),
        };
        self.fields.get(field).map(|s| (field, part, *s))
    }

    /// Checks every value; the first problem is returned with its path.
    /// How `input`'s date `field` is read: the field's years, the reference year, and the input's
    /// day/month order (day first where no convention says otherwise).
    pub fn date_rules(&self, input: &Input, field: &str) -> DateRules {
        let order = input.conventions.date_order.get(field).copied();
        self.dates
            .rules(field, order.unwrap_or(DateOrder::DayFirst))
    }

    /// `[inputs.conventions]`: each names a date field, or a column of a `vn_id` field, of its input.
    fn check_conventions(&self, path: &str, input: &Input) -> Result<(), EngineError> {
        for field in input.conventions.date_order.keys() {
            if self.fields.get(field) != Some(&Standardiser::Date)
                || !input.columns.contains_key(field)
            {
                return Err(invalid(
                    format!("{path}.date_order.{field}"),
                    "not a `date` field this input maps",
                ));
            }
        }
        for column in input.conventions.id_repair.keys() {
            let of_an_id_field = input.columns.iter().any(|(field, columns)| {
                self.fields.get(field) == Some(&Standardiser::VnId)
                    && columns.names().contains(&column.as_str())
            });
            if !of_an_id_field {
                return Err(invalid(
                    format!("{path}.id_repair.{column}"),
                    "not a column of a `vn_id` field of this input",
                ));
            }
        }
        Ok(())
    }

    /// `[dates]`: a reference day, and plausible years from 1000 on, earliest before latest.
    fn check_dates(&self) -> Result<(), EngineError> {
        let dates = &self.dates;
        if let Some(reference) = &dates.reference
            && dates.reference_year().is_none()
        {
            return Err(invalid(
                "dates.reference",
                format!("`{reference}`: a day, as YYYY-MM-DD"),
            ));
        }
        let ranges = std::iter::once(("dates.years".to_owned(), &dates.years)).chain(
            dates
                .fields
                .iter()
                .map(|(field, range)| (format!("dates.fields.{field}"), range)),
        );
        for (path, range) in ranges {
            for (key, year) in [("earliest", range.earliest), ("latest", range.latest)] {
                if let Some(year) = year
                    && !(EARLIEST_YEAR_ALLOWED..=9999).contains(&year)
                {
                    return Err(invalid(
                        format!("{path}.{key}"),
                        format!("{year}: a year from {EARLIEST_YEAR_ALLOWED} to 9999"),
                    ));
                }
            }
            if let (Some(earliest), Some(latest)) = (range.earliest, range.latest)
                && earliest > latest
            {
                return Err(invalid(path, "earliest is after latest"));
            }
        }
        for field in dates.fields.keys() {
            if self.fields.get(field) != Some(&Standardiser::Date) {
                return Err(invalid(
                    format!("dates.fields.{field}"),
                    "not a `date` field declared in [fields]",
                ));
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), EngineError> {
        // Outputs are files for analysts (and a saved model one for operators): a directory, local
        // or mounted. Inputs and scratch may be in an object store.
        if storage::is_url(&self.output.to_string_lossy()) {
            return Err(invalid(
                "output",
                "a directory, not a URL (inputs and execution.scratch may be object-store URLs)",
            ));
        }
        if let Some(model) = &self.training.model
            && storage::is_url(&model.to_string_lossy())
        {
            return Err(invalid("training.model", "a file path, not a URL"));
        }
        if let Some(scratch) = &self.execution.scratch {
            if scratch.trim().is_empty() {
                return Err(invalid("execution.scratch", "empty"));
            }
            if storage::is_url(scratch) {
                storage::check_url(scratch).map_err(|m| invalid("execution.scratch", m))?;
            }
        }
        let expected_inputs = match self.mode {
            Mode::Link => 2,
            Mode::Dedupe => 1,
        };
        if self.inputs.len() != expected_inputs {
            return Err(invalid(
                "inputs",
                format!(
                    "mode `{:?}` needs {expected_inputs} input(s), found {}",
                    self.mode,
                    self.inputs.len()
                )
                .to_lowercase(),
            ));
        }
        for (i, input) in self.inputs.iter().enumerate() {
            check_name(&format!("inputs[{i}].name"), &input.name)?;
            if input.path.trim().is_empty() {
                return Err(invalid(format!("inputs[{i}].path"), "empty"));
            }
            if storage::is_url(&input.path) {
                storage::check_url(&input.path)
                    .map_err(|m| invalid(format!("inputs[{i}].path"), m))?;
            }
            if input.id.trim().is_empty() {
                return Err(invalid(format!("inputs[{i}].id"), "empty"));
            }
            if let Some(cache) = &input.cache {
                if cache.trim().is_empty() {
                    return Err(invalid(format!("inputs[{i}].cache"), "empty"));
                }
                if storage::is_url(cache) {
                    storage::check_url(cache)
                        .map_err(|m| invalid(format!("inputs[{i}].cache"), m))?;
                }
            }
            if let Some(csv) = &input.csv {
                let path = format!("inputs[{i}].csv");
                if input.format != InputFormat::Csv {
                    return Err(invalid(path, "only for `format = \"csv\"` inputs"));
                }
                if !csv.delimiter.is_ascii() || matches!(csv.delimiter, '"' | '\r' | '\n') {
                    return Err(invalid(
                        format!("{path}.delimiter"),
                        "one ASCII character other than a quote or a line break",
                    ));
                }
                if Encoding::from_name(&csv.encoding).is_none() {
                    let names: Vec<&str> = Encoding::ALL.iter().map(|e| e.name()).collect();
                    return Err(invalid(
                        format!("{path}.encoding"),
                        format!("`{}`: one of {}", csv.encoding, names.join(", ")),
                    ));
                }
            }
            for (field, columns) in &input.columns {
                if !self.fields.contains_key(field) {
                    return Err(invalid(
                        format!("inputs[{i}].columns.{field}"),
                        "not a field declared in [fields]",
                    ));
                }
                if columns.names().is_empty() || columns.names().iter().any(|c| c.is_empty()) {
                    return Err(invalid(
                        format!("inputs[{i}].columns.{field}"),
                        "empty column name",
                    ));
                }
                let standardiser = self.fields[field];
                if columns.names().len() > 1 && standardiser != Standardiser::VnId {
                    return Err(invalid(
                        format!("inputs[{i}].columns.{field}"),
                        "several columns are only combined for `vn_id` fields",
                    ));
                }
            }
        }
        for (i, input) in self.inputs.iter().enumerate() {
            self.check_conventions(&format!("inputs[{i}].conventions"), input)?;
        }
        self.check_dates()?;
        if self.inputs.len() == 2 && self.inputs[0].name == self.inputs[1].name {
            return Err(invalid("inputs[1].name", "both inputs have the same name"));
        }
        for field in self.fields.keys() {
            check_name(&format!("fields.{field}"), field)?;
        }
        if self.blocking.is_empty() {
            return Err(invalid("blocking", "at least one blocking rule is needed"));
        }
        for (r, rule) in self.blocking.iter().enumerate() {
            check_name(&format!("blocking[{r}].name"), &rule.name)?;
            if self.blocking[..r].iter().any(|o| o.name == rule.name) {
                return Err(invalid(format!("blocking[{r}].name"), "used twice"));
            }
            if rule.keys.is_empty() {
                return Err(invalid(format!("blocking[{r}].keys"), "no keys"));
            }
            for (k, key) in rule.keys.iter().enumerate() {
                let path = format!("blocking[{r}].keys[{k}]");
                let Some((_, part, standardiser)) = self.field_of(key) else {
                    return Err(invalid(path, format!("`{key}`: unknown field")));
                };
                if !block_keys(standardiser).contains(&part.unwrap_or("")) {
                    let offered: Vec<String> = block_keys(standardiser)
                        .iter()
                        .map(|k| {
                            if k.is_empty() {
                                "(the field itself)".into()
                            } else {
                                format!(".{k}")
                            }
                        })
                        .collect();
                    return Err(invalid(
                        path,
                        format!(
                            "`{key}`: a {standardiser:?} field offers {}",
                            offered.join(", ")
                        ),
                    ));
                }
            }
        }
        if self.comparisons.is_empty() {
            return Err(invalid("comparisons", "at least one comparison is needed"));
        }
        for (c, comparison) in self.comparisons.iter().enumerate() {
            check_name(&format!("comparisons[{c}].name"), &comparison.name)?;
            if self.comparisons[..c]
                .iter()
                .any(|o| o.name == comparison.name)
            {
                return Err(invalid(format!("comparisons[{c}].name"), "used twice"));
            }
            let path = format!("comparisons[{c}].field");
            let Some((_, part, standardiser)) = self.field_of(&comparison.field) else {
                return Err(invalid(
                    path,
                    format!("`{}`: unknown field", comparison.field),
                ));
            };
            if let Some(part) = part
                && !(matches!(
                    standardiser,
                    Standardiser::VnName | Standardiser::PersonName
                ) && matches!(part, "surname" | "middle" | "given" | "full"))
            {
                return Err(invalid(
                    path,
                    format!(
                        "`.{part}`: only name fields have parts (surname, middle, given, full)"
                    ),
                ));
            }
            if comparison.levels.is_empty() {
                return Err(invalid(format!("comparisons[{c}].levels"), "no levels"));
            }
            if comparison.levels.len() > 12 {
                return Err(invalid(
                    format!("comparisons[{c}].levels"),
                    "at most 12 levels",
                ));
            }
            for (l, level) in comparison.levels.iter().enumerate() {
                let path = format!("comparisons[{c}].levels[{l}]");
                if !level.fits(standardiser) {
                    return Err(invalid(
                        path,
                        format!(
                            "`{}` does not apply to a {standardiser:?} field",
                            level.name()
                        ),
                    ));
                }
                if *level == Level::SurnameGivenSwapped
                    && !matches!(part, Some("surname" | "given"))
                {
                    return Err(invalid(
                        path,
                        "`surname_given_swapped` compares `.surname` or `.given` with the other",
                    ));
                }
                if let Level::JaroWinkler { threshold } = level
                    && !(0.0..=1.0).contains(threshold)
                {
                    return Err(invalid(
                        format!("{path}.threshold"),
                        "must be between 0 and 1",
                    ));
                }
            }
        }
        let t = &self.training;
        if t.u_pairs == 0 {
            return Err(invalid("training.u_pairs", "must be positive"));
        }
        if !(t.prior_recall > 0.0 && t.prior_recall <= 1.0) {
            return Err(invalid("training.prior_recall", "must be in (0, 1]"));
        }
        if let Some(rule) = &t.prior_rule
            && !self.blocking.iter().any(|b| &b.name == rule)
        {
            return Err(invalid(
                "training.prior_rule",
                format!("`{rule}` is not a blocking rule"),
            ));
        }
        let th = &self.thresholds;
        for (path, value) in [
            ("thresholds.match", th.match_),
            ("thresholds.review", th.review),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(invalid(path, "must be between 0 and 1"));
            }
        }
        if let Some(t) = self.clusters.threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(invalid("clusters.threshold", "must be between 0 and 1"));
        }
        if self.clusters.max_size.is_some_and(|n| n < 2) {
            return Err(invalid("clusters.max_size", "must be at least 2"));
        }
        if th.review > th.match_ {
            return Err(invalid(
                "thresholds.review",
                "must not exceed thresholds.match",
            ));
        }
        let e = &self.execution;
        if e.partitions == 0 || e.partitions > 65_536 {
            return Err(invalid(
                "execution.partitions",
                "must be between 1 and 65536",
            ));
        }
        if e.max_block_pairs == 0 {
            return Err(invalid("execution.max_block_pairs", "must be positive"));
        }
        if !(0.0..=1.0).contains(&e.min_pair_probability) {
            return Err(invalid(
                "execution.min_pair_probability",
                "must be between 0 and 1",
            ));
        }
        if !(e.split_above.is_finite() && e.split_above >= 0.0) {
            return Err(invalid(
                "execution.split_above",
                "must be a number at least 0",
            ));
        }
        if !(e.rows_above.is_finite() && e.rows_above >= 0.0) {
            return Err(invalid(
                "execution.rows_above",
                "must be a number at least 0",
            ));
        }
        if e.task_rows == 0 {
            return Err(invalid("execution.task_rows", "must be positive"));
        }
        if e.max_slices == 0 || e.max_slices > 1024 {
            return Err(invalid(
                "execution.max_slices",
                "must be between 1 and 1024",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A dedupe of `people.csv` (columns id, name, dob) blocked on the birth date: `input` is added
    /// to the input's table (`cache = "…"`), `rest` at the end (`[execution]` and the like).
    pub(crate) fn people_dedupe(input: &str, rest: &str) -> String {
        format!(
            r#"
mode = "dedupe"
output = "out"
[[inputs]]
name = "people"
path = "people.csv"
format = "csv"
id = "id"
{input}
[inputs.columns]
name = "name"
dob = "dob"
[fields]
name = "vn_name"
dob = "date"
[[blocking]]
name = "dob"
keys = ["dob"]
[[comparisons]]
name = "name"
field = "name.given"
levels = [{{ kind = "exact" }}]
[thresholds]
match = 0.9
review = 0.5
{rest}
"#
        )
    }

    pub(crate) const GOOD: &str = r#"
mode = "link"
output = "out"
[[inputs]]
name = "a"
path = "a.parquet"
format = "parquet"
id = "id"
[inputs.columns]
name = "full_name"
dob = "dob"
ids = ["pin", "cmnd"]
[[inputs]]
name = "b"
path = "b.csv"
format = "csv"
id = "id"
[inputs.columns]
name = "name"
dob = "birth"
[fields]
name = "vn_name"
dob = "date"
ids = "vn_id"
[[blocking]]
name = "dob_given"
keys = ["dob.sorted", "name.given_key"]
[[comparisons]]
name = "given"
field = "name.given"
levels = [{ kind = "exact_key" }, { kind = "jaro_winkler", threshold = 0.9 }]
[[comparisons]]
name = "dob"
field = "dob"
levels = [{ kind = "exact" }, { kind = "day_month_swapped" }]
[thresholds]
match = 0.9
review = 0.5
"#;

    fn parse(text: &str) -> Result<JobSpec, EngineError> {
        JobSpec::from_toml(text, std::path::Path::new("/jobs"))
    }

    #[test]
    fn a_good_spec_parses_with_defaults_and_resolved_paths() {
        let spec = parse(GOOD).unwrap();
        assert_eq!(spec.mode, Mode::Link);
        assert_eq!(spec.output, std::path::Path::new("/jobs/out"));
        assert_eq!(spec.inputs[1].path, "/jobs/b.csv");
        assert_eq!(spec.training, Training::default());
        assert_eq!(spec.execution.partitions, 64);
        assert_eq!(spec.inputs[0].columns["ids"].names(), ["pin", "cmnd"]);
        assert_eq!(spec.inputs[1].csv, None);
        assert_eq!(spec.inputs[1].csv_options().delimiter(), b',');
        assert_eq!(spec.inputs[1].csv_options().encoding(), Encoding::Utf8);
        let text = GOOD.replacen(
            "[inputs.columns]\nname = \"name\"",
            "[inputs.csv]\ndelimiter = \"\\t\"\nencoding = \"TCVN3\"\n[inputs.columns]\nname = \"name\"",
            1,
        );
        let spec = parse(&text).unwrap();
        let csv = spec.inputs[1].csv_options();
        assert_eq!(
            (csv.delimiter(), csv.encoding()),
            (b'\t', Encoding::Legacy(khop_vn::text::Legacy::Tcvn3))
        );
        // As a coordinator stores a submitted spec: as TOML, read back the same.
        let stored = toml::to_string(&spec).unwrap();
        assert_eq!(parse(&stored).unwrap(), spec);
    }

    #[test]
    fn bad_specs_name_the_offending_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("mode = \"link\"", "mode = \"merge\"", "mode"),
            ("format = \"csv\"", "format = \"xlsx\"", "inputs[1].format"),
            (
                "[inputs.columns]\nname = \"name\"",
                "[inputs.columns]\nnmae = \"name\"",
                "inputs[1].columns.nmae",
            ),
            (
                "[inputs.columns]\nname = \"name\"",
                "[inputs.csv]\nencoding = \"latin1\"\n[inputs.columns]\nname = \"name\"",
                "inputs[1].csv.encoding",
            ),
            (
                "[inputs.columns]\nname = \"name\"",
                "[inputs.csv]\ndelimiter = '\"'\n[inputs.columns]\nname = \"name\"",
                "inputs[1].csv.delimiter",
            ),
            (
                "[inputs.columns]\nname = \"name\"",
                "[inputs.csv]\ndelimiter = \"ab\"\n[inputs.columns]\nname = \"name\"",
                "inputs[1].csv.delimiter",
            ),
            (
                "[inputs.columns]\nname = \"name\"",
                "[inputs.csv]\nquote = \"'\"\n[inputs.columns]\nname = \"name\"",
                "inputs[1].csv",
            ),
            (
                "[inputs.columns]\nname = \"full_name\"",
                "[inputs.csv]\ndelimiter = \";\"\n[inputs.columns]\nname = \"full_name\"",
                "inputs[0].csv",
            ),
            ("name = \"a\"", "name = \"a-b\"", "inputs[0].name"),
            (
                "keys = [\"dob.sorted\", \"name.given_key\"]",
                "keys = [\"dob.sorted\", \"name.given\"]",
                "blocking[0].keys[1]",
            ),
            (
                "keys = [\"dob.sorted\", \"name.given_key\"]",
                "keys = [\"dbo.sorted\"]",
                "blocking[0].keys[0]",
            ),
            (
                "{ kind = \"day_month_swapped\" }",
                "{ kind = \"one_digit\" }",
                "comparisons[1].levels[1]",
            ),
            (
                "threshold = 0.9",
                "threshold = 1.9",
                "comparisons[0].levels[1].threshold",
            ),
            (
                "threshold = 0.9",
                "treshold = 0.9",
                "comparisons[0].levels[1]",
            ),
            (
                "field = \"name.given\"",
                "field = \"name.nick\"",
                "comparisons[0].field",
            ),
            ("review = 0.5", "review = 0.95", "thresholds.review"),
            (
                "[thresholds]",
                "[clusters]\nthreshold = 1.5\n[thresholds]",
                "clusters.threshold",
            ),
            (
                "[thresholds]",
                "[clusters]\nmax_size = 1\n[thresholds]",
                "clusters.max_size",
            ),
            ("match = 0.9", "match = 2.0", "thresholds.match"),
            (
                "[thresholds]",
                "[training]\nprior_rule = \"pin\"\n[thresholds]",
                "training.prior_rule",
            ),
            (
                "[thresholds]",
                "[execution]\npartitions = 0\n[thresholds]",
                "execution.partitions",
            ),
            (
                "[thresholds]",
                "[execution]\nsplit_above = -1.0\n[thresholds]",
                "execution.split_above",
            ),
            (
                "[thresholds]",
                "[execution]\nrows_above = -1.0\n[thresholds]",
                "execution.rows_above",
            ),
            (
                "[thresholds]",
                "[execution]\nmax_slices = 0\n[thresholds]",
                "execution.max_slices",
            ),
            (
                "[thresholds]",
                "[execution]\nmax_slices = \"many\"\n[thresholds]",
                "execution.max_slices",
            ),
            (
                "[thresholds]",
                "[execution]\ntask_rows = 0\n[thresholds]",
                "execution.task_rows",
            ),
            (
                "[thresholds]",
                "[execution]\nscratch = \"gs://bucket/x\"\n[thresholds]",
                "execution.scratch",
            ),
            (
                "[thresholds]",
                "[execution]\nscratch = \"\"\n[thresholds]",
                "execution.scratch",
            ),
            (
                "path = \"b.csv\"",
                "path = \"s3:///no-bucket.csv\"",
                "inputs[1].path",
            ),
            ("output = \"out\"", "output = \"s3://bucket/out\"", "output"),
            ("[thresholds]", "[extra]\n[thresholds]", "extra"),
            ("dob = \"date\"", "dob = \"datum\"", "fields.dob"),
            (
                "[thresholds]",
                "[dates]\nreference = \"07/12/2026\"\n[thresholds]",
                "dates.reference",
            ),
            (
                "[thresholds]",
                "[dates]\nreference = \"2026-02-30\"\n[thresholds]",
                "dates.reference",
            ),
            (
                "[thresholds]",
                "[dates.years]\nearliest = 999\n[thresholds]",
                "dates.years.earliest",
            ),
            (
                "[thresholds]",
                "[dates.years]\nearliest = 1990\nlatest = 1980\n[thresholds]",
                "dates.years",
            ),
            (
                "[thresholds]",
                "[dates.fields.name]\nearliest = 1000\n[thresholds]",
                "dates.fields.name",
            ),
            (
                "[thresholds]",
                "[dates]\norder = \"day_first\"\n[thresholds]",
                "dates",
            ),
            (
                "dob = \"birth\"",
                "dob = \"birth\"\n[inputs.conventions]\ndate_order = { name = \"day_first\" }",
                "inputs[1].conventions.date_order.name",
            ),
            (
                "dob = \"birth\"",
                "dob = \"birth\"\n[inputs.conventions]\ndate_order = { dob = \"either\" }",
                "inputs[1].conventions.date_order.dob",
            ),
            (
                "ids = [\"pin\", \"cmnd\"]",
                "ids = [\"pin\", \"cmnd\"]\n[inputs.conventions]\nid_repair = { tax = false }",
                "inputs[0].conventions.id_repair.tax",
            ),
        ];
        for (from, to, path) in cases {
            assert!(GOOD.contains(from), "case does not apply: {from}");
            let text = GOOD.replacen(from, to, 1);
            let err = parse(&text).expect_err(to).to_string();
            assert!(
                err.contains(path),
                "{to:?}: expected path {path}, got: {err}"
            );
        }
    }

    #[test]
    fn dates_and_conventions_parse_and_survive_toml() {
        let text = GOOD
            .replacen(
                "[thresholds]",
                "[dates]\nreference = \"2026-12-07\"\n[dates.years]\nearliest = 1900\n\
                 [dates.fields.dob]\nearliest = 1000\nlatest = 2030\n[thresholds]",
                1,
            )
            .replacen(
                "ids = [\"pin\", \"cmnd\"]",
                "ids = [\"pin\", \"cmnd\"]\n[inputs.conventions]\n\
                 date_order = { dob = \"month_first\" }\nid_repair = { cmnd = false }",
                1,
            );
        let spec = parse(&text).unwrap();
        let conventions = &spec.inputs[0].conventions;
        assert_eq!(conventions.date_order["dob"], DateOrder::MonthFirst);
        assert!(!conventions.id_repair["cmnd"]);
        let rules = spec.dates.rules("dob", DateOrder::MonthFirst);
        assert_eq!(
            rules,
            DateRules {
                earliest_year: 1000,
                latest_year: 2030,
                reference_year: Some(2026),
                order: DayMonthOrder::MonthFirst,
            }
        );
        // Another date field takes the shared range, up to the reference year.
        let other = spec.dates.rules("other", DateOrder::DayFirst);
        assert_eq!((other.earliest_year, other.latest_year), (1900, 2026));
        let stored = toml::to_string(&spec).unwrap();
        assert_eq!(toml::from_str::<JobSpec>(&stored).unwrap(), spec);
    }

    #[test]
    fn object_store_urls_are_kept_as_they_are() {
        let text = GOOD
            .replacen("path = \"b.csv\"", "path = \"s3://census/b/\"", 1)
            .replacen(
                "[thresholds]",
                "[execution]\nscratch = \"s3://scratch/khop\"\n[thresholds]",
                1,
            );
        let spec = parse(&text).unwrap();
        assert_eq!(spec.inputs[1].path, "s3://census/b/");
        assert_eq!(spec.execution.scratch.as_deref(), Some("s3://scratch/khop"));
        let local = parse(&GOOD.replacen(
            "[thresholds]",
            "[execution]\nscratch = \"tmp\"\n[thresholds]",
            1,
        ))
        .unwrap();
        assert_eq!(local.execution.scratch.as_deref(), Some("/jobs/tmp"));
    }

    #[test]
    fn mode_decides_the_number_of_inputs() {
        let text = GOOD.replacen("mode = \"link\"", "mode = \"dedupe\"", 1);
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("inputs"), "{err}");
    }

    #[test]
    fn syntax_errors_give_a_line() {
        let err = parse("mode = \n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
