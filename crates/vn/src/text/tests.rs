use super::*;

const LEGACY_CSV: &str = include_str!("../../data/legacy_encodings.csv");
const TONE_CSV: &str = include_str!("../../data/tone_placement.csv");

/// Genuine Unicode names (and words) that must never be taken for mojibake.
const GENUINE: &[&str] = &[
    "Đỗ",
    "Ngô",
    "Lê Thị Hương",
    "Nguyễn Ngọc Ánh",
    "Nguyễn Văn Hùng",
    "Trần Thị Thuỷ",
    "Trần Thị Thủy",
    "Phạm Đức Mạnh",
    "Huỳnh Quốc Bảo",
    "Võ Thị Mỹ Duyên",
    "Hoàng Minh Tuấn",
    "Ngô Tú",
    "Lê Hà",
    "Lý Tú",
    "Tô Hoài",
    "Hoà",
    "Hòa",
    "Thúy",
    "Thuý",
    "Thùy",
    "Ánh",
    "Lê Duy Hòa",
    "Hà Vi",
    "Tôn Nữ Thị Ý",
    "Bùi Thị Xuân",
    "Đặng Văn Lâm",
    "Dương Quá",
    "Khuê",
    "Quý",
    "Nguyên",
    "Ngô Tuyên",
    "Vũ Hoàng Yến",
    "Lò Văn Pó",
    "Hồ Thị Kim Loan",
    "NGÔ TÚ",
    "LÊ VÂN",
    "Ông Ích Khiêm",
    "Niê Kdăm",
    "H'Hen Niê",
    "Ðinh Công Tráng",
    "Ðào",
];

/// Full names whose legacy forms must repair exactly (title case).
const NAMES: &[&str] = &[
    "Nguyễn Văn Hùng",
    "Trần Thị Thuỷ",
    "Trần Thị Thủy",
    "Phạm Đức Mạnh",
    "Lê Thị Hương",
    "Huỳnh Quốc Bảo",
    "Võ Thị Mỹ Duyên",
    "Bảo Thắng",
    "Độc lập - Tự do - Hạnh phúc",
    "Ngô Thị Ngọc Ánh",
    "Đỗ Thị Kiều Oanh",
    "Hoàng Thị Ngân",
    "Bùi Xuân Trường",
    "Đặng Quang Huy",
    "Vũ Thị Lụa",
    "Dương Văn Khiêm",
    "Lý Thị Lan",
    "Phan Văn Ước",
    "Mường Khương",
    "Đoàn Thị Hồng Nhung",
    "Trịnh Công Sơn",
    "Lưu Thị Thư",
    "Nguyễn Ái Quốc",
    "Ông Văn Ấn",
    "Ứng Văn Ổn",
    "Ỷ Lan",
    "Ý Nhi",
    "Âu Cơ",
    "Ê Đê",
    "Xin chào các bạn",
    "Cao Thị An",
    "Mai Thị Hoa",
    "Lê Sơn",
    "Trần Quốc Lộc",
];

fn names_nfd() -> Vec<String> {
    GENUINE.iter().map(|s| nfd(s)).collect()
}

// ---------------------------------------------------------------------------------------- tables

