//! Topology: a drawn graph of one cluster — manager, schedulers, seed peers, peers — colored by
//! state, sized by load (upload rate, relative to the busiest host drawn), and following changes
//! live.
//!
//! The first drawing comes from the server. Once hydrated, the page listens to the manager's
//! server-sent events for the cluster and redraws on every change. Peers are drawn in groups by
//! IDC and location, as dots when a group is large, so a cluster of hundreds stays readable;
//! the hostname filter and zoom narrow it further.

use leptos::prelude::*;
use leptos_router::components::Form;

use crate::{
    api::{
        clusters::all_clusters,
        topology::{Node, Topology, cluster_topology, groups},
    },
    components::{ClusterSelect, ErrorNote, Loading, StateBadge, query},
    pages::task_graph::bytes,
};
use common::api::short_time;

const WIDTH: f64 = 1000.0;

/// One drawn host.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub r: f64,
    pub kind: &'static str,
    pub node: Option<Node>,
    pub label: Option<String>,
}

/// A laid-out drawing: dots, edges between them, group captions, and the height it needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Drawing {
    pub dots: Vec<Dot>,
    pub edges: Vec<(f64, f64, f64, f64)>,
    pub captions: Vec<(f64, f64, String)>,
    pub height: f64,
}

/// A host's radius: `base` when idle, growing with the square root of its share of the busiest
/// host's load (so area follows load) up to 1.8 × `base`.
pub fn radius(base: f64, load: u64, busiest: u64) -> f64 {
    if busiest == 0 { base } else { base * (1.0 + 0.8 * (load as f64 / busiest as f64).clamp(0.0, 1.0).sqrt()) }
}

/// Lays `t` out top-down: manager, schedulers, seed peers, then peer groups. `filter` keeps
/// peers whose hostname or IP contains it. Seed peers and peers grow with their load.
pub fn layout(t: &Topology, filter: &str) -> Drawing {
    let mut d = Drawing::default();
    let manager = (WIDTH / 2.0, 40.0);
    d.dots.push(Dot {
        x: manager.0,
        y: manager.1,
        r: 18.0,
        kind: "manager",
        node: None,
        label: Some("manager".into()),
    });
    let needle = filter.trim().to_lowercase();
    let peers: Vec<Node> = t
        .peers
        .iter()
        .filter(|p| needle.is_empty() || p.hostname.to_lowercase().contains(&needle) || p.ip.contains(&needle))
        .cloned()
        .collect();
    let busiest = t.seed_peers.iter().chain(&peers).map(Node::load).max().unwrap_or(0);
    let row = |nodes: &[Node], y: f64, kind: &'static str, d: &mut Drawing| -> Vec<(f64, f64)> {
        let n = nodes.len().max(1) as f64;
        nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let x = WIDTH * (i as f64 + 0.5) / n;
                let r = radius(14.0, node.load(), busiest);
                d.dots.push(Dot { x, y, r, kind, node: Some(node.clone()), label: Some(node.hostname.clone()) });
                (x, y)
            })
            .collect()
    };
    let schedulers = row(&t.schedulers, 140.0, "scheduler", &mut d);
    for s in &schedulers {
        d.edges.push((manager.0, manager.1, s.0, s.1));
    }
    let seeds = row(&t.seed_peers, 240.0, "seed-peer", &mut d);
    for s in &seeds {
        for sch in &schedulers {
            d.edges.push((sch.0, sch.1, s.0, s.1));
        }
    }
    let mut y = 330.0;
    let hub = schedulers.first().copied().unwrap_or(manager);
    for (name, members) in groups(&peers) {
        let big = members.len() > 24;
        let (r, step) = if big { (5.0, 14.0) } else { (11.0, 64.0) };
        let per_row = ((WIDTH - 40.0) / step).floor().max(1.0) as usize;
        d.captions.push((20.0, y, format!("{name} ({})", members.len())));
        y += if big { 16.0 } else { 26.0 };
        let rows = members.len().div_ceil(per_row);
        for (i, p) in members.iter().enumerate() {
            let x = 20.0 + step / 2.0 + (i % per_row) as f64 * step;
            let py = y + (i / per_row) as f64 * (if big { step } else { 44.0 });
            d.dots.push(Dot {
                x,
                y: py,
                r: radius(r, p.load(), busiest),
                kind: "peer",
                node: Some((*p).clone()),
                label: (!big).then(|| p.hostname.clone()),
            });
        }
        // One edge per group to the first scheduler keeps hundreds of peers from becoming a hairball.
        if let Some(first) = d.dots.last().filter(|_| !members.is_empty()) {
            d.edges.push((hub.0, hub.1, first.x.min(WIDTH / 2.0), y - r));
        }
        y += rows as f64 * if big { step } else { 44.0 } + 24.0;
    }
    d.height = y.max(300.0);
    d
}

