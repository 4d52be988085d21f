//! The engine parses names with `khop_vn::name::NameParser`, which works a word at a time; it must
//! give exactly what `parse_name` and `name_key` give. Checked here on the generator's names, with
//! every corruption it makes (typos, no accents, NFD, legacy encodings, reordering, Đ/Ð, i/y, tone
//! style, case, spacing, surname typos, rotations) at five times the rates of [`HARD_TOML`].

use arrow::array::{Array, AsArray};
use khop_datagen::{Class, DatagenConfig, Dataset, HARD_TOML, Source, Tally};
use khop_vn::name::{KeyedName, NameParser};

#[test]
fn the_name_parser_agrees_with_parse_name_on_generated_names() {
    let mut config = DatagenConfig::from_toml(HARD_TOML).unwrap();
    for source in Source::ALL {
        for class in Class::ALL {
            if class.population_only() {
                continue;
            }
            let rate = (config.rates(source).get(class) * 5.0).min(0.5);
            let path = format!("{}.{}", source.name(), class.name());
            config.set_rate(&path, rate).unwrap();
        }
    }
    let dataset = Dataset::new(11, 40_000, 10_000, config).unwrap();
    let mut parser = NameParser::default();
    let mut checked = 0;
    for source in Source::ALL {
        let (batch, _) = dataset
            .batch(source, 0..dataset.records(source), &mut Tally::default())
            .unwrap();
        let names = batch
            .column_by_name("full_name")
            .unwrap()
            .as_string::<i32>();
        for i in 0..names.len() {
            let raw = if names.is_null(i) {
                ""
            } else {
                names.value(i).trim()
            };
            assert_eq!(
                parser.parse(raw),
                &KeyedName::parse(raw),
                "record {i} of {source:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 50_000);
}
