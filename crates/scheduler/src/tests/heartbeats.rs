//! Heartbeats kept out of the log: which polls are quiet (`Machine::quiet_poll`) and what `Expire`,
//! which names what the leader found silent or expired, does with what it names.

use super::*;
use crate::{AbandonCause, LostWorker, QuietPoll, WorkerState};

fn one_stage(n: usize) -> Plan {
    Plan {
        stages: vec![stage("only", n, &[])],
    }
}

fn quiet(renew: &[AttemptId], cancel: &[AttemptId]) -> Option<QuietPoll> {
    Some(QuietPoll {
        renew: renew.to_vec(),
        cancel: cancel.to_vec(),
    })
}

/// `w6` ran attempt 1 of j0, cancelled since (the cancel waits for its next poll); of j1's three
/// tasks `w1` runs attempt 2, `w3` (draining) attempt 3, and one is runnable; `w2` is idle, `w4` is
/// draining with nothing, `w5` was removed.
fn fixture() -> Harness {
    let mut h = Harness::new();
    for w in ["w1", "w2", "w3", "w4", "w5", "w6"] {
        h.register(w);
    }
    h.submit("j0", one_stage(1));
    assert_eq!(ids(&h.poll("w6", 1, &[]).0), [1]);
    h.ok(Command::CancelJob {
        job_id: "j0".into(),
        now_ms: h.now,
    });
    h.submit("j1", one_stage(3));
    assert_eq!(ids(&h.poll("w1", 1, &[]).0), [2]);
    assert_eq!(ids(&h.poll("w3", 1, &[]).0), [3]);
    for w in ["w3", "w4"] {
        h.ok(Command::DrainWorker {
            worker_id: w.into(),
        });
    }
    h.ok(Command::RemoveWorker {
        worker_id: "w5".into(),
    });
    h
}

#[test]
fn a_poll_is_quiet_exactly_when_it_changes_nothing_but_heartbeats() {
    // (case, worker, free slots, queue slots, leaving, running, quiet answer)
    type Case = (
        &'static str,
        &'static str,
        u32,
        u32,
        bool,
        &'static [AttemptId],
        Option<QuietPoll>,
    );
    let cases: [Case; 12] = [
        (
            "busy, no free slot",
            "w1",
            0,
            0,
            false,
            &[2],
            quiet(&[2], &[]),
        ),
        (
            "busy, asks to queue while work fits the slots",
            "w1",
            0,
            1,
            false,
            &[2],
            quiet(&[2], &[]),
        ),
        (
            "free slots and runnable tasks",
            "w2",
            1,
            0,
            false,
            &[],
            None,
        ),
        (
            "runs what it does not hold",
            "w1",
            0,
            0,
            false,
            &[2, 9, 3],
            quiet(&[2], &[3, 9]),
        ),
        (
            "draining with attempts",
            "w3",
            1,
            1,
            false,
            &[3],
            quiet(&[3], &[]),
        ),
        (
            "draining and leaving",
            "w3",
            0,
            0,
            true,
            &[3],
            quiet(&[3], &[]),
        ),
        ("draining without attempts", "w4", 0, 0, false, &[], None),
        ("leaving while active", "w1", 0, 0, true, &[2], None),
        ("removed", "w5", 0, 0, false, &[], None),
        ("unknown", "w9", 0, 0, false, &[], None),
        ("a cancel waits for it", "w6", 0, 0, false, &[], None),
        (
            "asks nothing, holds nothing",
            "w2",
            0,
            0,
            false,
            &[],
            quiet(&[], &[]),
        ),
    ];
    for (case, worker, free, queue, leaving, running, want) in cases {
        let mut h = fixture();
        let got = h.m.quiet_poll(worker, (free, queue, leaving), running);
        assert_eq!(got, want, "{case}");
        // What `Poll` does with the same request: the quiet answer, and only heartbeats changed.
        let before = h.m.snapshot_without_heartbeats();
        h.now += 500;
        let result = h.run(Command::Poll {
            worker_id: worker.into(),
            term: h.term,
            free_slots: free,
            running: running.to_vec(),
            now_ms: h.now,
            queue_slots: queue,
            leaving,
        });
        let changed = h.m.snapshot_without_heartbeats() != before;
        match (got, result) {
            (Some(q), Ok(reply)) => {
                assert_eq!(
                    reply,
                    Reply::Polled {
                        assignments: vec![],
                        cancel: q.cancel,
                        drain: false
                    },
                    "{case}"
                );
                assert!(
                    !changed,
                    "{case}: a quiet poll changed more than heartbeats"
                );
                let w = h.m.worker(worker).unwrap();
                assert_eq!(w.last_seen_ms, h.now, "{case}");
                for id in q.renew {
                    assert_eq!(
                        h.m.attempt(id).unwrap().lease_expires_ms,
                        h.now + h.m.config().lease_ms,
                        "{case}"
                    );
                }
            }
            (Some(_), Err(e)) => panic!("{case}: quiet, but Poll refused: {e}"),
            (None, Ok(_)) => assert!(changed, "{case}: not quiet, but Poll changed nothing more"),
            (None, Err(_)) => {}
        }
    }
}