#[test]
fn legacy_table_is_consistent() {
    let mut seen = [
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    ];
    let mut n = 0;
    for line in LEGACY_CSV.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 7, "{line}");
        let c = f[0].chars().next().unwrap();
        assert_eq!(f[0].chars().count(), 1);
        assert_eq!(f[1], format!("U+{:04X}", c as u32), "{line}");
        assert_eq!(nfc(f[0]), f[0]);
        for (k, (moji, hex)) in [(f[4], f[5]), (f[2], f[3])].into_iter().enumerate() {
            // Bytes 0xA0..0xFF read as cp1252 are the Latin-1 characters of the same value.
            let from_hex: String = hex
                .split(' ')
                .map(|h| {
                    let b = u8::from_str_radix(h, 16).unwrap();
                    assert!(!(0x80..0xA0).contains(&b), "{line}");
                    char::from(b)
                })
                .collect();
            assert_eq!(moji, from_hex, "{line}");
            assert!(
                seen[k].insert(moji.to_owned()),
                "duplicate mojibake {moji:?}: {line}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 134);
}

#[test]
fn letters_split_and_compose() {
    use letters::{letter, with_tone};
    let cases = [
        ('ấ', 'â', 'a', 2),
        ('Ở', 'Ơ', 'O', 3),
        ('đ', 'đ', 'd', 0),
        ('Ð', 'Đ', 'D', 0),
        ('ỹ', 'y', 'y', 4),
        ('Ừ', 'Ư', 'U', 1),
        ('ạ', 'a', 'a', 5),
        ('x', 'x', 'x', 0),
    ];
    for (c, base, plain, tone) in cases {
        let l = letter(c).unwrap();
        assert_eq!((l.base, l.plain, l.tone), (base, plain, tone), "{c}");
        if c != 'Ð' {
            assert_eq!(with_tone(base, tone), Some(c));
        }
    }
    assert_eq!(letter('ç'), None);
    assert_eq!(with_tone('b', 2), None);
}

#[test]
fn syllable_validator() {
    let valid = [
        "nguyễn",
        "Nguyễn",
        "NGUYỄN",
        "thuỷ",
        "thủy",
        "quý",
        "quí",
        "quỳnh",
        "khuya",
        "giếng",
        "gì",
        "nghĩa",
        "người",
        "khuỷu",
        "ngoẹo",
        "kiều",
        "ông",
        "ý",
        "quốc",
        "hoà",
        "hòa",
        "oanh",
        "phúc",
        "Đỗ",
        "Ðào",
        "yến",
        "uyên",
        "khuê",
        "thuở",
        "ly",
        "ky",
        "kỳ",
        "hoài",
        "khuỷu",
        "bìa",
        "lụa",
        "giữ",
        "giường",
        "quyển",
        "quả",
        "huỳnh",
        "hoàn",
        "thuyết",
        "tài",
        "gía",
    ];
    let invalid = [
        "",
        "nguYễn",
        "ka",
        "ci",
        "ghe\u{301}",
        "nghu",
        "gê",
        "àc",
        "phùc",
        "müller",
        "josé",
        "trÇn",
        "thÞ",
        "leâ",
        "b¹n",
        "hoaø",
        "cuy",
        "aù",
        "hòan",
        "tàu\u{300}",
        "qúy",
        "lúa\u{301}",
        "nguỹen",
        "quoác",
        "loọc",
        "xoong",
        "Aỉ",
        "kuy",
        "fan",
        "zô",
        "hoàa",
        "tiếngg",
        "ab1",
    ];
    for w in valid {
        assert!(is_syllable(w), "{w} should be a syllable");
    }
    for w in invalid {
        assert!(!is_syllable(w), "{w} should not be a syllable");
    }
}

// --------------------------------------------------------------------------------- normal forms

#[test]
fn nfc_nfd() {
    let s = "Nguyễn";
    assert_eq!(s.chars().count(), 6);
    assert_eq!(nfd(s).chars().count(), 8);
    assert_eq!(nfc(&nfd(s)), s);
    assert_eq!(nfc("abc"), "abc");
    assert_eq!(nfd("abc"), "abc");
    // cp1258 style: precomposed ê + combining tilde.
    assert_eq!(nfc("\u{EA}\u{303}"), "ễ");
}

#[test]
fn fold() {
    let cases = [
        ("Nguyễn Đức Thuỷ", "Nguyen Duc Thuy"),
        ("đặng ĐẶNG", "dang DANG"),
        ("Ðinh ðinh", "Dinh dinh"),
        ("Hùng Hưng Hũng", "Hung Hung Hung"),
        ("Thủy Thùy Thúy", "Thuy Thuy Thuy"),
        ("Lê Thị Hương", "Le Thi Huong"),
        ("plain ASCII 123", "plain ASCII 123"),
        ("François", "Francois"),
        ("", ""),
    ];
    for (input, want) in cases {
        assert_eq!(fold_diacritics(input), want, "{input}");
        assert_eq!(fold_diacritics(&nfd(input)), want, "NFD {input}");
    }
}

// ---------------------------------------------------------------------------------- mojibake

#[test]
fn tcvn3_mojibake_examples() {
    // NOTES §4.2 table (SHY = U+00AD soft hyphen, TCVN3 ư).
    let cases = [
        ("Nguyễn Văn Hùng", "NguyÔn V¨n Hïng"),
        ("Trần Thị Thuỷ", "TrÇn ThÞ Thuû"),
        ("Phạm Đức Mạnh", "Ph¹m §øc M¹nh"),
        ("Lê Thị Hương", "Lª ThÞ H\u{AD}¬ng"),
        ("Huỳnh Quốc Bảo", "Huúnh Quèc B¶o"),
        ("Võ Thị Mỹ Duyên", "Vâ ThÞ Mü Duyªn"),
        ("Bảo Thắng", "B¶o Th¾ng"),
        ("Độc lập - Tự do - Hạnh phúc", "§éc lËp - Tù do - H¹nh phóc"),
        ("Mường Khương", "M\u{AD}êng Kh\u{AD}¬ng"),
        ("Xin chào các bạn", "Xin chµo c¸c b¹n"),
        ("Ánh Ấn", "A¸nh ¢Ên"),
    ];
    for (uni, moji) in cases {
        assert_eq!(to_tcvn3_mojibake(uni), moji, "{uni}");
        assert_eq!(to_tcvn3_mojibake(&nfd(uni)), moji, "NFD {uni}");
        assert_eq!(detect_mojibake(moji), Some(Legacy::Tcvn3), "{moji}");
        assert_eq!(repair_mojibake(moji), uni, "{moji}");
    }
}

#[test]
fn vni_mojibake_examples() {
    let cases = [
        ("Xin chào các bạn", "Xin chaøo caùc baïn"),
        ("Nguyễn Văn Hùng", "Nguyeãn Vaên Huøng"),
        ("Trần Thị Thuỷ", "Traàn Thò Thuyû"),
        ("Đỗ Mỹ Linh", "Ñoã Myõ Linh"),
        ("Lê Thị Hương", "Leâ Thò Höông"),
        ("NGUYỄN ĐỨC", "NGUYEÃN ÑÖÙC"),
    ];
    for (uni, moji) in cases {
        assert_eq!(to_vni_mojibake(uni), moji, "{uni}");
        assert_eq!(detect_mojibake(moji), Some(Legacy::Vni), "{moji}");
        assert_eq!(repair_mojibake(moji), uni, "{moji}");
    }
}

#[test]
fn every_letter_round_trips() {
    for line in LEGACY_CSV.lines().skip(1) {
        let letter = line.split(',').next().unwrap();
        for enc in [Legacy::Tcvn3, Legacy::Vni] {
            // Known encoding: every letter, both cases (the table keeps TCVN3 case too).
            assert_eq!(
                decode_mojibake(&to_mojibake(letter, enc), enc),
                letter,
                "{enc:?} {letter}"
            );
            // Detected: the letter inside a name that identifies the encoding.
            for x in [letter.to_lowercase(), letter.to_owned()] {
                let phrase = format!("Nguyễn Thị Hương {x}");
                assert_eq!(
                    repair_mojibake(&to_mojibake(&phrase, enc)),
                    phrase,
                    "{enc:?} {x}"
                );
            }
        }
    }
}

#[test]
fn names_round_trip() {
    for name in NAMES {
        for enc in [Legacy::Tcvn3, Legacy::Vni] {
            let moji = to_mojibake(name, enc);
            assert_eq!(detect_mojibake(&moji), Some(enc), "{enc:?} {name}: {moji}");
            assert_eq!(repair_mojibake(&moji), *name, "{enc:?} {name}: {moji}");
            let upper = name.to_uppercase();
            assert_eq!(
                repair_mojibake(&to_mojibake(&upper, enc)),
                upper,
                "{enc:?} {upper}"
            );
            assert_eq!(
                repair_mojibake(&to_mojibake(&nfd(name), enc)),
                *name,
                "NFD {enc:?} {name}"
            );
        }
    }
}

#[test]
fn genuine_text_is_not_mojibake() {
    for name in GENUINE.iter().map(|s| s.to_string()).chain(names_nfd()) {
        assert_eq!(detect_mojibake(&name), None, "{name}");
        assert_eq!(repair_mojibake(&name), nfc(&name), "{name}");
    }
    for s in [
        "",
        "Nguyen Van Hung",
        "ABC 123, ngõ 5",
        "Müller",
        "Peña",
        "José",
        "François",
        "Björk",
        "Søren",
        "Zoë",
        "Noël",
        "Ñandú",
        "25 °C",
        "« Hà »",
    ] {
        assert_eq!(detect_mojibake(s), None, "{s}");
        assert_eq!(repair_mojibake(s), s, "{s}");
    }
}

#[test]
fn tcvn3_caps_font() {
    // Real TCVN3 capitals typed with a caps font reuse the lowercase codes.
    assert_eq!(repair_mojibake("NGUYÔN V¡N HïNG"), "NGUYỄN VĂN HÙNG");
    assert_eq!(repair_mojibake("TRÇN THÞ THUû"), "TRẦN THỊ THUỶ");
    // One capital in a caps font is indistinguishable from the lowercase letter.
    assert_eq!(repair_mojibake("µnh ThÞ"), "ành Thị");
}

#[test]
fn mojibake_survives_nfd() {
    // Mojibake that went through an NFD system still repairs.
    let moji = nfd("NguyÔn V¨n Hïng");
    assert_ne!(moji, "NguyÔn V¨n Hïng");
    assert_eq!(repair_mojibake(&moji), "Nguyễn Văn Hùng");
}

/// Test-only: puts `tone` on the right vowel of `initial + rhyme` (new style).
fn make_syllable(initial: &str, rhyme: &str, tone: u8) -> Option<String> {
    let chars: Vec<char> = rhyme.chars().collect();
    let vowel = |c: char| "aăâeêioôơuưy".contains(c);
    let vowels: Vec<usize> = (0..chars.len()).filter(|&i| vowel(chars[i])).collect();
    let marked = vowels
        .iter()
        .rev()
        .copied()
        .find(|&i| "ăâêôơư".contains(chars[i]));
    let closed = chars.last().is_some_and(|&c| !vowel(c));
    let pos = match (marked, vowels.len()) {
        _ if vowels.is_empty() => return None,
        (Some(i), _) => i,
        (None, _) if closed || ["oa", "oe", "uy"].contains(&rhyme) => *vowels.last()?,
        (None, 1) => vowels[0],
        (None, 2) => vowels[0],
        (None, _) => vowels[1],
    };
    let mut out: String = initial.to_owned();
    for (i, &c) in chars.iter().enumerate() {
        out.push(if i == pos {
            letters::with_tone(c, tone)?
        } else {
            c
        });
    }
    is_syllable(&out).then_some(out)
}

fn all_syllables() -> Vec<String> {
    let initials = [
        "", "b", "c", "ch", "d", "đ", "g", "gh", "gi", "h", "k", "kh", "l", "m", "n", "ng", "ngh",
        "nh", "ph", "qu", "r", "s", "t", "th", "tr", "v", "x",
    ];
    let rhymes: Vec<&str> = "a e ê i o ô ơ u ư y ai ao au ay âu ây eo êu ia iu oi ôi ơi ua ui ưa ưi ưu iêu yêu uôi ươi ươu oa oai oay oe oeo uê uy uya uyu uơ uây am an ang anh ac ach ap at ăm ăn ăng ăc ăp ăt âm ân âng âc âp ât em en eng ec ep et êm ên ênh êch êp êt im in inh ich ip it om on ong oc op ot ôm ôn ông ôc ôp ôt ơm ơn ơp ơt um un ung uc up ut ưng ưc ưt iêm iên iêng iêc iêp iêt yêm yên yêt uôm uôn uông uôc uôt ươm ươn ương ươc ươp ươt oan oang oanh oac oach oat oăn oăng oăc oăt oen oet uân uâng uât uynh uych uyt uyên uyêt"
        .split(' ')
        .collect();
    let mut out = Vec::new();
    for ini in initials {
        for r in &rhymes {
            for tone in 0..6 {
                out.extend(make_syllable(ini, r, tone));
            }
        }
    }
    out
}

#[test]
fn syllables_round_trip_with_documented_exceptions() {
    let words = all_syllables();
    assert!(words.len() > 5000, "{}", words.len());
    for enc in [Legacy::Tcvn3, Legacy::Vni] {
        let mut exceptions = 0;
        for word in &words {
            for w in [word.clone(), title(word), word.to_uppercase()] {
                // In a name, context always repairs it.
                let phrase = format!("Nguyễn Thị Hương {w}");
                let moji_phrase = to_mojibake(&phrase, enc);
                assert_eq!(repair_mojibake(&moji_phrase), phrase, "{enc:?} {w}");
                let moji = to_mojibake(&w, enc);
                let back = repair_mojibake(&moji);
                if back == w {
                    continue;
                }
                exceptions += 1;
                // Allowed only when the legacy form is ambiguous in isolation: it is genuine text
                // already (and then kept as it is) or it reads validly in the other encoding.
                let other = if enc == Legacy::Tcvn3 {
                    Legacy::Vni
                } else {
                    Legacy::Tcvn3
                };
                let kept = (is_syllable(&moji) || moji.chars().count() == 1) && back == moji;
                let other_reading = is_syllable(&decode_mojibake(&moji, other))
                    && detect_mojibake(&moji) == Some(other);
                assert!(kept || other_reading, "{enc:?} {w} -> {moji} -> {back}");
            }
        }
        let total = words.len() * 3;
        eprintln!("{enc:?}: {exceptions} of {total} single-word forms are ambiguous in isolation");
        assert!(exceptions * 10 < total, "{enc:?}: {exceptions} of {total}");
    }
}

fn title(w: &str) -> String {
    let mut cs = w.chars();
    cs.next()
        .map(|f| f.to_uppercase().chain(cs).collect())
        .unwrap_or_default()
}

// -------------------------------------------------------------------------------- tone, i/y

#[test]
fn tone_style_pairs_from_table() {
    for line in TONE_CSV.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (old, new) = (f[2], f[3]);
        for prefix in ["h", "th", "kh", "x", ""] {
            let (o, n) = (format!("{prefix}{old}"), format!("{prefix}{new}"));
            assert_eq!(with_tone_style(&o, ToneStyle::New), n, "{o}");
            assert_eq!(with_tone_style(&n, ToneStyle::Old), o, "{n}");
            assert_eq!(with_tone_style(&o, ToneStyle::Old), o);
            assert_eq!(with_tone_style(&n, ToneStyle::New), n);
            assert_eq!(with_tone_style(&nfd(&o), ToneStyle::New), n, "NFD {o}");
        }
    }
}

