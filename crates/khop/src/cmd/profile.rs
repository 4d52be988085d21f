//! `khop profile`: what each column of an input holds, and a job spec to start from.

use std::path::PathBuf;

use anyhow::Context;
use khop_engine::profile::{
    ColumnProfile, DEFAULT_ROWS, InputProfile, Options, Profiled, profile, standardiser_name,
    suggest::suggest,
};
use khop_engine::spec::InputFormat;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inputs: files (Parquet, CSV) or directories of them, or object-store URLs. With
    /// --suggest, one (a dedupe job) or two (a link job, the small side first).
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<String>,
    /// Records read from the start of each input.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ROWS)]
    rows: usize,
    /// The inputs' format [default: a file's extension, or the files a directory holds].
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// A CSV input's delimiter [default: the commonest of , ; tab | in its header].
    #[arg(long, value_name = "CHAR")]
    delimiter: Option<char>,
    /// A CSV input's encoding: utf-8, windows-1258, tcvn3 or vni [default: utf-8].
    #[arg(long, value_name = "NAME")]
    encoding: Option<String>,
    /// Print the profiles as JSON (a list, one per input; docs/profile.md).
    #[arg(long)]
    json: bool,
    /// Write a job spec for the inputs to this file, to check and edit before `khop link`.
    #[arg(long, value_name = "OUT.toml")]
    suggest: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum FormatArg {
    Parquet,
    Csv,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.suggest.is_some() && args.inputs.len() > 2 {
        anyhow::bail!(
            "--suggest: one input (a dedupe job) or two (a link job), not {}",
            args.inputs.len()
        );
    }
    if let Some(encoding) = &args.encoding
        && khop_vn::text::Encoding::from_name(encoding).is_none()
    {
        anyhow::bail!("--encoding: `{encoding}`: one of utf-8, windows-1258, tcvn3, vni");
    }
    if args.rows == 0 {
        anyhow::bail!("--rows: at least 1");
    }
    let options = Options {
        rows: args.rows,
        format: args.format.map(|f| match f {
            FormatArg::Parquet => InputFormat::Parquet,
            FormatArg::Csv => InputFormat::Csv,
        }),
        delimiter: args.delimiter,
        encoding: args.encoding.clone(),
    };
    let profiles: Vec<Profiled> = args
        .inputs
        .iter()
        .map(|input| profile(input, &options).with_context(|| format!("profiling {input}")))
        .collect::<anyhow::Result<_>>()?;
    if args.json {
        let list: Vec<&InputProfile> = profiles.iter().map(|p| &p.profile).collect();
        say!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for p in &profiles {
            print_profile(&p.profile);
        }
    }
    if let Some(out) = &args.suggest {
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let spec = suggest(&profiles, &dir)?;
        std::fs::write(out, spec).with_context(|| format!("writing {}", out.display()))?;
        // A report on stdout stays JSON alone.
        let line = format!(
            "khop profile: a job spec written to {}: check it, then `khop link {}`",
            out.display(),
            out.display()
        );
        if args.json {
            eprintln!("{line}");
        } else {
            say!("{line}");
        }
    }
    Ok(())
}

fn percent(share: f64) -> String {
    format!("{:.1}%", 100.0 * share)
}

fn print_profile(p: &InputProfile) {
    let files = if p.files == 1 { "file" } else { "files" };
    let read = if p.whole_input {
        format!("{} records read: the whole input", p.rows_read)
    } else {
        format!(
            "the first {} records read (--rows to read more)",
            p.rows_read
        )
    };
    say!(
        "khop profile: {} ({}, {}, {} {files}): {read}",
        p.name,
        p.path,
        match p.format {
            InputFormat::Csv => "csv",
            InputFormat::Parquet => "parquet",
        },
        p.files
    );
    if let Some(csv) = &p.csv {
        say!(
            "  read as CSV with delimiter {:?}, encoding {}",
            csv.delimiter,
            csv.encoding
        );
    }
    if p.unreadable_lines > 0 {
        say!(
            "  {} lines are no record (fields, quotes or encoding: a job rejects them)",
            p.unreadable_lines
        );
    }
    match &p.record_id {
        Some(id) => say!("  record id: {id} (present and distinct in every record read)"),
        None => say!("  record id: none (no column is present and distinct in every record)"),
    }
    say!(
        "  values are shown only where they occur in at least {} records; others by shape (9 digit, a letter)",
        p.shown_threshold
    );
    say!("");
    say!(
        "  {:<24} {:<11} {:>7} {:>9} {:>9}  reads",
        "column",
        "kind",
        "empty",
        "distinct",
        "top",
    );
    for c in &p.columns {
        say!(
            "  {:<24} {:<11} {:>7} {:>9} {:>9}  {}",
            c.name,
            c.kind.word(),
            percent(c.null_rate),
            c.distinct,
            percent(c.top_share),
            readers(c)
        );
    }
    for c in &p.columns {
        say!("");
        let standardiser = c
            .standardiser
            .map_or(String::new(), |s| format!(" ({})", standardiser_name(s)));
        say!("  {}: {}{standardiser}: {}", c.name, c.kind.word(), c.why);
        let mut extra = Vec::new();
        if let Some(order) = c.date_order {
            extra.push(format!("dates read {}", order.name()));
        }
        if let Some(repair) = c.id_repair {
            extra.push(if repair {
                "lost leading zeros restored".to_owned()
            } else {
                "lost leading zeros not restored (another kind of number)".to_owned()
            });
        }
        if !extra.is_empty() {
            say!("    {}", extra.join("; "));
        }
        let shapes: Vec<String> = c
            .shapes
            .iter()
            .map(|s| format!("{} {}", shape(&s.shape), percent(s.share)))
            .collect();
        if !shapes.is_empty() {
            let other = if c.other_shapes > 0 {
                format!(", {} of other shapes", c.other_shapes)
            } else {
                String::new()
            };
            say!("    shapes: {}{other}", shapes.join(", "));
        }
        let top: Vec<String> = c
            .top
            .iter()
            .take_while(|t| t.count > 1)
            .map(|t| match &t.value {
                Some(v) => format!("{v:?} {}", percent(t.share)),
                None => format!("(rare value) {}", t.count),
            })
            .collect();
        if !top.is_empty() {
            say!("    commonest: {}", top.join(", "));
        }
        if c.unread > 0 {
            let shapes: Vec<String> = c
                .unread_shapes
                .iter()
                .map(|s| format!("{} ({})", shape(&s.shape), s.count))
                .collect();
            say!("    not read: {} values: {}", c.unread, shapes.join(", "));
        }
    }
    say!("");
}

/// A shape as printed: quoted where it has spaces at its ends or is empty.
fn shape(s: &str) -> String {
    format!("`{s}`")
}

/// The readers that read any value, most first.
fn readers(c: &ColumnProfile) -> String {
    let mut read: Vec<_> = c.readers.iter().filter(|r| r.read > 0).collect();
    read.sort_by(|a, b| b.share.total_cmp(&a.share));
    read.iter()
        .map(|r| format!("{} {}", standardiser_name(r.standardiser), percent(r.share)))
        .collect::<Vec<_>>()
        .join(", ")
}
