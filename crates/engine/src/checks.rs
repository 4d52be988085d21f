//! A record checked against itself: a 12-digit PIN encodes its holder's sex and birth year, so a PIN
//! that fails its own checks, or that says another sex or year than the record's fields, is a typing
//! error in the PIN or the record, or a PIN cancelled and re-issued. Each accepted record gets a set of
//! [`PinCheck`] flags when it is standardised; the reconciliation shows them per record
//! (`pin_check`, `right_pin_check`) and `summary.json` counts them per source (`pin_checks`).
//!
//! The fields checked come from the spec: its one `vn_id` field, its one `sex` field, and its birth
//! date: the one `date` field, or among several the first whose name says birth (`birth`, `dob`,
//! `sinh`). A spec without a `vn_id` field checks nothing; without a sex or a birth date, that part
//! is not checked.

use khop_vn::Sex;
use khop_vn::id::{IdNumber, check_pin, parse_id};

use crate::spec::{JobSpec, Standardiser};
use crate::standardise::{FieldValues, Table, unpack_date};

/// Flags of one record, as a bit set: 0 when nothing is wrong or nothing can be checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinCheck(pub u8);

impl PinCheck {
    /// 12 digits that are not a PIN (an unknown province code, an impossible century digit).
    pub const INVALID: u8 = 1;
    pub const SEX_DIFFERS: u8 = 2;
    pub const YEAR_DIFFERS: u8 = 4;

    /// How the reconciliation and the summary name the flags; `None` for a record without any.
    pub fn name(self) -> Option<&'static str> {
        const BOTH: u8 = PinCheck::SEX_DIFFERS | PinCheck::YEAR_DIFFERS;
        Some(match self.0 {
            0 => return None,
            f if f & Self::INVALID != 0 => "invalid_pin",
            BOTH => "pin_sex_and_year_differ",
            Self::SEX_DIFFERS => "pin_sex_differs",
            _ => "pin_year_differs",
        })
    }
}

/// Which fields of a table a PIN is checked against (positions in `spec.fields` order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinFields {
    id: usize,
    sex: Option<usize>,
    birth: Option<usize>,
}

impl PinFields {
    /// The spec's fields to check, or `None` when it has no single `vn_id` field.
    pub fn of(spec: &JobSpec) -> Option<PinFields> {
        let of_kind = |kind: Standardiser| -> Vec<(usize, &str)> {
            (spec.fields.iter().enumerate())
                .filter(|(_, (_, s))| **s == kind)
                .map(|(i, (name, _))| (i, name.as_str()))
                .collect()
        };
        let only = |fields: &[(usize, &str)]| match fields {
            [(i, _)] => Some(*i),
            _ => None,
        };
        let dates = of_kind(Standardiser::Date);
        let birth = only(&dates).or_else(|| {
            dates
                .iter()
                .find(|(_, name)| {
                    let name = name.to_ascii_lowercase();
                    ["birth", "dob", "sinh"].iter().any(|w| name.contains(w))
                })
                .map(|(i, _)| *i)
        });
        Some(PinFields {
            id: only(&of_kind(Standardiser::VnId))?,
            sex: only(&of_kind(Standardiser::Sex)),
            birth,
        })
    }

    /// The flags of record `row` of `table`.
    pub fn check(&self, table: &Table, row: usize) -> PinCheck {
        let Some(FieldValues::Id { pin, .. }) = &table.fields[self.id] else {
            return PinCheck::default();
        };
        let digits = pin.get(row);
        if digits.is_empty() {
            return PinCheck::default();
        }
        let pin = match parse_id(digits) {
            IdNumber::Pin(pin) => pin,
            _ => return PinCheck(PinCheck::INVALID),
        };
        let sex = match self.sex.and_then(|f| table.fields[f].as_ref()) {
            Some(FieldValues::Sex(v)) => match v[row] {
                1 => Some(Sex::Male),
                2 => Some(Sex::Female),
                _ => None,
            },
            _ => None,
        };
        let year = match self.birth.and_then(|f| table.fields[f].as_ref()) {
            Some(FieldValues::Date(v)) => unpack_date(v[row]).map(|d| d.year),
            _ => None,
        };
        let found = check_pin(&pin, sex, year);
        let mut flags = 0;
        if found.sex_mismatch {
            flags |= PinCheck::SEX_DIFFERS;
        }
        if found.year_mismatch {
            flags |= PinCheck::YEAR_DIFFERS;
        }
        PinCheck(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standardise::standardise_batch;

    fn spec(fields: &str) -> JobSpec {
        let text = format!(
            r#"
mode = "dedupe"
output = "out"
[[inputs]]
name = "cs"
path = "cs.csv"
format = "csv"
id = "id"
[inputs.columns]
ids = "so_dinh_danh"
sex = "gioi_tinh"
dob = "ngay_sinh"
[fields]
{fields}
[[blocking]]
name = "sex"
keys = ["sex"]
[[comparisons]]
name = "sex"
field = "sex"
levels = [{{ kind = "exact" }}]
[thresholds]
match = 0.9
review = 0.5
"#
        );
        JobSpec::from_toml(&text, std::path::Path::new("/")).unwrap()
    }

    #[test]
    fn the_fields_checked_come_from_the_spec() {
        let all = spec("ids = \"vn_id\"\nsex = \"sex\"\ndob = \"date\"");
        // Fields in name order: dob, ids, sex.
        assert_eq!(
            PinFields::of(&all),
            Some(PinFields {
                id: 1,
                sex: Some(2),
                birth: Some(0)
            })
        );
        let no_sex = spec("ids = \"vn_id\"\nsex = \"text\"\ndob = \"date\"");
        assert_eq!(PinFields::of(&no_sex).unwrap().sex, None);
        let no_id = spec("ids = \"text\"\nsex = \"sex\"\ndob = \"date\"");
        assert_eq!(PinFields::of(&no_id), None);
    }

    #[test]
    fn pins_are_checked_against_the_record() {
        let spec = spec("ids = \"vn_id\"\nsex = \"sex\"\ndob = \"date\"");
        // 001 (Hà Nội), century-sex digit 0 (male, 1900s), year 90.
        let rows = [
            ("001090123456", "Nam", "15/06/1990", None),
            ("001090123456", "Nữ", "15/06/1990", Some("pin_sex_differs")),
            (
                "001090123456",
                "Nam",
                "15/06/1991",
                Some("pin_year_differs"),
            ),
            (
                "001090123456",
                "Nữ",
                "1991",
                Some("pin_sex_and_year_differ"),
            ),
            ("001090123456", "", "", None),
            ("999090123456", "Nam", "15/06/1990", Some("invalid_pin")),
            ("", "Nam", "15/06/1990", None),
            ("012345678", "Nữ", "15/06/1991", None),
        ];
        let input = &spec.inputs[0];
        let ids: Vec<String> = (0..rows.len()).map(|i| format!("r{i}")).collect();
        let batch = crate::scan::text_batch(&crate::scan::columns_of(input), |column| {
            (rows.iter().zip(&ids))
                .map(|(r, id)| match column {
                    "id" => Some(id.as_str()),
                    "so_dinh_danh" => Some(r.0),
                    "gioi_tinh" => Some(r.1),
                    _ => Some(r.2),
                })
                .collect()
        });
        let table = standardise_batch(&spec, input, &batch);
        let fields = PinFields::of(&spec).unwrap();
        let found: Vec<Option<&str>> = (0..table.len())
            .map(|r| fields.check(&table, r).name())
            .collect();
        let want: Vec<Option<&str>> = rows.iter().map(|r| r.3).collect();
        assert_eq!(found, want);
    }
}