#[test]
fn tone_style_examples() {
    let cases = [
        ("hòa", "hoà"),
        ("Thủy", "Thuỷ"),
        ("Thúy", "Thuý"),
        ("khỏe", "khoẻ"),
        ("Ủy ban", "Uỷ ban"),
        ("ỦY BAN", "UỶ BAN"),
        ("Tỉnh Hòa Bình", "Tỉnh Hoà Bình"),
        ("Luật Thủy sản", "Luật Thuỷ sản"),
        ("quý hóa", "quý hoá"),
        ("thủy thủ", "thuỷ thủ"),
        ("Nguyễn Thị Thùy Dương", "Nguyễn Thị Thuỳ Dương"),
    ];
    for (old, new) in cases {
        assert_eq!(with_tone_style(old, ToneStyle::New), new, "{old}");
        assert_eq!(with_tone_style(new, ToneStyle::Old), old, "{new}");
    }
    for same in [
        "quý", "Quỳnh", "hoàn", "toàn", "huỳnh", "thuyền", "khuya", "Khoa", "Hoàng", "bìa", "lụa",
        "ngoài", "", "abc",
    ] {
        assert_eq!(with_tone_style(same, ToneStyle::New), same, "{same}");
        assert_eq!(with_tone_style(same, ToneStyle::Old), same, "{same}");
    }
}

