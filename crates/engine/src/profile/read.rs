//! Opening an input whose columns no job names yet: its format, a CSV file's delimiter, and its
//! columns, so that the engine's own scan reads every one of them as text.

use std::collections::BTreeMap;
use std::io::Read;

use crate::EngineError;
use crate::scan::{file_columns, input_files};
use crate::spec::{Columns, Conventions, CsvOptions, Input, InputFormat};
use crate::storage::{self, Object};

/// An input ready to scan: every column of its first file mapped, so that the scan reads them all.
pub(super) struct Opened {
    pub name: String,
    pub input: Input,
    pub files: Vec<String>,
    /// In the file's order.
    pub columns: Vec<String>,
}

pub(super) fn open(path: &str, options: &super::Options) -> Result<Opened, EngineError> {
    let name = input_name(path);
    let mut input = Input {
        name: name.clone(),
        path: path.to_owned(),
        format: InputFormat::Parquet,
        id: String::new(),
        columns: BTreeMap::new(),
        cache: None,
        csv: None,
        conventions: Conventions::default(),
    };
    let files = match options.format {
        Some(format) => {
            input.format = format;
            input_files(&input)?
        }
        None => detect_format(&mut input)?,
    };
    if input.format == InputFormat::Csv {
        let delimiter = match options.delimiter {
            Some(d) => d,
            None => detect_delimiter(&input, &files[0])?,
        };
        input.csv = Some(CsvOptions {
            delimiter,
            encoding: options
                .encoding
                .clone()
                .unwrap_or_else(|| CsvOptions::default().encoding),
        });
    }
    let columns = file_columns(&input, &files[0])?;
    let Some((id, rest)) = columns.split_first() else {
        return Err(EngineError::BadInput {
            source_name: name,
            message: format!("{}: no columns", files[0]),
        });
    };
    input.id = id.clone();
    // Field names that sort in the file's order (the scan reads the id, then the fields' columns).
    input.columns = rest
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("c{i:05}"), Columns::One(c.clone())))
        .collect();
    Ok(Opened {
        name,
        input,
        files,
        columns,
    })
}

/// A file by its extension (`.parquet`, anything else CSV); a directory or prefix by the files it
/// holds, Parquet first.
fn detect_format(input: &mut Input) -> Result<Vec<String>, EngineError> {
    let path = std::path::Path::new(&input.path);
    if !storage::is_url(&input.path) && path.is_file() {
        input.format = if path.extension().is_some_and(|e| e == "parquet") {
            InputFormat::Parquet
        } else {
            InputFormat::Csv
        };
        return input_files(input);
    }
    input.format = InputFormat::Parquet;
    match input_files(input) {
        Ok(files) => Ok(files),
        Err(parquet) => {
            input.format = InputFormat::Csv;
            input_files(input).map_err(|_| parquet)
        }
    }
}

/// The commonest of `,` `;` tab `|` outside quotes in the first line of `file` (a comma where none
/// occurs): Excel in a Vietnamese locale writes `;`.
fn detect_delimiter(input: &Input, file: &str) -> Result<char, EngineError> {
    let error = |e: &dyn std::fmt::Display| EngineError::Input {
        source_name: input.name.clone(),
        message: format!("{file}: {e}"),
    };
    let reader: Box<dyn Read> = if storage::is_url(file) {
        Box::new(
            Object::at(file)
                .and_then(|o| o.sequential_reader())
                .map_err(|e| error(&e))?,
        )
    } else {
        Box::new(std::fs::File::open(file).map_err(|e| error(&e))?)
    };
    let mut head = Vec::new();
    reader
        .take(64 << 10)
        .read_to_end(&mut head)
        .map_err(|e| error(&e))?;
    Ok(delimiter_of(&head))
}

/// The delimiter of a CSV header line (see [`detect_delimiter`]).
fn delimiter_of(head: &[u8]) -> char {
    let mut counts = [0usize; 4];
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best = (0..4).max_by_key(|&i| (counts[i], 4 - i)).unwrap_or(0);
    if counts[best] == 0 {
        ','
    } else {
        char::from(CANDIDATES[best])
    }
}

/// An input's name in a job: its file name without the extension, or its directory's name, as
/// letters, digits and `_` (not starting with a digit).
fn input_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let stem = match last.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => last,
    };
    let mut name: String = khop_vn::text::fold_diacritics(stem)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "input_");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_headers_delimiter_is_its_commonest_separator() {
        let cases: &[(&str, char)] = &[
            ("a,b,c\n1;2;3", ','),
            ("a;b;c\n", ';'),
            ("a\tb\tc", '\t'),
            ("a|b", '|'),
            ("\"a,b\";c;d", ';'),
            ("only", ','),
            ("", ','),
            ("a,b;c\r\nx;y;z;w", ','),
        ];
        for &(head, expected) in cases {
            assert_eq!(delimiter_of(head.as_bytes()), expected, "{head:?}");
        }
    }

    #[test]
    fn an_inputs_name_is_its_file_or_directory() {
        let cases: &[(&str, &str)] = &[
            ("exports/can_bo.csv", "can_bo"),
            ("data/civil_servants/", "civil_servants"),
            ("s3://bucket/dân cư/part.parquet", "part"),
            ("Dân cư.csv", "Dan_cu"),
            ("2024.csv", "input_2024"),
            (".hidden", "_hidden"),
        ];
        for &(path, expected) in cases {
            assert_eq!(input_name(path), expected, "{path:?}");
        }
    }
}
