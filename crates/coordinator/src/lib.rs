//! The khop coordinator: a `khop-raftstore` node whose state machine is the scheduler's `Machine`,
//! serving the gRPC API (`JobService`, `ClusterService`, `WorkerService`, `RaftTransport`, health and
//! reflection) on one address.
//!
//! - **Writes** (submit, cancel, register, report, drain, ...) are proposed on the leader; a
//!   follower answers `UNAVAILABLE` with the leader's address in `khop-leader` metadata.
//! - **Reads** (jobs, workers) are linearizable reads on the leader; `ClusterStatus` answers from any
//!   node.
//! - **Polls** are heartbeats and leave the log alone unless they change something: a linearizable
//!   read decides (`Machine::quiet_poll`); a quiet poll is answered from it and recorded in the
//!   leader's liveness table ([`liveness`]: per worker when it last polled, per running attempt when
//!   its lease was renewed, rebuilt for each Raft term with a grace of one timeout), any other is
//!   proposed as `Poll`. An idle cluster writes nothing to the log.
//! - **The leader's loop** ([`leader`]) expires leases and loses silent workers when the state and the
//!   liveness table say they are due (`Expire`, naming them), plans each job's next stage with the
//!   engine's planner from the committed outputs, and finishes succeeded jobs (`summary.json`, scratch
//!   removal). The planner only lists input files; its tasks go through the log, so followers never
//!   plan.
//! - **Auth** ([`auth`]): a bearer token per request, mapped to roles.
//!
//! **Architecture invariant:** the coordinator never reads records: it lists input files to plan, and
//! writes the summary from the write task's output; records, pairs and scores move between workers
//! through files, never through the coordinator or the Raft log.

mod api;
pub mod auth;
mod core;
mod error;
mod leader;
mod liveness;
mod sm;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use khop_proto::v1::cluster_service_server::ClusterServiceServer;
use khop_proto::v1::job_service_server::JobServiceServer;
use khop_proto::v1::worker_service_server::WorkerServiceServer;
use khop_raftstore::NodeConfig;
use khop_scheduler::Machine;
use tonic::transport::Server;

pub use crate::auth::{Role, Tokens};
pub use crate::core::Settings;
pub use crate::error::{Error, LEADER_METADATA};
pub use khop_scheduler::Config as SchedulerConfig;

/// The largest request the API accepts; larger ones are refused with `RESOURCE_EXHAUSTED`.
pub const MAX_REQUEST_BYTES: usize = 16 << 20;

/// How to start one coordinator.
#[derive(Debug, Clone)]
pub struct Config {
    /// This coordinator's Raft id (never 0, never reused).
    pub id: u64,
    /// The socket to serve on.
    pub listen: SocketAddr,
    /// The Raft log and snapshots.
    pub data_dir: PathBuf,
    /// Every coordinator's id and http address, this one's included.
    pub peers: BTreeMap<u64, String>,
    /// Creates a one-voter cluster when the data dir is empty, then adds the other `peers` one at a
    /// time. Set on one coordinator (the seed) only.
    pub bootstrap: bool,
    pub tokens: Tokens,
    pub settings: Settings,
}

/// The services whose health is this coordinator's readiness, by their gRPC names (what
/// `grpc.health.v1.Health/Check` is asked about; `khop health` asks about the first).
const READY_SERVICES: [&str; 3] = [
    khop_proto::v1::job_service_server::SERVICE_NAME,
    khop_proto::v1::cluster_service_server::SERVICE_NAME,
    khop_proto::v1::worker_service_server::SERVICE_NAME,
];

/// Keeps the health service true: the server as a whole (`""`) is `SERVING` while the process serves
/// (liveness); [`READY_SERVICES`] are `SERVING` while this coordinator knows a leader, so that a call
/// to it can be answered (readiness), and `NOT_SERVING` while it does not (before it has joined, during
/// an election, cut off from a quorum).
async fn report_readiness(
    health: tonic_health::server::HealthReporter,
    mut status: tokio::sync::watch::Receiver<khop_raftstore::NodeStatus>,
) {
    let mut reported = None;
    loop {
        let ready = status.borrow_and_update().leader_id.is_some();
        if reported != Some(ready) {
            let serving = if ready {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            for service in READY_SERVICES {
                health.set_service_status(service, serving).await;
            }
            tracing::info!(ready, "readiness");
            reported = Some(ready);
        }
        if status.changed().await.is_err() {
            return;
        }
    }
}

/// How long open connections may finish their calls after a shutdown signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs a coordinator until `shutdown` resolves.
pub async fn serve(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    if cfg.tokens.is_empty() {
        return Err("no tokens: give --auth FILE or set KHOP_TOKEN".into());
    }
    let fresh = match std::fs::read_dir(&cfg.data_dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => true,
    };
    let mut node = NodeConfig::new(cfg.id, &cfg.data_dir, cfg.peers.clone());
    node.bootstrap = cfg.bootstrap;
    node.peer_token = cfg.tokens.peer_token();
    let (raft, transport) =
        khop_raftstore::start(node, sm::SchedulerSm(Machine::new(cfg.settings.scheduler)))
            .await
            .map_err(|e| format!("starting the raft node: {e}"))?;
    let core = Arc::new(core::Core {
        raft: raft.clone(),
        tokens: cfg.tokens.clone(),
        settings: cfg.settings.clone(),
        changes: tokio::sync::watch::Sender::new(0),
        liveness: std::sync::Mutex::new(liveness::Liveness::default()),
    });
    let leader_loop = tokio::spawn(leader::run(Arc::clone(&core)));
    let joiner = (cfg.bootstrap && fresh)
        .then(|| tokio::spawn(leader::join_peers(Arc::clone(&core), cfg.peers.clone())));

    let (health, health_service) = tonic_health::server::health_reporter();
    let readiness = tokio::spawn(report_readiness(health, raft.subscribe()));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(khop_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| format!("reflection: {e}"))?;
    let api = api::Api(Arc::clone(&core));
    let tokens = cfg.tokens.clone();
    let peers_only =
        move |request: tonic::Request<()>| -> Result<tonic::Request<()>, tonic::Status> {
            tokens.check(request.metadata(), &[Role::Peer])?;
            Ok(request)
        };
    tracing::info!(id = cfg.id, listen = %cfg.listen, "coordinator serving");
    // Graceful shutdown waits for every connection to close, and the other coordinators' Raft
    // streams never do: after the signal, open connections get SHUTDOWN_GRACE, then are dropped.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listen = cfg.listen;
    let mut server = tokio::spawn(
        Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(
                JobServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                ClusterServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                WorkerServiceServer::new(api.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(tonic::service::interceptor::InterceptedService::new(
                transport, peers_only,
            ))
            .serve_with_shutdown(listen, async {
                let _ = stopped.await;
            }),
    );
    let joined = tokio::select! {
        joined = &mut server => joined,
        () = shutdown => {
            let _ = stop.send(());
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(joined) => joined,
                Err(_) => {
                    tracing::info!("connections still open after the grace period: closing them");
                    server.abort();
                    Ok(Ok(()))
                }
            }
        }
    };
    let served = match joined {
        Ok(r) => r.map_err(|e| format!("serving on {listen}: {e}")),
        Err(e) => Err(format!("serving on {listen}: {e}")),
    };
    leader_loop.abort();
    readiness.abort();
    if let Some(joiner) = joiner {
        joiner.abort();
    }
    raft.shutdown().await;
    served
}