#[test]
fn swap_i_y_examples() {
    let cases = [
        ("Lý", "Lí"),
        ("Kỳ", "Kì"),
        ("Mỹ", "Mĩ"),
        ("Vỹ", "Vĩ"),
        ("Thy", "Thi"),
        ("Tý", "Tí"),
        ("tỷ", "tỉ"),
        ("LÝ", "LÍ"),
        ("Trần Thị Lý", "Trần Thỵ Lí"),
        ("Nguyễn Thị Thy", "Nguyễn Thỵ Thi"),
        ("Nguyễn Vỹ", "Nguyễn Vĩ"),
    ];
    for (a, b) in cases {
        assert_eq!(swap_i_y(a), b, "{a}");
        assert_eq!(swap_i_y(b), a, "{b}");
        assert_eq!(swap_i_y(&nfd(a)), b, "NFD {a}");
    }
    for same in [
        "Duy",
        "Huy",
        "Thúy",
        "Quý",
        "Quí",
        "Tài",
        "Nghi",
        "gì",
        "Y",
        "Ý",
        "Nguyễn Văn An",
        "Hải",
    ] {
        assert_eq!(swap_i_y(same), same, "{same}");
    }
}

// ------------------------------------------------------------------------------- canonical

#[test]
fn canonical_names() {
    let cases = [
        ("  NGUYỄN   Thị  THỦY ", "nguyễn thị thuỷ"),
        ("Nguyễn Thị Thuỷ", "nguyễn thị thuỷ"),
        ("TrÇn ThÞ Thuû", "trần thị thuỷ"),
        ("Traàn Thò Thuûy", "trần thị thuỷ"),
        ("ÐINH Công Tráng", "đinh công tráng"),
        ("ðinh\tcông\u{A0}tráng", "đinh công tráng"),
        ("Hòa", "hoà"),
        ("Lê Thị Hương", "lê thị hương"),
        ("", ""),
        ("   ", ""),
    ];
    for (input, want) in cases {
        assert_eq!(canonical_name(input), want, "{input:?}");
        assert_eq!(canonical_name(&nfd(input)), want, "NFD {input:?}");
    }
    assert_eq!(canonical_name("Thủy"), canonical_name("THUỶ"));
    assert_ne!(canonical_name("Thủy"), canonical_name("Thuy"));
}

