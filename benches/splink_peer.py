#!/usr/bin/env python3
"""The peer for benches/vs_splink.sh: Splink 5 on DuckDB 2, given the fairest equivalent of khop's job.

Two subcommands, each run in its own process so that `run` can be timed alone under /usr/bin/time -v:

  run   --mode link|dedupe --data DIR --job JOB.toml --out DIR
        Reads the Parquet with DuckDB, derives the light-cleaning columns, trains (prior from the PIN rule,
        u by random sampling, m by EM) and predicts at the job's match threshold; writes
        DIR/predictions.parquet (pairs at or above the threshold) and DIR/splink_run.json (seconds per stage).
  eval  --mode link|dedupe --data DIR --job JOB.toml --out DIR
        Counts the blocked pairs exactly (splink.blocking_analysis.count_comparisons_from_blocking_rules,
        record_sample_proportion=1.0) and scores DIR/predictions.parquet against DIR/../truth (DATA/truth):
        writes DIR/splink_eval.json. Not timed: it is bookkeeping, not part of a Splink run.

The job spec is read only for the match threshold, the prior recall and the training seed; blocking rules
and comparisons are written out below, mirroring crates/datagen/src/job.toml and benches/jobs/dedupe.toml.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import tomllib
from pathlib import Path

import duckdb
import splink
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.blocking_analysis import count_comparisons_from_blocking_rules

LEFT, RIGHT = "civil_servants", "population"  # Splink puts min(source_dataset) on the left: civil servants

# Light cleaning a Splink user would do in SQL before linking: case, accents (strip_accents, plus the one
# letter it leaves, đ), spaces; names split into first word / middle words / last word; dates parsed from
# the usual generic formats (ISO, DD/MM/YYYY, DD-MM-YYYY, DD.MM.YYYY, YYYYMMDD), the year from the first
# 4-digit run when the date does not parse (year-only, 00/00/YYYY, ...). None of khop's Vietnamese
# standardisation (mojibake repair, tone placement, y/i, regional surnames, name order, the 2025 province
# reform, PIN/CMND recognition) is ported.
DERIVE_SQL = r"""
CREATE OR REPLACE TABLE {table} AS
WITH src AS (
    SELECT record_id, full_name, sex, date_of_birth, pin, {cmnd} AS cmnd,
           place_of_birth, address_province, phone
    FROM read_parquet('{glob}')
), w AS (
    SELECT *,
        regexp_split_to_array(
            trim(regexp_replace(translate(strip_accents(lower(full_name)), 'đð', 'dd'), '\s+', ' ', 'g')),
            ' ') AS words,
        try_strptime(trim(date_of_birth),
            ['%Y-%m-%d', '%d/%m/%Y', '%d-%m-%Y', '%d.%m.%Y', '%Y%m%d'])::DATE AS dob_date
    FROM src
)
SELECT
    record_id,
    nullif(array_to_string(words, ' '), '') AS full_name_key,
    nullif(words[1], '') AS surname,
    CASE WHEN len(words) >= 3 THEN array_to_string(words[2:-2], ' ') END AS middle,
    CASE WHEN len(words) >= 2 THEN words[-1] END AS given,
    strftime(dob_date, '%Y-%m-%d') AS dob,
    coalesce(year(dob_date), try_cast(nullif(regexp_extract(date_of_birth, '(\d{{4}})', 1), '') AS INTEGER))
        AS dob_year,
    month(dob_date) AS dob_month,
    day(dob_date) AS dob_day,
    nullif(trim(pin), '') AS pin,
    nullif(trim(cmnd), '') AS cmnd,
    nullif(lower(trim(sex)), '') AS sex,
    nullif(strip_accents(lower(trim(place_of_birth))), '') AS place_of_birth,
    nullif(strip_accents(lower(trim(address_province))), '') AS address_province,
    nullif(trim(phone), '') AS phone
