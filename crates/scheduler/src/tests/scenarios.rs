//! Whole stories: a job's lifecycle, lost workers, duplicate successes, drain, cancel, retries,
//! determinism of replays and snapshots.

use super::*;
use crate::{AbandonCause, Error, StageState, WorkerState};

fn one_stage(n: usize) -> Plan {
    Plan {
        stages: vec![stage("only", n, &[])],
    }
}

fn running(task: TaskState) -> Reply {
    Reply::Reported {
        task,
        job: JobState::Running,
    }
}

#[test]
fn three_stage_job_on_two_workers() {
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    let reply = h.submit("j1", three_stages());
    assert_eq!(
        reply,
        Reply::JobSubmitted {
            job_id: "j1".into(),
            state: JobState::Running
        }
    );
    assert_eq!(h.m.runnable_count(), 2);

    // Only the first stage is runnable.
    let (a, cancel, drain) = h.poll("w1", 4, &[]);
    assert_eq!(tasks_of(&a), [("j1".into(), 0, 0), ("j1".into(), 0, 1)]);
    assert_eq!(ids(&a), [1, 2]);
    assert!(cancel.is_empty() && !drain);
    assert_eq!(a[1].stage_name, "standardise");
    assert_eq!(a[1].payload_json, r#"{"partition":1}"#);
    assert_eq!((a[1].term, a[1].lease_expires_ms), (1, 11_000));
    assert!(
        h.poll("w2", 4, &[]).0.is_empty(),
        "block waits for standardise"
    );

    h.now += 1_000;
    assert_eq!(
        h.report("w1", 1, progress(500)),
        Ok(running(TaskState::Running))
    );
    let p = h.m.job_progress("j1").unwrap();
    let s = &p.stages[0];
    assert_eq!(
        (s.state, s.tasks_total, s.tasks_done, s.tasks_running),
        (StageState::Running, 2, 0, 2)
    );
    assert_eq!(s.records_done, 500);
    assert_eq!(
        (p.stages[1].state, p.stages[2].state),
        (StageState::Waiting, StageState::Waiting)
    );

    assert_eq!(h.succeed("w1", 1), running(TaskState::Committed));
    assert_eq!(h.succeed("w1", 2), running(TaskState::Committed));
    let p = h.m.job_progress("j1").unwrap();
    assert_eq!(
        (
            p.stages[0].state,
            p.stages[0].tasks_done,
            p.stages[0].records_done
        ),
        (StageState::Done, 2, 500)
    );

    // The second stage spreads over both workers.
    let (a, ..) = h.poll("w2", 1, &[]);
    let (b, ..) = h.poll("w1", 1, &[]);
    assert_eq!(
        (tasks_of(&a), tasks_of(&b)),
        (vec![("j1".into(), 1, 0)], vec![("j1".into(), 1, 1)])
    );
    h.succeed("w1", b[0].attempt_id);
    h.succeed("w2", a[0].attempt_id);
    assert_eq!(
        h.m.job_progress("j1").unwrap().stages[2].state,
        StageState::Unplanned
    );
    assert_eq!(h.m.runnable_count(), 0);
    assert_eq!(
        h.m.committed_outputs("j1", 1),
        Ok(vec![
            (0, r#"{"attempt":3}"#.into()),
            (1, r#"{"attempt":4}"#.into())
        ])
    );

    // The third stage is planned from the second's outputs.
    let now_ms = h.now;
    let reply = h.ok(Command::AddStageTasks {
        job_id: "j1".into(),
        stage: 2,
        tasks: tasks(3),
        now_ms,
    });
    assert_eq!(
        reply,
        Reply::StagePlanned {
            job_id: "j1".into(),
            stage: 2,
            tasks: 3,
            state: JobState::Running
        }
    );
    let (a, ..) = h.poll("w1", 2, &[]);
    let (b, ..) = h.poll("w2", 2, &[]);
    assert_eq!(tasks_of(&a), [("j1".into(), 2, 0), ("j1".into(), 2, 1)]);
    assert_eq!(tasks_of(&b), [("j1".into(), 2, 2)]);
    h.now += 5_000;
    h.succeed("w1", a[0].attempt_id);
    h.succeed("w2", b[0].attempt_id);
    let last = h.succeed("w1", a[1].attempt_id);
    assert_eq!(
        last,
        Reply::Reported {
            task: TaskState::Committed,
            job: JobState::Succeeded
        }
    );

    let job = h.m.job("j1").unwrap();
    assert_eq!(
        (job.state, job.finished_ms),
        (JobState::Succeeded, Some(h.now))
    );
    let p = h.m.job_progress("j1").unwrap();
    assert!(p.stages.iter().all(|s| s.state == StageState::Done));
    assert_eq!(h.m.committed_outputs("j1", 2).unwrap().len(), 3);
    assert!(h.poll("w1", 4, &[]).0.is_empty());
}

#[test]
fn leases_go_oldest_job_first_then_stage_then_task() {
    let mut h = Harness::new();
    h.register("w1");
    h.submit(
        "b-old",
        Plan {
            stages: vec![stage("s", 2, &[])],
        },
    );
    h.submit(
        "a-new",
        Plan {
            stages: vec![
                stage("s0", 1, &[]),
                stage("s1", 2, &[]),
                stage("s2", 1, &[0]),
            ],
        },
    );
    let (a, ..) = h.poll("w1", 10, &[]);
    let order: Vec<(String, usize, usize)> = vec![
        ("b-old".into(), 0, 0),
        ("b-old".into(), 0, 1),
        ("a-new".into(), 0, 0),
        ("a-new".into(), 1, 0),
        ("a-new".into(), 1, 1),
    ];
    assert_eq!(tasks_of(&a), order);
    assert_eq!(
        h.m.jobs().iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["b-old", "a-new"]
    );
}

#[test]
fn expired_leases_and_lost_workers_give_tasks_to_others() {
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    h.submit("j1", one_stage(3));
    let (a, ..) = h.poll("w1", 2, &[]);
    let (b, ..) = h.poll("w2", 1, &[]);
    assert_eq!((ids(&a), ids(&b)), (vec![1, 2], vec![3]));

    // w1 falls silent; w2 keeps renewing its lease by polling.
    h.now += 9_000;
    h.poll("w2", 0, &[3]);
    assert_eq!(h.expire(), (vec![], vec![]), "nothing has expired yet");
    h.now += 2_000;
    h.poll("w2", 0, &[3]);
    assert_eq!(h.expire(), (vec![1, 2], vec![]));
    let abandoned = AttemptState::Abandoned {
        cause: AbandonCause::LeaseExpired,
    };
    assert_eq!(h.m.attempt(1).unwrap().state, abandoned);
    assert_eq!(h.m.attempt(3).unwrap().state, AttemptState::Running);

    let (c, ..) = h.poll("w2", 2, &[3]);
    assert_eq!(tasks_of(&c), [("j1".into(), 0, 0), ("j1".into(), 0, 1)]);
    assert_eq!(ids(&c), [4, 5]);

    // Past the worker timeout w1 is lost, and must register again.
    h.now += 20_000;
    h.poll("w2", 0, &[3, 4, 5]);
    assert_eq!(h.expire(), (vec![], vec!["w1".into()]));
    assert_eq!(h.m.worker("w1").unwrap().state, WorkerState::Lost);
    let gone = h.refused(h.poll_cmd("w1", 2, &[1, 2]));
    assert_eq!(
        gone,
        Error::WorkerGone {
            worker: "w1".into(),
            state: WorkerState::Lost
        }
    );
    h.register("w1");
    let (a, cancel, _) = h.poll("w1", 2, &[1, 2]);
    assert_eq!(
        (a.len(), cancel),
        (0, vec![1, 2]),
        "its old attempts are cancelled"
    );
}

#[test]
fn one_path_loses_a_worker_whatever_the_cause() {
    // Leases longer than the worker timeout: losing the worker, not the lease, abandons the attempts.
    let config = Config {
        lease_ms: 60_000,
        ..Config::default()
    };
    let cases = [
        ("lost", AbandonCause::WorkerLost, WorkerState::Lost),
        ("removed", AbandonCause::WorkerRemoved, WorkerState::Removed),
        (
            "restarted",
            AbandonCause::WorkerRestarted,
            WorkerState::Active,
        ),
    ];
    for (how, cause, state) in cases {
        let mut h = Harness::with_config(config);
        h.register("w1");
        h.register("w2");
        h.submit("j1", one_stage(2));
        assert_eq!(ids(&h.poll("w1", 2, &[]).0), [1, 2]);
        match how {
            "lost" => {
                h.now += 30_001;
                h.poll("w2", 0, &[]);
                assert_eq!(h.expire(), (vec![1, 2], vec!["w1".into()]));
            }
            "removed" => assert_eq!(
                h.ok(Command::RemoveWorker {
                    worker_id: "w1".into()
                }),
                Reply::Done
            ),
            _ => {
                h.register("w1");
            }
        }
        assert_eq!(h.m.worker("w1").unwrap().state, state, "{how}");
        assert_eq!(
            h.m.attempt(1).unwrap().state,
            AttemptState::Abandoned { cause },
            "{how}"
        );
        assert_eq!(h.m.runnable_count(), 2, "{how}");
        assert_eq!(ids(&h.poll("w2", 2, &[]).0), [3, 4], "{how}");
    }
}

#[test]
fn duplicate_success_commits_once_and_fences_the_late_attempt() {
    for expired_reports_first in [true, false] {
        let mut h = Harness::new();
        h.register("w1");
        h.register("w2");
        h.submit("j1", one_stage(1));
        assert_eq!(ids(&h.poll("w1", 1, &[]).0), [1]);
        h.now += 10_000;
        h.poll("w2", 0, &[]);
        assert_eq!(h.expire().0, [1]);
        assert_eq!(ids(&h.poll("w2", 1, &[]).0), [2]);

        let (first, late) = if expired_reports_first {
            (("w1", 1), ("w2", 2))
        } else {
            (("w2", 2), ("w1", 1))
        };
        let reply = h.succeed(first.0, first.1);
        assert_eq!(
            reply,
            Reply::Reported {
                task: TaskState::Committed,
                job: JobState::Succeeded
            }
        );
        let outcome = Outcome::Succeeded {
            result_json: "{}".into(),
            elapsed_ms: 0,
        };
        let fenced = h.refused(h.report_cmd(late.0, late.1, outcome));
        assert_eq!(
            fenced,
            Error::AlreadyCommitted {
                job: "j1".into(),
                stage: 0,
                task: 0,
                by: first.1,
                attempt: late.1
            }
        );
        assert_eq!(
            h.m.committed_outputs("j1", 0),
            Ok(vec![(0, format!("{{\"attempt\":{}}}", first.1))])
        );
        if expired_reports_first {
            // The running attempt is fenced and cancelled at its worker's next poll.
            assert_eq!(h.m.attempt(2).unwrap().state, AttemptState::Fenced);
            assert_eq!(h.poll("w2", 1, &[2]).1, [2]);
        }

        // The winner's report again (its reply was lost): same answer, nothing changes.
        let before = h.m.snapshot();
        assert_eq!(h.succeed(first.0, first.1), reply);
        assert_eq!(before, h.m.snapshot());
    }
}

#[test]
fn reports_from_an_older_term_are_refused() {
    let mut h = Harness::new();
    h.register("w1");
    h.submit("j1", one_stage(1));
    h.term = 5;
    let (a, ..) = h.poll("w1", 1, &[]);
    assert_eq!(a[0].term, 5);
    let report = |term, outcome| Command::ReportTask {
        worker_id: "w1".into(),
        attempt_id: 1,
        term,
        outcome,
        now_ms: 2_000,
    };
    let stale = h.refused(report(4, progress(1)));
    assert_eq!(
        stale,
        Error::StaleTerm {
            attempt: 1,
            term: 4,
            lease_term: 5
        }
    );
    assert_eq!(stale.code(), crate::ErrorCode::FailedPrecondition);
    h.ok(report(5, progress(2)));
    h.ok(report(
        6,
        Outcome::Succeeded {
            result_json: "[]".into(),
            elapsed_ms: 0,
        },
    ));
    assert_eq!(h.job_state("j1"), JobState::Succeeded);
}

#[test]
fn a_drained_worker_finishes_its_attempts_then_is_told_to_stop() {
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    h.submit("j1", one_stage(3));
    assert_eq!(ids(&h.poll("w1", 1, &[]).0), [1]);
    assert_eq!(
        h.ok(Command::DrainWorker {
            worker_id: "w1".into()
        }),
        Reply::Done
    );
    let before = h.m.snapshot();
    assert_eq!(
        h.ok(Command::DrainWorker {
            worker_id: "w1".into()
        }),
        Reply::Done
    );
    assert_eq!(before, h.m.snapshot(), "draining twice is draining once");

    assert_eq!(h.poll("w1", 2, &[1]), (vec![], vec![], false));
    assert_eq!(ids(&h.poll("w2", 2, &[]).0), [2, 3]);
    h.succeed("w1", 1);
    assert_eq!(h.poll("w1", 2, &[]), (vec![], vec![], true));
    // That reply was its last: the worker exits on it.
    assert_eq!(h.m.worker("w1").unwrap().state, WorkerState::Left);
    assert!(matches!(
        h.run(h.poll_cmd("w1", 2, &[])),
        Err(Error::WorkerGone {
            state: WorkerState::Left,
            ..
        })
    ));
}

#[test]
fn a_worker_leaving_on_its_own_is_drained_by_its_poll() {
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    h.submit("j1", one_stage(3));
    assert_eq!(ids(&h.poll("w1", 1, &[]).0), [1]);
    // The worker got SIGTERM: its poll says it is leaving, and asks for nothing.
    let leaving = |h: &Harness, running: &[AttemptId]| {
        let mut command = h.poll_cmd("w1", 0, running);
        if let Command::Poll { leaving, .. } = &mut command {
            *leaving = true;
        }
        command
    };
    let command = leaving(&h, &[1]);
    assert_eq!(h.polled(command), (vec![], vec![], false));
    assert_eq!(h.m.worker("w1").unwrap().state, WorkerState::Draining);
    // Slots it would still offer get nothing; the others' work is untouched.
    assert_eq!(h.poll("w1", 1, &[1]), (vec![], vec![], false));
    assert_eq!(ids(&h.poll("w2", 2, &[]).0), [2, 3]);
    h.succeed("w1", 1);
    let command = leaving(&h, &[]);
    assert_eq!(h.polled(command), (vec![], vec![], true));
    assert_eq!(h.m.worker("w1").unwrap().state, WorkerState::Left);
}

#[test]
fn gone_workers_are_forgotten_once_no_attempt_names_them() {
    let config = Config {
        forget_workers_after_ms: 60_000,
        ..Config::default()
    };
    let mut h = Harness::with_config(config);
    for w in ["w1", "w2", "w3"] {
        h.register(w);
    }
    h.submit("j1", one_stage(2));
    // w1 runs attempt 1 and is lost; w2 runs attempt 2, is drained and leaves; w3 stays.
    assert_eq!(ids(&h.poll("w1", 1, &[]).0), [1]);
    assert_eq!(ids(&h.poll("w2", 1, &[]).0), [2]);
    h.ok(Command::DrainWorker {
        worker_id: "w2".into(),
    });
    h.succeed("w2", 2);
    assert!(h.poll("w2", 0, &[]).2, "w2 is told to stop");
    let config = *h.m.config();
    h.now += config.worker_timeout_ms + 1;
    h.poll("w3", 0, &[]);
    assert_eq!(h.expire(), (vec![1], vec!["w1".to_string()]));

    // Within the retention both stay, shown as what they are.
    h.now += config.forget_workers_after_ms - config.worker_timeout_ms - 1;
    h.poll("w3", 0, &[]);
    h.expire();
    assert_eq!(h.m.worker("w1").unwrap().state, WorkerState::Lost);
    assert_eq!(h.m.worker("w2").unwrap().state, WorkerState::Left);

    // Past it, only the workers no attempt names go: w1's abandoned attempt 1 may still report late.
    h.now += config.worker_timeout_ms;
    h.poll("w3", 0, &[]);
    let now_ms = h.now;
    let forgotten = |reply: Reply| match reply {
        Reply::Expired {
            workers_forgotten, ..
        } => workers_forgotten,
        other => panic!("expire replied {other:?}"),
    };
    assert_eq!(
        forgotten(h.ok(Command::ExpireLeases { now_ms })),
        Vec::<String>::new(),
        "attempts 1 and 2 name w1 and w2"
    );
    let (a, ..) = h.poll("w3", 1, &[]);
    assert_eq!(ids(&a), [3]);
    h.succeed("w3", 3);
    assert_eq!(h.job_state("j1"), JobState::Succeeded);
    h.ok(Command::CleanupJob {
        job_id: "j1".into(),
    });
    let now_ms = h.now;
    assert_eq!(
        forgotten(h.ok(Command::ExpireLeases { now_ms })),
        ["w1", "w2"]
    );
    assert!(h.m.worker("w1").is_none() && h.m.worker("w2").is_none());
    assert_eq!(h.m.worker("w3").unwrap().state, WorkerState::Active);

    // A forgotten worker that comes back is unknown, and registers again.
    assert!(matches!(
        h.run(h.poll_cmd("w1", 1, &[])),
        Err(Error::UnknownWorker(_))
    ));
    h.register("w1");
    assert_eq!(h.m.worker("w1").unwrap().state, WorkerState::Active);
}

#[test]
fn cancelling_a_job_cancels_its_running_attempts() {
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    h.submit("j1", one_stage(4));
    h.submit("j2", one_stage(1));
    assert_eq!(ids(&h.poll("w1", 2, &[]).0), [1, 2]);
    assert_eq!(ids(&h.poll("w2", 1, &[]).0), [3]);
    h.now += 500;
    let now_ms = h.now;
    assert_eq!(
        h.ok(Command::CancelJob {
            job_id: "j1".into(),
            now_ms
        }),
        Reply::Done
    );
    let job = h.m.job("j1").unwrap();
    assert_eq!(
        (job.state, job.finished_ms),
        (JobState::Cancelled, Some(1_500))
    );
    assert_eq!(h.m.attempt(1).unwrap().state, AttemptState::Cancelled);

    let (a, cancel, _) = h.poll("w1", 1, &[1, 2]);
    assert_eq!(
        (tasks_of(&a), cancel),
        (vec![("j2".into(), 0, 0)], vec![1, 2])
    );
    assert_eq!(h.poll("w2", 0, &[3]).1, [3]);
    assert_eq!(
        h.poll("w2", 0, &[]).1,
        Vec::<u64>::new(),
        "a cancel is sent once"
    );
    let late = h.refused(h.report_cmd(
        "w2",
        3,
        Outcome::Succeeded {
            result_json: "{}".into(),
            elapsed_ms: 0,
        },
    ));
    assert_eq!(
        late,
        Error::JobNotRunning {
            job: "j1".into(),
            state: JobState::Cancelled
        }
    );
    assert!(
        h.m.job_progress("j1")
            .unwrap()
            .stages
            .iter()
            .all(|s| s.state == StageState::Stopped)
    );
}

#[test]
fn retryable_failures_run_again_until_the_budget_is_spent() {
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    h.submit("j1", one_stage(2));
    let mut attempt = h.poll("w1", 1, &[]).0[0].attempt_id;
    let other = h.poll("w2", 1, &[]).0[0].attempt_id;
    for _ in 0..4 {
        assert_eq!(
            h.report("w1", attempt, failed(true)),
            Ok(running(TaskState::Pending))
        );
        let (a, ..) = h.poll("w1", 1, &[]);
        assert_eq!(
            tasks_of(&a),
            [("j1".into(), 0, 0)],
            "the failed task runs again"
        );
        attempt = a[0].attempt_id;
    }
    let last = h.report("w1", attempt, failed(true));
    assert_eq!(
        last,
        Ok(Reply::Reported {
            task: TaskState::Failed,
            job: JobState::Failed
        })
    );
    let job = h.m.job("j1").unwrap();
    assert_eq!(
        job.error.as_deref(),
        Some("stage 0 (only), task 0: failed 5 times (retry budget 4), the last: disk full")
    );
    assert_eq!(h.m.attempt(other).unwrap().state, AttemptState::Cancelled);
    assert_eq!(h.poll("w2", 1, &[other]).1, [other]);
    let p = h.m.job_progress("j1").unwrap();
    assert_eq!(
        (p.stages[0].tasks_failed, p.stages[0].failed_attempts),
        (1, 5)
    );

    // A failure that is not retryable fails the job at once.
    h.submit("j2", one_stage(1));
    let a = h.poll("w1", 1, &[]).0[0].attempt_id;
    h.report("w1", a, failed(false)).unwrap();
    assert_eq!(
        h.m.job("j2").unwrap().error.as_deref(),
        Some("stage 0 (only), task 0: failed, not retryable: disk full")
    );
}

/// A bad input fails the same way on every attempt: its first failure that says so (`retryable:
/// false`) fails the job with its reason, though the task's budget is untouched and another task
/// of the stage failed only for a while; the job's other attempts are cancelled, its later stages
/// never leased, and other jobs run on.
#[test]
fn a_permanent_failure_fails_its_job_at_once_and_other_jobs_run_on() {
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    h.submit(
        "j1",
        Plan {
            stages: vec![stage("standardise", 3, &[]), stage("ids", 1, &[0])],
        },
    );
    h.submit("j2", one_stage(1));
    let (first, ..) = h.poll("w1", 2, &[]);
    let (second, ..) = h.poll("w2", 2, &[]);
    assert_eq!(
        [tasks_of(&first), tasks_of(&second)].concat(),
        [
            ("j1".into(), 0, 0),
            ("j1".into(), 0, 1),
            ("j1".into(), 0, 2),
            ("j2".into(), 0, 0)
        ]
    );
    assert_eq!(
        h.report("w1", first[0].attempt_id, failed(true)),
        Ok(running(TaskState::Pending))
    );
    let reason = "input `cs`: cs.csv: column `record_id` not found (columns: ma_ho_so, ho_ten)";
    let permanent = Outcome::Failed {
        reason: reason.into(),
        retryable: false,
    };
    assert_eq!(
        h.report("w1", first[1].attempt_id, permanent),
        Ok(Reply::Reported {
            task: TaskState::Failed,
            job: JobState::Failed
        })
    );
    let job = h.m.job("j1").unwrap();
    assert_eq!(
        job.error.as_deref(),
        Some(format!("stage 0 (standardise), task 1: failed, not retryable: {reason}").as_str())
    );
    let p = h.m.job_progress("j1").unwrap();
    assert_eq!(
        (p.stages[0].tasks_failed, p.stages[0].failed_attempts),
        (1, 2)
    );
    // The job's attempt on w2 is cancelled; nothing of it is leased again.
    let j1_on_w2 = second[0].attempt_id;
    assert_eq!(
        h.m.attempt(j1_on_w2).unwrap().state,
        AttemptState::Cancelled
    );
    let (more, cancel, _) = h.poll("w2", 2, &[j1_on_w2, second[1].attempt_id]);
    assert_eq!(cancel, [j1_on_w2]);
    assert!(more.is_empty(), "{more:?}");
    assert!(h.poll("w1", 2, &[]).0.is_empty());
    h.succeed("w2", second[1].attempt_id);
    assert_eq!(h.job_state("j2"), JobState::Succeeded);
    assert_eq!(h.job_state("j1"), JobState::Failed);
}

#[test]
fn cleanup_forgets_the_attempts_of_a_finished_job() {
    let mut h = Harness::new();
    h.register("w1");
    h.submit("j1", one_stage(1));
    h.poll("w1", 1, &[]);
    h.succeed("w1", 1);
    assert_eq!(
        h.ok(Command::CleanupJob {
            job_id: "j1".into()
        }),
        Reply::Done
    );
    let before = h.m.snapshot();
    assert_eq!(
        h.ok(Command::CleanupJob {
            job_id: "j1".into()
        }),
        Reply::Done
    );
    assert_eq!(before, h.m.snapshot());
    assert!(h.m.job("j1").unwrap().scratch_cleaned);
    assert!(h.m.attempt(1).is_none());
    assert_eq!(
        h.m.committed_outputs("j1", 0).unwrap().len(),
        1,
        "outputs stay"
    );
    let e = h.refused(h.report_cmd(
        "w1",
        1,
        Outcome::Succeeded {
            result_json: "{}".into(),
            elapsed_ms: 0,
        },
    ));
    assert_eq!(e, Error::UnknownAttempt(1));
}

#[test]
fn a_job_with_nothing_to_do_succeeds_at_once() {
    let mut h = Harness::new();
    let plan = Plan {
        stages: vec![stage("empty", 0, &[]), unplanned("later", &[0])],
    };
    assert_eq!(
        h.submit("j1", plan),
        Reply::JobSubmitted {
            job_id: "j1".into(),
            state: JobState::Running
        }
    );
    let reply = h.ok(Command::AddStageTasks {
        job_id: "j1".into(),
        stage: 1,
        tasks: vec![],
        now_ms: 7,
    });
    assert_eq!(
        reply,
        Reply::StagePlanned {
            job_id: "j1".into(),
            stage: 1,
            tasks: 0,
            state: JobState::Succeeded
        }
    );
    assert_eq!(h.m.job("j1").unwrap().finished_ms, Some(7));
}

#[test]
fn set_model_and_config() {
    let mut h = Harness::new();
    h.submit("j1", one_stage(1));
    h.ok(Command::SetModel {
        job_id: "j1".into(),
        model_json: r#"{"prior":0.01}"#.into(),
    });
    assert_eq!(
        h.m.job("j1").unwrap().model_json.as_deref(),
        Some(r#"{"prior":0.01}"#)
    );
    let config = Config {
        lease_ms: 5,
        worker_timeout_ms: 50,
        retry_budget: 0,
        forget_workers_after_ms: 500,
        forget_jobs_after_ms: 5000,
    };
    h.ok(Command::SetConfig { config });
    assert_eq!(*h.m.config(), config);
    let reply = h.register("w1");
    assert!(matches!(
        reply,
        Reply::WorkerRegistered {
            lease_ms: 5,
            worker_timeout_ms: 50,
            ..
        }
    ));
    assert_eq!(h.poll("w1", 1, &[]).0[0].lease_expires_ms, h.now + 5);
}

/// A story with a bit of everything, for replays.
fn busy_story() -> Harness {
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    h.submit("j1", three_stages());
    h.ok(Command::SubmitJob {
        job_id: None,
        name: "unnamed".into(),
        spec_toml: String::new(),
        plan: one_stage(2),
        now_ms: h.now,
        request_id: None,
    });
    let (a, ..) = h.poll("w1", 3, &[]);
    h.report("w1", a[0].attempt_id, progress(10)).unwrap();
    h.succeed("w1", a[0].attempt_id);
    h.report("w1", a[1].attempt_id, failed(true)).unwrap();
    h.now += 10_500;
    h.poll("w2", 0, &[]);
    h.expire();
    let (b, ..) = h.poll("w2", 3, &[]);
    for x in &b {
        h.succeed("w2", x.attempt_id);
    }
    h.refused(h.report_cmd("w1", a[2].attempt_id, failed(true)));
    h.ok(Command::DrainWorker {
        worker_id: "w1".into(),
    });
    h.poll("w2", 4, &[]);
    h.ok(submit_with_request("r-1", "again", 1));
    h.ok(submit_with_request("r-1", "again", 1));
    h.ok(Command::FailJob {
        job_id: crate::job_id_for_index(h.index - 1),
        reason: "stage 1 cannot be planned".into(),
        now_ms: h.now,
    });
    h
}

#[test]
fn finished_jobs_are_forgotten_after_the_retention_once_their_scratch_is_cleaned() {
    let config = Config {
        forget_jobs_after_ms: 60_000,
        ..Config::default()
    };
    let mut h = Harness::with_config(config);
    h.register("w1");
    // A job submitted with a request id, run to success; another still running.
    let Reply::JobSubmitted { job_id: done, .. } = h.ok(submit_with_request("r-1", "done", 1))
    else {
        panic!("not submitted")
    };
    h.submit("running", one_stage(1));
    let (a, ..) = h.poll("w1", 1, &[]);
    h.succeed("w1", a[0].attempt_id);
    assert_eq!(h.job_state(&done), JobState::Succeeded);
    let finished = h.now;
    let forgotten = |h: &mut Harness| {
        let now_ms = h.now;
        h.poll("w1", 0, &[]);
        match h.ok(Command::ExpireLeases { now_ms }) {
            Reply::Expired { jobs_forgotten, .. } => jobs_forgotten,
            other => panic!("expire replied {other:?}"),
        }
    };

    // Past the retention but its scratch not yet cleaned: kept (the coordinator still has to finish it).
    h.now = finished + config.forget_jobs_after_ms + 1;
    assert!(forgotten(&mut h).is_empty());
    h.ok(Command::CleanupJob {
        job_id: done.clone(),
    });
    // Cleaned, and past the retention: gone, with its request id; the running job stays.
    assert_eq!(forgotten(&mut h), std::slice::from_ref(&done));
    assert!(h.m.job(&done).is_none());
    assert_eq!(h.job_state("running"), JobState::Running);
    // The request id is free again: the same request submits a new job.
    let Reply::JobSubmitted { job_id: again, .. } = h.ok(submit_with_request("r-1", "done", 1))
    else {
        panic!("not submitted")
    };
    assert_ne!(again, done);
}

fn submit_with_request(request_id: &str, name: &str, tasks: usize) -> Command {
    Command::SubmitJob {
        job_id: None,
        name: name.into(),
        spec_toml: "[job]\n".into(),
        plan: one_stage(tasks),
        now_ms: 0,
        request_id: Some(request_id.into()),
    }
}

#[test]
fn stages_keep_when_they_started_and_finished_and_their_tasks_run_time() {
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    h.submit("j1", three_stages());
    let stage = |h: &Harness, i: usize| h.m.job_progress("j1").unwrap().stages[i].clone();
    assert_eq!(
        (stage(&h, 0).started_ms, stage(&h, 0).finished_ms),
        (None, None)
    );

    // Started at the first lease; the second lease does not move it.
    h.now = 2_000;
    let first = h.poll("w1", 1, &[]).0[0].attempt_id;
    h.now = 2_500;
    let second = h.poll("w2", 1, &[]).0[0].attempt_id;
    assert_eq!(stage(&h, 0).started_ms, Some(2_000));

    // A failed attempt's time is not counted; only committed attempts are.
    h.now = 3_000;
    h.report("w1", first, failed(true)).unwrap();
    let again = h.poll("w1", 1, &[]).0[0].attempt_id;
    h.now = 4_000;
    h.report(
        "w2",
        second,
        Outcome::Succeeded {
            result_json: "{}".into(),
            elapsed_ms: 1_400,
        },
    )
    .unwrap();
    assert_eq!(stage(&h, 0).finished_ms, None, "one task still runs");
    h.now = 5_000;
    h.report(
        "w1",
        again,
        Outcome::Succeeded {
            result_json: "{}".into(),
            elapsed_ms: 1_900,
        },
    )
    .unwrap();
    let s = stage(&h, 0);
    assert_eq!(
        (s.started_ms, s.finished_ms, s.task_ms, s.tasks_total),
        (Some(2_000), Some(5_000), 3_300, 2)
    );

    // A stage planned without tasks starts and finishes when it is planned.
    let (b, ..) = h.poll("w1", 2, &[]);
    h.now = 6_000;
    for a in &b {
        h.succeed("w1", a.attempt_id);
    }
    h.now = 7_000;
    h.ok(Command::AddStageTasks {
        job_id: "j1".into(),
        stage: 2,
        tasks: vec![],
        now_ms: h.now,
    });
    let s = stage(&h, 2);
    assert_eq!(
        (s.started_ms, s.finished_ms, s.task_ms),
        (Some(7_000), Some(7_000), 0)
    );
    assert_eq!(h.job_state("j1"), JobState::Succeeded);
    assert_eq!(h.m.job("j1").unwrap().finished_ms, Some(7_000));
}

#[test]
fn a_retried_submit_gets_the_same_job() {
    let mut h = Harness::new();
    let first = h.ok(submit_with_request("req-1", "nightly", 2));
    let job_id = crate::job_id_for_index(1);
    assert_eq!(
        first,
        Reply::JobSubmitted {
            job_id: job_id.clone(),
            state: JobState::Running
        }
    );
    // The same request again (a lost reply, a new leader): the same job, nothing added.
    let before = h.m.snapshot();
    assert_eq!(h.ok(submit_with_request("req-1", "nightly", 2)), first);
    assert_eq!(before, h.m.snapshot());
    assert_eq!(h.m.jobs().len(), 1);
    assert_eq!(
        h.m.job(&job_id).unwrap().request_id.as_deref(),
        Some("req-1")
    );

    // Also once the job is over, and after a snapshot is restored.
    h.ok(Command::CancelJob {
        job_id: job_id.clone(),
        now_ms: h.now,
    });
    let mut restored = Machine::default();
    restored.restore(&h.m.snapshot()).unwrap();
    assert_eq!(
        restored.execute(9, submit_with_request("req-1", "nightly", 2)),
        Ok(Reply::JobSubmitted {
            job_id: job_id.clone(),
            state: JobState::Cancelled
        })
    );

    // Another request id is another job; a request id reused for another job is refused.
    assert_eq!(
        h.ok(submit_with_request("req-2", "nightly", 2)),
        Reply::JobSubmitted {
            job_id: crate::job_id_for_index(h.index),
            state: JobState::Running
        }
    );
    assert_eq!(
        h.refused(submit_with_request("req-1", "weekly", 2)),
        Error::RequestReused {
            request_id: "req-1".into(),
            job: job_id,
        }
    );
    assert_eq!(h.m.jobs().len(), 2);
}

#[test]
fn a_job_that_cannot_be_planned_is_failed_with_its_reason() {
    let mut h = Harness::new();
    h.register("w1");
    h.submit("j1", three_stages());
    let (a, ..) = h.poll("w1", 1, &[]);
    let reason = "cannot plan stage 2 (score): a task output is unreadable";
    assert_eq!(
        h.ok(Command::FailJob {
            job_id: "j1".into(),
            reason: reason.into(),
            now_ms: h.now,
        }),
        Reply::Done
    );
    let job = h.m.job("j1").unwrap();
    assert_eq!(
        (job.state, job.error.as_deref(), job.finished_ms),
        (JobState::Failed, Some(reason), Some(h.now))
    );
    // Its running attempt is cancelled and its worker told so; nothing of it runs any more.
    assert_eq!(
        h.m.attempt(a[0].attempt_id).unwrap().state,
        AttemptState::Cancelled
    );
    assert_eq!(h.poll("w1", 1, &[a[0].attempt_id]).1, [a[0].attempt_id]);
    assert_eq!(h.m.runnable_count(), 0);
    let p = h.m.job_progress("j1").unwrap();
    assert!(p.stages.iter().all(|s| s.state == StageState::Stopped));
    // A failed job stays failed.
    assert_eq!(
        h.refused(Command::FailJob {
            job_id: "j1".into(),
            reason: "again".into(),
            now_ms: h.now,
        }),
        Error::JobNotRunning {
            job: "j1".into(),
            state: JobState::Failed
        }
    );
}

#[test]
fn the_same_log_gives_the_same_replies_and_snapshot() {
    let h = busy_story();
    assert!(
        h.m.job(&crate::job_id_for_index(4)).is_some(),
        "the unnamed job is named after its index"
    );
    for _ in 0..2 {
        let mut m = Machine::new(Config::default());
        for (index, command, reply) in &h.log {
            assert_eq!(&m.apply(*index, &command.to_bytes()), reply, "{command:?}");
        }
        assert_eq!(
            String::from_utf8(m.snapshot()).unwrap(),
            String::from_utf8(h.m.snapshot()).unwrap()
        );
    }
}

#[test]
fn a_restored_snapshot_answers_like_the_original() {
    let h = busy_story();
    for cut in [0, 1, h.log.len() / 3, h.log.len() / 2, h.log.len() - 1] {
        let mut original = Machine::new(Config::default());
        for (index, command, _) in &h.log[..cut] {
            original.apply(*index, &command.to_bytes());
        }
        let mut restored = Machine::new(Config {
            lease_ms: 1,
            worker_timeout_ms: 1,
            retry_budget: 0,
            forget_workers_after_ms: 1,
            forget_jobs_after_ms: 1,
        });
        restored.restore(&original.snapshot()).unwrap();
        assert_eq!(restored, original);
        for (index, command, reply) in &h.log[cut..] {
            assert_eq!(
                &restored.apply(*index, &command.to_bytes()),
                reply,
                "cut {cut}: {command:?}"
            );
        }
        assert_eq!(restored.snapshot(), h.m.snapshot());
    }
}

#[test]
fn restore_refuses_other_formats_and_keeps_the_state() {
    let h = busy_story();
    let mut m = h.m.clone();
    type Check = fn(&Error) -> bool;
    let cases: [(&[u8], Check); 4] = [
        (br#"{"format":2,"jobs":{}}"#, |e| {
            *e == Error::UnsupportedSnapshot(2)
        }),
        (br#"{"format":0}"#, |e| *e == Error::UnsupportedSnapshot(0)),
        (br#"{"format":1}"#, |e| matches!(e, Error::BadSnapshot(_))),
        (b"not json", |e| matches!(e, Error::BadSnapshot(_))),
    ];
    for (snapshot, expected) in cases {
        let e = m.restore(snapshot).unwrap_err();
        assert!(expected(&e), "{}: {e:?}", String::from_utf8_lossy(snapshot));
        assert_eq!(m, h.m);
    }
    assert!(
        String::from_utf8(h.m.snapshot())
            .unwrap()
            .starts_with(r#"{"format":1,"#)
    );
}

#[test]
fn apply_answers_undecodable_commands_with_an_error_reply() {
    let mut m = Machine::default();
    let before = m.snapshot();
    let reply = Reply::from_bytes(&m.apply(1, b"{\"Launch\":{}}")).unwrap();
    assert!(
        matches!(
            reply,
            Reply::Error {
                code: crate::ErrorCode::InvalidArgument,
                ..
            }
        ),
        "{reply:?}"
    );
    assert_eq!(before, m.snapshot());
    let reply = Reply::from_bytes(&m.apply(2, &register("w1", 0).to_bytes())).unwrap();
    assert!(matches!(reply, Reply::WorkerRegistered { .. }), "{reply:?}");
}

/// A worker may queue a task beyond its free slots only while more tasks are runnable than every
/// active worker has slots: queueing never leaves another worker idle.
#[test]
fn queued_tasks_are_granted_only_while_work_exceeds_all_slots() {
    let poll = |h: &mut Harness, worker: &str, free: u32, queue: u32| -> usize {
        let mut command = h.poll_cmd(worker, free, &[]);
        if let Command::Poll { queue_slots, .. } = &mut command {
            *queue_slots = queue;
        }
        match h.ok(command) {
            Reply::Polled { assignments, .. } => assignments.len(),
            other => panic!("poll replied {other:?}"),
        }
    };
    // One worker of 4 slots, 6 tasks: 4 for the slots and 1 queued.
    let mut h = Harness::new();
    h.register("w1");
    h.submit("j1", one_stage(6));
    assert_eq!(poll(&mut h, "w1", 4, 1), 5);
    // One task left, not more than the 4 slots of the one worker: nothing to queue.
    assert_eq!(poll(&mut h, "w1", 0, 1), 0);
    assert_eq!(h.m.runnable_count(), 1);

    // Two workers of 4 slots and 6 tasks: the work fits the slots, so no queueing.
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    h.submit("j1", one_stage(6));
    assert_eq!(poll(&mut h, "w1", 4, 1), 4);
    assert_eq!(poll(&mut h, "w2", 4, 1), 2);

    // Nine tasks, two workers: the first poll may queue one, the second finds 4 left for its 4 slots.
    let mut h = Harness::new();
    h.register("w1");
    h.register("w2");
    h.submit("j1", one_stage(9));
    assert_eq!(poll(&mut h, "w1", 4, 1), 5);
    assert_eq!(poll(&mut h, "w2", 4, 1), 4);
    // Without asking, never more than the free slots.
    let mut h = Harness::new();
    h.register("w1");
    h.submit("j1", one_stage(9));
    assert_eq!(poll(&mut h, "w1", 4, 0), 4);
}
