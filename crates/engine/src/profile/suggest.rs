//! `khop profile --suggest`: a job spec for profiled inputs, for a user to check and edit.
//!
//! One input is deduplicated, two are linked (the first is the small side). Each column becomes a
//! field read by its kind's standardiser; in a link job a column is used only when the other input
//! has one of the same kind, paired by how alike their names are and how many values they share.
//! Every ID column of an input feeds one `vn_id` field. The blocking rules, comparisons and
//! training follow docs/job-spec.md and the job `khop datagen` writes: identifier rules first (their
//! pairs train the model and give the prior), then rules on names and dates that each survive an
//! error in one of them.

use std::fmt::Write as _;
use std::path::Path;

use super::column::{Kind, TextStyle, standardiser_name};
use super::{ColumnProfile, Facts, Profiled};
use crate::EngineError;
use crate::spec::InputFormat;

/// A job holds at most this many comparisons (docs/job-spec.md).
const MAX_COMPARISONS: usize = 16;

/// Two columns of one kind are paired only if they share this share of their values, or...
const MIN_OVERLAP: f64 = 0.2;
/// ...their names are this alike (Jaro-Winkler of the names folded, letters and digits only).
const MIN_NAME_LIKENESS: f64 = 0.85;

/// Unread values beyond this share of a column's are pointed out beside its field (a job warns of
/// 0.1%).
const UNREAD_SHARE: f64 = 0.001;

/// Without a Vietnamese name, rules pair the birth date, the name parts and short text fields with
/// at least this many distinct values...
const MIN_BLOCK_VALUES: u64 = 100;
/// ...up to this many fields in all (ten rules).
const MAX_PAIRED_KEYS: usize = 5;

/// Kinds whose one column in each input are paired whatever their names and values: a name is a
/// name, a phone a phone. Values alone cannot tell: two samples of a large register share few
/// people, so few phone numbers, even where the columns are the same.
const ALONE_PAIRED: [Kind; 3] = [Kind::Name, Kind::Sex, Kind::Phone];

/// One field of the suggested job.
struct Field {
    name: String,
    kind: Kind,
    style: Option<TextStyle>,
    /// Per input, the columns it maps (none: the input does not map it).
    columns: Vec<Vec<usize>>,
    /// Why, for the comment beside it.
    note: String,
    /// Named as of birth on some side (a birth date, a birthplace).
    birth: bool,
    /// A name part that holds surnames.
    surnames: bool,
    /// Distinct values in the sample (of the input that has fewer).
    distinct: u64,
}

/// The TOML text of a job for `inputs` (one: dedupe; two: link, the first the small side), whose
/// relative paths are relative to `spec_dir`, where the spec will be written.
pub fn suggest(inputs: &[Profiled], spec_dir: &Path) -> Result<String, EngineError> {
    let refuse = |message: &str| EngineError::Spec {
        path: "suggest".into(),
        message: message.into(),
    };
    if !(1..=2).contains(&inputs.len()) {
        return Err(refuse(
            "one input (dedupe) or two (link, the small side first)",
        ));
    }
    for p in inputs {
        if p.profile.record_id.is_none() {
            return Err(refuse(&format!(
                "{}: no column has a value in every record and a different one in each: a job \
                 needs one as its `id`",
                p.profile.path
            )));
        }
    }
    let (fields, unused) = if inputs.len() == 1 {
        dedupe_fields(&inputs[0])
    } else {
        link_fields(&inputs[0], &inputs[1])
    };
    let names = unique_names(inputs, &fields);
    let rules = blocking(inputs, &fields, &names);
    let mut out = String::new();
    header(&mut out, inputs);
    for (i, p) in inputs.iter().enumerate() {
        write_input(&mut out, i, p, &fields, &names, &unused[i], spec_dir);
    }
    write_fields(&mut out, inputs, &fields, &names);
    write_blocking(&mut out, &rules);
    write_comparisons(&mut out, &fields, &names);
    let prior = rules.iter().find(|r| r.identifier).map(|r| r.name.clone());
    out.push_str("\n[training]\nseed = 42\nu_pairs = 1000000\n");
    match prior {
        Some(rule) => {
            let _ = writeln!(
                out,
                "# The prior: the pairs this rule finds, nearly all matches.\nprior_rule = {}",
                quote(&rule)
            );
        }
        None => out.push_str(
            "# No identifier rule: the prior is estimated by EM. CHECK it in model.json.\n",
        ),
    }
    out.push_str("prior_recall = 0.95\n");
    out.push_str(
        "\n# CHECK after a first run: read pairs between `review` and `match` in pairs/ and the\n\
         # `review` and `ambiguous` rows of reconciliation/, and move the thresholds if they are\n\
         # mostly matches (lower `match`) or mostly not (raise it).\n\
         [thresholds]\nmatch = 0.95\nreview = 0.5\n",
    );
    Ok(out)
}