// ------------------------------------------------------------------------------- robustness

#[test]
fn never_panics_and_keeps_invariants() {
    // Deterministic pseudo-random strings over a hostile alphabet.
    let alphabet: Vec<char> = "aAeEoOuUyYiIqQgGhHnN ñÑöÖøùûõïâêáàåãäéèúüëæî¸µ·¹¶¾»¼½¨©ª«¬\u{AD}®§¢£¤¡¥¦×ÞßÐÜÇÈÉËÆÎÏÕÒÓÔØýÝđĐÐðăơưạỹ\u{300}\u{301}\u{302}\u{303}\u{309}\u{323}\u{31B}\u{0}\u{FFFF}😀İ–'-.\t"
        .chars()
        .collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let len = (next() % 14) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let repaired = repair_mojibake(&s);
        assert_eq!(nfc(&repaired), repaired, "{s:?}");
        let _ = detect_mojibake(&s);
        let _ = decode_mojibake(&s, Legacy::Tcvn3);
        let _ = decode_mojibake(&s, Legacy::Vni);
        let _ = to_tcvn3_mojibake(&s);
        let _ = to_vni_mojibake(&s);
        assert!(!fold_diacritics(&s).chars().any(is_combining_mark), "{s:?}");
        let new = with_tone_style(&s, ToneStyle::New);
        assert_eq!(with_tone_style(&new, ToneStyle::New), new, "{s:?}");
        assert_eq!(
            with_tone_style(&with_tone_style(&s, ToneStyle::Old), ToneStyle::New),
            new,
            "{s:?}"
        );
        let _ = swap_i_y(&s);
        let c = canonical_name(&s);
        assert_eq!(c.trim(), c);
        let _ = is_syllable(&s);
    }
}