FROM w
"""


# Splink 5.0.0's EM can drive a level's m to exactly 0.0 (a level that no likely match takes, e.g. phone
# Damerau 1 when the data never corrupts phones: its pairs' match probabilities underflow), and its own
# setter then raises "m_probability value 0.0 is below the minimum allowed value of 1e-300", ending the
# run. Splink already clamps m and u at that same minimum when it turns them into weights
# (ComparisonLevel._match_weight), so clamping the M-step's proportions there changes no weight; it only
# keeps the run alive. Each clamp is counted and reported (splink_run.json: em_zero_clamped).
EM_ZERO_CLAMPED = 0


def _install_em_zero_clamp() -> None:
    from splink.internals import comparison_level, expectation_maximisation

    floor = comparison_level.M_U_CLAMP_MIN
    original = expectation_maximisation.compute_proportions_for_new_parameters

    def clamped(df_params):
        global EM_ZERO_CLAMPED
        records = original(df_params)
        for r in records:
            if r.get("output_column_name") == "_probability_two_random_records_match":
                continue
            # Only m: u stays fixed during EM here (fix_u_probabilities=True), Splink never sets it from these.
            v = r.get("m_probability")
            if isinstance(v, float) and v < floor:
                r["m_probability"] = floor
                EM_ZERO_CLAMPED += 1
                log(f"EM: {r['output_column_name']} level {r['comparison_vector_value']}: m {v} clamped to {floor}")
        return records

    expectation_maximisation.compute_proportions_for_new_parameters = clamped


def log(msg: str) -> None:
    print(f"splink_peer: {msg}", file=sys.stderr, flush=True)


def job_settings(job: Path) -> dict:
    spec = tomllib.loads(job.read_text(encoding="utf-8"))
    training = spec.get("training", {})
    return {
        "threshold": float(spec.get("thresholds", {}).get("match", 0.95)),
        "prior_recall": float(training.get("prior_recall", 0.95)),
        "seed": int(training.get("seed", 42)),
    }


def connect(out: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    spill = out / "duckdb_tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = '{spill}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def load(con: duckdb.DuckDBPyConnection, mode: str, data: Path) -> list[str]:
    """Derives the cleaned tables; returns their names (left first for link)."""
    tables = []
    sources = [LEFT, RIGHT] if mode == "link" else [RIGHT]
    for source in sources:
        files = sorted((data / source).glob("*.parquet"))
        if not files:
            raise SystemExit(f"splink_peer: no Parquet files under {data / source}")
        cmnd = "cmnd" if source == "population" else "CAST(NULL AS VARCHAR)"
        con.execute(DERIVE_SQL.format(table=source, cmnd=cmnd, glob=data / source / "*.parquet"))
        tables.append(source)
    return tables


def blocking_rules(mode: str) -> list:
    # khop: pin, cmnd, phone, dob_names (date_of_birth.sorted + surname + given), and birth year + all
    # names, with the place of birth in the link job (year_names_birthplace) but not in dedupe.toml.
    rules = [block_on("pin")]
    if mode == "link":
        # The civil servants' `pin` column sometimes holds the old 9-digit ID: l = civil servants.
        rules.append("l.pin = r.cmnd")
    else:
        rules.append(block_on("cmnd"))
    rules += [
        block_on("phone"),
        block_on("dob", "surname", "given"),
        block_on("dob_year", "full_name_key", *(["place_of_birth"] if mode == "link" else [])),
    ]
    return rules


def comparisons(mode: str) -> list:
    dob = cl.CustomComparison(
        output_column_name="date_of_birth",
        comparison_levels=[
            cll.CustomLevel("dob_year_l IS NULL OR dob_year_r IS NULL").configure(is_null_level=True),
            cll.CustomLevel("dob_l = dob_r", "exact"),
            cll.CustomLevel(
                "dob_year_l = dob_year_r AND dob_month_l = dob_day_r AND dob_day_l = dob_month_r",
                "day and month swapped",
            ),
            cll.CustomLevel("(dob_l IS NULL OR dob_r IS NULL) AND dob_year_l = dob_year_r", "partial, same year"),
            cll.CustomLevel("abs(dob_year_l - dob_year_r) <= 1", "years within 1"),
            # khop's next level, same_year_month, cannot hold after `within 1 year`: not repeated here.
            cll.CustomLevel("abs(dob_year_l - dob_year_r) <= 5", "years within 5"),
            cll.ElseLevel(),
        ],
    )
    ids = cl.CustomComparison(
        output_column_name="ids",
        comparison_levels=[
            cll.CustomLevel(
                "(pin_l IS NULL AND cmnd_l IS NULL) OR (pin_r IS NULL AND cmnd_r IS NULL)"
            ).configure(is_null_level=True),
            cll.CustomLevel(
                "pin_l = pin_r OR cmnd_l = cmnd_r OR pin_l = cmnd_r OR cmnd_l = pin_r", "an ID equal"
            ),
            cll.LevenshteinLevel("pin", 1),
            # The link job has no `two_digits` level (dedupe.toml has).
            *([] if mode == "link" else [cll.LevenshteinLevel("pin", 2)]),
            cll.ElseLevel(),
        ],
    )
    given = cl.CustomComparison(
        output_column_name="given",
        comparison_levels=[
            cll.NullLevel("given"),
            cll.ExactMatchLevel("given", term_frequency_adjustments=True),
            cll.DamerauLevenshteinLevel("given", 1),
            cll.JaroWinklerLevel("given", 0.8),
            cll.ElseLevel(),
        ],
    )
    return [
        cl.JaroWinklerAtThresholds("surname", [0.88]).configure(term_frequency_adjustments=True),
        # The link job weighs middle names by term frequency (Văn, Thị), dedupe.toml does not.
        cl.JaroWinklerAtThresholds("middle", [0.85]).configure(
            term_frequency_adjustments=mode == "link"
        ),
        given,
        dob,
        ids,
        cl.ExactMatch("sex"),
        cl.ExactMatch("place_of_birth"),
        cl.ExactMatch("address_province"),
        cl.DamerauLevenshteinAtThresholds("phone", [1]),
    ]


def link_type(mode: str) -> str:
    return "link_only" if mode == "link" else "dedupe_only"


def register(db_api: DuckDBAPI, tables: list[str]):
    sdfs = [db_api.register(t, dataset_display_name=t) for t in tables]
    return sdfs if len(sdfs) > 1 else sdfs[0]


def cmd_run(args: argparse.Namespace) -> None:
    cfg = job_settings(args.job)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}
    t0 = t = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        stages[name] = round(now - t, 3)
        log(f"{name} done in {now - t:.2f} s")
        t = now

    con = connect(out)
    tables = load(con, args.mode, args.data)
    stage("load")

    db_api = DuckDBAPI(con)
    settings = SettingsCreator(
        link_type=link_type(args.mode),
        unique_id_column_name="record_id",
        blocking_rules_to_generate_predictions=blocking_rules(args.mode),
        comparisons=comparisons(args.mode),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(register(db_api, tables), settings, log_level=logging.WARNING)

    # Splink's recommended training: the prior from a deterministic rule and its assumed recall (khop's
    # prior_rule = "pin", prior_recall), u by random sampling, m by EM on two blocking rules that between
    # them leave no comparison untrained (date of birth with given name first, then the PIN).
    linker.training.estimate_probability_two_random_records_match(["l.pin = r.pin"], recall=cfg["prior_recall"])
    stage("prior")
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=cfg["seed"])
    stage("u")
    _install_em_zero_clamp()
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob", "given"), max_pairs=1e7)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("pin"), max_pairs=1e7)
    stage("em")

    pred = linker.inference.predict(threshold_match_probability=cfg["threshold"])
    stage("predict")
    cols = {c.unquote().name for c in pred.columns}
    sl = "source_dataset_l" if "source_dataset_l" in cols else f"'{RIGHT}'"
    sr = "source_dataset_r" if "source_dataset_r" in cols else f"'{RIGHT}'"
    target = out / "predictions.parquet"
    con.execute(
        f"""COPY (SELECT {sl} AS source_l, record_id_l AS id_l, {sr} AS source_r, record_id_r AS id_r,
                         match_weight, match_probability
                  FROM {pred.physical_name}) TO '{target}' (FORMAT parquet)"""
    )
    stage("write")
    total = time.perf_counter() - t0
    n = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchall()[0][0]
    report = {
        "splink": splink.__version__,
        "duckdb": duckdb.__version__,
        "threads": con.execute("SELECT current_setting('threads')").fetchall()[0][0],
        "memory_limit": con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0],
        "threshold": cfg["threshold"],
        "prior": linker._settings_obj._probability_two_random_records_match,
        "predicted_pairs": n,
        "em_zero_clamped": EM_ZERO_CLAMPED,
        "seconds": {**stages, "total": round(total, 3)},
    }
    (out / "splink_run.json").write_text(json.dumps(report, indent=2))
    log(f"{n} pairs at or above {cfg['threshold']} in {total:.2f} s")


def cmd_eval(args: argparse.Namespace) -> None:
    cfg = job_settings(args.job)
    out = args.out
    pred = out / "predictions.parquet"
    if not pred.is_file():
        raise SystemExit(f"splink_peer: {pred} missing: run `run` first")
    truth = args.data / "truth"
    if not any(truth.glob("*.parquet")):
        raise SystemExit(f"splink_peer: no truth Parquet under {truth}")
    con = connect(out)
    tables = load(con, args.mode, args.data)

    # Candidate pairs: every pair some blocking rule finds, each counted once, exactly.
    db_api = DuckDBAPI(con)
    counts = count_comparisons_from_blocking_rules(
        register(db_api, tables),
        blocking_rules=blocking_rules(args.mode),
        link_type=link_type(args.mode),
        unique_id_column_name="record_id",
        record_sample_proportion=1.0,
    )
    candidate_pairs = int(counts[-1]["cumulative_comparison_count"])
    per_rule = [
        {"rule": c["blocking_rule"], "candidate_pairs": int(c["marginal_comparison_count"])} for c in counts
    ]

    # Precision, recall, F1 of the pairs at or above the threshold, as `khop eval` defines them: true pairs
    # are record pairs of one person across the two sources (link) or within the source (dedupe).
    con.execute(f"CREATE TABLE truth AS SELECT source, record_id, person_id FROM read_parquet('{truth}/*.parquet')")
    if args.mode == "link":
        true_pairs = con.execute(
            f"""SELECT coalesce(sum(a.n * b.n), 0) FROM
                  (SELECT person_id, count(*) n FROM truth WHERE source = '{LEFT}' GROUP BY 1) a
                  JOIN (SELECT person_id, count(*) n FROM truth WHERE source = '{RIGHT}' GROUP BY 1) b
                  USING (person_id)"""
        ).fetchall()[0][0]
        pairs_sql = f"""
            SELECT DISTINCT
                CASE WHEN source_l = '{LEFT}' THEN id_l ELSE id_r END AS a,
                CASE WHEN source_l = '{LEFT}' THEN id_r ELSE id_l END AS b,
                '{LEFT}' AS sa, '{RIGHT}' AS sb
            FROM read_parquet('{pred}')
            WHERE match_probability >= {cfg['threshold']} AND source_l <> source_r"""
    else:
        true_pairs = con.execute(
            f"""SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM
                  (SELECT person_id, count(*) n FROM truth WHERE source = '{RIGHT}' GROUP BY 1)"""
        ).fetchall()[0][0]
        pairs_sql = f"""
            SELECT DISTINCT least(id_l, id_r) AS a, greatest(id_l, id_r) AS b, '{RIGHT}' AS sa, '{RIGHT}' AS sb
            FROM read_parquet('{pred}')
            WHERE match_probability >= {cfg['threshold']} AND id_l <> id_r"""
    predicted, tp = con.execute(
        f"""WITH p AS ({pairs_sql})
            SELECT count(*), count(*) FILTER (WHERE ta.person_id = tb.person_id)
            FROM p
            LEFT JOIN truth ta ON ta.source = p.sa AND ta.record_id = p.a
            LEFT JOIN truth tb ON tb.source = p.sb AND tb.record_id = p.b"""
    ).fetchall()[0]
    true_pairs, predicted, tp = int(true_pairs), int(predicted), int(tp)
    precision = tp / predicted if predicted else 0.0
    recall = tp / true_pairs if true_pairs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    report = {
        "candidate_pairs": candidate_pairs,
        "rules": per_rule,
        "match_threshold": cfg["threshold"],
        "pairs": {
            "true_pairs": true_pairs,
            "predicted_pairs": predicted,
            "true_positives": tp,
            "precision": precision,
            "recall": recall,
            "f1": f1,
        },
    }
    (out / "splink_eval.json").write_text(json.dumps(report, indent=2))
    log(f"candidate pairs {candidate_pairs}, precision {precision:.4f}, recall {recall:.4f}, F1 {f1:.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["run", "eval"])
    p.add_argument("--mode", choices=["link", "dedupe"], required=True)
    p.add_argument("--data", type=Path, required=True, help="khop datagen's output directory")
    p.add_argument("--job", type=Path, required=True, help="the khop job spec (threshold, prior recall, seed)")
    p.add_argument("--out", type=Path, required=True, help="where predictions and reports go")
    args = p.parse_args()
    for path in (args.data, args.job):
        if not path.exists():
            raise SystemExit(f"splink_peer: {path} does not exist")
    os.environ.setdefault("TZ", "UTC")
    (cmd_run if args.command == "run" else cmd_eval)(args)


if __name__ == "__main__":
    main()
