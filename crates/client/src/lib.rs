//! The client side of the khop API, shared by the command line and the worker: a set of coordinator
//! addresses, the bearer token, and calls that follow the leader.
//!
//! Writes (and linearizable reads) are served by the Raft leader only; a follower answers `UNAVAILABLE`
//! with the leader's address in the `khop-leader` metadata. [`Coordinators::call`] tries the address it
//! last succeeded with, follows `khop-leader` when it is given and otherwise tries the next address,
//! until the call succeeds, fails with another code, or the deadline passes.
//!
//! A write that times out may or may not have been applied. Submits are made safe to retry with a
//! request id ([`new_request_id`]), sent unchanged on every attempt.

use std::sync::Mutex;
use std::time::Duration;

use khop_proto::v1::cluster_service_client::ClusterServiceClient;
use khop_proto::v1::job_service_client::JobServiceClient;
use khop_proto::v1::worker_service_client::WorkerServiceClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The metadata key a follower names the leader's address in.
pub const LEADER_METADATA: &str = "khop-leader";

/// The service whose health is a coordinator's readiness (the coordinator reports the same for all
/// of its khop services).
pub const READY_SERVICE: &str = khop_proto::v1::job_service_server::SERVICE_NAME;

/// The largest message a client sends or accepts.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct Auth(Option<AsciiMetadataValue>);

