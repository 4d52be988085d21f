//! The corruptions of real exports that the defaults leave off, checked on generated records against
//! the people behind them: each class at rate 1, every other class off.

use arrow::array::{Array, AsArray};
use khop_datagen::person::Person;
use khop_datagen::{Class, DatagenConfig, Dataset, Source, Tally};
use khop_vn::date::{DateRules, PartialDate, parse_date_with};
use khop_vn::id::{IdNumber, parse_id};

/// Every rate at 0, then `rates` set.
fn config(rates: &[(&str, f64)]) -> DatagenConfig {
    let mut config = DatagenConfig::default();
    for source in Source::ALL {
        for class in Class::ALL {
            let path = format!("{}.{}", source.name(), class.name());
            config.set_rate(&path, 0.0).unwrap();
        }
    }
    for &(path, rate) in rates {
        config.set_rate(path, rate).unwrap();
    }
    config
}

/// One generated record, its truth, and the person behind it.
struct Row {
    record_id: String,
    person: Person,
    name: String,
    dob: String,
    pin: Option<String>,
    classes: Vec<String>,
}

fn rows(rates: &[(&str, f64)], source: Source) -> (Vec<Row>, Tally) {
    let dataset = Dataset::new(5, 20_000, 2_000, config(rates)).unwrap();
    let mut tally = Tally::default();
    let (batch, truth) = dataset
        .batch(source, 0..dataset.records(source), &mut tally)
        .unwrap();
    let text = |name: &str, i: usize| {
        batch
            .column_by_name(name)
            .map(|c| c.as_string::<i32>())
            .and_then(|c| (!c.is_null(i)).then(|| c.value(i).to_owned()))
    };
    let person_ids = truth
        .column(2)
        .as_primitive::<arrow::datatypes::UInt64Type>();
    let classes = truth.column(3).as_list::<i32>();
    let rows = (0..batch.num_rows())
        .map(|i| {
            let person_id = person_ids.value(i);
            let listed = classes.value(i);
            let listed = listed.as_string::<i32>();
            Row {
                record_id: text("record_id", i).unwrap(),
                person: dataset.people.get(person_id),
                name: text("full_name", i).unwrap(),
                dob: text("date_of_birth", i).unwrap(),
                pin: text("pin", i),
                classes: (0..listed.len())
                    .map(|j| listed.value(j).to_owned())
                    .collect(),
            }
        })
        .collect();
    (rows, tally)
}

fn words(name: &str) -> Vec<&str> {
    name.split(' ').collect()
}

/// `d/m/yy`, `dd-mm-yy`, `dd.mm.yy` (`^\d{1,2}[-/.]\d{1,2}[-/.]\d{2}$`), or Oracle's `15-JUN-99`.
fn two_digit_year_shape(s: &str) -> bool {
    let digits =
        |p: &str, lens: &[usize]| lens.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = s.split(['/', '-', '.']).collect();
    let numeric = parts.len() == 3
        && digits(parts[0], &[1, 2])
        && digits(parts[1], &[1, 2])
        && digits(parts[2], &[2]);
    let oracle = parts.len() == 3
        && s.split('-').count() == 3
        && digits(parts[0], &[2])
        && parts[1].len() == 3
        && parts[1].bytes().all(|b| b.is_ascii_uppercase())
        && digits(parts[2], &[2]);
    numeric || oracle
}

#[test]
fn every_class_is_applied_where_it_applies_and_only_there() {
    let cases = [
        (Source::CivilServants, Class::DobTwoDigitYear),
        (Source::Population, Class::DobTwoDigitYear),
        (Source::CivilServants, Class::PinPrefixTypo),
        (Source::Population, Class::PinPrefixTypo),
        (Source::CivilServants, Class::NameSurnameTypo),
        (Source::CivilServants, Class::NameRotation),
    ];
    for (source, class) in cases {
        let path = format!("{}.{}", source.name(), class.name());
        let (rows, tally) = rows(&[(&path, 1.0)], source);
        let c = class as usize;
        assert!(tally.applicable[c] > 0, "{path}");
        assert_eq!(tally.applied[c], tally.applicable[c], "{path}");
        let hit = rows.iter().filter(|r| r.classes == [class.name()]).count();
        assert_eq!(hit as u64, tally.applied[c], "{path}");
        assert!(
            rows.iter()
                .all(|r| r.classes.is_empty() || r.classes == [class.name()]),
            "{path}"
        );
    }
}

