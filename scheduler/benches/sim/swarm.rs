//! The simulated swarm: many hosts, each a TLS connection with its own certificate, each pulling
//! an image of `layers` tasks as peers of the scheduler's `AnnouncePeer` stream.
//!
//! Shape: tasks of `peers_per_task` peers, grouped into images of `layers` tasks; every host pulls
//! one image, all its layers at once (a runtime pulling an image). The first host of each image
//! is told to go back to source and reports pieces from the "origin" every `origin_interval`;
//! the others arrive spread over `ramp` after `lead`, and take one piece every `piece_interval`
//! (±50 %) from a parent the scheduler gave them that holds it, reporting each piece at once as
//! a dfdaemon does. No bytes move: only the scheduler's protocol is exercised.
//!
//! Latencies are recorded as seen from the client, so they include the wire, TLS, h2 and
//! this process's own queueing (measured separately as [`Outcome::sim_lag`]):
//! - *register → first update*: `RegisterPeer` sent → the first `TaskUpdate` (the decision made
//!   at registration: the content's size, and parents if one has a piece and a free slot);
//! - *register → first parents*: `RegisterPeer` sent → the first `TaskUpdate` with parents;
//! - *report → updated parents*: a parent's `PiecesFinished` sent → a child receiving an update
//!   that shows the parent's new piece count (matched through a table of report instants).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{bitmap::PieceBitmap, ids::HostId};
use proto::{common::v1 as pb_common, scheduler::v1 as pb};
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

type Client = pb::scheduler_client::SchedulerClient<Channel>;

/// The swarm's shape and pace.
#[derive(Debug, Clone)]
pub struct Shape {
    pub peers: usize,
    pub peers_per_task: usize,
    /// Tasks per image, so peers per host.
    pub layers: usize,
    pub pieces: u32,
    pub piece_len: u64,
    pub piece_interval: Duration,
    pub origin_interval: Duration,
    /// Delay between the sources and the first downloader.
    pub lead: Duration,
    /// Downloaders arrive spread over this.
    pub ramp: Duration,
    /// Concurrent uploads each host announces.
    pub upload_limit: u32,
    /// The run stops here even with peers unfinished.
    pub deadline: Duration,
}

impl Shape {
    pub fn hosts(&self) -> usize {
        self.peers / self.layers
    }
    pub fn tasks(&self) -> usize {
        self.peers / self.peers_per_task
    }
    fn images(&self) -> usize {
        self.tasks() / self.layers
    }
    /// Checks the numbers divide as the shape needs.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.peers.is_multiple_of(self.peers_per_task)
                && self.tasks().is_multiple_of(self.layers)
                && self.images() > 0,
            "peers ({}) must be a multiple of peers-per-task ({}) × layers ({})",
            self.peers,
            self.peers_per_task,
            self.layers
        );
        Ok(())
    }
}

/// The simulated host `h`: its id as its certificate names it.
pub fn host_id(h: usize) -> HostId {
    HostId::for_host(&format!("sim-{h:05}"), "127.0.0.1", false)
}

/// What one run measured, client side.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Microseconds: register → first update (the decision at registration, parents or not),
    /// register → first update naming parents (also waits for a parent with a free slot).
    pub first_update: Vec<u32>,
    pub register: Vec<u32>,
    pub report: Vec<u32>,
    /// Lateness of a 10 ms timer in this process, microseconds: the simulator's own queueing.
    pub sim_lag: Vec<u32>,
    pub reports: u64,
    pub updates: u64,
    pub finished: u64,
    /// Peers that never got parents before the deadline, or whose stream broke.
    pub unfinished: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// From the first registration to the last finished peer.
    pub elapsed: Duration,
}

/// Instants at which each peer reported its n-th piece.
struct Shared {
    reports: Vec<Mutex<Vec<Instant>>>,
}