impl Auth {
    /// `None` sends no credentials (the coordinator will answer `UNAUTHENTICATED`).
    pub fn new(token: Option<&str>) -> Result<Auth, String> {
        match token {
            None => Ok(Auth(None)),
            Some(t) => format!("Bearer {t}")
                .parse()
                .map(|v| Auth(Some(v)))
                .map_err(|_| "the token must be printable ASCII".to_string()),
        }
    }
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Svc = InterceptedService<Channel, Auth>;

/// A connection to one coordinator, with a client per service.
#[derive(Clone)]
pub struct Conn {
    channel: Channel,
    auth: Auth,
    address: String,
}

impl Conn {
    /// The coordinator's address, as this client names it.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn jobs(&self) -> JobServiceClient<Svc> {
        JobServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn cluster(&self) -> ClusterServiceClient<Svc> {
        ClusterServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn workers(&self) -> WorkerServiceClient<Svc> {
        WorkerServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Whether the coordinator is ready, from its `grpc.health.v1` service (open: no token needed):
    /// `SERVING` for [`READY_SERVICE`] means it knows a leader, so calls to it can be answered.
    /// `Err` when it cannot be asked.
    pub async fn ready(&self) -> Result<bool, Status> {
        let reply = HealthClient::new(self.channel.clone())
            .check(HealthCheckRequest {
                service: READY_SERVICE.into(),
            })
            .await?;
        Ok(reply.into_inner().status == ServingStatus::Serving as i32)
    }
}

/// The coordinators a client knows, and which one it talks to.
pub struct Coordinators {
    addresses: Mutex<Vec<String>>,
    /// Index into `addresses` of the one to try first.
    current: Mutex<usize>,
    auth: Auth,
    /// How long one attempt may take (unary calls).
    pub attempt_timeout: Duration,
}

impl Coordinators {
    /// `addresses`: `http://host:port`, comma-separated or one per item.
    pub fn new(addresses: &[String], token: Option<&str>) -> Result<Coordinators, String> {
        let addresses: Vec<String> = addresses
            .iter()
            .flat_map(|a| a.split(','))
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        if addresses.is_empty() {
            return Err("no coordinator address (give --coordinators or KHOP_COORDINATORS)".into());
        }
        for a in &addresses {
            check_address(a).map_err(|e| format!("coordinator address {e}"))?;
        }
        Ok(Coordinators {
            addresses: Mutex::new(addresses),
            current: Mutex::new(0),
            auth: Auth::new(token)?,
            attempt_timeout: Duration::from_secs(10),
        })
    }

    /// The address calls go to first.
    pub fn current(&self) -> String {
        let addresses = lock(&self.addresses);
        addresses[*lock(&self.current) % addresses.len()].clone()
    }

    /// A connection to `address` (lazy: connecting happens on the first call).
    pub fn connect(&self, address: &str) -> Result<Conn, Status> {
        let endpoint = Endpoint::from_shared(address.to_string())
            .map_err(|e| Status::invalid_argument(format!("address {address}: {e}")))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true);
        Ok(Conn {
            channel: endpoint.connect_lazy(),
            auth: self.auth.clone(),
            address: address.to_owned(),
        })
    }

    /// Calls `f` on the current coordinator, following the leader on `UNAVAILABLE`, until it succeeds,
    /// fails otherwise, or `deadline` has passed (then the last status is returned). A leader address
    /// that a follower names but that then does not answer (one this client cannot reach, such as a
    /// container's name seen from outside its network) is not followed again by the call: it tries
    /// the addresses it was given instead, one of which is the leader's.
    pub async fn call<T, F, Fut>(&self, deadline: Duration, mut f: F) -> Result<T, Status>
    where
        F: FnMut(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let give_up = tokio::time::Instant::now() + deadline;
        let mut pause = Duration::from_millis(50);
        // The leader address the last attempt followed, and those that did not answer when followed.
        let mut followed: Option<String> = None;
        let mut dead_ends: Vec<String> = Vec::new();
        loop {
            let address = self.current();
            let conn = self.connect(&address)?;
            let status = match tokio::time::timeout(self.attempt_timeout, f(conn)).await {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) => status,
                Err(_) => Status::unavailable(format!("{address} did not answer in time")),
            };
            if status.code() != Code::Unavailable {
                return Err(status);
            }
            if followed.take().as_ref() == Some(&address) {
                dead_ends.push(address.clone());
            }
            let leader = status
                .metadata()
                .get(LEADER_METADATA)
                .and_then(|v| v.to_str().ok())
                .filter(|l| !l.is_empty() && *l != address && !dead_ends.iter().any(|d| d == l))
                .map(str::to_string);
            tracing::debug!(%address, leader = leader.as_deref().unwrap_or("unknown"), "coordinator unavailable");
            match leader {
                Some(leader) => {
                    self.set_current(&leader);
                    followed = Some(leader);
                }
                None => self.next(&dead_ends),
            }
            if tokio::time::Instant::now() + pause > give_up {
                return Err(naming(status, &address));
            }
            tokio::time::sleep(pause).await;
            // Following a named leader is worth an immediate retry; a dead or leaderless cluster is not.
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    fn set_current(&self, address: &str) {
        let mut addresses = lock(&self.addresses);
        let index = match addresses.iter().position(|a| a == address) {
            Some(i) => i,
            None => {
                addresses.push(address.to_string());
                addresses.len() - 1
            }
        };
        *lock(&self.current) = index;
    }

    /// Moves on to the next address that is not one of `skip` (if there is one).
    fn next(&self, skip: &[String]) {
        let addresses = lock(&self.addresses);
        let n = addresses.len();
        let mut current = lock(&self.current);
        for _ in 0..n {
            *current = (*current + 1) % n;
            if !skip.contains(&addresses[*current]) {
                return;
            }
        }
    }
}

/// Checks a coordinator's address: `http://host:port`. A bare `host:port` is refused with the form
/// expected (a peer address without a scheme was once silently never reached); the error starts
/// with the address.
pub fn check_address(address: &str) -> Result<(), String> {
    if !address.contains("://") {
        return Err(format!(
            "`{address}`: give the scheme, as in http://{address}"
        ));
    }
    Endpoint::from_shared(address.to_owned())
        .map(drop)
        .map_err(|e| format!("`{address}`: {e}"))
}

/// `status` with the coordinator it came from in its message, unless the message names it already
/// (a transport error says `tcp connect error`, never where).
fn naming(status: Status, address: &str) -> Status {
    if status.message().contains(address) {
        return status;
    }
    Status::new(
        status.code(),
        format!("coordinator {address}: {}", status.message()),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new request id for one job submission (`SubmitJobRequest.request_id`): 128 random bits in hex.
/// Make one per job meant, and send that same id on every retry of its submit (a timeout, a leader
/// change): the coordinators then answer a retry with the job the first attempt created, if it did.
pub fn new_request_id() -> String {
    use std::hash::{BuildHasher, Hasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    // `RandomState` is keyed from the OS's randomness; hashing with two of them gives 128 bits.
    let half = || {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u64(call);
        h.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}

/// The token from `KHOP_TOKEN`, if set.
pub fn token_from_env() -> Option<String> {
    std::env::var("KHOP_TOKEN").ok().filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_without_a_scheme_is_refused_with_the_form_expected() {
        assert_eq!(
            check_address("10.0.0.5:7400"),
            Err("`10.0.0.5:7400`: give the scheme, as in http://10.0.0.5:7400".into())
        );
        assert_eq!(check_address("http://10.0.0.5:7400"), Ok(()));
        let refused = Coordinators::new(&["http://a:1, b:2".into()], None).err();
        assert_eq!(
            refused.as_deref(),
            Some("coordinator address `b:2`: give the scheme, as in http://b:2")
        );
    }

    #[tokio::test]
    async fn a_coordinator_that_cannot_be_reached_is_named() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let coordinators = Coordinators::new(&[format!("http://127.0.0.1:{port}")], None).unwrap();
        let error = coordinators
            .call(Duration::from_millis(300), |c| async move {
                c.ready().await.map(tonic::Response::new)
            })
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::Unavailable, "{error:?}");
        let address = format!("http://127.0.0.1:{port}");
        assert!(error.message().contains(&address), "{error:?}");
    }

    /// A follower names a leader address this client cannot reach: the call tries it once, then the
    /// other addresses it was given, and reaches the leader by its own address.
    #[test]
    fn a_leader_address_that_does_not_answer_is_not_followed_twice() {
        let coordinators = Coordinators::new(&["http://a:1,http://b:1".into()], None).unwrap();
        let tried = Mutex::new(Vec::new());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = runtime.block_on(coordinators.call(Duration::from_secs(10), |conn| {
            lock(&tried).push(conn.address().to_owned());
            let reply = match conn.address() {
                "http://a:1" => {
                    let mut status = Status::unavailable("a follower");
                    status
                        .metadata_mut()
                        .insert(LEADER_METADATA, "http://unreachable:1".parse().unwrap());
                    Err(status)
                }
                "http://b:1" => Ok(tonic::Response::new(7)),
                _ => Err(Status::unavailable("did not answer in time")),
            };
            async move { reply }
        }));
        assert_eq!(answer.unwrap(), 7);
        assert_eq!(
            *lock(&tried),
            [
                "http://a:1",
                "http://unreachable:1",
                "http://a:1",
                "http://b:1"
            ]
        );
        assert_eq!(coordinators.current(), "http://b:1");
    }

    #[test]
    fn request_ids_are_new_every_time_and_safe_to_send() {
        let ids: std::collections::BTreeSet<String> = (0..1000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 32);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }
}