#[test]
fn two_digit_years_have_their_shapes_and_read_back_as_the_birth_date() {
    let rules = DateRules {
        reference_year: Some(2026),
        ..DateRules::default()
    };
    for source in Source::ALL {
        let path = format!("{}.dob_two_digit_year", source.name());
        let (rows, _) = rows(&[(&path, 1.0)], source);
        for r in &rows {
            assert!(two_digit_year_shape(&r.dob), "{}: {}", r.record_id, r.dob);
            let p = &r.person;
            let truth = PartialDate::full(p.birth_year, p.birth_month, p.birth_day).unwrap();
            assert_eq!(parse_date_with(&r.dob, &rules), Ok(truth), "{}", r.dob);
        }
        let oracle = rows
            .iter()
            .filter(|r| r.dob.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(oracle.count() > rows.len() / 10, "{path}");
    }
}

#[test]
fn pin_prefix_typos_change_only_the_province_code() {
    for source in Source::ALL {
        let path = format!("{}.pin_prefix_typo", source.name());
        let (rows, _) = rows(&[(&path, 1.0)], source);
        let mut invalid_code = 0;
        for r in &rows {
            let (shown, truth) = (r.pin.as_deref().unwrap(), r.person.pin.as_str());
            assert_eq!(shown.len(), truth.len(), "{}", r.record_id);
            assert_ne!(shown[..3], truth[..3], "{}", r.record_id);
            assert_eq!(shown[3..], truth[3..], "{}", r.record_id);
            if !matches!(parse_id(shown), IdNumber::Pin(_)) {
                invalid_code += 1;
            }
        }
        // Both outcomes occur: a code no province has, and another province's code.
        assert!(invalid_code > 0 && invalid_code < rows.len(), "{path}");
    }
}

#[test]
fn surname_typos_and_rotations_move_and_change_the_right_words() {
    // (rotation, surname typo): with a rotation the surname of a name of three words or more is
    // last, the given name first; a typo changes the surname's word by one edit and nothing else.
    for (rotation, typo) in [(true, false), (false, true), (true, true)] {
        let mut rates = Vec::new();
        if rotation {
            rates.push(("civil_servants.name_rotation", 1.0));
        }
        if typo {
            rates.push(("civil_servants.name_surname_typo", 1.0));
        }
        let (rows, _) = rows(&rates, Source::CivilServants);
        for r in &rows {
            let truth = r.person.full_name();
            let mut expected = words(&truth);
            let n = expected.len();
            let surname_at = if rotation && n >= 3 { n - 1 } else { 0 };
            expected.swap(0, surname_at);
            let shown = words(&r.name);
            assert_eq!(shown.len(), n, "{rates:?}: {}", r.record_id);
            for (i, (shown, expected)) in shown.iter().zip(&expected).enumerate() {
                if i == surname_at && typo {
                    assert_ne!(shown, expected, "{rates:?}: {}", r.record_id);
                    let lengths = (shown.chars().count(), expected.chars().count());
                    assert!(
                        lengths.0.abs_diff(lengths.1) <= 1,
                        "{rates:?}: {}",
                        r.record_id
                    );
                } else {
                    assert_eq!(shown, expected, "{rates:?}: {}", r.record_id);
                }
            }
        }
        if rotation {
            assert!(rows.iter().any(|r| words(&r.person.full_name()).len() >= 3));
        }
    }
}
