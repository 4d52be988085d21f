//! Every refusal, as a table: the command, the error, its code. The harness checks that each one leaves
//! the snapshot byte for byte as it was.

use super::*;
use crate::{ErrorCode, PROTOCOL_VERSION, WorkerState};

/// Jobs `done` (succeeded) and `run` (stage 0: 3 tasks, stage 1 unplanned); workers `w1` (holds attempt
/// 2 of `run`, leased in term 2), `w2` (its attempt 3 failed), `wl` (lost), `wr` (removed).
fn fixture() -> Harness {
    let mut h = Harness::new();
    for w in ["w1", "w2", "wl", "wr"] {
        h.register(w);
    }
    h.submit(
        "done",
        Plan {
            stages: vec![stage("s", 1, &[])],
        },
    );
    assert_eq!(ids(&h.poll("w1", 1, &[]).0), [1]);
    h.succeed("w1", 1);
    let now_ms = h.now;
    h.ok(Command::SubmitJob {
        job_id: Some("run".into()),
        name: "run name".into(),
        spec_toml: "[job]\n".into(),
        plan: Plan {
            stages: vec![stage("s0", 3, &[]), unplanned("s1", &[0])],
        },
        now_ms,
        request_id: Some("r-run".into()),
    });
    h.term = 2;
    assert_eq!(ids(&h.poll("w1", 1, &[]).0), [2]);
    assert_eq!(ids(&h.poll("w2", 1, &[]).0), [3]);
    h.report("w2", 3, failed(true)).unwrap();
    h.ok(Command::RemoveWorker {
        worker_id: "wr".into(),
    });
    h.now += 30_001;
    h.poll("w1", 0, &[2]);
    h.poll("w2", 0, &[]);
    assert_eq!(h.expire(), (vec![], vec!["wl".into()]));
    h
}

fn submit(job_id: &str, stages: Vec<StagePlan>) -> Command {
    Command::SubmitJob {
        job_id: Some(job_id.into()),
        name: "x".into(),
        spec_toml: String::new(),
        plan: Plan { stages },
        now_ms: 0,
        request_id: None,
    }
}

/// `command` (a `SubmitJob`) with a request id, and another name if given.
fn with_request(command: Command, id: &str, other_name: Option<&str>) -> Command {
    match command {
        Command::SubmitJob {
            job_id,
            name,
            spec_toml,
            plan,
            now_ms,
            ..
        } => Command::SubmitJob {
            job_id,
            name: other_name.map_or(name, String::from),
            spec_toml,
            plan,
            now_ms,
            request_id: Some(id.into()),
        },
        other => other,
    }
}

/// `command` (a `RegisterWorker`) with another name.
fn named(command: Command, new_name: impl Into<String>) -> Command {
    match command {
        Command::RegisterWorker {
            worker_id,
            address,
            cores,
            protocol_version,
            now_ms,
            ..
        } => Command::RegisterWorker {
            worker_id,
            name: new_name.into(),
            address,
            cores,
            protocol_version,
            now_ms,
        },
        other => other,
    }
}

fn report(worker: &str, attempt_id: AttemptId, term: u64, outcome: Outcome) -> Command {
    Command::ReportTask {
        worker_id: worker.into(),
        attempt_id,
        term,
        outcome,
        now_ms: 0,
    }
}

fn success(json: &str) -> Outcome {
    Outcome::Succeeded {
        result_json: json.into(),
        elapsed_ms: 0,
    }
}

fn invalid(field: &str) -> Error {
    Error::InvalidArgument {
        field: field.into(),
        reason: String::new(),
    }
}

/// Field errors are compared by field only: their reasons are prose.
fn same(got: &Error, want: &Error) -> bool {
    match (got, want) {
        (Error::InvalidArgument { field: a, .. }, Error::InvalidArgument { field: b, .. }) => {
            a == b
        }
        _ => got == want,
    }
}

