//! The corruptions of real exports that the defaults leave off, checked on generated records against
//! the people behind them: each class at rate 1 (duplicates at a share), every other class off.

use arrow::array::{Array, AsArray};
use khop_datagen::person::Person;
use khop_datagen::records::record_id;
use khop_datagen::{Class, DatagenConfig, Dataset, Source, Tally};
use khop_vn::date::{DateRules, PartialDate, parse_date_with};
use khop_vn::id::{IdNumber, parse_id, same_pin_prefix};

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
    index: u64,
    record_id: String,
    person_id: u64,
    person: Person,
    name: String,
    dob: String,
    pin: Option<String>,
    cmnd: Option<String>,
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
                index: i as u64,
                record_id: text("record_id", i).unwrap(),
                person_id,
                person: dataset.people.get(person_id),
                name: text("full_name", i).unwrap(),
                dob: text("date_of_birth", i).unwrap(),
                pin: text("pin", i),
                cmnd: text("cmnd", i),
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

#[test]
fn duplicates_are_second_records_under_a_new_pin_or_a_cmnd_only() {
    let (rows, tally) = rows(
        &[
            ("population.duplicate_new_pin", 0.2),
            ("population.duplicate_cmnd_only", 0.2),
        ],
        Source::Population,
    );
    for class in [Class::DuplicateNewPin, Class::DuplicateCmndOnly] {
        let share = tally.applied[class as usize] as f64 / rows.len() as f64;
        assert!((0.18..0.22).contains(&share), "{class}: {share}");
        assert_eq!(tally.applicable[class as usize], rows.len() as u64);
    }
    // A record registered again is retyped: one slip in the name in half of them, the birth day a
    // few days off in a third.
    let new_pin: Vec<&Row> = rows
        .iter()
        .filter(|r| r.classes == ["duplicate_new_pin"])
        .collect();
    let retyped = new_pin
        .iter()
        .filter(|r| r.name != r.person.full_name())
        .count() as f64;
    let redated = new_pin
        .iter()
        .filter(|r| {
            let p = &r.person;
            r.dob
                != format!(
                    "{:04}-{:02}-{:02}",
                    p.birth_year, p.birth_month, p.birth_day
                )
        })
        .count() as f64;
    let n = new_pin.len() as f64;
    assert!((0.45..0.55).contains(&(retyped / n)), "{retyped} of {n}");
    assert!((0.28..0.38).contains(&(redated / n)), "{redated} of {n}");
    for r in &rows {
        let own = r.person_id == r.index;
        match r.classes.as_slice() {
            [] => assert!(own, "{}", r.record_id),
            [class] => {
                assert!(!own, "{}", r.record_id);
                assert_ne!(r.record_id, record_id(Source::Population, r.person_id));
                // The person's own record is not a duplicate.
                let first = &rows[r.person_id as usize];
                assert!(first.classes.is_empty() && first.person_id == r.person_id);
                let (pin, truth) = (r.pin.as_deref(), r.person.pin.as_str());
                match class.as_str() {
                    "duplicate_new_pin" => {
                        let pin = pin.unwrap();
                        assert!(matches!(parse_id(pin), IdNumber::Pin(_)), "{}", r.record_id);
                        assert_ne!(pin, truth, "{}", r.record_id);
                        assert!(same_pin_prefix(pin, truth), "{}", r.record_id);
                        assert_eq!(r.cmnd, r.person.cmnd);
                    }
                    "duplicate_cmnd_only" => {
                        assert_eq!(pin, None, "{}", r.record_id);
                        assert!(r.cmnd.is_some(), "{}", r.record_id);
                        assert_eq!(r.cmnd, r.person.cmnd);
                    }
                    other => panic!("{other}"),
                }
            }
            more => panic!("{}: {more:?}", r.record_id),
        }
    }
}
