use super::*;
use crate::scan::text_batch;

fn readers() -> Readers {
    Readers {
        dates: DateRules::default(),
        id_repair: true,
    }
}

/// The counts of one column holding `groups` (value, copies) in order, then `blank` empty values.
fn counts_of(groups: &[(&str, usize)], blank: usize) -> Counts {
    let mut values: Vec<Option<&str>> = groups
        .iter()
        .flat_map(|&(v, n)| std::iter::repeat_n(Some(v), n))
        .collect();
    values.extend(std::iter::repeat_n(None, blank));
    let batch = text_batch(&["c".to_owned()], |_| values.clone());
    Counts::of(
        &crate::scan::text(&batch, "c"),
        batch.num_rows(),
        &readers(),
    )
}

#[test]
fn a_value_is_shown_only_if_frequent() {
    let cases: &[(u64, u64)] = &[
        (0, 10),
        (100, 10),
        (1_000, 10),
        (1_001, 11),
        (2_000, 20),
        (100_000, 1_000),
    ];
    for &(rows, threshold) in cases {
        assert_eq!(shown_threshold(rows), threshold, "{rows} rows");
    }
}

#[test]
fn rare_values_are_counted_never_shown() {
    // (values in a column, values shown in its top list, values never in any report)
    type Case = (
        &'static [(&'static str, usize)],
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: &[Case] = &[
        // 2,000 rows: a value needs 20 records.
        (
            &[
                ("Nam", 1_000),
                ("Nữ", 926),
                ("1900-01-01", 25),
                ("Trần Văn Rare", 19),
                ("Lê Thị Once", 1),
                ("079085000123", 9),
                ("Phạm Minh Ten", 10),
                ("nobody", 10),
            ],
            &["Nam", "Nữ", "1900-01-01"],
            &[
                "Trần Văn Rare",
                "Lê Thị Once",
                "079085000123",
                "Phạm Minh Ten",
                "nobody",
            ],
        ),
        // 100 rows: 10 records is enough; 9 is not.
        (
            &[("Hà Nội", 10), ("Huế", 9), ("Vinh", 81)],
            &["Vinh", "Hà Nội"],
            &["Huế"],
        ),
    ];
    for (groups, shown, hidden) in cases {
        let counts = counts_of(groups, 0);
        let rows: usize = groups.iter().map(|g| g.1).sum();
        let top = counts.top(10, shown_threshold(rows as u64));
        let listed: Vec<&str> = top.iter().filter_map(|t| t.value.as_deref()).collect();
        assert_eq!(&listed, shown, "{groups:?}");
        // Every value is counted, shown or not, commonest first.
        let mut expected: Vec<u64> = groups.iter().map(|g| g.1 as u64).collect();
        expected.sort_by(|a, b| b.cmp(a));
        let got: Vec<u64> = top.iter().map(|t| t.count).collect();
        assert_eq!(got, expected[..got.len()], "{groups:?}");
        // Nothing else a report holds names a rare value: shapes, readers, the kind's reasons.
        let (shapes, _) = counts.shapes(10);
        let evidence = counts.evidence(Hints::default(), true);
        let report = format!(
            "{} {} {}",
            serde_json::to_string(&top).unwrap(),
            serde_json::to_string(&shapes).unwrap(),
            decide(&evidence).1
        );
        for value in *hidden {
            assert!(!report.contains(value), "{value} in {report}");
        }
    }
}

#[test]
fn a_rare_values_text_is_not_even_kept() {
    let counts = counts_of(&[("Đỗ Văn Kept", 10), ("Đỗ Văn Dropped", 9)], 0);
    let kept: Vec<&str> = counts
        .values
        .values()
        .filter_map(|s| s.text.as_deref())
        .collect();
    assert_eq!(kept, ["Đỗ Văn Kept"]);
}

#[test]
fn shapes_and_distinct_values_are_counted() {
    let counts = counts_of(
        &[
            ("15/06/1990", 3),
            ("01/02/1985", 2),
            ("1990", 4),
            ("5/6/1990", 1),
        ],
        10,
    );
    assert_eq!(counts.non_empty(), 10);
    assert_eq!(counts.distinct(), 4);
    let (shapes, rest) = counts.shapes(2);
    let shapes: Vec<(&str, u64, f64)> = shapes
        .iter()
        .map(|s| (s.shape.as_str(), s.count, s.share))
        .collect();
    assert_eq!(shapes, [("99/99/9999", 5, 0.5), ("9999", 4, 0.4)]);
    assert_eq!(rest, 1);
}

