use super::*;
use crate::scan::text_batch;
use khop_vn::Sex;
use khop_vn::id::format_pin;

/// A deterministic stream of numbers for synthetic values (no real person's data).
pub(super) struct Draw(u64);

impl Draw {
    pub(super) fn new(seed: u64) -> Draw {
        Draw(seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1))
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    pub(super) fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

const SURNAMES: &[&str] = &[
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương",
];
const MIDDLES: &[&str] = &["Văn", "Thị", "Minh", "Hữu", "Đức", "Thanh", "Ngọc", "Quốc"];
const GIVENS: &[&str] = &[
    "An", "Bình", "Châu", "Dũng", "Hà", "Hùng", "Lan", "Linh", "Mai", "Nam", "Phong", "Quân",
    "Sơn", "Thảo", "Trang", "Tuấn", "Yến", "Khoa", "Nhung", "Vinh",
];
const PROVINCES: &[&str] = &[
    "Hà Nội",
    "Tỉnh Bắc Giang",
    "Thành phố Hồ Chí Minh",
    "TP. Đà Nẵng",
    "Tỉnh Nghệ An",
    "Cần Thơ",
    "Tỉnh Thanh Hóa",
];
/// PIN province codes (the first three digits).
const PIN_CODES: &[u16] = &[1, 2, 4, 6, 8, 10, 11, 12, 14, 15, 17, 79];

/// Synthetic values of one kind for record `i`.
pub(super) fn value(kind: &str, i: usize, d: &mut Draw) -> String {
    let year = 1950 + d.below(55) as i32;
    match kind {
        "name" => format!(
            "{} {} {}",
            d.pick(SURNAMES),
            d.pick(MIDDLES),
            d.pick(GIVENS)
        ),
        "surname" => d.pick(SURNAMES).to_owned(),
        "given" => d.pick(GIVENS).to_owned(),
        "english_given" => d
            .pick(&[
                "michael", "sarah", "joshua", "emily", "liam", "chloe", "jack",
            ])
            .to_owned(),
        "english_surname" => d
            .pick(&["smith", "nguyen", "brown", "wilson", "taylor", "martin"])
            .to_owned(),
        "dmy" => format!("{:02}/{:02}/{year}", 1 + d.below(28), 1 + d.below(12)),
        "iso" => format!("{year}-{:02}-{:02}", 1 + d.below(12), 1 + d.below(28)),
        "ymd" => format!("{year}{:02}{:02}", 1 + d.below(12), 1 + d.below(28)),
        "pin" => format_pin(
            PIN_CODES[d.below(PIN_CODES.len() as u64) as usize],
            if d.below(2) == 0 {
                Sex::Male
            } else {
                Sex::Female
            },
            year,
            i as u32 * 7 + 13,
        ),
        "cmnd" => format!("0{:02}{:06}", 1 + d.below(30), i),
        // A tax code: 10 digits (a province's two, seven of the taxpayer, a check digit).
        "tax_code" => format!("{:010}", 8_000_000_000 + i as u64 * 97),
        "tax_code_0" => format!("01{:08}", i as u64 * 31 + 7),
        // The same person's number in every file generated (the `i`th records are one person).
        "phone" => format!("09{:08}", i as u64 * 7_919 % 100_000_000),
        "phone_intl" => format!(
            "+84 9{} {:03} {:04}",
            d.below(10),
            d.below(1000),
            i % 10_000
        ),
        "sex" => d.pick(&["Nam", "Nữ"]).to_owned(),
        "sex_mf" => d.pick(&["M", "F"]).to_owned(),
        "sex_01" => d.pick(&["1", "0"]).to_owned(),
        "postcode" => format!("{}", 2000 + i % 150),
        "state" => d
            .pick(&["nsw", "vic", "qld", "wa", "sa", "tas", "act", "nt"])
            .to_owned(),
        "province" => d.pick(PROVINCES).to_owned(),
        "agency" => format!(
            "{} {}",
            d.pick(&[
                "Sở Nội vụ",
                "Sở Tài chính",
                "Sở Y tế",
                "UBND",
                "Sở Giáo dục và Đào tạo",
                "Công an",
                "Sở Tư pháp",
                "Kho bạc Nhà nước",
            ]),
            d.pick(PROVINCES)
        ),
        "record_id" => format!("CB{i:09}"),
        "amount" => format!("{}", 30_000 + d.below(20_000)),
        "commune" => format!(
            "Xã {} {}",
            d.pick(&["Tân", "Phú", "Long", "An", "Bình", "Thuận"]),
            d.pick(&["Hòa", "Lợi", "Thành", "Định", "Phong", "Hưng", "Mỹ"])
        ),
        "note" => format!(
            "{} {} {}",
            d.pick(&["đã", "chưa", "cần"]),
            d.pick(&["kiểm tra", "bổ sung", "xác minh"]),
            d.pick(&["hồ sơ", "giấy tờ", "địa chỉ"])
        ),
        other => panic!("no generator for {other}"),
    }
}

/// A sample of `rows` records with one column per `(name, kind)`.
pub(super) fn sample_of(columns: &[(&str, &str)], rows: usize, seed: u64) -> Scanned {
    let mut d = Draw::new(seed);
    let values: Vec<Vec<String>> = columns
        .iter()
        .map(|(_, kind)| (0..rows).map(|i| value(kind, i, &mut d)).collect())
        .collect();
    let names: Vec<String> = columns.iter().map(|(n, _)| (*n).to_owned()).collect();
    Scanned {
        batch: text_batch(&names, |c| {
            let i = names.iter().position(|n| n == c).unwrap();
            values[i].iter().map(|v| Some(v.as_str())).collect()
        }),
        rows: (0..rows as u64).collect(),
        bad: Vec::new(),
    }
}

/// Every column of a sample profiled as [`profile`] profiles them, with no birth years.
pub(super) fn profile_sample(sample: &Scanned) -> Vec<(ColumnProfile, Facts)> {
    let reference = Dates {
        reference: Some("2026-12-07".into()),
        ..Dates::default()
    };
    let context = Context {
        sample,
        reference: &reference,
        birth: &[],
    };
    sample
        .batch
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let (order, counts) = first_pass(sample, f.name(), &reference);
            second_pass(&context, f.name(), order, counts, Hints::of(f.name()))
        })
        .collect()
}

