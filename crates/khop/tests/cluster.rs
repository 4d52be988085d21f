//! The cluster with real processes: coordinators and workers are `khop` processes on 127.0.0.x ports,
//! the CLI is the `khop` binary, faults are SIGKILLs. Every job's outputs (pairs, clusters,
//! reconciliation, as sorted rows read from Parquet) must equal those of `khop link` on the same spec.
//!
//! The cases share one generated dataset and one embedded reference run, and run one at a time (a lock):
//! they start processes that each use every core.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

#[path = "common/process.rs"]
mod process;
#[path = "common/s3.rs"]
mod s3;
use process::{KHOP, assert_same_files, datagen, run_ok};
use s3::{BUCKET, S3Server};

const TOKEN: &str = "test-token-all-roles-0001";

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The dataset and the embedded run's output, made once.
struct Reference {
    _dir: tempfile::TempDir,
    job: PathBuf,
    output: PathBuf,
}

fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let started = Instant::now();
        datagen(&data, 20_000, 500, 3);
        // Small partitions and training keep tasks short; the cluster and the embedded run use the same.
        let job = data.join("job.toml");
        let text = std::fs::read_to_string(&job)
            .unwrap()
            .replace("partitions = 64", "partitions = 8")
            .replace("u_pairs = 1000000", "u_pairs = 100000");
        std::fs::write(&job, text).unwrap();
        let output = dir.path().join("embedded");
        run_ok(
            Command::new(KHOP)
                .arg("link")
                .arg(&job)
                .arg("--output")
                .arg(&output),
        );
        eprintln!(
            "reference: datagen + embedded link in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Reference {
            _dir: dir,
            job,
            output,
        }
    })
}

/// Every row of the Parquet files in `dir`, each as its values joined by `|`, sorted.
fn rows(dir: &Path) -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    paths.sort();
    let mut rows = Vec::new();
    let options = FormatOptions::default().with_null("∅");
    for path in paths {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let formatters: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                .collect();
            for r in 0..batch.num_rows() {
                let row: Vec<String> = formatters.iter().map(|f| f.value(r).to_string()).collect();
                rows.push(row.join("|"));
            }
        }
    }
    rows.sort();
    rows
}

fn assert_same_outputs(output: &Path) {
    let reference = &reference().output;
    for dir in ["pairs", "clusters", "reconciliation"] {
        let want = rows(&reference.join(dir));
        let got = rows(&output.join(dir));
        assert!(!want.is_empty(), "the reference has no {dir}");
        assert_eq!(got.len(), want.len(), "{dir}: row counts differ");
        assert!(got == want, "{dir}: rows differ from the embedded run's");
    }
    assert!(output.join("summary.json").exists(), "no summary.json");
    assert!(
        !output.join(".khop-scratch").exists(),
        "scratch files were not removed"
    );
}