#[test]
fn documented_limitations() {
    // When every accented word's legacy form is itself valid Vietnamese, nothing shows it is
    // mojibake: TCVN3 "Vũ Minh An" is "Vò Minh An", VNI "Cao Minh Sơn" is "Cao Minh Sôn".
    for (enc, name) in [(Legacy::Tcvn3, "Vũ Minh An"), (Legacy::Vni, "Cao Minh Sơn")] {
        let moji = to_mojibake(name, enc);
        assert_eq!(detect_mojibake(&moji), None, "{moji}");
        assert_eq!(repair_mojibake(&moji), moji);
    }
    // A foreign name with a Latin-1 diaeresis can read as a VNI syllable.
    assert_eq!(repair_mojibake("Loïc"), "Lọc");
    // The VNI exception for the middle name Thị.
    assert_eq!(repair_mojibake("Cao Thò An"), "Cao Thị An");
}

/// Detection weighs each word alone, so the name parser may decide a name piece by piece
/// ([`no_mojibake_evidence`]): every whitespace character a name may hold ends a word for detection,
/// and the evidence of a name is none exactly when none of its pieces has any.
#[test]
fn mojibake_evidence_is_the_sum_of_the_pieces() {
    let genuine = ["Lê", "Hà", "Tô", "Hoàng", "Trang", "LÊ", "Thu", "An"];
    for w in genuine {
        assert!(no_mojibake_evidence(w), "{w:?}");
    }
    let moji = [
        to_tcvn3_mojibake("Nguyễn"),
        to_vni_mojibake("Thị"),
        to_vni_mojibake("Đức"),
    ];
    for w in &moji {
        assert!(!no_mojibake_evidence(w), "{w:?}");
    }
    let spaces = (0..=0xFFu32)
        .filter_map(char::from_u32)
        .filter(|c| c.is_whitespace());
    for space in spaces {
        for (a, b) in [("Lê", "Hà"), ("Tô", "Trang"), ("Hoàng", "LÊ")] {
            let name = format!("{a}{space}{b}");
            assert_eq!(detect_mojibake(&name), None, "{name:?}");
        }
        for m in &moji {
            let name = format!("Lê{space}{m}");
            assert!(detect_mojibake(&name).is_some(), "{name:?}");
        }
    }
}

