//! Reference tables of Vietnamese administrative units and identity documents, compiled into the binary.
//!
//! The CSV files under `crates/vn/data/` are the project's copies of the researched tables; where each
//! fact comes from is written in `crates/vn/data/SOURCES.md`. They are parsed once, on first use.
//!
//! Codes, and why there are three kinds of them:
//! - the **PIN code** (`001`..`096`, 63 valid values) opens every 12-digit personal ID number and names
//!   the province where the birth was registered; it is the pre-2025 statistics-office code with a `0`;
//! - the **old NSO code** (`01`..`96`) of the 63 provinces before 1 July 2025;
//! - the **new code** of the 34 provinces after the reform. Each new code is one of the old codes of the
//!   provinces merged into it, so `15` meant Yên Bái before and means Lào Cai now: never compare a code
//!   without knowing which list it comes from.

use std::sync::LazyLock;

/// A province of the 63-unit list in force until 30 June 2025.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OldProvince {
    /// The 3-digit code that opens a PIN, as a number (`1` for `001`).
    pub pin_code: u16,
    /// The 2-digit statistics-office code.
    pub nso_code: u8,
    /// The short name used by Circular 07/2016 (`Hòa Bình`, `Hồ Chí Minh`).
    pub name: String,
    /// The official name with its unit type (`Tỉnh Hoà Bình`, `Thành phố Hồ Chí Minh`).
    pub official_name: String,
    /// Number of communes on 2025-01-04.
    pub communes: u16,
    /// The code of the 34-unit province it became part of on 1 July 2025.
    pub new_code: u8,
    /// Prefixes of the old 9-digit ID (CMND) numbers issued by this province's police.
    pub cmnd_prefixes: Vec<String>,
}

impl OldProvince {
    /// The PIN code as its three digits.
    pub fn pin_prefix(&self) -> String {
        format!("{:03}", self.pin_code)
    }
}

/// A province of the 34-unit list in force from 1 July 2025.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProvince {
    pub code: u8,
    /// Official name with unit type (`Tỉnh Lào Cai`, `Thành phố Huế`).
    pub official_name: String,
    /// `tỉnh` or `thành phố trung ương`.
    pub division_type: String,
    /// NSO codes of the old provinces merged into it (one for an unmerged province).
    pub old_codes: Vec<u8>,
    /// Number of communes (xã, phường, đặc khu) after the reform.
    pub communes: u16,
    /// Population per Resolution 202/2025, published for merged provinces only.
    pub population: Option<u64>,
}

impl NewProvince {
    /// The name without its unit type: `Lào Cai`, `Hồ Chí Minh`.
    pub fn short_name(&self) -> &str {
        strip_unit_type(&self.official_name)
    }
}

/// Removes the leading unit type (`Tỉnh `, `Thành phố `) from an official province name.
pub fn strip_unit_type(name: &str) -> &str {
    for prefix in ["Thành phố ", "Tỉnh "] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return rest;
        }
    }
    name
}

/// Splits one CSV line into fields, honouring double quotes. The reference files are small and
/// trusted, so this is all the CSV this crate needs.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Data rows of an embedded CSV file, header skipped.
fn rows(text: &'static str) -> impl Iterator<Item = Vec<String>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(csv_fields)
}

fn num<T: std::str::FromStr>(field: &str, what: &str) -> T {
    // Embedded tables are part of the source code; a bad number is a build defect caught by the tests.
    field
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("reference table: bad {what}: {field:?}"))
}

static OLD_PROVINCES: LazyLock<Vec<OldProvince>> = LazyLock::new(|| {
    let cmnd: Vec<(u8, Vec<String>)> = rows(include_str!("../data/cmnd9_prefixes.csv"))
        .map(|f| {
            let prefixes = f[2].split(';').map(str::to_owned).collect();
            (num(&f[0], "nso code"), prefixes)
        })
        .collect();
    rows(include_str!("../data/provinces_63.csv"))
        .map(|f| {
            let nso_code: u8 = num(&f[2], "nso code");
            OldProvince {
                pin_code: num(&f[0], "pin code"),
                nso_code,
                name: f[1].clone(),
                official_name: f[3].clone(),
                communes: num(&f[5], "communes"),
                new_code: num(&f[6], "new code"),
                cmnd_prefixes: cmnd
                    .iter()
                    .find(|(c, _)| *c == nso_code)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default(),
            }
        })
        .collect()
});

