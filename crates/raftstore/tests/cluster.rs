//! Three (or four) nodes in one process, each with a real tonic server on a loopback port and a real data
//! dir, running a toy counter state machine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use khop_raftstore::{NodeConfig, RaftError, RaftHandle, Role, StateMachine};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;

/// Counters by key. A command is a key; the reply is the key's new value (u64, little endian).
#[derive(Default)]
struct Counters {
    values: BTreeMap<String, u64>,
    /// What the test sees of the state from outside the node.
    view: Arc<Mutex<View>>,
}

#[derive(Default, Clone, PartialEq, Debug)]
struct View {
    values: BTreeMap<String, u64>,
    /// Restores of a non-empty snapshot (from the node's own file on restart, or from the leader).
    restores: u32,
}

impl StateMachine for Counters {
    fn apply(&mut self, _index: u64, command: &[u8]) -> Vec<u8> {
        let value = self
            .values
            .entry(String::from_utf8_lossy(command).into_owned())
            .or_default();
        *value += 1;
        let reply = value.to_le_bytes().to_vec();
        self.view.lock().unwrap().values = self.values.clone();
        reply
    }

    fn snapshot(&self) -> Vec<u8> {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>()
            .into_bytes()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(snapshot).map_err(|e| e.to_string())?;
        self.values = text
            .lines()
            .map(|line| {
                let (k, v) = line.split_once('=').ok_or("no =")?;
                Ok((k.to_string(), v.parse::<u64>().map_err(|e| e.to_string())?))
            })
            .collect::<Result<_, String>>()?;
        let mut view = self.view.lock().unwrap();
        view.values = self.values.clone();
        if !self.values.is_empty() {
            view.restores += 1;
        }
        Ok(())
    }
}

struct TestNode {
    id: u64,
    addr: String,
    dir: PathBuf,
    handle: RaftHandle<Counters>,
    view: Arc<Mutex<View>>,
    stop_server: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl TestNode {
    fn view(&self) -> View {
        self.view.lock().unwrap().clone()
    }

    /// Stops the node and its server, keeping its data dir.
    async fn stop(self) -> (u64, String, PathBuf) {
        self.handle.shutdown().await;
        let _ = self.stop_server.send(());
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(2), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        (self.id, self.addr, self.dir)
    }
}

fn config(id: u64, dir: PathBuf, peers: BTreeMap<u64, String>, snapshot_every: u64) -> NodeConfig {
    let mut cfg = NodeConfig::new(id, dir, peers);
    cfg.tick = Duration::from_millis(50);
    cfg.election_ticks = 10;
    cfg.heartbeat_ticks = 2;
    cfg.snapshot_every = snapshot_every;
    cfg.request_timeout = Duration::from_secs(3);
    cfg.max_message_bytes = 1 << 20;
    cfg
}

/// Starts a stopped node again from its data dir, at its old address, knowing only its own address.
async fn restart((id, addr, dir): (u64, String, PathBuf), snapshot_every: u64) -> TestNode {
    let (listener, bound) = bind(addr.trim_start_matches("http://")).await;
    assert_eq!(bound, addr);
    let cfg = config(
        id,
        dir,
        BTreeMap::from([(id, addr.clone())]),
        snapshot_every,
    );
    start(cfg, listener, addr).await
}

async fn bind(addr: &str) -> (TcpListener, String) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

async fn start(cfg: NodeConfig, listener: TcpListener, addr: String) -> TestNode {
    let view = Arc::new(Mutex::new(View::default()));
    let sm = Counters {
        values: BTreeMap::new(),
        view: Arc::clone(&view),
    };
    let (id, dir) = (cfg.id, cfg.data_dir.clone());
    let (handle, service) = khop_raftstore::start(cfg, sm).await.unwrap();
    let (stop_server, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            })
            .await;
    });
    TestNode {
        id,
        addr,
        dir,
        handle,
        view,
        stop_server,
        server,
    }
}

/// Starts the seed, then the others empty, and adds them one at a time.
async fn cluster(root: &std::path::Path, size: u64, snapshot_every: u64) -> Vec<TestNode> {
    let mut listeners = Vec::new();
    for _ in 0..size {
        listeners.push(bind("127.0.0.1:0").await);
    }
    let all: BTreeMap<u64, String> = listeners
        .iter()
        .enumerate()
        .map(|(i, (_, a))| (i as u64 + 1, a.clone()))
        .collect();
    let mut nodes = Vec::new();
    for (i, (listener, addr)) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let mut cfg = config(id, root.join(format!("n{id}")), all.clone(), snapshot_every);
        cfg.bootstrap = id == 1;
        nodes.push(start(cfg, listener, addr).await);
    }
    wait_for(
        || nodes[0].handle.status().role == Role::Leader,
        "the seed leads",
    )
    .await;
    for node in &nodes[1..] {
        nodes[0]
            .handle
            .add_node(node.id, node.addr.clone())
            .await
            .unwrap();
    }
    nodes
}

async fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn leader(nodes: &[TestNode]) -> Option<usize> {
    nodes
        .iter()
        .position(|n| n.handle.status().role == Role::Leader)
}

async fn incr(node: &TestNode, key: &str) -> Result<u64, RaftError> {
    let reply = node.handle.propose(key.as_bytes().to_vec()).await?;
    Ok(u64::from_le_bytes(reply.try_into().unwrap()))
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("KHOP_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_replicate_fail_over_restart_and_refuse_without_quorum() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let mut nodes = cluster(root.path(), 3, 20).await;
    let status = nodes[0].handle.status();
    assert_eq!(status.voters, vec![1, 2, 3]);

    // Proposals through the leader; replies are the state machine's.
    let l = leader(&nodes).unwrap();
    for i in 1..=50 {
        assert_eq!(incr(&nodes[l], "a").await.unwrap(), i);
    }
    assert_eq!(
        nodes[l]
            .handle
            .read(|sm: &Counters| sm.values["a"])
            .await
            .unwrap(),
        50
    );

    // A follower refuses, naming the leader.
    let f = (l + 1) % 3;
    wait_for(
        || nodes[f].handle.status().leader_id == Some(nodes[l].id),
        "the follower knows the leader",
    )
    .await;
    match incr(&nodes[f], "a").await {
        Err(RaftError::NotLeader {
            leader: Some((id, addr)),
        }) => {
            assert_eq!((id, addr), (nodes[l].id, nodes[l].addr.clone()));
        }
        other => panic!("expected NotLeader naming the leader, got {other:?}"),
    }
    assert!(matches!(
        nodes[f].handle.read(|_: &Counters| ()).await,
        Err(RaftError::NotLeader { .. })
    ));
    wait_for(
        || nodes.iter().all(|n| n.view().values.get("a") == Some(&50)),
        "every node applied 50",
    )
    .await;

    // Stop the leader: another one commits within 5 s.
    let old = nodes.remove(l);
    let stopped_at = Instant::now();
    let (old_id, old_addr, old_dir) = old.stop().await;
    // The new leader answers a read asked the moment it leads, before its term's first entry has
    // committed (raft-rs drops a read index asked then; the node holds it until the commit).
    let l = loop {
        assert!(
            stopped_at.elapsed() < Duration::from_secs(5),
            "no new leader within 5 s"
        );
        if let Some(l) = leader(&nodes) {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    assert_eq!(
        nodes[l].handle.read(|sm: &Counters| sm.values["a"]).await,
        Ok(50)
    );
    let committed_at = loop {
        assert!(
            stopped_at.elapsed() < Duration::from_secs(5),
            "no new leader committed within 5 s"
        );
        if let Some(l) = leader(&nodes)
            && incr(&nodes[l], "b").await.is_ok()
        {
            break stopped_at.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!("re-election: a new leader committed {committed_at:?} after the old leader stopped");
    let l = leader(&nodes).unwrap();
    for _ in 0..30 {
        incr(&nodes[l], "b").await.unwrap();
    }

    // Restart the old leader from its data dir: it catches up to the same state.
    nodes.push(restart((old_id, old_addr, old_dir), 20).await);
    let expected = nodes[l].view();
    assert_eq!(expected.values.get("b"), Some(&31));
    wait_for(
        || nodes.iter().all(|n| n.view().values == expected.values),
        "the restarted node caught up",
    )
    .await;
    assert!(
        nodes[2].handle.status().snapshot_index > 0,
        "a snapshot was taken along the way"
    );

    // One node of three, the other two stopped: it never commits.
    let lone = nodes.remove(0);
    let (a, b) = (nodes.remove(0), nodes.remove(0));
    a.stop().await;
    b.stop().await;
    let before = lone.view();
    for _ in 0..3 {
        let result = incr(&lone, "c").await;
        assert!(
            matches!(
                result,
                Err(RaftError::NotLeader { .. } | RaftError::Timeout | RaftError::ProposalDropped)
            ),
            "a minority committed: {result:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(lone.view(), before);
    assert_ne!(
        lone.handle.status().role,
        Role::Leader,
        "check_quorum: a lone leader steps down"
    );
    lone.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_joiner_is_caught_up_by_snapshot_then_removed() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    // The seed alone, with a log compacted every 5 entries.
    let mut nodes = cluster(root.path(), 1, 5).await;
    for i in 1..=40 {
        assert_eq!(incr(&nodes[0], "k").await.unwrap(), i);
    }
    let read = nodes[0].handle.read(|sm: &Counters| sm.values["k"]).await;
    assert_eq!(read, Ok(40), "a lone voter reads without peers");
    let too_large = nodes[0].handle.propose(vec![b'k'; 600 << 10]).await;
    assert!(
        matches!(too_large, Err(RaftError::TooLarge { .. })),
        "{too_large:?}"
    );
    let seed = nodes[0].handle.status();
    assert!(
        seed.snapshot_index >= 35,
        "the seed compacted its log (snapshot at {})",
        seed.snapshot_index
    );

    // Two nodes join late: the entries they miss are gone, so only a snapshot can bring them up.
    let peers: BTreeMap<u64, String> = seed.addresses.clone();
    for id in [2, 3] {
        let (listener, addr) = bind("127.0.0.1:0").await;
        let mut known = peers.clone();
        known.insert(id, addr.clone());
        nodes.push(
            start(
                config(id, root.path().join(format!("n{id}")), known, 5),
                listener,
                addr.clone(),
            )
            .await,
        );
        nodes[0].handle.add_node(id, addr).await.unwrap();
    }
    wait_for(
        || nodes.iter().all(|n| n.view().values.get("k") == Some(&40)),
        "the joiners caught up",
    )
    .await;
    for node in &nodes[1..] {
        assert!(
            node.view().restores >= 1,
            "node {} was caught up by a snapshot",
            node.id
        );
    }
    assert_eq!(nodes[0].handle.status().voters, vec![1, 2, 3]);
    assert_eq!(
        nodes[2].handle.status().addresses.len(),
        3,
        "membership and addresses came with the snapshot"
    );

    // Leadership moves, then node 2 leaves; the other two go on.
    nodes[0].handle.transfer_leader(3).await.unwrap();
    wait_for(
        || nodes[2].handle.status().role == Role::Leader,
        "node 3 leads",
    )
    .await;
    nodes[2].handle.remove_node(2).await.unwrap();
    assert_eq!(nodes[2].handle.status().voters, vec![1, 3]);
    assert_eq!(incr(&nodes[2], "k").await.unwrap(), 41);
    wait_for(
        || nodes[0].view().values.get("k") == Some(&41),
        "node 1 applied",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        nodes[1].view().values.get("k"),
        Some(&40),
        "a removed node gets nothing new"
    );

    // The whole cluster stops and comes back knowing only its own addresses: the membership is on disk.
    let removed = nodes.remove(1);
    removed.stop().await;
    let mut stopped = Vec::new();
    for node in nodes {
        stopped.push(node.stop().await);
    }
    let mut nodes = Vec::new();
    for node in stopped {
        nodes.push(restart(node, 5).await);
    }
    wait_for(
        || leader(&nodes).is_some(),
        "the restarted cluster elects a leader",
    )
    .await;
    let l = leader(&nodes).unwrap();
    assert_eq!(incr(&nodes[l], "k").await.unwrap(), 42);
    wait_for(
        || nodes.iter().all(|n| n.view().values.get("k") == Some(&42)),
        "both applied",
    )
    .await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_applies_membership_changes_from_the_log_again() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    // Snapshots are taken only when a joiner needs one, so the last promotion (node 3 to voter) is in no
    // snapshot: a restart must apply it from the log again.
    let nodes = cluster(root.path(), 3, 10_000).await;
    let l = leader(&nodes).unwrap();
    for i in 1..=5 {
        assert_eq!(incr(&nodes[l], "r").await.unwrap(), i);
    }
    let mut stopped = Vec::new();
    for node in nodes {
        stopped.push(node.stop().await);
    }
    let mut nodes = Vec::new();
    for node in stopped {
        nodes.push(restart(node, 10_000).await);
    }
    wait_for(
        || leader(&nodes).is_some(),
        "the restarted cluster elects a leader",
    )
    .await;
    let l = leader(&nodes).unwrap();
    assert_eq!(nodes[l].handle.status().voters, vec![1, 2, 3]);
    assert_eq!(incr(&nodes[l], "r").await.unwrap(), 6);
    wait_for(
        || nodes.iter().all(|n| n.view().values.get("r") == Some(&6)),
        "all applied",
    )
    .await;
    for node in nodes {
        node.stop().await;
    }
}