// ----------------------------------------------------------------------------------------- bytes

#[test]
fn bytes_decode_in_each_encoding() {
    let tcvn3 = Encoding::Legacy(Legacy::Tcvn3);
    let vni = Encoding::Legacy(Legacy::Vni);
    let cases: &[(Encoding, &[u8], &str)] = &[
        (
            Encoding::Utf8,
            "Nguyễn Văn Hoà".as_bytes(),
            "Nguyễn Văn Hoà",
        ),
        (
            Encoding::Windows1258,
            b"Nguy\xea\xden V\xe3n Ho\xe0",
            "Nguyễn Văn Hoà",
        ),
        (
            Encoding::Windows1258,
            b"Tr\xe2\xccn Thi\xf2 Th\xfay, \xd0\xe3\xf2ng",
            "Trần Thị Thúy, Đặng",
        ),
        // The bytes of the reference table (data/legacy_encodings.csv): Đ A7, ặ C6, ă A8, ồ E5 in
        // TCVN3; Đ D1, ặ 61 EB, ă 61 EA, ồ 6F E0 in VNI.
        (tcvn3, b"\xa7\xc6ng V\xa8n H\xe5", "Đặng Văn Hồ"),
        (vni, b"\xd1a\xebng Va\xean Ho\xe0", "Đặng Văn Hồ"),
        (tcvn3, b"Nguy\xd4n", "Nguyễn"),
        (vni, b"Nguye\xe3n", "Nguyễn"),
        // ASCII is itself in each.
        (tcvn3, b"19/05/1990", "19/05/1990"),
        (Encoding::Windows1258, b"", ""),
    ];
    for &(enc, bytes, text) in cases {
        assert_eq!(decode_bytes(bytes, enc).as_deref(), Ok(text), "{enc:?}");
    }
}

