//! Bounds on the work a job asks for, applied when it is planned.
//!
//! Every standardise task writes its records to each of `execution.partitions` partitions, and the
//! compare and score stages run one task per partition: a count far above the records makes each of
//! them almost empty and the job slow for nothing (65,536 partitions of a 52,000-record job ran
//! for over two minutes at 2.4 GB). So the planner lowers `partitions` to
//! [`RECORDS_PER_PARTITION`] records per partition, never below the default (64, which every job
//! runs well with), writes the count it asked for into the stored spec (`partitions_asked`), and
//! the job's summary warns of it. Results do not depend on the partition count.
//!
//! The limits of a spec's other sizes are checked where the spec is parsed
//! ([`crate::spec::JobSpec::from_toml`]): 1 to 65,536 partitions, 1 to 16 comparisons, blocks of at
//! most `max_block_pairs` pairs.

use crate::EngineError;
use crate::scan::{input_files, row_groups};
use crate::spec::{Execution, Input, InputFormat, JobSpec};
use crate::storage::{self, Object};

/// The fewest records per partition the planner lets a job ask for (above the default count).
pub const RECORDS_PER_PARTITION: u64 = 1_000;

/// The fewest bytes a CSV record takes (an id, a name, a date and their separators): a CSV input's
/// records are estimated as its bytes over this, an overestimate that keeps the bound generous.
const MIN_CSV_RECORD_BYTES: u64 = 32;

/// Lowers `execution.partitions` to what the inputs' records can use, and records the count asked
/// (see the module docs). An input whose size cannot be read leaves the spec as it is: the stage
/// that reads it says what is wrong.
pub fn bound_partitions(spec: &mut JobSpec) {
    let mut records = 0u64;
    for input in &spec.inputs {
        match estimated_records(input) {
            Ok(n) => records = records.saturating_add(n),
            Err(e) => {
                tracing::debug!(input = input.name, "partitions left as asked: {e}");
                return;
            }
        }
    }
    let most = partitions_for(records);
    let execution = &mut spec.execution;
    if execution.partitions > most {
        tracing::warn!(
            asked = execution.partitions,
            used = most,
            records,
            "partitions lowered to the inputs' size"
        );
        execution.partitions_asked = Some(execution.partitions);
        execution.partitions = most;
    }
}

/// The most partitions `records` records are given.
pub fn partitions_for(records: u64) -> u32 {
    let by_size = records.div_ceil(RECORDS_PER_PARTITION);
    let default = u64::from(Execution::default().partitions);
    u32::try_from(by_size.max(default)).unwrap_or(u32::MAX)
}

/// An input's records: exact for Parquet (its footers), an overestimate for CSV (its bytes).
fn estimated_records(input: &Input) -> Result<u64, EngineError> {
    let mut records = 0u64;
    for file in input_files(input)? {
        records += match input.format {
            InputFormat::Parquet => row_groups(input, &file)?.iter().sum(),
            InputFormat::Csv => csv_bytes(input, &file)? / MIN_CSV_RECORD_BYTES,
        };
    }
    Ok(records)
}

fn csv_bytes(input: &Input, file: &str) -> Result<u64, EngineError> {
    if storage::is_url(file) {
        return Object::at(file)?.size();
    }
    std::fs::metadata(file)
        .map(|m| m.len())
        .map_err(|e| EngineError::Input {
            source_name: input.name.clone(),
            message: format!("{file}: {e}"),
        })
}

/// The summary's warning for a job whose partitions were lowered, if they were.
pub fn partitions_warning(execution: &Execution) -> Option<String> {
    let asked = execution.partitions_asked?;
    Some(format!(
        "execution.partitions: {asked} asked, {} used: at most one partition per {} input \
         records (above {}); more only makes every task slower",
        execution.partitions,
        RECORDS_PER_PARTITION,
        Execution::default().partitions
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_the_records_above_the_default() {
        for (records, most) in [
            (0, 64),
            (52_000, 64),
            (64_000, 64),
            (64_001, 65),
            (1_000_000, 1_000),
            (102_500_000, 102_500),
        ] {
            assert_eq!(partitions_for(records), most, "{records}");
        }
    }

    #[test]
    fn a_job_asking_for_more_partitions_than_records_is_lowered_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        // 40 records of 40 bytes: estimated 50, far under 64 partitions' worth.
        let mut csv = String::from("id,name,dob\n");
        for i in 0..40 {
            csv.push_str(&format!("r{i:04},Nguyễn Văn An {i:03},1990-01-01\n"));
        }
        std::fs::write(dir.path().join("people.csv"), csv).unwrap();
        let text = |partitions: u32| {
            let execution = format!("[execution]\npartitions = {partitions}");
            crate::spec::tests::people_dedupe("", &execution)
        };
        let mut spec = JobSpec::from_toml(&text(65_536), dir.path()).unwrap();
        bound_partitions(&mut spec);
        assert_eq!(spec.execution.partitions, 64);
        assert_eq!(spec.execution.partitions_asked, Some(65_536));
        let warning = partitions_warning(&spec.execution).unwrap();
        assert!(warning.starts_with("execution.partitions: 65536 asked, 64 used"));
        // The stored spec keeps what was asked.
        let stored = toml::to_string(&spec).unwrap();
        let back = JobSpec::from_toml(&stored, dir.path()).unwrap();
        assert_eq!(back.execution, spec.execution);

        let mut within = JobSpec::from_toml(&text(8), dir.path()).unwrap();
        bound_partitions(&mut within);
        assert_eq!(
            (
                within.execution.partitions,
                within.execution.partitions_asked
            ),
            (8, None)
        );
        assert_eq!(partitions_warning(&within.execution), None);
    }
}