/// Announces every host over its own channel (returns when all are known to the scheduler).
pub async fn announce(channels: &[Channel], shape: &Shape) -> anyhow::Result<Vec<Client>> {
    let clients: Vec<Client> = channels.iter().map(|c| Client::new(c.clone())).collect();
    let mut set = tokio::task::JoinSet::new();
    let at_once = Arc::new(tokio::sync::Semaphore::new(256));
    for (h, client) in clients.iter().enumerate() {
        let mut client = client.clone();
        let at_once = at_once.clone();
        let upload_limit = shape.upload_limit;
        set.spawn(async move {
            let _slot = at_once.acquire_owned().await;
            let host = pb_common::Host {
                id: host_id(h).0,
                hostname: format!("sim-{h:05}"),
                ip: "127.0.0.1".into(),
                upload_port: 4000,
                r#type: pb_common::HostType::Normal as i32,
                upload_limit,
                version: "sim".into(),
                ..Default::default()
            };
            client.announce_host(pb::AnnounceHostRequest { host: Some(host) }).await
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(clients)
}

/// One peer's plan.
#[derive(Debug, Clone)]
struct Plan {
    /// Global index; its peer id ends with it.
    idx: usize,
    host: usize,
    task: usize,
    start: Duration,
}

fn plans(shape: &Shape) -> Vec<Plan> {
    let images = shape.images();
    let mut out = Vec::with_capacity(shape.peers);
    for h in 0..shape.hosts() {
        let (image, k) = (h % images, h / images);
        let start = if k == 0 {
            Duration::ZERO
        } else {
            let spread = shape.ramp.mul_f64((k - 1) as f64 / (shape.peers_per_task - 1).max(1) as f64);
            // A little jitter so hosts of different images do not arrive in lockstep.
            shape.lead + spread + Duration::from_micros((h as u64 * 7919) % 50_000)
        };
        for l in 0..shape.layers {
            let idx = out.len();
            out.push(Plan { idx, host: h, task: image * shape.layers + l, start });
        }
    }
    out
}

/// The task spec of task `t` and its derived id.
fn spec(t: usize, piece_len: u64) -> pb::TaskSpec {
    let url = format!("https://origin.sim/v2/library/app/blobs/layer-{t:04}");
    let id = common::task_id::task_id(&common::task_id::TaskSpec {
        url: &url,
        piece_length: Some(piece_len),
        ..Default::default()
    })
    .expect("a valid URL");
    pb::TaskSpec { task_id: id.0, url, piece_length: Some(piece_len), ..Default::default() }
}

fn peer_id(p: &Plan) -> String {
    format!("{}-sim-{}", host_id(p.host), p.idx)
}

fn idx_of(peer_id: &str) -> Option<usize> {
    peer_id.rsplit_once("-sim-")?.1.parse().ok()
}

/// A small xorshift, per peer: which piece and which parent, and the jitter.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// `d` × [0.5, 1.5).
    fn jitter(&mut self, d: Duration) -> Duration {
        d.mul_f64(0.5 + (self.next() % 1000) as f64 / 1000.0)
    }
}

/// Runs the swarm on announced `clients` (one per host) until every peer is done or the deadline.
pub async fn run(clients: &[Client], shape: &Shape) -> Outcome {
    let plans = plans(shape);
    let shared = Arc::new(Shared { reports: (0..plans.len()).map(|_| Mutex::new(Vec::new())).collect() });
    let t0 = Instant::now();
    let deadline = t0 + shape.deadline;
    let stop = tokio_util::sync::CancellationToken::new();
    let lag = tokio::spawn(measure_lag(stop.clone()));
    let mut set = tokio::task::JoinSet::new();
    for p in plans {
        let client = clients[p.host].clone();
        let (shared, shape) = (shared.clone(), shape.clone());
        set.spawn(peer(p, client, shared, shape, t0, deadline));
    }
    let mut out = Outcome::default();
    let mut last = t0;
    while let Some(r) = set.join_next().await {
        let Ok(r) = r else { continue };
        out.first_update.extend(r.first_update);
        out.register.extend(r.register);
        out.report.extend(r.report);
        out.reports += r.reports;
        out.updates += r.updates;
        if r.finished {
            out.finished += 1;
            last = last.max(r.ended);
        } else {
            out.unfinished += 1;
        }
        if let Some(e) = r.error {
            out.errors += 1;
            out.first_error.get_or_insert(e);
        }
    }
    stop.cancel();
    out.sim_lag = lag.await.unwrap_or_default();
    out.elapsed = last - t0;
    out
}

/// Records how late a 10 ms timer fires in this process until `stop`.
async fn measure_lag(stop: tokio_util::sync::CancellationToken) -> Vec<u32> {
    let mut samples = Vec::new();
    let mut next = Instant::now();
    while !stop.is_cancelled() {
        next += Duration::from_millis(10);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.cancelled() => break,
        }
        samples.push(Instant::now().saturating_duration_since(next).as_micros() as u32);
    }
    samples
}

struct PeerResult {
    first_update: Vec<u32>,
    register: Vec<u32>,
    report: Vec<u32>,
    reports: u64,
    updates: u64,
    finished: bool,
    ended: Instant,
    error: Option<String>,
}

async fn peer(
    p: Plan,
    mut client: Client,
    shared: Arc<Shared>,
    shape: Shape,
    t0: Instant,
    deadline: Instant,
) -> PeerResult {
    let mut r = PeerResult {
        first_update: Vec::new(),
        register: Vec::new(),
        report: Vec::new(),
        reports: 0,
        updates: 0,
        finished: false,
        ended: t0,
        error: None,
    };
    tokio::time::sleep_until(t0 + p.start).await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (p.idx as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let (tx, rx) = mpsc::channel(16);
    let register = pb::RegisterPeer {
        host_id: host_id(p.host).0,
        peer_id: peer_id(&p),
        task: Some(spec(p.task, shape.piece_len)),
        disable_back_to_source: false,
    };
    let use_request = |request| pb::AnnouncePeerRequest { request: Some(request) };
    use pb::announce_peer_request::Request as R;
    let _ = tx.send(use_request(R::Register(register))).await;
    let sent_at = Instant::now();
    let mut inbound = match client.announce_peer(ReceiverStream::new(rx)).await {
        Ok(s) => s.into_inner(),
        Err(e) => {
            r.error = Some(format!("announce_peer: {}", e.message()));
            return r;
        }
    };
    let total = shape.pieces;
    let mut have = PieceBitmap::new();
    let mut parents: Vec<(String, PieceBitmap)> = Vec::new();
    let mut seen: std::collections::HashMap<usize, u32> = std::collections::HashMap::new();
    let mut source = false;
    let mut got_parents = false;
    let mut next = Instant::now() + Duration::from_secs(3600);
    loop {
        tokio::select! {
            m = inbound.message() => match m {
                Ok(Some(resp)) => match resp.response {
                    Some(pb::announce_peer_response::Response::NeedBackToSource(_)) => {
                        source = true;
                        let info = pb::ContentInfo {
                            content_length: Some(u64::from(total) * shape.piece_len),
                            piece_length: shape.piece_len,
                            ranges: false,
                        };
                        let _ = tx.send(use_request(R::ContentInfo(info))).await;
                        next = Instant::now() + shape.origin_interval;
                    }
                    Some(pb::announce_peer_response::Response::Update(u)) => {
                        let now = Instant::now();
                        r.updates += 1;
                        if r.updates == 1 {
                            r.first_update.push((now - sent_at).as_micros() as u32);
                        }
                        if !u.parents.is_empty() && !got_parents {
                            got_parents = true;
                            r.register.push((now - sent_at).as_micros() as u32);
                            next = now + rng.jitter(shape.piece_interval);
                        }
                        parents.clear();
                        // Only a parent kept from the previous update counts: one given again
                        // later shows a count it may have reached long before.
                        let before = std::mem::take(&mut seen);
                        for par in u.parents {
                            let bits = PieceBitmap::from_bytes(&par.finished_pieces);
                            if let Some(i) = idx_of(&par.peer_id) {
                                let count = bits.len();
                                seen.insert(i, count);
                                if before.get(&i).is_some_and(|prev| count > *prev)
                                    && let Some(at) = shared.reports[i].lock().unwrap().get(count as usize - 1)
                                {
                                    r.report.push(now.saturating_duration_since(*at).as_micros() as u32);
                                }
                            }
                            parents.push((par.peer_id, bits));
                        }
                    }
                    None => {}
                },
                Ok(None) => break,
                Err(e) => {
                    r.error = Some(format!("stream: {}", e.message()));
                    break;
                }
            },
            _ = tokio::time::sleep_until(next) => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let piece = if source {
                    (0..total).find(|n| !have.contains(*n)).map(|n| {
                        let digest = blake3::hash(format!("{}:{n}", p.task).as_bytes()).as_bytes().to_vec();
                        pb::PieceFinished { number: n, digest, ..Default::default() }
                    })
                } else {
                    let wanted: Vec<u32> =
                        (0..total).filter(|n| !have.contains(*n) && parents.iter().any(|(_, b)| b.contains(*n))).collect();
                    (!wanted.is_empty()).then(|| {
                        let n = wanted[rng.below(wanted.len())];
                        let holders: Vec<&String> = parents.iter().filter(|(_, b)| b.contains(n)).map(|(id, _)| id).collect();
                        let parent_id = holders[rng.below(holders.len())].clone();
                        let cost_micros = 40_000 + rng.below(20_000) as u64;
                        pb::PieceFinished { number: n, parent_id, cost_micros, ..Default::default() }
                    })
                };
                let Some(piece) = piece else {
                    // Nothing to fetch from the parents known: look again shortly.
                    next = now + Duration::from_millis(100);
                    continue;
                };
                have.insert(piece.number);
                shared.reports[p.idx].lock().unwrap().push(Instant::now());
                r.reports += 1;
                let _ = tx.send(use_request(R::PiecesFinished(pb::PiecesFinished { pieces: vec![piece] }))).await;
                if have.len() == total {
                    let done = pb::PeerFinished { content_length: u64::from(total) * shape.piece_len };
                    let _ = tx.send(use_request(R::Finished(done))).await;
                    r.finished = true;
                    r.ended = Instant::now();
                    next = Instant::now() + Duration::from_secs(3600);
                } else {
                    next = now + rng.jitter(if source { shape.origin_interval } else { shape.piece_interval });
                }
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    r
}