#[test]
fn bytes_that_are_not_text_say_where() {
    let bad = |offset, byte| Err(Undecodable { offset, byte });
    assert_eq!(decode_bytes(b"L\xea Lan", Encoding::Utf8), bad(1, 0xEA));
    // Truncated UTF-8: the sequence's first byte.
    assert_eq!(
        decode_bytes(&"Lê".as_bytes()[..2], Encoding::Utf8),
        bad(1, 0xC3)
    );
    // Bytes the code pages leave unassigned.
    assert_eq!(decode_bytes(b"An\x8a", Encoding::Windows1258), bad(2, 0x8A));
    for enc in [Legacy::Tcvn3, Legacy::Vni] {
        assert_eq!(decode_bytes(b"\x81", Encoding::Legacy(enc)), bad(0, 0x81));
        assert_eq!(decode_bytes(b"ab\x9d", Encoding::Legacy(enc)), bad(2, 0x9D));
    }
}

#[test]
fn encodings_are_named_as_specs_name_them() {
    for enc in Encoding::ALL {
        assert_eq!(Encoding::from_name(enc.name()), Some(enc));
        assert_eq!(Encoding::from_name(&enc.name().to_uppercase()), Some(enc));
    }
    assert_eq!(Encoding::from_name("latin1"), None);
}

/// Every syllable of the language, in three cases, written in each encoding and read back.
#[test]
fn every_syllable_round_trips_through_bytes() {
    let words = all_syllables();
    for enc in Encoding::ALL {
        for word in &words {
            for w in [word.clone(), title(word), word.to_uppercase()] {
                let bytes = encode_bytes(&w, enc).unwrap_or_else(|c| panic!("{enc:?} {w}: {c}"));
                assert_eq!(
                    decode_bytes(&bytes, enc).as_deref(),
                    Ok(w.as_str()),
                    "{enc:?}"
                );
            }
        }
        for name in GENUINE {
            let bytes = match encode_bytes(&nfd(name), enc) {
                Ok(bytes) => bytes,
                Err(c) => {
                    // The eth some systems type for Đ: Windows-1258 has no such character, and
                    // TCVN3's byte for it is é.
                    let without =
                        matches!(enc, Encoding::Windows1258 | Encoding::Legacy(Legacy::Tcvn3));
                    assert_eq!((c, without), ('Ð', true), "{enc:?} {name}");
                    continue;
                }
            };
            assert_eq!(
                decode_bytes(&bytes, enc).map(|t| nfc(&t)).as_deref(),
                Ok(*name),
                "{enc:?}"
            );
        }
    }
    assert_eq!(encode_bytes("Lê 李", Encoding::Windows1258), Err('李'));
    assert_eq!(
        encode_bytes("€", Encoding::Legacy(Legacy::Vni)),
        Ok(vec![0x80])
    );
}