/// Every column of the input but the record id, as fields; its ID columns as one.
fn dedupe_fields(p: &Profiled) -> (Vec<Field>, Vec<Vec<String>>) {
    let mut fields = Vec::new();
    let ids = id_columns(p);
    if !ids.is_empty() {
        fields.push(ids_field(vec![ids], p));
    }
    for (i, c) in p.profile.columns.iter().enumerate() {
        if usable(p, i) && c.kind != Kind::VnId {
            fields.push(field_of(&[p], &[i], c, format!("{}: {}", c.name, c.why)));
        }
    }
    (fields, vec![Vec::new()])
}

/// The columns of two inputs paired by kind: greedily, the pair with the most alike names and
/// values first.
fn link_fields(left: &Profiled, right: &Profiled) -> (Vec<Field>, Vec<Vec<String>>) {
    let mut fields = Vec::new();
    let (l_ids, r_ids) = (id_columns(left), id_columns(right));
    let mut used = [
        vec![false; left.facts.len()],
        vec![false; right.facts.len()],
    ];
    if !l_ids.is_empty() && !r_ids.is_empty() {
        for &i in &l_ids {
            used[0][i] = true;
        }
        for &i in &r_ids {
            used[1][i] = true;
        }
        fields.push(ids_field(vec![l_ids, r_ids], left));
    }
    let mut candidates = Vec::new();
    for (i, lc) in left.profile.columns.iter().enumerate() {
        for (j, rc) in right.profile.columns.iter().enumerate() {
            if !usable(left, i) || !usable(right, j) || lc.kind != rc.kind || lc.kind == Kind::VnId
            {
                continue;
            }
            let likeness = name_likeness(&lc.name, &rc.name);
            let shared = overlap(&left.facts[i].keys, &right.facts[j].keys);
            let alone = ALONE_PAIRED.contains(&lc.kind)
                && count(left, lc.kind) == 1
                && count(right, lc.kind) == 1;
            if shared >= MIN_OVERLAP || likeness >= MIN_NAME_LIKENESS || alone {
                candidates.push((likeness + shared, i, j, likeness, shared));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let mut pairs = Vec::new();
    for (_, i, j, likeness, shared) in candidates {
        if used[0][i] || used[1][j] {
            continue;
        }
        used[0][i] = true;
        used[1][j] = true;
        pairs.push((i, j, likeness, shared));
    }
    // In the left input's column order, as a user reads it.
    pairs.sort_by_key(|p| p.0);
    for (i, j, likeness, shared) in pairs {
        let (lc, rc) = (&left.profile.columns[i], &right.profile.columns[j]);
        let mut note = format!(
            "{} ~ {}: {}; names {:.0}% alike, {:.0}% of values shared",
            lc.name,
            rc.name,
            lc.why,
            100.0 * likeness,
            100.0 * shared
        );
        if shared < MIN_OVERLAP && likeness < MIN_NAME_LIKENESS {
            let _ = write!(
                note,
                " (in the samples); paired as the one {} column of each input",
                lc.kind.word()
            );
        }
        let mut f = field_of(&[left, right], &[i, j], lc, note);
        f.columns = vec![vec![i], vec![j]];
        fields.push(f);
    }
    let unused = [left, right]
        .iter()
        .zip(&used)
        .map(|(p, used)| {
            p.profile
                .columns
                .iter()
                .enumerate()
                .filter(|&(i, _)| usable(p, i) && !used[i])
                .map(|(_, c)| format!("{} ({})", c.name, c.kind.word()))
                .collect()
        })
        .collect();
    (fields, unused)
}

/// The usable columns of `kind` in an input.
fn count(p: &Profiled, kind: Kind) -> usize {
    (0..p.profile.columns.len())
        .filter(|&i| usable(p, i) && p.profile.columns[i].kind == kind)
        .count()
}

/// A column a field may read: not empty, not the record id.
fn usable(p: &Profiled, i: usize) -> bool {
    let c = &p.profile.columns[i];
    c.kind != Kind::Empty && p.profile.record_id.as_deref() != Some(c.name.as_str())
}

fn id_columns(p: &Profiled) -> Vec<usize> {
    (0..p.profile.columns.len())
        .filter(|&i| usable(p, i) && p.profile.columns[i].kind == Kind::VnId)
        .collect()
}

fn ids_field(columns: Vec<Vec<usize>>, first: &Profiled) -> Field {
    let names: Vec<&str> = columns[0]
        .iter()
        .map(|&i| first.profile.columns[i].name.as_str())
        .collect();
    Field {
        name: "ids".into(),
        kind: Kind::VnId,
        style: None,
        columns,
        note: format!(
            "{}: PINs and CMNDs; every ID column of an input feeds this one field",
            names.join(", ")
        ),
        birth: false,
        surnames: false,
        distinct: 0,
    }
}

/// The field of `column` (the first input's, or the only one's; `at` its index in each input).
fn field_of(inputs: &[&Profiled], at: &[usize], column: &ColumnProfile, note: String) -> Field {
    let facts: Vec<&Facts> = inputs.iter().zip(at).map(|(p, &i)| &p.facts[i]).collect();
    Field {
        name: column.name.clone(),
        kind: column.kind,
        style: matches!(column.kind, Kind::Text | Kind::NamePart)
            .then(|| facts[0].evidence.text_style(column.kind)),
        columns: vec![vec![at[0]]],
        note,
        birth: facts.iter().any(|f| f.hints.birth),
        surnames: facts.iter().any(|f| f.evidence.surnames()),
        distinct: facts.iter().map(|f| f.evidence.distinct).min().unwrap_or(0),
    }
}

/// How alike two column names are: Jaro-Winkler of their folded letters and digits.
fn name_likeness(a: &str, b: &str) -> f64 {
    let compact = |s: &str| -> String {
        khop_vn::text::fold_diacritics(s)
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect()
    };
    strsim::jaro_winkler(&compact(a), &compact(b))
}

/// The share of the smaller set of compared values that the other has too.
fn overlap(a: &rustc_hash::FxHashSet<u64>, b: &rustc_hash::FxHashSet<u64>) -> f64 {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if small.is_empty() {
        return 0.0;
    }
    small.iter().filter(|k| large.contains(k)).count() as f64 / small.len() as f64
}

/// Field names a spec accepts (letters, digits, `_`, not a digit first), each once, and none an
/// input's name.
fn unique_names(inputs: &[Profiled], fields: &[Field]) -> Vec<String> {
    let mut taken: Vec<String> = inputs.iter().map(|p| p.profile.name.clone()).collect();
    fields
        .iter()
        .map(|f| {
            let base = identifier(&f.name);
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}_{n}");
                n += 1;
            }
            taken.push(name.clone());
            name
        })
        .collect()
}

/// `s` as letters, digits and `_`, lowercase, not starting with a digit.
fn identifier(s: &str) -> String {
    let mut out: String = khop_vn::text::fold_diacritics(s)
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "f_");
    }
    out
}

