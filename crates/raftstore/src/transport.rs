//! Raft messages between nodes over tonic: one client stream per peer for ordinary messages, a unary call
//! per snapshot so its delivery can be reported to raft-rs, and the server that feeds received messages to
//! the node.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::time::Duration;

use khop_proto::v1::raft_transport_client::RaftTransportClient;
use khop_proto::v1::raft_transport_server::{RaftTransport, RaftTransportServer};
use khop_proto::v1::{Empty, RaftMessage};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};

use crate::node::Cmd;

/// Messages waiting for a peer's stream; beyond this they are dropped (Raft sends them again).
const PEER_QUEUE: usize = 4096;
/// Pause after a failed connection before the next attempt.
const RECONNECT_AFTER: Duration = Duration::from_millis(100);

/// The senders to every peer this node knows the address of.
pub(crate) struct Peers<S> {
    me: u64,
    runtime: tokio::runtime::Handle,
    mailbox: Sender<Cmd<S>>,
    max_message_bytes: usize,
    auth: PeerAuth,
    peers: HashMap<u64, Peer>,
}

type PeerClient = RaftTransportClient<InterceptedService<Channel, PeerAuth>>;

struct Peer {
    addr: String,
    queue: mpsc::Sender<Vec<u8>>,
    client: PeerClient,
}

/// Puts the peer token (if any) into every request as `authorization: Bearer <token>`.
#[derive(Clone)]
pub(crate) struct PeerAuth(Option<AsciiMetadataValue>);

impl PeerAuth {
    pub(crate) fn new(token: Option<&str>) -> Self {
        let value = token.and_then(|t| match format!("Bearer {t}").parse() {
            Ok(v) => Some(v),
            Err(_) => {
                tracing::warn!("the peer token is not valid ASCII metadata; peers get no token");
                None
            }
        });
        PeerAuth(value)
    }
}

impl tonic::service::Interceptor for PeerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

impl<S: Send + 'static> Peers<S> {
    pub(crate) fn new(
        me: u64,
        runtime: tokio::runtime::Handle,
        mailbox: Sender<Cmd<S>>,
        max_message_bytes: usize,
        auth: PeerAuth,
    ) -> Self {
        Self {
            me,
            runtime,
            mailbox,
            max_message_bytes,
            auth,
            peers: HashMap::new(),
        }
    }

    /// Starts (or, when the address changed, restarts) the sender to `id`.
    pub(crate) fn set(&mut self, id: u64, addr: &str) {
        if id == self.me || self.peers.get(&id).is_some_and(|p| p.addr == addr) {
            return;
        }
        let _guard = self.runtime.enter();
        let endpoint = match Endpoint::from_shared(addr.to_string()) {
            Ok(endpoint) => endpoint
                .connect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true),
            Err(e) => {
                tracing::warn!(peer = id, addr, error = %e, "bad peer address");
                return;
            }
        };
        let client =
            RaftTransportClient::with_interceptor(endpoint.connect_lazy(), self.auth.clone())
                .max_encoding_message_size(self.max_message_bytes)
                .max_decoding_message_size(self.max_message_bytes);
        let (queue, rx) = mpsc::channel(PEER_QUEUE);
        self.runtime
            .spawn(stream_to_peer(id, client.clone(), rx, self.mailbox.clone()));
        // Replacing the old entry drops its queue, which ends its task.
        self.peers.insert(
            id,
            Peer {
                addr: addr.to_string(),
                queue,
                client,
            },
        );
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.peers.remove(&id);
    }

    pub(crate) fn send(&mut self, messages: Vec<Message>) {
        for msg in messages {
            let to = msg.to;
            let Some(peer) = self.peers.get(&to) else {
                tracing::debug!(peer = to, "no address for peer; message dropped");
                continue;
            };
            let bytes = match msg.write_to_bytes() {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::error!(peer = to, error = %e, "cannot encode a raft message");
                    continue;
                }
            };
            if msg.get_msg_type() == MessageType::MsgSnapshot {
                if bytes.len() > self.max_message_bytes {
                    tracing::error!(
                        peer = to,
                        bytes = bytes.len(),
                        limit = self.max_message_bytes,
                        "snapshot exceeds max_message_bytes"
                    );
                }
                let mut client = peer.client.clone();
                let mailbox = self.mailbox.clone();
                self.runtime.spawn(async move {
                    let ok = client
                        .send_one(RaftMessage { message: bytes })
                        .await
                        .is_ok();
                    tracing::info!(peer = to, ok, "snapshot sent");
                    let _ = mailbox.send(Cmd::ReportSnapshot { to, ok });
                });
            } else if peer.queue.try_send(bytes).is_err() {
                tracing::debug!(peer = to, "peer queue full; message dropped");
            }
        }
    }
}