#[test]
fn each_kind_of_column_is_told_from_its_values_and_name() {
    // (column name, generator, expected kind)
    let cases: &[(&str, &str, Kind)] = &[
        ("ho_ten", "name", Kind::Name),
        ("col_a", "name", Kind::Name),
        ("ho", "surname", Kind::NamePart),
        ("col_b", "surname", Kind::NamePart),
        ("ten", "given", Kind::NamePart),
        ("given_name", "english_given", Kind::NamePart),
        ("surname", "english_surname", Kind::NamePart),
        // A given name without a name to say so is text.
        ("col_c", "given", Kind::Text),
        ("col_d", "dmy", Kind::Date),
        ("col_e", "iso", Kind::Date),
        ("col_f", "ymd", Kind::Date),
        // Five-digit numbers read as Excel serial dates, but look like none.
        ("col_g", "amount", Kind::Identifier),
        ("so_dinh_danh", "pin", Kind::VnId),
        ("col_h", "cmnd", Kind::VnId),
        // 10-digit tax codes are no PINs that lost two zeros, whatever their first digit.
        ("ma_so_thue", "tax_code", Kind::Identifier),
        ("ma_so_thue", "tax_code_0", Kind::Identifier),
        ("col_i", "phone", Kind::Phone),
        ("col_j", "phone_intl", Kind::Phone),
        ("col_k", "sex", Kind::Sex),
        ("col_l", "sex_mf", Kind::Sex),
        ("gioi_tinh", "sex_01", Kind::Sex),
        // 1 and 0 in a column not named so are no sex.
        ("active", "sex_01", Kind::Text),
        ("noi_sinh", "province", Kind::Province),
        // An agency's name ends with a province, written many ways per province.
        ("co_quan", "agency", Kind::Text),
        ("record", "record_id", Kind::Identifier),
        ("xa", "commune", Kind::Text),
        ("ghi_chu", "note", Kind::Text),
    ];
    for (seed, &(name, generator, expected)) in cases.iter().enumerate() {
        let sample = sample_of(&[(name, generator)], 500, seed as u64);
        let (column, _) = &profile_sample(&sample)[0];
        assert_eq!(
            column.kind, expected,
            "{name} of {generator}: {} ({:?})",
            column.why, column.readers
        );
        assert_eq!(column.standardiser, expected.standardiser(), "{name}");
    }
}

