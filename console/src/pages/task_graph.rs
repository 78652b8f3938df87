//! The live task graph: for one task in one cluster, who downloads from whom (the DAG), each
//! peer's progress in pieces, and traffic by source (origin / other peers). While any peer is
//! still downloading the page looks again every second; afterwards it shows the final state,
//! from the schedulers while they hold the task and from the manager's record of it after. Without
//! a task, the page lists the cluster's recent tasks to pick from.

use leptos::prelude::*;
use leptos_router::components::Form;

use crate::api::page::Page;
use crate::{
    api::{
        clusters::all_clusters,
        tasks::{TaskInfo, TaskPeer, TaskRecord, get_task_graph, recent_tasks},
    },
    components::{ClusterSelect, ErrorNote, Loading, Pager, StateBadge, encode, query, query_page},
};
use common::api::short_time;

const WIDTH: f64 = 1000.0;
const ORIGIN: &str = "origin";

/// Where each node goes: the origin on top, then each peer one layer below its deepest source.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// `(id, x, y)`; the origin's id is [`ORIGIN`].
    pub nodes: Vec<(String, f64, f64)>,
    /// `(from, to, pieces)`.
    pub edges: Vec<(String, String, u32)>,
    pub height: f64,
}

/// Lays the DAG out in layers. Sources that are not (or no longer) peers of the task are drawn
/// from the origin's layer so no edge dangles.
pub fn place(graph: &TaskInfo) -> Placed {
    let ids: Vec<&str> = graph.peers.iter().map(|p| p.peer_id.as_str()).collect();
    let mut depth: Vec<usize> = vec![1; graph.peers.len()];
    // Longest path from the origin; the scheduler keeps the DAG acyclic, and the pass count is
    // bounded anyway.
    for _ in 0..graph.peers.len() {
        let mut changed = false;
        for (i, p) in graph.peers.iter().enumerate() {
            let deepest = p
                .sources
                .iter()
                .filter_map(|s| ids.iter().position(|id| *id == s.parent_id))
                .map(|j| depth[j] + 1)
                .max()
                .unwrap_or(1);
            if deepest > depth[i] {
                depth[i] = deepest;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let layers = depth.iter().copied().max().unwrap_or(0);
    let mut nodes = vec![(ORIGIN.to_owned(), WIDTH / 2.0, 40.0)];
    for layer in 1..=layers {
        let members: Vec<usize> = (0..graph.peers.len()).filter(|i| depth[*i] == layer).collect();
        for (k, i) in members.iter().enumerate() {
            let x = WIDTH * (k as f64 + 0.5) / members.len() as f64;
            nodes.push((graph.peers[*i].peer_id.clone(), x, 40.0 + layer as f64 * 120.0));
        }
    }
    let mut edges = Vec::new();
    for p in &graph.peers {
        if p.origin_pieces > 0 {
            edges.push((ORIGIN.to_owned(), p.peer_id.clone(), p.origin_pieces));
        }
        for s in &p.sources {
            let from = if ids.contains(&s.parent_id.as_str()) { s.parent_id.clone() } else { ORIGIN.to_owned() };
            edges.push((from, p.peer_id.clone(), s.pieces));
        }
    }
    Placed { nodes, edges, height: 40.0 + layers as f64 * 120.0 + 60.0 }
}

/// "12.0 MiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

#[component]
pub fn TaskGraphPage() -> impl IntoView {
    let (cluster, task, tag, application) = (query("cluster"), query("task"), query("tag"), query("application"));
    let clusters = Resource::new(|| (), |_| all_clusters());
    let tick = RwSignal::new(0u32);
    let graph = Resource::new(
        move || (cluster.get(), task.get(), tag.get(), application.get(), tick.get()),
        |(c, t, tag, app, _)| async move {
            match (c.parse::<i64>(), t.trim().is_empty()) {
                (Ok(c), false) => Some(get_task_graph(c, t, tag, app).await),
                _ => None,
            }
        },
    );
    let page = query_page();
    let recent = Resource::new(move || (cluster.get(), page.get()), |(c, p)| recent_tasks(c.parse().ok(), p));
    // Live while the download runs: look again every second (in the browser only).
    Effect::new(move || {
        if graph.get().flatten().and_then(Result::ok).is_some_and(|g| g.running()) {
            set_timeout(move || tick.update(|t| *t += 1), std::time::Duration::from_secs(1));
        }
    });
    view! {
        <section class="card" aria-labelledby="task-title">
            <h1 id="task-title">"Task graph"</h1>
            <Suspense>
                {move || clusters.get().and_then(Result::ok).map(|cs| {
                    let selected = cluster.get();
                    view! {
                        <Form method="GET" action="" attr:class="filters">
                            <label for="graph-cluster">"Cluster"</label>
                            <ClusterSelect id="graph-cluster" name="cluster" clusters=cs selected />
                            <label for="graph-task">"Task id or URL"</label>
                            <input id="graph-task" name="task" value=task.get_untracked() required />
                            <label for="graph-tag">"Tag"</label>
                            <input id="graph-tag" name="tag" value=tag.get_untracked() />
                            <label for="graph-application">"Application"</label>
                            <input id="graph-application" name="application" value=application.get_untracked() />
                            <button type="submit" class="secondary">"Show"</button>
                        </Form>
                    }
                })}
            </Suspense>
        </section>
        <Transition fallback=Loading>
            {move || graph.get().flatten().map(|r| match r {
                Err(error) => view! { <section class="card"><ErrorNote error /></section> }.into_any(),
                Ok(g) => view! { <GraphView graph=g /> }.into_any(),
            })}
        </Transition>
        <Suspense fallback=Loading>
            // The cluster's recent tasks, when no task is asked for.
            {move || task.get().trim().is_empty().then(|| recent.get().map(|r| match r {
                Err(error) => view! { <section class="card"><ErrorNote error /></section> }.into_any(),
                Ok(page) => view! { <RecentTasks page /> }.into_any(),
            }))}
        </Suspense>
    }
}

/// The cluster's recent tasks, each a link to its graph.
#[component]
fn RecentTasks(page: Page<TaskRecord>) -> impl IntoView {
    let empty = page.items.is_empty();
    let rows = page
        .items
        .iter()
        .map(|t| {
            let href = format!("/tasks?cluster={}&task={}", t.cluster_id, encode(&t.task_id));
            let size = t.content_length.map(bytes).unwrap_or_else(|| "—".into());
            view! {
                <tr data-task=t.task_id.clone()>
                    <td class="wrap"><a href=href>{t.url.clone()}</a></td>
                    <td><StateBadge state=t.state.clone() /></td>
                    <td class="num">{format!("{} / {}", t.finished_peers, t.peers)}</td>
                    <td class="num">{size}</td>
                    <td>{short_time(&t.updated_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="recent-title">
            <h2 id="recent-title">"Recent tasks"</h2>
            <p class="muted">"Tasks of this cluster as its schedulers last reported them; pick one to see its graph, or enter a task id or URL above."</p>
            {if empty {
                view! { <p class="empty">"No task yet: download something through a peer of this cluster (dfget, the proxy) and it appears here."</p> }.into_any()
            } else {
                view! {
                    <table id="recent-tasks">
                        <thead><tr>
                            <th scope="col">"URL"</th><th scope="col">"State"</th><th scope="col">"Peers done"</th>
                            <th scope="col">"Size"</th><th scope="col">"Updated"</th>
                        </tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                    <Pager page noun="tasks" />
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn GraphView(graph: TaskInfo) -> impl IntoView {
    let placed = place(&graph);
    let (origin, peers) = graph.traffic();
    let total = (origin + peers).max(1);
    let at = |id: &str| placed.nodes.iter().find(|n| n.0 == id).map(|n| (n.1, n.2)).unwrap_or((0.0, 0.0));
    let total_pieces = graph.total_pieces.max(1);
    let peer_of = |id: &str| graph.peers.iter().find(|p| p.peer_id == id).cloned();
    let running = graph.running();
    view! {
        <section class="card" aria-labelledby="graph-title">
            <h2 id="graph-title">{format!("{} peers · {} pieces", graph.peers.len(), graph.total_pieces)}</h2>
            <p class="muted wrap">{graph.url.clone()} <br /> <code>{graph.task_id.clone()}</code></p>
            <p id="graph-state" aria-live="polite">{match (&graph.recorded_at, running) {
                (Some(at), _) => format!("Recorded {}: no scheduler holds this task now; this is the last state they reported.", short_time(at)),
                (None, true) => "Downloading: following it live.".to_owned(),
                (None, false) => "Every peer has finished.".to_owned(),
            }}</p>
            <div class="traffic" id="traffic">
                <div class="traffic-bar" role="img" aria-label="Traffic by source">
                    <span class="from-origin" style=format!("width: {}%", origin * 100 / total)></span>
                    <span class="from-peers" style=format!("width: {}%", peers * 100 / total)></span>
                </div>
                <span><span class="swatch origin"></span>"origin " <strong id="traffic-origin">{bytes(origin)}</strong></span>
                <span><span class="swatch peers"></span>"other peers " <strong id="traffic-peers">{bytes(peers)}</strong></span>
            </div>
            <div class="graph">
                <svg id="task-graph" viewBox=format!("0 0 {WIDTH} {}", placed.height) xmlns="http://www.w3.org/2000/svg">
                    {placed.edges.iter().map(|(from, to, pieces)| {
                        let ((x1, y1), (x2, y2)) = (at(from), at(to));
                        let width = 1.0 + 6.0 * f64::from(*pieces) / f64::from(total_pieces);
                        view! {
                            <g class="edge-group" data-from=from.clone() data-to=to.clone()>
                                <line x1=x1 y1=y1 x2=x2 y2=y2 class=if from == ORIGIN { "edge origin-edge" } else { "edge" } stroke-width=width />
                                <text x=(x1 + x2) / 2.0 y=(y1 + y2) / 2.0 class="caption">{pieces.to_string()}</text>
                            </g>
                        }
                    }).collect_view()}
                    {placed.nodes.iter().map(|(id, x, y)| match peer_of(id) {
                        None => view! {
                            <g class="node manager" data-kind="origin"><title>"the origin"</title>
                                <circle cx=*x cy=*y r="16" /><text x=*x y=y + 30.0 class="label">"origin"</text></g>
                        }.into_any(),
                        Some(p) => {
                            let done = f64::from(p.finished_pieces) / f64::from(total_pieces);
                            let class = format!("node peer {}", if p.state == "failed" { "inactive" } else { "active" });
                            view! {
                                <g class=class data-kind="peer" data-hostname=p.hostname.clone() data-state=p.state.clone() data-finished=p.finished_pieces>
                                    <title>{format!("{} ({}) · {} · {}/{} pieces", p.hostname, p.ip, p.state, p.finished_pieces, graph.total_pieces)}</title>
                                    <circle cx=*x cy=*y r="14" />
                                    <rect x=x - 24.0 y=y + 18.0 width="48" height="5" class="progress-track" />
                                    <rect x=x - 24.0 y=y + 18.0 width=48.0 * done height="5" class="progress-done" />
                                    <text x=*x y=y + 36.0 class="label">{p.hostname.clone()}</text>
                                </g>
                            }.into_any()
                        }
                    }).collect_view()}
                </svg>
            </div>
            <PeerTable peers=graph.peers.clone() total=graph.total_pieces />
        </section>
    }
}

#[component]
fn PeerTable(peers: Vec<TaskPeer>, total: u32) -> impl IntoView {
    view! {
        <table id="task-peers">
            <thead><tr>
                <th scope="col">"Peer"</th><th scope="col">"State"</th><th scope="col">"Pieces"</th>
                <th scope="col">"From origin"</th><th scope="col">"From peers"</th>
            </tr></thead>
            <tbody>
                {peers.into_iter().map(|p| {
                    let from_peers: u32 = p.sources.iter().map(|s| s.pieces).sum();
                    view! {
                        <tr data-hostname=p.hostname.clone()>
                            <td>{p.hostname.clone()}<br /><code class="muted">{p.peer_id.clone()}</code></td>
                            <td><StateBadge state=p.state.clone() /></td>
                            <td class="num">{format!("{} / {total}", p.finished_pieces)}</td>
                            <td class="num">{p.origin_pieces}</td>
                            <td class="num">{from_peers}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tasks::PieceSource;

    fn peer(id: &str, origin: u32, sources: &[(&str, u32)]) -> TaskPeer {
        TaskPeer {
            host_id: id.into(),
            hostname: id.into(),
            ip: String::new(),
            peer_id: id.into(),
            state: "succeeded".into(),
            finished_pieces: 4,
            origin_pieces: origin,
            inline_pieces: 0,
            sources: sources.iter().map(|(p, n)| PieceSource { parent_id: (*p).into(), pieces: *n }).collect(),
        }
    }

    fn graph(peers: Vec<TaskPeer>) -> TaskInfo {
        TaskInfo {
            task_id: "t".into(),
            url: "http://o/f".into(),
            content_length: Some(4 * 1024 - 10),
            piece_length: 1024,
            total_pieces: 4,
            peers,
            recorded_at: None,
        }
    }

    #[test]
    fn a_record_is_history_not_a_running_download() {
        let mut g = graph(vec![peer("a", 1, &[])]);
        g.peers[0].state = "running".into();
        assert!(g.running());
        g.recorded_at = Some("2026-11-25T01:00:00Z".into());
        assert!(!g.running());
    }

    #[test]
    fn peers_sit_one_layer_below_their_deepest_source() {
        let g = graph(vec![
            peer("c", 0, &[("b", 2), ("seed", 2)]),
            peer("seed", 4, &[]),
            peer("b", 0, &[("seed", 4)]),
            peer("gone-parent-child", 0, &[("gone", 4)]),
        ]);
        let placed = place(&g);
        let y = |id: &str| placed.nodes.iter().find(|n| n.0 == id).unwrap().2;
        assert!(y(ORIGIN) < y("seed") && y("seed") < y("b") && y("b") < y("c"));
        assert_eq!(y("gone-parent-child"), y("seed"), "an unknown parent counts as the origin's layer");
        assert!(placed.edges.contains(&(ORIGIN.to_owned(), "seed".to_owned(), 4)));
        assert!(placed.edges.contains(&("b".to_owned(), "c".to_owned(), 2)));
        assert!(placed.edges.contains(&(ORIGIN.to_owned(), "gone-parent-child".to_owned(), 4)));
    }

    #[test]
    fn traffic_is_split_by_source_and_capped_by_the_content() {
        let g = graph(vec![peer("seed", 4, &[]), peer("b", 0, &[("seed", 4)])]);
        assert_eq!(g.traffic(), (4 * 1024 - 10, 4 * 1024 - 10));
        assert!(!g.running());
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12), "12 B");
    }
}