#[test]
fn refused_commands_change_nothing() {
    use ErrorCode::*;
    let job = |s: &str| s.to_string();
    let bad_payload = StagePlan {
        tasks: vec![
            tasks(1)[0].clone(),
            TaskPlan {
                payload_json: "{".into(),
            },
        ],
        ..stage("s", 0, &[])
    };
    let register = |id: &str, address: &str, cores, protocol_version| Command::RegisterWorker {
        worker_id: id.into(),
        name: "host".into(),
        address: address.into(),
        cores,
        protocol_version,
        now_ms: 0,
    };
    let add = |job_id: &str, stage| Command::AddStageTasks {
        job_id: job_id.into(),
        stage,
        tasks: tasks(1),
        now_ms: 0,
    };
    let poll = |w: &str| Command::Poll {
        worker_id: w.into(),
        term: 2,
        free_slots: 1,
        running: vec![],
        now_ms: 0,
        queue_slots: 0,
        leaving: false,
    };
    let lost = WorkerState::Lost;
    let removed = WorkerState::Removed;

    let table: Vec<(Command, Error, ErrorCode)> = vec![
        // Jobs.
        (
            submit("done", vec![stage("s", 1, &[])]),
            Error::JobExists(job("done")),
            AlreadyExists,
        ),
        (
            submit("a/b", vec![stage("s", 1, &[])]),
            invalid("job_id"),
            InvalidArgument,
        ),
        (
            submit("", vec![stage("s", 1, &[])]),
            invalid("job_id"),
            InvalidArgument,
        ),
        (
            submit("..", vec![stage("s", 1, &[])]),
            invalid("job_id"),
            InvalidArgument,
        ),
        (submit("j", vec![]), invalid("plan.stages"), InvalidArgument),
        (
            submit("j", vec![stage(" ", 1, &[])]),
            invalid("plan.stages[0].name"),
            InvalidArgument,
        ),
        (
            submit("j", vec![stage("a", 1, &[]), stage("b", 1, &[1])]),
            invalid("plan.stages[1].depends_on[0]"),
            InvalidArgument,
        ),
        (
            submit("j", vec![stage("a", 1, &[]), stage("b", 1, &[0, 2])]),
            invalid("plan.stages[1].depends_on[1]"),
            InvalidArgument,
        ),
        (
            submit(
                "j",
                vec![StagePlan {
                    planned: false,
                    ..stage("a", 1, &[])
                }],
            ),
            invalid("plan.stages[0].tasks"),
            InvalidArgument,
        ),
        (
            submit("j", vec![bad_payload]),
            invalid("plan.stages[0].tasks[1].payload_json"),
            InvalidArgument,
        ),
        (
            with_request(submit("j", vec![stage("s", 1, &[])]), "a b", None),
            invalid("request_id"),
            InvalidArgument,
        ),
        (
            with_request(submit("j", vec![stage("s", 1, &[])]), "", None),
            invalid("request_id"),
            InvalidArgument,
        ),
        (
            with_request(
                submit("j", vec![stage("s", 1, &[])]),
                "r-run",
                Some("another"),
            ),
            Error::RequestReused {
                request_id: job("r-run"),
                job: job("run"),
            },
            AlreadyExists,
        ),
        (
            Command::FailJob {
                job_id: "nope".into(),
                reason: "x".into(),
                now_ms: 0,
            },
            Error::UnknownJob(job("nope")),
            NotFound,
        ),
        (
            Command::FailJob {
                job_id: "done".into(),
                reason: "x".into(),
                now_ms: 0,
            },
            Error::JobNotRunning {
                job: job("done"),
                state: JobState::Succeeded,
            },
            FailedPrecondition,
        ),
        (
            Command::FailJob {
                job_id: "run".into(),
                reason: " ".into(),
                now_ms: 0,
            },
            invalid("reason"),
            InvalidArgument,
        ),
        (add("nope", 1), Error::UnknownJob(job("nope")), NotFound),
        (
            add("run", 9),
            Error::UnknownStage {
                job: job("run"),
                stage: 9,
            },
            NotFound,
        ),
        (
            add("run", 0),
            Error::StageAlreadyPlanned {
                job: job("run"),
                stage: 0,
            },
            FailedPrecondition,
        ),
        (
            add("run", 1),
            Error::StageNotReady {
                job: job("run"),
                stage: 1,
                dependency: 0,
            },
            FailedPrecondition,
        ),
        (
            add("done", 0),
            Error::JobNotRunning {
                job: job("done"),
                state: JobState::Succeeded,
            },
            FailedPrecondition,
        ),
        (
            Command::CancelJob {
                job_id: "nope".into(),
                now_ms: 0,
            },
            Error::UnknownJob(job("nope")),
            NotFound,
        ),
        (
            Command::CancelJob {
                job_id: "done".into(),
                now_ms: 0,
            },
            Error::JobNotRunning {
                job: job("done"),
                state: JobState::Succeeded,
            },
            FailedPrecondition,
        ),
        (
            Command::SetModel {
                job_id: "nope".into(),
                model_json: "{}".into(),
            },
            Error::UnknownJob(job("nope")),
            NotFound,
        ),
        (
            Command::SetModel {
                job_id: "run".into(),
                model_json: "{".into(),
            },
            invalid("model_json"),
            InvalidArgument,
        ),
        (
            Command::CleanupJob {
                job_id: "run".into(),
            },
            Error::JobStillRunning(job("run")),
            FailedPrecondition,
        ),
        (
            Command::CleanupJob {
                job_id: "nope".into(),
            },
            Error::UnknownJob(job("nope")),
            NotFound,
        ),
        (
            Command::SetConfig {
                config: Config {
                    lease_ms: 0,
                    ..Config::default()
                },
            },
            invalid("config.lease_ms"),
            InvalidArgument,
        ),
        (
            Command::SetConfig {
                config: Config {
                    worker_timeout_ms: 0,
                    ..Config::default()
                },
            },
            invalid("config.worker_timeout_ms"),
            InvalidArgument,
        ),
        // Workers.
        (
            register("w9", "a:1", 4, PROTOCOL_VERSION + 1),
            Error::ProtocolMismatch {
                worker: job("w9"),
                got: PROTOCOL_VERSION + 1,
                want: PROTOCOL_VERSION,
            },
            FailedPrecondition,
        ),
        (
            register("w1", "elsewhere:1", 4, PROTOCOL_VERSION),
            Error::WorkerExists {
                worker: job("w1"),
                name: job("w1 host"),
                address: job("w1.local:7070"),
            },
            AlreadyExists,
        ),
        (
            register("w9", "a:1", 0, PROTOCOL_VERSION),
            invalid("cores"),
            InvalidArgument,
        ),
        (
            register("w9", " ", 4, PROTOCOL_VERSION),
            invalid("address"),
            InvalidArgument,
        ),
        (
            named(register("w9", "a:1", 4, PROTOCOL_VERSION), " "),
            invalid("name"),
            InvalidArgument,
        ),
        (
            named(register("w9", "a:1", 4, PROTOCOL_VERSION), "x".repeat(129)),
            invalid("name"),
            InvalidArgument,
        ),
        (
            named(register("w9", "a:1", 4, PROTOCOL_VERSION), "a\nb"),
            invalid("name"),
            InvalidArgument,
        ),
        (
            register("w 9", "a:1", 4, PROTOCOL_VERSION),
            invalid("worker_id"),
            InvalidArgument,
        ),
        (poll("nope"), Error::UnknownWorker(job("nope")), NotFound),
        (
            poll("wl"),
            Error::WorkerGone {
                worker: job("wl"),
                state: lost,
            },
            FailedPrecondition,
        ),
        (
            poll("wr"),
            Error::WorkerGone {
                worker: job("wr"),
                state: removed,
            },
            FailedPrecondition,
        ),
        (
            Command::DrainWorker {
                worker_id: "nope".into(),
            },
            Error::UnknownWorker(job("nope")),
            NotFound,
        ),
        (
            Command::DrainWorker {
                worker_id: "wl".into(),
            },
            Error::WorkerNotActive {
                worker: job("wl"),
                state: lost,
            },
            FailedPrecondition,
        ),
        (
            Command::RemoveWorker {
                worker_id: "nope".into(),
            },
            Error::UnknownWorker(job("nope")),
            NotFound,
        ),
        (
            Command::RemoveWorker {
                worker_id: "wr".into(),
            },
            Error::WorkerNotActive {
                worker: job("wr"),
                state: removed,
            },
            FailedPrecondition,
        ),
        // Reports.
        (
            report("w1", 99, 2, progress(1)),
            Error::UnknownAttempt(99),
            NotFound,
        ),
        (
            report("w2", 2, 2, progress(1)),
            Error::NotHolder {
                attempt: 2,
                worker: job("w2"),
                holder: job("w1"),
            },
            FailedPrecondition,
        ),
        (
            report("w1", 2, 1, success("{}")),
            Error::StaleTerm {
                attempt: 2,
                term: 1,
                lease_term: 2,
            },
            FailedPrecondition,
        ),
        (
            report("w1", 2, 2, success("{")),
            invalid("outcome.result_json"),
            InvalidArgument,
        ),
        (
            report("w1", 1, 1, progress(1)),
            Error::JobNotRunning {
                job: job("done"),
                state: JobState::Succeeded,
            },
            FailedPrecondition,
        ),
        (
            report("w2", 3, 2, success("{}")),
            Error::AttemptNotRunning {
                attempt: 3,
                state: job("Failed { reason: \"disk full\" }"),
            },
            FailedPrecondition,
        ),
        (
            report("w2", 3, 2, failed(true)),
            Error::AttemptNotRunning {
                attempt: 3,
                state: job("Failed { reason: \"disk full\" }"),
            },
            FailedPrecondition,
        ),
    ];
    let mut h = fixture();
    for (command, want, code) in table {
        let c = format!("{command:?}");
        let got = h.refused(command);
        assert!(same(&got, &want), "{c}\n got {got:?}\nwant {want:?}");
        assert_eq!(got.code(), code, "{c}");
        let reply = Reply::from(got.clone());
        assert_eq!(
            reply,
            Reply::Error {
                code,
                message: got.to_string()
            }
        );
    }
}

#[test]
fn error_messages_say_what_to_do() {
    let e = Error::ProtocolMismatch {
        worker: "w1".into(),
        got: 2,
        want: 1,
    };
    assert_eq!(
        e.to_string(),
        "worker w1 speaks protocol version 2, this coordinator speaks version 1: run the same khop \
         release on workers and coordinators"
    );
    let e = Error::AlreadyCommitted {
        job: "j".into(),
        stage: 1,
        task: 2,
        by: 7,
        attempt: 9,
    };
    assert_eq!(
        e.to_string(),
        "task 1/2 of job j is already committed by attempt 7: attempt 9 is fenced, discard its output"
    );
    let e = Error::WorkerGone {
        worker: "w1".into(),
        state: WorkerState::Lost,
    };
    assert_eq!(e.to_string(), "worker w1 is Lost: register it again");
}