#[test]
fn each_reader_reads_its_own_values() {
    // (value, the standardisers whose readers read it)
    let cases: &[(&str, &[&str])] = &[
        ("Nguyễn Văn An", &["vn_name"]),
        ("15/06/1990", &["date", "id"]),
        ("079085000123", &["vn_id", "id"]),
        ("031245678", &["vn_id", "phone", "id"]),
        ("0912345678", &["phone", "id"]),
        // The identifier reader reads any word of ASCII letters and digits.
        ("Nam", &["vn_name", "sex", "id"]),
        ("1", &["sex", "id"]),
        ("Tỉnh Bắc Giang", &["vn_name", "vn_province"]),
        ("CB000000042", &["phone", "id"]),
        ("???", &[]),
    ];
    for &(value, expected) in cases {
        let counts = counts_of(&[(value, 1)], 0);
        let read: Vec<&str> = counts
            .readers(true)
            .iter()
            .filter(|r| r.read == 1)
            .map(|r| standardiser_name(r.standardiser))
            .collect();
        assert_eq!(read, expected, "{value}");
    }
}

#[test]
fn a_columns_name_hints_at_its_kind() {
    // (column name, sex, date, birth, name, surname, given)
    let cases: &[(&str, [bool; 6])] = &[
        ("gioi_tinh", [true, false, false, false, false, false]),
        ("Giới tính", [true, false, false, false, false, false]),
        ("GENDER", [true, false, false, false, false, false]),
        ("ngay_sinh", [false, true, true, false, false, false]),
        ("date_of_birth", [false, true, true, false, false, false]),
        ("noi_sinh", [false, false, true, false, false, false]),
        ("ngay_vao_nganh", [false, true, false, false, false, false]),
        ("ho_ten", [false, false, false, true, false, false]),
        ("Họ", [false, false, false, true, true, false]),
        ("Tên", [false, false, false, true, false, true]),
        ("surname", [false, false, false, true, true, false]),
        ("given_name", [false, false, false, true, false, true]),
        ("first_name", [false, false, false, true, false, true]),
        ("hometown", [false, false, false, false, false, false]),
        ("so_dinh_danh", [false, false, false, false, false, false]),
    ];
    for &(column, [sex, date, birth, name, surname, given]) in cases {
        let expected = Hints {
            sex,
            date,
            birth,
            name,
            surname,
            given,
        };
        assert_eq!(Hints::of(column), expected, "{column}");
    }
}

#[test]
fn text_compares_by_its_style() {
    let words: Vec<String> = (0..60).map(|i| format!("town{}", "x".repeat(i))).collect();
    let phrases: Vec<String> = (0..60).map(|i| format!("số {i} phố Huế")).collect();
    let numbers: Vec<String> = (0..60).map(|i| format!("{}", 2000 + i)).collect();
    fn as_groups(v: &[String]) -> Vec<(&str, usize)> {
        v.iter().map(|s| (s.as_str(), 1)).collect()
    }
    // (values, kind, style)
    type Case<'a> = (Vec<(&'a str, usize)>, Kind, TextStyle);
    let cases: Vec<Case> = vec![
        (
            vec![("nsw", 5), ("vic", 5)],
            Kind::Text,
            TextStyle::Category,
        ),
        (
            vec![("nsw", 5), ("vic", 5)],
            Kind::NamePart,
            TextStyle::NamePart,
        ),
        (as_groups(&numbers), Kind::Text, TextStyle::Number),
        (as_groups(&words), Kind::Text, TextStyle::Words),
        (as_groups(&phrases), Kind::Text, TextStyle::Free),
    ];
    for (groups, kind, style) in cases {
        let evidence = counts_of(&groups, 0).evidence(Hints::default(), true);
        assert_eq!(evidence.text_style(kind), style, "{groups:?}");
    }
}