/// Keeps one client stream open to a peer and feeds it the queue; reports the peer unreachable when the
/// stream breaks, then reconnects.
async fn stream_to_peer<S>(
    to: u64,
    mut client: PeerClient,
    mut queue: mpsc::Receiver<Vec<u8>>,
    mailbox: Sender<Cmd<S>>,
) {
    while let Some(first) = queue.recv().await {
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        let _ = tx.try_send(first);
        let mut call =
            Box::pin(client.send(ReceiverStream::new(rx).map(|message| RaftMessage { message })));
        let mut tx = Some(tx);
        let result = loop {
            tokio::select! {
                result = &mut call => break result,
                next = queue.recv(), if tx.is_some() => match next {
                    Some(bytes) => {
                        if tx.as_ref().is_some_and(|tx| tx.try_send(bytes).is_err()) {
                            tracing::debug!(peer = to, "peer stream full; message dropped");
                        }
                    }
                    // The node forgot this peer: close the stream and stop.
                    None => tx = None,
                },
            }
        };
        if tx.is_none() {
            return;
        }
        if let Err(status) = result {
            tracing::debug!(peer = to, error = %status.message(), "raft stream to peer broke");
        }
        if mailbox.send(Cmd::Unreachable(to)).is_err() {
            return;
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
        // What queued meanwhile is stale; Raft sends what is still needed.
        while queue.try_recv().is_ok() {}
    }
}

/// The `RaftTransport` service of one node: hands received messages to its Raft loop.
pub struct RaftPeerService<S> {
    me: u64,
    mailbox: Sender<Cmd<S>>,
    /// Never sent to; resolves (as closed) when the node's loop has stopped.
    alive: watch::Receiver<()>,
}

impl<S: Send + 'static> RaftPeerService<S> {
    pub(crate) fn server(
        me: u64,
        mailbox: Sender<Cmd<S>>,
        alive: watch::Receiver<()>,
        max_message_bytes: usize,
    ) -> RaftTransportServer<Self> {
        RaftTransportServer::new(Self { me, mailbox, alive })
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }

    fn deliver(&self, raw: &[u8]) -> Result<(), Status> {
        let msg = Message::parse_from_bytes(raw)
            .map_err(|_| Status::invalid_argument("message: not a raft message"))?;
        if msg.to != self.me {
            return Err(Status::invalid_argument(format!(
                "message.to: {} is not this node ({})",
                msg.to, self.me
            )));
        }
        self.mailbox
            .send(Cmd::Step(msg))
            .map_err(|_| Status::unavailable("raft node stopped"))
    }
}

#[tonic::async_trait]
impl<S: Send + 'static> RaftTransport for RaftPeerService<S> {
    async fn send(
        &self,
        request: Request<Streaming<RaftMessage>>,
    ) -> Result<Response<Empty>, Status> {
        let mut stream = request.into_inner();
        let mut alive = self.alive.clone();
        loop {
            tokio::select! {
                next = stream.message() => match next? {
                    Some(msg) => self.deliver(&msg.message)?,
                    None => return Ok(Response::new(Empty {})),
                },
                // The node stopped: end the stream so the peer notices and the server can shut down.
                _ = alive.changed() => return Err(Status::unavailable("raft node stopped")),
            }
        }
    }

    async fn send_one(&self, request: Request<RaftMessage>) -> Result<Response<Empty>, Status> {
        self.deliver(&request.into_inner().message)?;
        Ok(Response::new(Empty {}))
    }
}