/// A free port on `ip` (the listener is dropped; the coordinator binds it right after).
fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Cluster {
    dir: tempfile::TempDir,
    listen: BTreeMap<u64, String>,
    coordinators: BTreeMap<u64, Child>,
    workers: Vec<Child>,
    auth: Option<PathBuf>,
    /// The token the CLI sends.
    token: String,
    /// Environment of every coordinator and worker (an object store's endpoint and keys).
    env: Vec<(&'static str, String)>,
    /// Flags every coordinator gets besides the usual ones.
    coordinator_args: Vec<String>,
}

impl Cluster {
    /// `n` coordinators (1 bootstraps and adds the others), no workers yet.
    fn start(n: u64, auth: Option<&str>) -> Cluster {
        Self::start_with_env(n, auth, Vec::new())
    }

    fn start_with_env(n: u64, auth: Option<&str>, env: Vec<(&'static str, String)>) -> Cluster {
        Self::start_with(n, auth, env, &[])
    }

    fn start_with(
        n: u64,
        auth: Option<&str>,
        env: Vec<(&'static str, String)>,
        coordinator_args: &[&str],
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let listen = (1..=n)
            .map(|id| {
                let ip = format!("127.0.0.{}", id + 1);
                let port = free_port(&ip);
                (id, format!("{ip}:{port}"))
            })
            .collect();
        let auth = auth.map(|text| {
            let path = dir.path().join("auth.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let mut cluster = Cluster {
            dir,
            listen,
            coordinators: BTreeMap::new(),
            workers: Vec::new(),
            auth,
            token: TOKEN.to_string(),
            env,
            coordinator_args: coordinator_args.iter().map(|a| a.to_string()).collect(),
        };
        let started = Instant::now();
        for id in 1..=n {
            cluster.start_coordinator(id);
        }
        cluster.wait_for_voters(n as usize);
        eprintln!(
            "{n} coordinators up in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        cluster
    }

    fn addresses(&self) -> String {
        self.listen
            .values()
            .map(|a| format!("http://{a}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn log(&self, name: &str) -> File {
        File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .unwrap()
    }

    fn start_coordinator(&mut self, id: u64) {
        let peers = self
            .listen
            .iter()
            .map(|(id, a)| format!("{id}=http://{a}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut cmd = Command::new(KHOP);
        cmd.args(["coordinator", "--id", &id.to_string(), "--listen"])
            .arg(&self.listen[&id])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("coordinator-{id}")))
            .args(["--peers", &peers])
            .args([
                "--lease-ms",
                "3000",
                "--worker-timeout-ms",
                "3000",
                "--poll-ms",
                "300",
            ])
            .args(&self.coordinator_args)
            .env("KHOP_TOKEN", TOKEN)
            .env("KHOP_LOG", "info,raft=warn")
            .envs(self.env.clone())
            .stdout(Stdio::null())
            .stderr(self.log(&format!("coordinator-{id}")));
        if id == 1 {
            cmd.arg("--bootstrap");
        }
        if let Some(auth) = &self.auth {
            cmd.arg("--auth").arg(auth).env_remove("KHOP_TOKEN");
        }
        self.coordinators.insert(id, cmd.spawn().unwrap());
    }

    /// Starts a worker; `delay_ms` holds each of its tasks that long first (to kill it mid-task).
    fn start_worker(&mut self, delay_ms: Option<u64>) -> usize {
        let n = self.workers.len();
        let mut cmd = Command::new(KHOP);
        cmd.args(["worker", "--slots", "1", "--name", &format!("worker-{n}")])
            .args(["--coordinators", &self.addresses()])
            .env("KHOP_TOKEN", &self.token)
            .env("KHOP_LOG", "info")
            .envs(self.env.clone())
            .stdout(Stdio::null())
            .stderr(self.log(&format!("worker-{n}")));
        if let Some(delay) = delay_ms {
            cmd.env("KHOP_WORKER_TASK_DELAY_MS", delay.to_string());
        }
        self.workers.push(cmd.spawn().unwrap());
        n
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(KHOP)
            .args(args)
            .env("KHOP_COORDINATORS", self.addresses())
            .env("KHOP_TOKEN", &self.token)
            .env("KHOP_LOG", "warn")
            .output()
            .unwrap()
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "khop {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.cli_ok(args)).unwrap()
    }

    /// The cluster as some coordinator sees it, or `None` when none answers.
    fn status(&self) -> Option<Value> {
        let out = self.cli(&["cluster", "--json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    fn leader(&self) -> Option<u64> {
        self.status()
            .and_then(|s| s["leader_id"].as_u64())
            .filter(|&l| l != 0)
    }

    fn wait_for_voters(&self, n: usize) {
        wait_until("the coordinators to join", Duration::from_secs(30), || {
            self.status().is_some_and(|s| {
                s["leader_id"].as_u64().unwrap_or(0) != 0
                    && s["coordinators"]
                        .as_array()
                        .is_some_and(|c| c.iter().filter(|c| c["role"] != "learner").count() == n)
            })
        });
    }

    fn submit(&self, output: &Path) -> String {
        self.submit_job(&reference().job, output)
    }

    fn submit_job(&self, job: &Path, output: &Path) -> String {
        let id = self.cli_ok(&[
            "submit",
            job.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ]);
        id.trim().to_string()
    }

    fn job(&self, id: &str) -> Option<Value> {
        let out = self.cli(&["status", id, "--json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    fn wait_for_job(&self, id: &str, timeout: Duration) {
        let mut state = String::new();
        wait_until(&format!("job {id} to end"), timeout, || {
            if let Some(job) = self.job(id) {
                state = job["state"].as_str().unwrap_or("").to_string();
            }
            matches!(state.as_str(), "succeeded" | "failed" | "cancelled")
        });
        assert_eq!(state, "succeeded", "job {id}: {:?}", self.job(id));
    }

    /// Stages with at least one committed task.
    fn stages_done(&self, id: &str) -> usize {
        self.job(id)
            .and_then(|j| {
                j["stages"]
                    .as_array()
                    .map(|s| s.iter().filter(|s| s["state"] == "succeeded").count())
            })
            .unwrap_or(0)
    }

    /// Sends worker `n`'s process SIGTERM (what `docker stop` sends).
    fn sigterm_worker(&self, n: usize) {
        run_ok(Command::new("kill").args(["-TERM", &self.workers[n].id().to_string()]));
    }

    /// Waits for worker `n`'s process to end; its exit status.
    fn wait_for_worker_exit(&mut self, n: usize, timeout: Duration) -> std::process::ExitStatus {
        let mut exit = None;
        wait_until(&format!("worker {n} to exit"), timeout, || {
            exit = self.workers[n].try_wait().unwrap();
            exit.is_some()
        });
        exit.unwrap()
    }

    fn workers_json(&self) -> Vec<Value> {
        self.json(&["workers", "--json"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn output(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self
            .coordinators
            .values_mut()
            .chain(self.workers.iter_mut())
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!("==== {} (last lines)", path.display());
                    for line in tail.into_iter().rev() {
                        eprintln!("{line}");
                    }
                }
            }
        }
    }
}

/// `khop link` runs the cluster's code path in one process; the engine's `run_job` (no Raft, no gRPC,
/// what the engine's own tests run) runs the same tasks: the same files, byte for byte, with one
/// in-process worker or three.
#[test]
fn khop_link_writes_what_the_engine_alone_writes() {
    let reference = reference();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&reference.job).unwrap();
    let mut spec = khop_engine::JobSpec::from_toml(&text, reference.job.parent().unwrap()).unwrap();
    spec.output = dir.path().join("engine");
    khop_engine::run_job(&spec, &khop_engine::Silent).unwrap();
    // And with three in-process workers sharing the slots. The run's temporary directory holds the
    // Raft directory a killed run left (its process is gone), which is removed, and one of a run
    // still going (this process), which is not.
    let tmp = dir.path().join("tmp");
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let stale = tmp.join(format!("khop-link-{gone_pid}-x1"));
    let live = tmp.join(format!("khop-link-{}-x2", std::process::id()));
    for d in [&stale, &live] {
        std::fs::create_dir_all(d.join("raft")).unwrap();
    }
    let three = dir.path().join("three");
    run_ok(
        Command::new(KHOP)
            .env("TMPDIR", &tmp)
            .arg("link")
            .arg(&reference.job)
            .args(["--workers", "3", "--output"])
            .arg(&three),
    );
    assert!(!stale.exists() && live.exists());
    // The run's own Raft directory is removed when it ends.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 1);
    assert_same_files(
        &reference.output,
        &spec.output,
        "between khop link and run_job",
    );
    assert_same_files(
        &three,
        &spec.output,
        "between khop link --workers 3 and run_job",
    );
}

/// A small generated dataset in CSV under `dir`, its job's partitions few; the job file's path.
fn csv_dataset(dir: &Path) -> PathBuf {
    run_ok(
        Command::new(KHOP)
            .arg("datagen")
            .args(["--population", "2000", "--civil-servants", "50"])
            .args(["--format", "csv", "--out"])
            .arg(dir),
    );
    let job = dir.join("job.toml");
    let text = std::fs::read_to_string(&job)
        .unwrap()
        .replace("partitions = 64", "partitions = 4")
        .replace("u_pairs = 1000000", "u_pairs = 10000");
    std::fs::write(&job, text).unwrap();
    job
}

/// Replaces the civil servants' CSV file of the dataset at `dir` with what `edit` makes of it.
fn edit_civil_servants(dir: &Path, edit: impl FnOnce(&str) -> String) {
    let path = dir.join("civil_servants/part-00000.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(&text)).unwrap();
}

/// An input without its id column fails the same way on every attempt: `khop link` fails after the
/// first, saying which file lacks which column, instead of spending the retry budget.
#[test]
fn a_missing_id_column_fails_the_job_after_one_attempt() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let job = csv_dataset(dir.path());
    edit_civil_servants(dir.path(), |text| text.replacen("record_id", "ma_ho_so", 1));
    let started = Instant::now();
    let out = Command::new(KHOP).arg("link").arg(&job).output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for part in [
        "the job is failed: stage 0 (standardise civil_servants), task 0: failed, not retryable: ",
        "input `civil_servants`: ",
        "civil_servants/part-00000.csv: column `record_id` not found (columns: ma_ho_so,",
    ] {
        assert!(stderr.contains(part), "{part}\n{stderr}");
    }
    assert!(seconds < 30.0, "{seconds:.1} s");
}

/// A file of a header alone is read as an input of no records: the job runs, and both
/// `summary.json` and `khop link` warn of it.
#[test]
fn an_input_without_records_is_a_warning() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let job = csv_dataset(dir.path());
    edit_civil_servants(dir.path(), |text| {
        text.lines().next().unwrap().to_owned() + "\n"
    });
    let output = dir.path().join("out");
    let out = run_ok(
        Command::new(KHOP)
            .arg("link")
            .arg(&job)
            .arg("--output")
            .arg(&output),
    );
    let warning = "input `civil_servants` has no records: its file holds none";
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("warning: {warning}")), "{stdout}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(output.join("summary.json")).unwrap())
            .unwrap();
    let warnings = summary["warnings"].as_array().unwrap();
    assert!(warnings.contains(&Value::from(warning)), "{warnings:?}");
    assert_eq!(summary["sources"][0]["input"], 0);
    assert!(summary["sources"][1]["input"].as_u64().unwrap() >= 2000);
}

/// A dedupe job (the reference population against itself, with `benches/jobs/dedupe.toml`) has a
/// stage a link job does not (`partition`): workers run it, and the outputs are the engine's.
#[test]
fn a_dedupe_job_on_workers_writes_what_the_engine_alone_writes() {
    let reference = reference();
    let dir = tempfile::tempdir().unwrap();
    let data = reference.job.parent().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/jobs/dedupe.toml"),
    )
    .unwrap()
    .replace("u_pairs = 2000000", "u_pairs = 100000")
    .replace("partitions = 64", "partitions = 8\ntask_rows = 6000");
    let job = dir.path().join("dedupe.toml");
    std::fs::write(&job, &text).unwrap();
    let mut spec = khop_engine::JobSpec::from_toml(&text, data).unwrap();
    assert_eq!(khop_engine::task::stage_names(&spec).len(), 7);
    spec.output = dir.path().join("engine");
    khop_engine::run_job(&spec, &khop_engine::Silent).unwrap();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(spec.output.join("summary.json")).unwrap())
            .unwrap();
    assert!(summary["timings"]["partition population"].is_number());
    assert!(summary["candidate_pairs"].as_u64().unwrap() > 0);
    // The job's paths are relative to its file: the data stays where the reference made it.
    std::fs::write(
        &job,
        text.replace(
            "path = \"population\"",
            &format!("path = {:?}", data.join("population")),
        ),
    )
    .unwrap();
    let three = dir.path().join("three");
    run_ok(
        Command::new(KHOP)
            .arg("link")
            .arg(&job)
            .args(["--workers", "3", "--output"])
            .arg(&three),
    );
    assert_same_files(
        &three,
        &spec.output,
        "between a dedupe on three workers and run_job",
    );
}

#[test]
fn three_coordinators_and_three_workers_run_a_job() {
    let _serial = serial();
    reference();
    let mut cluster = Cluster::start(3, None);
    for _ in 0..3 {
        cluster.start_worker(None);
    }
    let started = Instant::now();
    let output = cluster.output("out");
    let id = cluster.submit(&output);
    let watched = cluster.cli(&["watch", &id]);
    assert!(
        watched.status.success(),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    cluster.wait_for_job(&id, Duration::from_secs(60));
    eprintln!(
        "3 coordinators, 3 workers: job in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_same_outputs(&output);
    let job = cluster.job(&id).unwrap();
    assert!(job["summary"]["pairs_written"].as_u64().unwrap() > 0);
    let stages = job["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 8);

    // Timings: per stage in the status, and in summary.json with the embedded run's keys.
    for s in stages {
        let (started, finished) = (
            s["started_ms"].as_i64().unwrap(),
            s["finished_ms"].as_i64().unwrap(),
        );
        assert!(started > 0 && finished >= started, "{s}");
        let wall = s["wall_seconds"].as_f64().unwrap();
        assert!(
            (wall - (finished - started) as f64 / 1000.0).abs() < 1e-6,
            "{s}"
        );
        assert!(s["tasks"].as_u64().unwrap() > 0, "{s}");
        assert!(s["task_seconds"].as_f64().unwrap() >= 0.0, "{s}");
    }
    assert!(job["task_seconds"].as_f64().unwrap() > 0.0, "{job}");
    assert!(job["wall_seconds"].as_f64().unwrap() > 0.0, "{job}");
    let timings = |dir: &Path| -> BTreeMap<String, f64> {
        let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
        let summary: Value = serde_json::from_str(&text).unwrap();
        serde_json::from_value(summary["timings"].clone()).unwrap()
    };
    let (cluster_timings, embedded) = (timings(&output), timings(&reference().output));
    assert_eq!(
        cluster_timings.keys().collect::<Vec<_>>(),
        embedded.keys().collect::<Vec<_>>(),
        "the cluster's summary has the embedded run's timings"
    );
    for s in stages {
        let name = s["name"].as_str().unwrap();
        assert_eq!(
            cluster_timings[name],
            s["wall_seconds"].as_f64().unwrap(),
            "{name}"
        );
    }
    assert!(cluster_timings["total"] > 0.0);

    // Workers show the names they registered with, and no address (they serve nothing).
    let mut names: Vec<String> = cluster
        .workers_json()
        .iter()
        .map(|w| {
            assert_eq!(w["address"], "", "{w}");
            w["name"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["worker-0", "worker-1", "worker-2"]);
}

/// The reference job with its inputs and scratch files in an object store (a real S3 server): the
/// coordinator lists and cuts the inputs there, workers read them and hand files to each other
/// there, and the job's end removes its scratch objects.
#[test]
fn a_job_with_inputs_and_scratch_on_an_object_store() {
    let _serial = serial();
    let reference = reference();
    let server = S3Server::start();
    let data = reference.job.parent().unwrap();
    for side in ["population", "civil_servants"] {
        server.put(
            &format!("in/{side}/part-00000.parquet"),
            &data.join(side).join("part-00000.parquet"),
        );
    }
    let text = std::fs::read_to_string(&reference.job).unwrap();
    let mut remote = text.replace(
        "[execution]",
        &format!("[execution]\nscratch = \"s3://{BUCKET}/scratch/cluster\""),
    );
    for side in ["population", "civil_servants"] {
        remote = remote.replace(
            &format!("path = \"{side}\""),
            &format!("path = \"s3://{BUCKET}/in/{side}\""),
        );
    }
    assert_eq!(remote.matches("s3://").count(), 3);
    let job = data.join("job-s3-cluster.toml");
    std::fs::write(&job, remote).unwrap();

    let mut cluster = Cluster::start_with_env(1, None, server.env());
    for _ in 0..2 {
        cluster.start_worker(None);
    }
    let output = cluster.output("out");
    let id = cluster.submit_job(&job, &output);
    cluster.wait_for_job(&id, Duration::from_secs(120));
    assert_same_outputs(&output);
    wait_until(
        "the scratch objects to be removed",
        Duration::from_secs(10),
        || server.keys("scratch/").is_empty(),
    );
}

#[test]
fn a_killed_worker_s_tasks_run_again() {
    let _serial = serial();
    reference();
    let mut cluster = Cluster::start(3, None);
    // The first worker holds every task for 2 s, so it is surely killed mid-task.
    let slow = cluster.start_worker(Some(2000));
    let output = cluster.output("out");
    let id = cluster.submit(&output);
    let mut victim = String::new();
    wait_until(
        "the slow worker to hold a task",
        Duration::from_secs(30),
        || {
            cluster.workers_json().iter().any(|w| {
                let busy = w["running"].as_array().is_some_and(|r| !r.is_empty());
                if busy {
                    victim = w["id"].as_str().unwrap().to_string();
                }
                busy
            })
        },
    );
    let killed = Instant::now();
    cluster.workers[slow].kill().unwrap();
    cluster.start_worker(None);
    cluster.start_worker(None);
    wait_until(
        "the killed worker to be lost",
        Duration::from_secs(30),
        || {
            cluster
                .workers_json()
                .iter()
                .any(|w| w["id"] == victim.as_str() && w["state"] == "lost")
        },
    );
    eprintln!(
        "killed worker lost after {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    cluster.wait_for_job(&id, Duration::from_secs(90));
    assert_same_outputs(&output);
}

#[test]
fn a_killed_leader_is_replaced_and_the_job_finishes() {
    let _serial = serial();
    reference();
    let mut cluster = Cluster::start(3, None);
    cluster.start_worker(Some(300));
    cluster.start_worker(Some(300));
    let output = cluster.output("out");
    let id = cluster.submit(&output);
    wait_until("a stage to finish", Duration::from_secs(60), || {
        cluster.stages_done(&id) >= 1
    });
    let old = cluster.leader().unwrap();
    let commit = cluster.status().unwrap()["commit_index"].as_u64().unwrap();
    let killed = Instant::now();
    let mut leader = cluster.coordinators.remove(&old).unwrap();
    leader.kill().unwrap();
    leader.wait().unwrap();
    wait_until("a new leader to commit", Duration::from_secs(30), || {
        cluster.status().is_some_and(|s| {
            let l = s["leader_id"].as_u64().unwrap_or(0);
            l != 0 && l != old && s["commit_index"].as_u64().unwrap_or(0) > commit
        })
    });
    eprintln!(
        "leader {old} killed: a new leader committed after {:.2} s",
        killed.elapsed().as_secs_f64()
    );
    cluster.wait_for_job(&id, Duration::from_secs(90));
    assert_same_outputs(&output);
}

#[test]
fn every_node_restarted_mid_job() {
    let _serial = serial();
    reference();
    let mut cluster = Cluster::start(3, None);
    cluster.start_worker(Some(300));
    cluster.start_worker(Some(300));
    let output = cluster.output("out");
    let id = cluster.submit(&output);
    wait_until("a stage to finish", Duration::from_secs(60), || {
        cluster.stages_done(&id) >= 1
    });
    let restarted = Instant::now();
    for child in cluster.coordinators.values_mut() {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    cluster.coordinators.clear();
    for id in 1..=3 {
        cluster.start_coordinator(id);
    }
    wait_until(
        "a leader after the restart",
        Duration::from_secs(30),
        || cluster.leader().is_some(),
    );
    eprintln!(
        "all coordinators killed and restarted: leader after {:.2} s",
        restarted.elapsed().as_secs_f64()
    );
    cluster.wait_for_job(&id, Duration::from_secs(90));
    assert_same_outputs(&output);
}

/// Polls and heartbeats do not write the Raft log: the leader answers a poll that changes nothing
/// else from a read and keeps liveness and leases in memory. An idle cluster (3 coordinators, 8
/// workers polling every 300 ms, no job) commits nothing in 20 s, shows its workers as seen just now,
/// and still loses a worker killed then.
#[test]
fn an_idle_cluster_writes_nothing_to_the_log() {
    let _serial = serial();
    let mut cluster = Cluster::start(3, None);
    for _ in 0..8 {
        cluster.start_worker(None);
    }
    wait_until("8 workers to register", Duration::from_secs(30), || {
        let workers = cluster.workers_json();
        workers.len() == 8 && workers.iter().all(|w| w["state"] == "active")
    });
    let commit = |cluster: &Cluster| -> u64 {
        let mut commit = None;
        wait_until("the cluster's status", Duration::from_secs(10), || {
            commit = cluster.status().and_then(|s| s["commit_index"].as_u64());
            commit.is_some()
        });
        commit.unwrap()
    };
    // Settle: the registrations and the leader's config are committed.
    std::thread::sleep(Duration::from_secs(2));
    let before = commit(&cluster);
    let idle = Duration::from_secs(20);
    std::thread::sleep(idle);
    let after = commit(&cluster);
    eprintln!(
        "idle cluster, 8 workers: {} entries committed in {} s",
        after - before,
        idle.as_secs()
    );
    assert!(
        after - before <= 1,
        "an idle cluster committed {} entries in {} s",
        after - before,
        idle.as_secs()
    );

    // The workers were heard all along, by the leader.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let workers = cluster.workers_json();
    for w in &workers {
        assert_eq!(w["state"], "active", "{w}");
        let seen = w["last_seen_unix_ms"].as_i64().unwrap();
        assert!(
            now_ms - seen < 3_000,
            "{w} was last seen {} ms ago",
            now_ms - seen
        );
    }

    // A worker killed now is lost after the worker timeout (3 s here), from the leader's memory.
    let victim = workers[0]["id"].as_str().unwrap().to_string();
    let n = workers[0]["name"].as_str().unwrap()["worker-".len()..]
        .parse::<usize>()
        .unwrap();
    let killed = Instant::now();
    cluster.workers[n].kill().unwrap();
    wait_until(
        "the killed worker to be lost",
        Duration::from_secs(30),
        || {
            cluster
                .workers_json()
                .iter()
                .any(|w| w["id"] == victim.as_str() && w["state"] == "lost")
        },
    );
    eprintln!(
        "idle worker killed: lost after {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    assert!(
        cluster
            .workers_json()
            .iter()
            .filter(|w| w["state"] == "active")
            .count()
            == 7
    );
}

/// The coordinators forget finished jobs and gone workers after their retention (here 3 s), so that
/// the replicated state stays bounded; a job's outputs stay.
#[test]
fn finished_jobs_and_gone_workers_are_forgotten_after_their_retention() {
    let _serial = serial();
    reference();
    let retention = [
        "--forget-jobs-after-ms",
        "3000",
        "--forget-workers-after-ms",
        "3000",
    ];
    let mut cluster = Cluster::start_with(3, None, Vec::new(), &retention);
    let worker = cluster.start_worker(None);
    let output = cluster.output("out");
    let id = cluster.submit(&output);
    cluster.wait_for_job(&id, Duration::from_secs(90));
    cluster.sigterm_worker(worker);
    assert!(
        cluster
            .wait_for_worker_exit(worker, Duration::from_secs(30))
            .success()
    );
    assert_eq!(cluster.workers_json()[0]["state"], "left");
    wait_until(
        "the job and the worker to be forgotten",
        Duration::from_secs(30),
        || {
            cluster
                .json(&["status", "--json"])
                .as_array()
                .is_some_and(Vec::is_empty)
                && cluster.workers_json().is_empty()
        },
    );
    let out = cluster.cli(&["status", &id]);
    assert!(!out.status.success(), "a forgotten job is not found");
    assert_same_outputs(&output);
}

/// `khop health` (no token: what a container's health check runs) tells ready coordinators (up and
/// knowing a leader) from those cut off from a quorum and those down, in its output and exit status.
#[test]
fn health_tells_ready_coordinators_from_the_rest() {
    let _serial = serial();
    let mut cluster = Cluster::start(3, None);
    let health = |cluster: &Cluster, ids: &[u64]| -> (bool, String) {
        let addresses: Vec<String> = ids
            .iter()
            .map(|id| format!("http://{}", cluster.listen[id]))
            .collect();
        let out = Command::new(KHOP)
            .args(["health", "--timeout-ms", "1000", "--coordinators"])
            .arg(addresses.join(","))
            .env_remove("KHOP_TOKEN")
            .env("KHOP_LOG", "warn")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    wait_until(
        "every coordinator to be ready",
        Duration::from_secs(30),
        || health(&cluster, &[1, 2, 3]).0,
    );
    let (_, said) = health(&cluster, &[1, 2, 3]);
    assert_eq!(
        said.lines().filter(|l| l.ends_with("  ready")).count(),
        3,
        "{said}"
    );

    // Two of three down: the one left has no quorum, so it knows no leader once its term runs out.
    for id in [2, 3] {
        let mut child = cluster.coordinators.remove(&id).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
    wait_until(
        "coordinator 1 to be not ready",
        Duration::from_secs(30),
        || {
            let (ok, said) = health(&cluster, &[1]);
            !ok && said.contains("not ready: knows no leader")
        },
    );
    let (ok, said) = health(&cluster, &[1, 2, 3]);
    assert!(!ok, "{said}");
    assert_eq!(
        said.lines().filter(|l| l.contains("unreachable")).count(),
        2,
        "{said}"
    );

    // One back: a quorum again, a leader, both ready.
    cluster.start_coordinator(2);
    wait_until(
        "coordinators 1 and 2 to be ready",
        Duration::from_secs(30),
        || health(&cluster, &[1, 2]).0,
    );
}

#[test]
fn a_worker_added_and_one_drained_mid_job() {
    let _serial = serial();
    reference();
    let mut cluster = Cluster::start(3, None);
    let first = cluster.start_worker(Some(200));
    let output = cluster.output("out");
    let id = cluster.submit(&output);
    wait_until("a stage to finish", Duration::from_secs(60), || {
        cluster.stages_done(&id) >= 1
    });
    cluster.start_worker(None);
    let first_id = cluster.workers_json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    cluster.cli_ok(&["cluster", "drain", &first_id]);
    let exit = cluster.wait_for_worker_exit(first, Duration::from_secs(60));
    assert!(exit.success(), "a drained worker exits 0");
    cluster.wait_for_job(&id, Duration::from_secs(90));
    assert_same_outputs(&output);
}

/// SIGTERM drains a worker (as `docker stop` or a rolling restart sends it): it takes no more tasks,
/// runs those it holds to the end, reports them and exits 0, instead of leaving them to be run again
/// after their leases lapse. A second signal stops a worker at once.
#[test]
fn a_worker_sent_sigterm_finishes_its_tasks_then_exits() {
    let _serial = serial();
    reference();
    let mut cluster = Cluster::start(3, None);
    let first = cluster.start_worker(Some(5000));
    let output = cluster.output("out");
    let id = cluster.submit(&output);
    let holding = |cluster: &Cluster, n: usize| -> Option<String> {
        let workers = cluster.workers_json();
        let running = workers.get(n)?["running"].as_array()?.clone();
        running.first()?.as_str().map(str::to_owned)
    };
    let mut attempt = None;
    wait_until("worker 0 to hold a task", Duration::from_secs(60), || {
        attempt = holding(&cluster, 0);
        attempt.is_some()
    });
    let attempt = attempt.unwrap();
    cluster.sigterm_worker(first);
    wait_until("worker 0 to be draining", Duration::from_secs(10), || {
        cluster.workers_json()[0]["state"] == "draining"
    });
    assert!(
        cluster.workers[first].try_wait().unwrap().is_none(),
        "a worker that holds a task runs on after SIGTERM"
    );
    let exit = cluster.wait_for_worker_exit(first, Duration::from_secs(60));
    assert!(exit.success(), "a worker that left exits 0");
    // It ran the attempt it held to the end, reported it, and only then exited.
    let log = std::fs::read_to_string(cluster.output("worker-0.log")).unwrap();
    let ended = log
        .find(&format!("attempt={attempt} ok=true"))
        .unwrap_or_else(|| panic!("attempt {attempt} did not end well on worker 0:\n{log}"));
    let exited = log
        .find("drained: exiting")
        .expect("worker 0 says why it exits");
    assert!(
        ended < exited,
        "worker 0 exited before its attempt ended:\n{log}"
    );
    assert_eq!(
        cluster.workers_json()[0]["state"],
        "left",
        "a worker that drained is shown as gone at once"
    );

    // A second worker, sent two signals while it holds a task, stops at once; a third finishes.
    let second = cluster.start_worker(Some(60_000));
    wait_until("worker 1 to hold a task", Duration::from_secs(60), || {
        holding(&cluster, 1).is_some()
    });
    let asked = Instant::now();
    cluster.sigterm_worker(second);
    std::thread::sleep(Duration::from_millis(200));
    cluster.sigterm_worker(second);
    let exit = cluster.wait_for_worker_exit(second, Duration::from_secs(10));
    assert!(exit.success());
    eprintln!(
        "worker 1 stopped {:.2} s after the first signal",
        asked.elapsed().as_secs_f64()
    );
    cluster.start_worker(None);
    cluster.wait_for_job(&id, Duration::from_secs(90));
    assert_same_outputs(&output);
}

#[test]
fn coordinators_are_added_led_and_removed_from_the_cli() {
    use khop_proto::v1;

    let _serial = serial();
    reference();
    let mut cluster = Cluster::start(3, None);

    // A fourth coordinator, started with an empty data dir and without --bootstrap, joins with the CLI.
    let ip = "127.0.0.5";
    cluster.listen.insert(4, format!("{ip}:{}", free_port(ip)));
    cluster.start_coordinator(4);
    let fourth = format!("http://{}", cluster.listen[&4]);
    cluster.cli_ok(&["cluster", "add", "4", &fourth]);
    cluster.wait_for_voters(4);
    let leader_commit = cluster.status().unwrap()["commit_index"].as_u64().unwrap();
    let at = |cluster: &Cluster, id: u64| -> Option<Value> {
        let address = format!("http://{}", cluster.listen[&id]);
        let out = cluster.cli(&["cluster", "--json", "--coordinators", &address]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    };
    wait_until("coordinator 4 to catch up", Duration::from_secs(30), || {
        at(&cluster, 4).is_some_and(|s| {
            s["answered_by"] == 4
                && s["applied_index"].as_u64().unwrap_or(0) >= leader_commit
                && s["coordinators"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["id"] == 4 && c["role"] == "follower"))
        })
    });

    // Leadership to the newcomer.
    let old = cluster.leader().unwrap();
    cluster.cli_ok(&["cluster", "transfer-leader", "4"]);
    wait_until("coordinator 4 to lead", Duration::from_secs(30), || {
        cluster.leader() == Some(4)
    });

    // The old leader leaves the group; then it can be stopped.
    cluster.cli_ok(&["cluster", "remove", &old.to_string()]);
    wait_until(
        &format!("coordinator {old} to be gone"),
        Duration::from_secs(30),
        || {
            at(&cluster, 4).is_some_and(|s| {
                s["leader_id"] == 4
                    && s["coordinators"].as_array().is_some_and(|c| {
                        c.len() == 3 && c.iter().all(|c| c["id"] != old && c["role"] != "learner")
                    })
            })
        },
    );
    let mut removed = cluster.coordinators.remove(&old).unwrap();
    removed.kill().unwrap();
    removed.wait().unwrap();
    cluster.listen.remove(&old);

    // The three left still commit: a job submitted twice with one request id is one job, and it finishes.
    cluster.start_worker(None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let output = cluster.output("out");
    let request = v1::SubmitJobRequest {
        spec_toml: std::fs::read_to_string(&reference().job).unwrap(),
        output: Some(output.to_str().unwrap().to_string()),
        name: "after removal".into(),
        base_dir: reference().job.parent().unwrap().to_str().unwrap().into(),
        request_id: Some(khop_client::new_request_id()),
    };
    let ids: Vec<String> = rt.block_on(async {
        let client = khop_client::Coordinators::new(&[cluster.addresses()], Some(TOKEN)).unwrap();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let request = request.clone();
            let reply = client
                .call(Duration::from_secs(20), |c| {
                    let request = request.clone();
                    async move { c.jobs().submit_job(request).await }
                })
                .await
                .unwrap();
            ids.push(reply.job_id);
        }
        ids
    });
    assert_eq!(ids[0], ids[1], "a retried submit is the same job");
    let jobs = cluster.json(&["status", "--json"]);
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    cluster.wait_for_job(&ids[0], Duration::from_secs(90));
    assert_same_outputs(&output);
}

/// SIGTERM stops a coordinator within seconds, although its peers keep their Raft streams to it open
/// (a graceful shutdown alone would wait for them forever).
#[test]
fn a_coordinator_stops_on_sigterm_while_its_peers_run() {
    let _serial = serial();
    let mut cluster = Cluster::start(3, None);
    let leader = cluster.leader().unwrap();
    let id = *cluster.coordinators.keys().find(|&&i| i != leader).unwrap();
    let mut child = cluster.coordinators.remove(&id).unwrap();
    let asked = Instant::now();
    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if asked.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("coordinator {id} still running 10 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "coordinator {id} exited with {status:?}");
    eprintln!(
        "coordinator {id} stopped {:.2} s after SIGTERM",
        asked.elapsed().as_secs_f64()
    );
}

#[test]
fn bad_requests_are_refused_and_nothing_crashes() {
    use khop_proto::v1;

    let _serial = serial();
    reference();
    let auth = format!(
        "[tokens]\n\"{TOKEN}\" = [\"operator\", \"engineer\", \"worker\", \"peer\"]\n\"engineer-only-token-01\" = \"engineer\"\n"
    );
    let mut cluster = Cluster::start(3, Some(&auth));
    let stderr = |out: &Output| String::from_utf8_lossy(&out.stderr).into_owned();

    // A malformed spec: INVALID_ARGUMENT naming the field.
    let bad = cluster.output("bad.toml");
    let text = std::fs::read_to_string(&reference().job)
        .unwrap()
        .replace("partitions = 8", "partitions = \"eight\"");
    std::fs::write(&bad, text).unwrap();
    let out = cluster.cli(&["submit", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("InvalidArgument"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("execution.partitions"),
        "{}",
        stderr(&out)
    );

    // Too large: RESOURCE_EXHAUSTED.
    let huge = cluster.output("huge.toml");
    let padding = "# padding\n".repeat(200_000);
    std::fs::write(
        &huge,
        padding + &std::fs::read_to_string(&reference().job).unwrap(),
    )
    .unwrap();
    let out = cluster.cli(&["submit", huge.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("ResourceExhausted"),
        "{}",
        stderr(&out)
    );

    // An unknown job: NOT_FOUND.
    let out = cluster.cli(&["status", "job-0000000000"]);
    assert!(stderr(&out).contains("NotFound"), "{}", stderr(&out));

    // Missing, wrong token: UNAUTHENTICATED; a token without the role: PERMISSION_DENIED.
    cluster.token = "not-a-token-at-all-0000".into();
    let out = cluster.cli(&["status"]);
    assert!(stderr(&out).contains("Unauthenticated"), "{}", stderr(&out));
    cluster.token = "engineer-only-token-01".into();
    let out = cluster.cli(&["submit", reference().job.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("PermissionDenied"),
        "{}",
        stderr(&out)
    );
    cluster.token = TOKEN.into();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let leader = cluster.leader().unwrap();
    let follower = *cluster.listen.keys().find(|&&id| id != leader).unwrap();
    let at = |id: u64| format!("http://{}", cluster.listen[&id]);
    rt.block_on(async {
        let none = khop_client::Coordinators::new(&[at(leader)], None).unwrap();
        let status = none
            .connect(&at(leader))
            .unwrap()
            .jobs()
            .list_jobs(v1::ListJobsRequest {})
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);

        // A write to a follower: UNAVAILABLE with the leader's address.
        let client = khop_client::Coordinators::new(&[at(follower)], Some(TOKEN)).unwrap();
        let status = client
            .connect(&at(follower))
            .unwrap()
            .jobs()
            .cancel_job(v1::CancelJobRequest {
                job_id: "job-0000000001".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(
            status
                .metadata()
                .get("khop-leader")
                .unwrap()
                .to_str()
                .unwrap(),
            at(leader)
        );

        // A report for an attempt this worker does not hold: refused.
        let workers = client.connect(&at(leader)).unwrap().workers();
        let registered = workers
            .clone()
            .register_worker(v1::RegisterWorkerRequest {
                protocol_version: khop_proto::PROTOCOL_VERSION,
                address: String::new(),
                cores: 1,
                name: "fake".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let report = workers
            .clone()
            .report_task(v1::ReportTaskRequest {
                worker_id: registered.worker_id.clone(),
                attempt_id: "424242".into(),
                term: 1,
                outcome: Some(v1::report_task_request::Outcome::Succeeded(
                    v1::TaskSucceeded {
                        result_json: "{}".into(),
                    },
                )),
                elapsed_ms: 1,
            })
            .await;
        assert!(
            !matches!(&report, Ok(r) if r.get_ref().accepted),
            "{report:?}"
        );
        // Another protocol version: FAILED_PRECONDITION with a clear message.
        let status = workers
            .clone()
            .register_worker(v1::RegisterWorkerRequest {
                protocol_version: khop_proto::PROTOCOL_VERSION + 1,
                address: String::new(),
                cores: 1,
                name: "old".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(
            status.message().contains("protocol version"),
            "{}",
            status.message()
        );
        // A worker without a name: INVALID_ARGUMENT naming the field.
        let status = workers
            .clone()
            .register_worker(v1::RegisterWorkerRequest {
                protocol_version: khop_proto::PROTOCOL_VERSION,
                address: String::new(),
                cores: 1,
                name: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().starts_with("name: "),
            "{}",
            status.message()
        );
        // A submit with a malformed request id: INVALID_ARGUMENT naming the field.
        let status = client
            .connect(&at(leader))
            .unwrap()
            .jobs()
            .submit_job(v1::SubmitJobRequest {
                spec_toml: std::fs::read_to_string(&reference().job).unwrap(),
                output: None,
                name: "t".into(),
                base_dir: reference().job.parent().unwrap().to_str().unwrap().into(),
                request_id: Some("has spaces".into()),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().starts_with("request_id: "),
            "{}",
            status.message()
        );
    });

    // Nothing crashed: every coordinator runs and answers.
    for (id, child) in &mut cluster.coordinators {
        assert!(
            child.try_wait().unwrap().is_none(),
            "coordinator {id} exited"
        );
    }
    cluster.wait_for_voters(3);
}
