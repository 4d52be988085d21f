//! The shape of a value: what a report may say of a value it could not read, since personal data
//! (names, dates, ID numbers) never reaches a log or an error message.

use unicode_normalization::char::is_combining_mark;

/// Longer shapes are cut: the length of a long value says little more, and a report stays short.
const MAX_SHAPE_CHARS: usize = 24;

/// `raw` trimmed, each digit (any script) written `9`, each letter (any script, with its combining
/// marks) `a`, each run of whitespace one space, anything else kept: `15/6/99` → `99/9/99`,
/// `Jun 15, 99` → `aaa 99, 99`. At most 24 characters, then `…`.
pub fn value_shape(raw: &str) -> String {
    let mut out = String::with_capacity(MAX_SHAPE_CHARS + '…'.len_utf8());
    let mut written = 0;
    let mut last = None;
    for c in raw.trim().chars() {
        let shaped = if c.is_whitespace() {
            if last == Some(' ') {
                continue;
            }
            ' '
        } else if last == Some('a') && is_combining_mark(c) {
            continue;
        } else if c.is_numeric() {
            '9'
        } else if c.is_alphabetic() {
            'a'
        } else {
            c
        };
        if written == MAX_SHAPE_CHARS {
            out.push('…');
            break;
        }
        out.push(shaped);
        written += 1;
        last = Some(shaped);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_values() {
        let cases = [
            ("15/6/99", "99/9/99"),
            ("Jun 15, 99", "aaa 99, 99"),
            ("  07-03-1985  ", "99-99-9999"),
            ("1985-03-07T00:00:00", "9999-99-99a99:99:99"),
            ("ngày 15 tháng 6", "aaaa 99 aaaaa 9"),
            ("nga\u{300}y 15", "aaaa 99"),
            ("NGUYỄN\tVăn \n  An", "aaaaaa aaa aa"),
            ("০৭/০৩/১৯৮৫", "99/99/9999"),
            ("０７/０３", "99/99"),
            ("Ⅻ ½", "9 9"),
            ("山田 太郎", "aa aa"),
            ("मोहन", "aaa"),
            ("\u{301}x", "\u{301}a"),
            ("(âm lịch) 🙂 #1", "(aa aaaa) 🙂 #9"),
            ("", ""),
            ("   ", ""),
            ("123456789012345678901234", "999999999999999999999999"),
            ("1234567890123456789012345", "999999999999999999999999…"),
            (
                "Nguyễn Thị Minh Khai 1985-03-07",
                "aaaaaa aaa aaaa aaaa 999…",
            ),
        ];
        for (raw, expected) in cases {
            let shape = value_shape(raw);
            assert_eq!(shape, expected, "{raw:?}");
            for c in shape.chars() {
                assert!(
                    !c.is_alphanumeric() || c == 'a' || c == '9',
                    "{raw:?} kept {c:?}"
                );
            }
        }
    }
}
