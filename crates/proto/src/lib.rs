//! The versioned gRPC API of the khop cluster, package `khop.v1`, generated from the top-level `proto/`
//! directory by protox and tonic-prost-build (no system `protoc`).
//!
//! - [`v1::job_service_server`] / [`v1::job_service_client`]: jobs, for operators;
//! - [`v1::cluster_service_server`] / [`v1::cluster_service_client`]: workers and coordinators, for engineers;
//! - [`v1::worker_service_server`] / [`v1::worker_service_client`]: registration, task leases, outcomes;
//! - [`v1::raft_transport_server`] / [`v1::raft_transport_client`]: raft-rs messages between coordinators.
//!
//! Wire compatibility: fields are only ever added within `v1`; a breaking change is a new package (`v2`)
//! and a new [`PROTOCOL_VERSION`].

/// The version of the coordinator–worker protocol and of the data definition its nodes share (the
/// hashes that route keys and draw samples: `khop_engine::hash`). Workers send it in `RegisterWorker`;
/// the coordinator refuses a worker whose version differs. Version 2: blocking keys hashed a word at a
/// time.
pub const PROTOCOL_VERSION: u32 = 2;

/// The file descriptor set of `khop.v1`, for `tonic-reflection` (so `grpcurl` can list the services).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/khop_v1_descriptor.bin"));

/// Generated messages, clients and servers of package `khop.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("khop.v1");
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn descriptor_set_names_every_service() {
        let text = String::from_utf8_lossy(FILE_DESCRIPTOR_SET);
        for service in [
            "JobService",
            "ClusterService",
            "WorkerService",
            "RaftTransport",
        ] {
            assert!(
                text.contains(service),
                "{service} missing from the descriptor set"
            );
        }
    }

    #[test]
    fn report_outcome_round_trips() {
        let report = v1::ReportTaskRequest {
            worker_id: "w1".into(),
            attempt_id: "a1".into(),
            term: 7,
            outcome: Some(v1::report_task_request::Outcome::Failed(v1::TaskFailed {
                reason: "input missing".into(),
                retryable: true,
            })),
            elapsed_ms: 1234,
        };
        let decoded = v1::ReportTaskRequest::decode(report.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, report);
    }
}