static NEW_PROVINCES: LazyLock<Vec<NewProvince>> = LazyLock::new(|| {
    rows(include_str!("../data/provinces_34.csv"))
        .map(|f| NewProvince {
            code: num(&f[0], "new code"),
            official_name: f[1].clone(),
            division_type: f[2].clone(),
            old_codes: f[4].split(';').map(|c| num(c, "old code")).collect(),
            communes: num(&f[6], "communes"),
            population: f[11].trim().parse().ok(),
        })
        .collect()
});

/// The 63 provinces before the 2025 reform, in code order.
pub fn old_provinces() -> &'static [OldProvince] {
    &OLD_PROVINCES
}

/// The 34 provinces after the 2025 reform, in code order.
pub fn new_provinces() -> &'static [NewProvince] {
    &NEW_PROVINCES
}

/// The old province whose PIN code is `pin_code` (`1` for `001`); `None` for the 33 unused values.
pub fn old_by_pin_code(pin_code: u16) -> Option<&'static OldProvince> {
    OLD_PROVINCES.iter().find(|p| p.pin_code == pin_code)
}

/// The old province with statistics-office code `nso_code`.
pub fn old_by_nso(nso_code: u8) -> Option<&'static OldProvince> {
    OLD_PROVINCES.iter().find(|p| p.nso_code == nso_code)
}

/// The new province with code `code`.
pub fn new_by_code(code: u8) -> Option<&'static NewProvince> {
    NEW_PROVINCES.iter().find(|p| p.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_the_published_sizes() {
        assert_eq!(old_provinces().len(), 63);
        assert_eq!(new_provinces().len(), 34);
        let communes: u32 = new_provinces().iter().map(|p| u32::from(p.communes)).sum();
        assert_eq!(
            communes, 3321,
            "NOTES §3.2: 3,321 communes after the reform"
        );
    }

    #[test]
    fn pin_code_is_nso_code_with_a_leading_zero() {
        for p in old_provinces() {
            assert_eq!(p.pin_code, u16::from(p.nso_code), "{}", p.name);
            assert_eq!(p.pin_prefix().len(), 3);
        }
    }

    #[test]
    fn old_and_new_lists_agree_both_ways() {
        for old in old_provinces() {
            let new = new_by_code(old.new_code).expect("new province exists");
            assert!(new.old_codes.contains(&old.nso_code), "{}", old.name);
        }
        let mut merged: Vec<u8> = new_provinces()
            .iter()
            .flat_map(|p| p.old_codes.clone())
            .collect();
        merged.sort_unstable();
        let mut old: Vec<u8> = old_provinces().iter().map(|p| p.nso_code).collect();
        old.sort_unstable();
        assert_eq!(
            merged, old,
            "every old province goes into exactly one new one"
        );
    }

    #[test]
    fn every_old_province_has_a_cmnd_prefix() {
        for p in old_provinces() {
            assert!(!p.cmnd_prefixes.is_empty(), "{}", p.name);
            for prefix in &p.cmnd_prefixes {
                assert!(matches!(prefix.len(), 2 | 3), "{prefix}");
                assert!(prefix.bytes().all(|b| b.is_ascii_digit()), "{prefix}");
            }
        }
    }

    #[test]
    fn lookups() {
        let cases: &[(u16, Option<&str>)] = &[
            (1, Some("Hà Nội")),
            (79, Some("Hồ Chí Minh")),
            (96, Some("Cà Mau")),
            (3, None),
            (97, None),
        ];
        for (code, name) in cases {
            assert_eq!(
                old_by_pin_code(*code).map(|p| p.name.as_str()),
                *name,
                "{code}"
            );
        }
        assert_eq!(old_by_nso(15).map(|p| p.new_code), Some(15));
        assert_eq!(new_by_code(15).map(|p| p.short_name()), Some("Lào Cai"));
        assert_eq!(old_by_nso(15).map(|p| p.name.as_str()), Some("Yên Bái"));
        assert_eq!(
            new_by_code(79).map(|p| p.population),
            Some(Some(14_002_598))
        );
    }

    #[test]
    fn csv_fields_honour_quotes() {
        assert_eq!(csv_fields(r#"a,"b, c",d"#), ["a", "b, c", "d"]);
        assert_eq!(csv_fields(r#""say ""hi""",x"#), [r#"say "hi""#, "x"]);
    }
}