/// A blocking rule and what it is for.
struct Rule {
    name: String,
    keys: Vec<String>,
    /// On an identifier: its pairs are nearly all matches.
    identifier: bool,
    comment: Option<&'static str>,
}

/// The rules, identifiers first (docs/job-spec.md, Training), then names with dates.
fn blocking(inputs: &[Profiled], fields: &[Field], names: &[String]) -> Vec<Rule> {
    let mut rules = Vec::new();
    let rule = |name: &str, keys: Vec<String>, identifier, comment| Rule {
        name: name.to_owned(),
        keys,
        identifier,
        comment,
    };
    let find = |kind: Kind| fields.iter().position(|f| f.kind == kind);
    if let Some(f) = find(Kind::VnId) {
        let n = &names[f];
        rules.push(rule(
            "pin",
            vec![format!("{n}.pin")],
            true,
            Some("Identifiers first: their pairs are nearly all matches, which trains the model."),
        ));
        // CMNDs on every side (a link job's sides share none otherwise).
        let cmnd = fields[f].columns.iter().enumerate().all(|(side, cols)| {
            cols.iter()
                .any(|&c| inputs.get(side).is_some_and(|p| p.facts[c].has_cmnd))
        });
        if cmnd {
            rules.push(rule("cmnd", vec![format!("{n}.cmnd")], true, None));
        }
    }
    for (f, field) in fields.iter().enumerate() {
        if field.kind == Kind::Identifier {
            rules.push(rule(&names[f], vec![names[f].clone()], true, None));
        }
    }
    if let Some(f) = find(Kind::Phone) {
        rules.push(rule(&names[f], vec![names[f].clone()], true, None));
    }
    let prefer_birth = |kind: Kind| {
        fields
            .iter()
            .position(|f| f.kind == kind && f.birth)
            .or_else(|| find(kind))
    };
    let date = prefer_birth(Kind::Date).map(|f| names[f].clone());
    let place = prefer_birth(Kind::Province).map(|f| names[f].clone());
    let parts: Vec<usize> = (0..fields.len())
        .filter(|&f| fields[f].kind == Kind::NamePart)
        .collect();
    let surname = parts
        .iter()
        .find(|&&f| fields[f].surnames)
        .map(|&f| names[f].clone());
    let given = parts
        .iter()
        .find(|&&f| !fields[f].surnames)
        .map(|&f| names[f].clone());
    if let Some(f) = find(Kind::Name) {
        let n = &names[f];
        match &date {
            Some(d) => {
                rules.push(rule(
                    "dob_names",
                    vec![
                        format!("{d}.sorted"),
                        format!("{n}.surname_key"),
                        format!("{n}.given_key"),
                    ],
                    false,
                    Some(
                        "Birth date (day and month either way), surname and given name; then the \
                         birth year with every name word, for dates wrong in day or month.",
                    ),
                ));
                let mut keys = vec![format!("{d}.year"), format!("{n}.tokens_key")];
                keys.extend(place.clone());
                if place.is_none() {
                    keys[0] = format!("{d}.year_month");
                }
                rules.push(rule("year_names", keys, false, None));
            }
            None => {
                let mut keys = vec![format!("{n}.key")];
                keys.extend(place.clone());
                rules.push(rule(
                    "names",
                    keys,
                    false,
                    Some("CHECK: no date to block on; a common name makes large blocks."),
                ));
            }
        }
    } else if surname.is_some() || given.is_some() || date.is_some() {
        // Any two of date, surname, given name and the most distinct short text fields (a
        // postcode, a town): one error in any of them leaves a rule.
        let mut present: Vec<&String> = [&date, &surname, &given].into_iter().flatten().collect();
        let mut short: Vec<usize> = (0..fields.len())
            .filter(|&f| {
                fields[f].kind == Kind::Text
                    && matches!(fields[f].style, Some(TextStyle::Number | TextStyle::Words))
                    && fields[f].distinct >= MIN_BLOCK_VALUES
            })
            .collect();
        short.sort_by_key(|&f| std::cmp::Reverse(fields[f].distinct));
        for f in short {
            if present.len() < MAX_PAIRED_KEYS {
                present.push(&names[f]);
            }
        }
        let mut first = true;
        for a in 0..present.len() {
            for b in a + 1..present.len() {
                rules.push(rule(
                    &format!("{}_{}", present[a], present[b]),
                    vec![present[a].clone(), present[b].clone()],
                    false,
                    first.then_some(
                        "Any two of the birth date, the names and the most distinct short \
                         fields: an error in one of them leaves a rule that finds the pair.",
                    ),
                ));
                first = false;
            }
        }
        if let (Some(s), Some(g)) = (&surname, &given) {
            let mut keys = vec![format!("{s}.phonetic"), format!("{g}.phonetic")];
            keys.extend(date.as_ref().map(|d| format!("{d}.year")));
            rules.push(rule(
                "names_sound_alike",
                keys,
                false,
                Some("Names that sound alike, for a typo in a name and an error elsewhere."),
            ));
        }
        if present.len() == 1 {
            rules.push(rule(
                present[0],
                vec![present[0].clone()],
                false,
                Some("CHECK: one field to block on."),
            ));
        }
    }
    if rules.is_empty() {
        // Nothing but text: the column with the most distinct values.
        if let Some(f) = (0..fields.len()).max_by_key(|&f| fields[f].distinct) {
            rules.push(rule(
                &names[f],
                vec![names[f].clone()],
                false,
                Some("CHECK: no identifier, name or date was found to block on."),
            ));
        }
    }
    rules
}

