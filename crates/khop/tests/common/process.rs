//! Running the `khop` binary from a test, and comparing what its jobs write.

use std::path::Path;
use std::process::{Command, Output};

pub const KHOP: &str = env!("CARGO_BIN_EXE_khop");

/// Runs a command to its end; a failure shows its output.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `khop datagen` into `out` (with the `job.toml` it writes).
pub fn datagen(out: &Path, population: u64, civil_servants: u64, seed: u64) {
    run_ok(
        Command::new(KHOP)
            .arg("datagen")
            .args(["--population", &population.to_string()])
            .args(["--civil-servants", &civil_servants.to_string()])
            .args(["--seed", &seed.to_string(), "--out"])
            .arg(out),
    );
}

/// The files of an output directory that must not depend on how the job ran: pairs, clusters,
/// reconciliation (link jobs only: a dedupe has none), rejects and the model, by name.
fn output_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in ["pairs", "clusters", "reconciliation", "rejects"] {
        let entries = match std::fs::read_dir(root.join(dir)) {
            Err(e) if dir == "reconciliation" && e.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            entries => entries.unwrap(),
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((format!("{dir}/{name}"), std::fs::read(&path).unwrap()));
        }
    }
    files.push((
        "model.json".into(),
        std::fs::read(root.join("model.json")).unwrap(),
    ));
    files.sort();
    files
}

/// Asserts that two jobs wrote the same output files, byte for byte; `what` says how they differ.
pub fn assert_same_files(a: &Path, b: &Path, what: &str) {
    let (a, b) = (output_files(a), output_files(b));
    assert_eq!(
        a.iter().map(|f| &f.0).collect::<Vec<_>>(),
        b.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "{what}"
    );
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs {what}");
    }
}