#[component]
pub fn TopologyPage() -> impl IntoView {
    let cluster = query("cluster");
    let filter = query("q");
    // Every resource is made here, at the page's top, with sibling Suspenses: resources created
    // inside another Suspense's content do not hydrate reliably.
    let clusters = Resource::new(|| (), |_| all_clusters());
    let first = Resource::new(move || cluster.get().parse::<i64>().ok(), cluster_topology);
    let live = RwSignal::new(None::<Topology>);
    let connected = RwSignal::new(false);
    // Follow the cluster the snapshot is of (the first one when the URL names none).
    let shown = Memo::new(move |_| first.get().and_then(Result::ok).map(|t| t.cluster_id));
    follow(shown, live, connected);
    let zoom = RwSignal::new(1.0f64);
    view! {
        <section class="card" aria-labelledby="topology-title">
            <h1 id="topology-title">"Topology"</h1>
            <Suspense>
                {move || clusters.get().and_then(Result::ok).map(|cs| {
                    // The URL's cluster, else the first one (which the snapshot also falls back to).
                    let selected = match cluster.get() {
                        c if !c.is_empty() => c,
                        _ => cs.first().map(|c| c.id.to_string()).unwrap_or_default(),
                    };
                    view! {
                        <Form method="GET" action="" attr:class="filters">
                            <label for="topology-cluster">"Cluster"</label>
                            <ClusterSelect id="topology-cluster" name="cluster" clusters=cs selected />
                            <label for="topology-filter">"Peers matching"</label>
                            <input id="topology-filter" type="search" name="q" value=filter.get_untracked() placeholder="hostname or IP" />
                            <button type="submit" class="secondary">"Show"</button>
                        </Form>
                    }
                })}
            </Suspense>
            <Suspense fallback=Loading>
                {move || first.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(initial) => {
                        let current = Signal::derive(move || {
                            live.get().filter(|t| t.cluster_id == initial.cluster_id).unwrap_or_else(|| initial.clone())
                        });
                        view! {
                            <div class="graph-tools">
                                <span id="live-state" class=move || if connected.get() { "badge ok" } else { "badge muted-badge" }>
                                    {move || if connected.get() { "live" } else { "not live" }}
                                </span>
                                <span class="legend"><span class="swatch active"></span>"active"<span class="swatch inactive"></span>"inactive"" · larger: uploading more"</span>
                                <button type="button" class="secondary" on:click=move |_| zoom.update(|z| *z = (*z * 1.25).min(4.0))>"Zoom in"</button>
                                <button type="button" class="secondary" on:click=move |_| zoom.update(|z| *z = (*z / 1.25).max(0.5))>"Zoom out"</button>
                            </div>
                            {move || {
                                let t = current.get();
                                let d = layout(&t, &filter.get());
                                view! { <Graph drawing=d zoom=zoom.get() truncated=t.truncated /> }
                            }}
                            {move || view! { <HostList topology=current.get() /> }}
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn Graph(drawing: Drawing, zoom: f64, truncated: bool) -> impl IntoView {
    let Drawing { dots, edges, captions, height } = drawing;
    view! {
        <div class="graph" role="img" aria-label="Cluster topology">
            <svg
                id="topology-graph"
                viewBox=format!("0 0 {WIDTH} {height}")
                width=format!("{}%", zoom * 100.0)
                xmlns="http://www.w3.org/2000/svg"
            >
                {edges.into_iter().map(|(x1, y1, x2, y2)| view! {
                    <line x1=x1 y1=y1 x2=x2 y2=y2 class="edge" />
                }).collect_view()}
                {captions.into_iter().map(|(x, y, text)| view! { <text x=x y=y class="caption">{text}</text> }).collect_view()}
                {dots.into_iter().map(|dot| {
                    let state = dot.node.as_ref().map(|n| if n.active() { "active" } else { "inactive" }).unwrap_or("active");
                    let title = dot.node.as_ref().map(|n| format!(
                        "{} {} ({}) · {} · uploading {}/s · last keepalive {}", dot.kind, n.hostname, n.ip, n.state,
                        bytes(n.load()),
                        n.last_keep_alive_at.as_deref().map(short_time).unwrap_or_else(|| "never".into())
                    )).unwrap_or_else(|| "manager".into());
                    let load = dot.node.as_ref().map(Node::load).unwrap_or(0).to_string();
                    let hostname = dot.node.as_ref().map(|n| n.hostname.clone()).unwrap_or_default();
                    view! {
                        <g class=format!("node {} {state}", dot.kind) data-kind=dot.kind data-hostname=hostname data-state=state data-load=load>
                            <title>{title}</title>
                            <circle cx=dot.x cy=dot.y r=dot.r />
                            {dot.label.map(|l| view! { <text x=dot.x y=dot.y + dot.r + 14.0 class="label">{l}</text> })}
                        </g>
                    }
                }).collect_view()}
            </svg>
        </div>
        {truncated.then(|| view! { <p class="muted">"Only the first 5000 peers are drawn; filter by hostname to see others."</p> })}
    }
}

/// The same hosts as a table, for reading and for screen readers.
#[component]
fn HostList(topology: Topology) -> impl IntoView {
    let rows = |kind: &'static str, nodes: Vec<Node>| {
        nodes
            .into_iter()
            .map(move |n| {
                view! {
                    <tr data-kind=kind data-hostname=n.hostname.clone()>
                        <td>{kind}</td><td>{n.hostname.clone()}</td><td><code>{n.ip.clone()}</code></td>
                        <td><StateBadge state=n.state.clone() /></td>
                        <td>{format!("{}/s", bytes(n.load()))}</td>
                        <td>{n.last_keep_alive_at.as_deref().map(short_time).unwrap_or_else(|| "never".into())}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    let peers = topology.peers.len();
    view! {
        <details class="host-list">
            <summary>{format!("{} schedulers, {} seed peers, {peers} peers", topology.schedulers.len(), topology.seed_peers.len())}</summary>
            <table id="topology-hosts">
                <thead><tr><th scope="col">"Kind"</th><th scope="col">"Hostname"</th><th scope="col">"IP"</th><th scope="col">"State"</th><th scope="col">"Upload"</th><th scope="col">"Last keepalive"</th></tr></thead>
                <tbody>
                    {rows("scheduler", topology.schedulers)}
                    {rows("seed peer", topology.seed_peers)}
                    {rows("peer", topology.peers)}
                </tbody>
            </table>
        </details>
    }
}

/// In the browser: follow the cluster's event stream into `live`; `connected` tells whether the
/// stream is open. The browser's EventSource reconnects by itself after a drop.
#[cfg(feature = "hydrate")]
fn follow(cluster: Memo<Option<i64>>, live: RwSignal<Option<Topology>>, connected: RwSignal<bool>) {
    use leptos::wasm_bindgen::{JsCast, closure::Closure};
    Effect::new(move || {
        let Some(cluster_id) = cluster.get() else { return };
        let Ok(source) = web_sys::EventSource::new(&format!("/console/events/topology?cluster_id={cluster_id}")) else {
            return;
        };
        let on_topology = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            if let Some(t) = e.data().as_string().and_then(|text| serde_json::from_str::<Topology>(&text).ok()) {
                live.set(Some(t));
            }
        });
        let on_open = Closure::<dyn FnMut()>::new(move || connected.set(true));
        let on_error = Closure::<dyn FnMut()>::new(move || connected.set(false));
        let _ = source.add_event_listener_with_callback("topology", on_topology.as_ref().unchecked_ref());
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let held = send_wrapper::SendWrapper::new((source, on_topology, on_open, on_error));
        on_cleanup(move || held.0.close());
    });
}

#[cfg(not(feature = "hydrate"))]
fn follow(_cluster: Memo<Option<i64>>, _live: RwSignal<Option<Topology>>, _connected: RwSignal<bool>) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, idc: &str) -> Node {
        Node {
            id: 0,
            hostname: name.into(),
            ip: "10.0.0.1".into(),
            state: "active".into(),
            idc: idc.into(),
            location: String::new(),
            version: String::new(),
            last_keep_alive_at: None,
            upload_rate: 0,
        }
    }

    fn topology(peers: usize) -> Topology {
        Topology {
            cluster_id: 1,
            schedulers: vec![node("s1", ""), node("s2", "")],
            seed_peers: vec![node("seed", "")],
            peers: (0..peers).map(|i| node(&format!("p{i}"), if i % 2 == 0 { "a" } else { "b" })).collect(),
            truncated: false,
        }
    }

    #[test]
    fn every_host_is_drawn_once_inside_the_canvas() {
        let d = layout(&topology(300), "");
        assert_eq!(d.dots.len(), 1 + 2 + 1 + 300);
        assert!(d.dots.iter().all(|p| p.x > 0.0 && p.x < WIDTH && p.y > 0.0 && p.y < d.height));
        // Large groups are dots without labels.
        assert!(d.dots.iter().filter(|p| p.kind == "peer").all(|p| p.label.is_none()));
        // Two groups (IDC a and b), each with a caption.
        assert_eq!(d.captions.len(), 2);
    }

    #[test]
    fn busier_hosts_are_drawn_larger() {
        let mut t = topology(4);
        t.peers[0].upload_rate = 40 << 20;
        t.peers[1].upload_rate = 10 << 20;
        t.peers[2].upload_rate = 90 << 20;
        t.peers[2].state = "inactive".into();
        let d = layout(&t, "");
        let r = |name: &str| d.dots.iter().find(|p| p.node.as_ref().is_some_and(|n| n.hostname == name)).unwrap().r;
        // The busiest active host is 1.8 × an idle one; an inactive host's stale rate is ignored.
        assert!((r("p0") - 1.8 * r("p3")).abs() < 1e-9, "{} {}", r("p0"), r("p3"));
        assert!(r("p1") > r("p3") && r("p1") < r("p0"));
        assert_eq!(r("p2"), r("p3"));
        assert_eq!(radius(10.0, 5, 0), 10.0);
    }

    #[test]
    fn the_filter_keeps_matching_peers_only() {
        let d = layout(&topology(30), "p1");
        let peers: Vec<_> = d.dots.iter().filter(|p| p.kind == "peer").collect();
        // p1, p10..p19
        assert_eq!(peers.len(), 11);
        assert!(peers.iter().all(|p| p.label.is_some()));
    }
}