#[test]
fn an_empty_column_is_empty_and_blank_values_count_as_empty() {
    let sample = Scanned {
        batch: text_batch(&["a".to_owned(), "b".to_owned()], |c| {
            if c == "a" {
                vec![None, Some("  "), None, Some("")]
            } else {
                vec![Some("x"), None, Some(" "), Some("y")]
            }
        }),
        rows: (0..4).collect(),
        bad: Vec::new(),
    };
    let columns = profile_sample(&sample);
    assert_eq!(columns[0].0.kind, Kind::Empty);
    assert_eq!(columns[0].0.empty, 4);
    assert_eq!(columns[0].0.null_rate, 1.0);
    assert_eq!(columns[1].0.empty, 2);
    assert_eq!(columns[1].0.null_rate, 0.5);
    assert_eq!(columns[1].0.distinct, 2);
}

#[test]
fn unread_values_of_the_kind_are_counted_by_shape() {
    // 95 dates, 5 of which no reader takes: 3 that are no day of the calendar (`01/13/1985` would
    // be: 13 January, typed month first) and 2 typed as words.
    let mut d = Draw::new(3);
    let mut values: Vec<String> = (0..95).map(|i| value("dmy", i, &mut d)).collect();
    values.extend(["15/13/1990", "20/13/2001", "31/02/1990"].map(str::to_owned));
    values.extend(["không rõ", "chưa có"].map(str::to_owned));
    let sample = Scanned {
        batch: text_batch(&["ngay_sinh".to_owned()], |_| {
            values.iter().map(|v| Some(v.as_str())).collect()
        }),
        rows: (0..100).collect(),
        bad: Vec::new(),
    };
    let (column, _) = &profile_sample(&sample)[0];
    assert_eq!(column.kind, Kind::Date);
    let unread: Vec<(&str, u64)> = column
        .unread_shapes
        .iter()
        .map(|s| (s.shape.as_str(), s.count))
        .collect();
    assert_eq!(column.unread, 5, "{unread:?}");
    assert_eq!(unread, [("99/99/9999", 3), ("aaaa aa", 1), ("aaaaa aa", 1)]);
}

#[test]
fn the_record_id_is_a_complete_and_unique_column() {
    // (columns, expected record id)
    type Case = (
        &'static [(&'static str, &'static str)],
        Option<&'static str>,
    );
    let cases: &[Case] = &[
        (&[("ho_ten", "name"), ("ma", "record_id")], Some("ma")),
        // PINs are unique here too, but an identifier comes first.
        (&[("pin", "pin"), ("ma", "record_id")], Some("ma")),
        (&[("pin", "pin")], Some("pin")),
        // Names, dates and sex codes repeat.
        (&[("ho_ten", "name"), ("gioi_tinh", "sex")], None),
    ];
    for (columns, expected) in cases {
        let sample = sample_of(columns, 300, 1);
        let profiled = profile_sample(&sample);
        let (columns, facts): (Vec<_>, Vec<_>) = profiled.into_iter().unzip();
        assert_eq!(
            record_id(&columns, &facts, 300).as_deref(),
            *expected,
            "{columns:?}"
        );
    }
}