fn header(out: &mut String, inputs: &[Profiled]) {
    let link = inputs.len() == 2;
    let mode = if link { "link" } else { "dedupe" };
    let rows: Vec<String> = inputs
        .iter()
        .map(|p| {
            let whole = if p.profile.whole_input { " (all)" } else { "" };
            format!(
                "{} records of {}{whole}",
                p.profile.rows_read, p.profile.name
            )
        })
        .collect();
    let rows = rows.join(" and\n# ");
    let _ = writeln!(
        out,
        "# A job written by `khop profile --suggest` from the first {rows}.\n\
         # Check the lines marked CHECK, then run `khop link <this file>`. Every key is explained\n\
         # in docs/job-spec.md; what was decided here, and why, in docs/profile.md.\n\
         mode = \"{mode}\"\noutput = \"{mode}\"",
    );
    if link && inputs[0].profile.rows_read > inputs[1].profile.rows_read {
        out.push_str(
            "# CHECK: the first input is the small side (each of its records is reconciled against\n\
             # the second), but it had more records in the sample: swap the inputs if it is larger.\n",
        );
    }
}

fn write_input(
    out: &mut String,
    side: usize,
    p: &Profiled,
    fields: &[Field],
    names: &[String],
    unused: &[String],
    spec_dir: &Path,
) {
    let profile = &p.profile;
    let _ = writeln!(
        out,
        "\n[[inputs]]\nname = {}\npath = {}\nformat = \"{}\"",
        quote(&profile.name),
        quote(&relative_path(&profile.path, spec_dir)),
        match profile.format {
            InputFormat::Csv => "csv",
            InputFormat::Parquet => "parquet",
        }
    );
    let id = profile.record_id.as_deref().unwrap_or_default();
    let _ = writeln!(
        out,
        "# CHECK: the record id, present and distinct in all {} records read.\nid = {}",
        profile.rows_read,
        quote(id)
    );
    if let Some(csv) = &profile.csv
        && (csv.delimiter != ',' || csv.encoding != "utf-8")
    {
        let _ = writeln!(
            out,
            "[inputs.csv]\ndelimiter = {}\nencoding = {}",
            quote(&csv.delimiter.to_string()),
            quote(&csv.encoding)
        );
    }
    if profile.unreadable_lines > 0 {
        let _ = writeln!(
            out,
            "# CHECK: {} lines of the sample are no record (a job rejects them): the delimiter, or \
             the encoding?",
            profile.unreadable_lines
        );
    }
    out.push_str("[inputs.columns]\n");
    for (f, field) in fields.iter().enumerate() {
        let Some(columns) = field.columns.get(side).filter(|c| !c.is_empty()) else {
            continue;
        };
        let columns: Vec<String> = columns
            .iter()
            .map(|&c| quote(&profile.columns[c].name))
            .collect();
        if field.kind == Kind::VnId {
            let _ = writeln!(out, "{} = [{}]", names[f], columns.join(", "));
        } else {
            let _ = writeln!(out, "{} = {}", names[f], columns[0]);
        }
    }
    if !unused.is_empty() {
        let _ = writeln!(
            out,
            "# Not used, the other input having no column of the kind: {}.",
            unused.join(", ")
        );
    }
}