#[test]
fn expire_acts_only_on_what_it_names_that_is_still_live() {
    let config = Config {
        forget_workers_after_ms: 60_000,
        ..Config::default()
    };
    let mut h = Harness::with_config(config);
    for w in ["w1", "w2", "w3"] {
        h.register(w);
    }
    h.submit("j1", one_stage(3));
    assert_eq!(ids(&h.poll("w1", 1, &[]).0), [1]);
    assert_eq!(ids(&h.poll("w2", 2, &[]).0), [2, 3]);
    h.succeed("w2", 3);

    // Nothing here is due by the replicated times: the leader decided from its own.
    h.now += 1_000;
    let expire = |h: &Harness, lost: &[(&str, u64)], attempts: &[AttemptId]| Command::Expire {
        now_ms: h.now,
        workers_lost: lost
            .iter()
            .map(|&(w, last_seen_ms)| LostWorker {
                worker_id: w.into(),
                last_seen_ms,
            })
            .collect(),
        attempts: attempts.to_vec(),
    };
    let reply = h.ok(expire(
        &h,
        &[("w1", 1_500), ("w9", 1_500), ("w1", 1_700)],
        &[1, 2, 3, 77],
    ));
    assert_eq!(
        reply,
        Reply::Expired {
            attempts: vec![1, 2],
            workers_lost: vec!["w1".into()],
            workers_forgotten: vec![],
            jobs_forgotten: vec![],
        },
        "unknown ids, a committed attempt and a worker named twice are ignored"
    );
    let w1 = h.m.worker("w1").unwrap();
    assert_eq!((w1.state, w1.last_seen_ms), (WorkerState::Lost, 1_500));
    assert_eq!(
        h.m.attempt(1).unwrap().state,
        AttemptState::Abandoned {
            cause: AbandonCause::WorkerLost
        }
    );
    assert_eq!(
        h.m.attempt(2).unwrap().state,
        AttemptState::Abandoned {
            cause: AbandonCause::LeaseExpired
        }
    );
    assert_eq!(h.m.worker("w2").unwrap().state, WorkerState::Active);
    assert_eq!(h.m.runnable_count(), 2);

    // The same command again (an old leader's, committed late) finds nothing live to act on.
    let before = h.m.snapshot();
    let again = h.ok(expire(&h, &[("w1", 1_500)], &[1, 2]));
    assert!(
        matches!(again, Reply::Expired { ref attempts, ref workers_lost, .. }
        if attempts.is_empty() && workers_lost.is_empty())
    );
    assert_eq!(before, h.m.snapshot());

    // A lost worker is kept for the retention counted from when the leader last heard from it, not
    // from its older heartbeat in the log (1 000), once no attempt names it.
    h.ok(Command::CancelJob {
        job_id: "j1".into(),
        now_ms: h.now,
    });
    h.ok(Command::CleanupJob {
        job_id: "j1".into(),
    });
    h.now = 1_500 + 60_000;
    assert!(!h.m.forgetting_due(h.now));
    h.now += 1;
    assert!(h.m.forgetting_due(h.now));
    let reply = h.ok(expire(&h, &[], &[]));
    assert!(
        matches!(reply, Reply::Expired { ref workers_forgotten, .. } if workers_forgotten == &["w1"]),
        "{reply:?}"
    );
    assert!(!h.m.forgetting_due(h.now));
}