/// `path` relative to `dir` when it lies under it, else absolute (URLs as they are).
fn relative_path(path: &str, dir: &Path) -> String {
    if crate::storage::is_url(path) {
        return path.to_owned();
    }
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| Path::new(path).to_owned());
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    match absolute.strip_prefix(&dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
        _ => absolute.to_string_lossy().into_owned(),
    }
}

fn write_fields(out: &mut String, inputs: &[Profiled], fields: &[Field], names: &[String]) {
    out.push_str("\n[fields]\n");
    for (f, field) in fields.iter().enumerate() {
        let Some(standardiser) = field.kind.standardiser().map(standardiser_name) else {
            continue;
        };
        let _ = writeln!(out, "# {}", field.note);
        let unread: Vec<String> = inputs
            .iter()
            .zip(&field.columns)
            .flat_map(|(p, cols)| cols.iter().map(move |&c| &p.profile.columns[c]))
            .filter(|c| {
                let non_empty = c.shapes.iter().map(|s| s.count).sum::<u64>() + c.other_shapes;
                c.unread as f64 > UNREAD_SHARE * non_empty as f64
            })
            .map(|c| format!("{} {} values", c.name, c.unread))
            .collect();
        if !unread.is_empty() {
            let _ = writeln!(
                out,
                "# CHECK: not read as {standardiser}: {} (their shapes: khop profile)",
                unread.join(", ")
            );
        }
        let _ = writeln!(out, "{} = \"{standardiser}\"", names[f]);
    }
}

fn write_blocking(out: &mut String, rules: &[Rule]) {
    for rule in rules {
        out.push('\n');
        if let Some(comment) = rule.comment {
            let _ = writeln!(out, "# {comment}");
        }
        let keys: Vec<String> = rule.keys.iter().map(|k| quote(k)).collect();
        let _ = writeln!(
            out,
            "[[blocking]]\nname = {}\nkeys = [{}]",
            quote(&rule.name),
            keys.join(", ")
        );
    }
}

/// The comparisons of each field, with the levels docs/job-spec.md and the generator's job use for
/// its kind; at most [`MAX_COMPARISONS`], names and identifiers first.
fn write_comparisons(out: &mut String, fields: &[Field], names: &[String]) {
    let mut order: Vec<usize> = (0..fields.len()).collect();
    order.sort_by_key(|&f| match fields[f].kind {
        Kind::Name | Kind::NamePart => 0,
        Kind::Date => 1,
        Kind::VnId | Kind::Identifier => 2,
        Kind::Sex | Kind::Province => 3,
        Kind::Phone => 4,
        Kind::Text | Kind::Empty => 5,
    });
    let one_name = fields.iter().filter(|f| f.kind == Kind::Name).count() == 1;
    let mut written = 0;
    let mut left_out = Vec::new();
    for f in order {
        let field = &fields[f];
        let n = &names[f];
        let comparisons = comparisons_of(field, n, one_name);
        if written + comparisons.len() > MAX_COMPARISONS {
            left_out.push(n.clone());
            continue;
        }
        for (name, on, tf, levels) in comparisons {
            written += 1;
            let _ = write!(
                out,
                "\n[[comparisons]]\nname = {}\nfield = {}\n",
                quote(&name),
                quote(&on)
            );
            if tf {
                out.push_str("term_frequency = true\n");
            }
            let _ = writeln!(out, "levels = [{}]", levels.join(", "));
        }
    }
    if !left_out.is_empty() {
        let _ = writeln!(
            out,
            "\n# Not compared ({MAX_COMPARISONS} comparisons at most): {}.",
            left_out.join(", ")
        );
    }
}

/// A comparison: its name, its field (or name part), term frequencies, levels.
type Comparison = (String, String, bool, Vec<&'static str>);

fn comparisons_of(field: &Field, n: &str, one_name: bool) -> Vec<Comparison> {
    const EXACT: &str = "{ kind = \"exact\" }";
    const JW_90: &str = "{ kind = \"jaro_winkler\", threshold = 0.9 }";
    const JW_80: &str = "{ kind = \"jaro_winkler\", threshold = 0.8 }";
    const DAMERAU_1: &str = "{ kind = \"damerau\", max = 1 }";
    let one = |levels: Vec<&'static str>, tf| vec![(n.to_owned(), n.to_owned(), tf, levels)];
    match field.kind {
        Kind::Name => {
            let named = |part: &str| {
                if one_name {
                    part.to_owned()
                } else {
                    format!("{n}_{part}")
                }
            };
            vec![
                (
                    named("surname"),
                    format!("{n}.surname"),
                    true,
                    vec![
                        "{ kind = \"exact_key\" }",
                        "{ kind = \"jaro_winkler\", threshold = 0.88 }",
                    ],
                ),
                (
                    named("middle_name"),
                    format!("{n}.middle"),
                    true,
                    vec![
                        "{ kind = \"exact_key\" }",
                        "{ kind = \"jaro_winkler\", threshold = 0.85 }",
                    ],
                ),
                (
                    named("given_name"),
                    format!("{n}.given"),
                    true,
                    vec!["{ kind = \"exact_key\" }", DAMERAU_1, JW_80],
                ),
            ]
        }
        Kind::Date => one(
            vec![
                EXACT,
                "{ kind = \"day_month_swapped\" }",
                "{ kind = \"partial\" }",
                "{ kind = \"within_years\", years = 1 }",
                "{ kind = \"same_year_month\" }",
                "{ kind = \"within_years\", years = 5 }",
            ],
            false,
        ),
        // No `two_digits`, no `same_prefix`: docs/job-spec.md says why.
        Kind::VnId => one(
            vec![
                EXACT,
                "{ kind = \"one_digit\" }",
                "{ kind = \"transposition\" }",
                "{ kind = \"old_vs_new\" }",
            ],
            false,
        ),
        Kind::Identifier => one(vec![EXACT, DAMERAU_1], false),
        Kind::Sex | Kind::Province => one(vec![EXACT], false),
        Kind::Phone => one(vec![EXACT, DAMERAU_1], false),
        Kind::NamePart | Kind::Text => match field.style.unwrap_or(TextStyle::Free) {
            TextStyle::NamePart => one(vec![EXACT, JW_90, JW_80], true),
            TextStyle::Category => one(vec![EXACT], false),
            TextStyle::Number => one(vec![EXACT, DAMERAU_1], false),
            TextStyle::Words => one(vec![EXACT, JW_90], true),
            TextStyle::Free => one(vec![EXACT, JW_90, JW_80], false),
        },
        Kind::Empty => Vec::new(),
    }
}

/// `s` as a TOML string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests;
