//! Peers insight: the peers registered with the manager, searchable by hostname or IP and
//! filtered by cluster and state (all in the URL), bar charts of versions, states, IDCs and
//! locations drawn as inline SVG, and a CSV export offered as a `data:` link, so that it works
//! from the server-rendered page alone.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos_router::components::{A, Form};

use crate::{
    api::{
        clusters::all_clusters,
        peers::{Bucket, MAX_PEERS, PeerExport, PeerFilter, count_peers, export_peers, list_peers},
    },
    components::{ClusterSelect, ErrorNote, Loading, Pager, StateBadge, encode, query, query_page, with_query},
};
use common::api::short_time;

const STATES: &[(&str, &str)] = &[("", "any state"), ("active", "active"), ("inactive", "inactive")];

#[component]
pub fn PeersPage() -> impl IntoView {
    let page = query_page();
    let (search, cluster, state, export) = (query("search"), query("cluster_id"), query("state"), query("export"));
    let filter = Memo::new(move |_| PeerFilter { cluster_id: cluster.get(), state: state.get(), search: search.get() });
    let peers = Resource::new(move || (page.get(), filter.get()), |(p, f)| list_peers(p, f));
    let counts = Resource::new(move || filter.get(), count_peers);
    let csv = Resource::new(
        move || (export.get() == "csv").then(|| filter.get()),
        |f| async move {
            match f {
                Some(f) => export_peers(f).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let clusters = Resource::new(|| (), |_| all_clusters());
    view! {
        <section class="card" aria-labelledby="peers-title">
            <h1 id="peers-title">"Peers"</h1>
            <p class="muted">"Every peer that asked the manager for schedulers, in the clusters you can see."</p>
            <Form method="GET" action="" attr:class="filters" attr:id="peer-filters">
                <label for="peer-search">"Hostname or IP"</label>
                <input id="peer-search" type="search" name="search" value=search placeholder="exact hostname or IP" />
                <label for="filter-cluster">"Cluster"</label>
                <Suspense fallback=move || view! { <ClusterSelect id="filter-cluster" name="cluster_id" any="any cluster" clusters=Vec::new() selected=cluster /> }>
                    {move || clusters.get().map(|r| view! {
                        <ClusterSelect id="filter-cluster" name="cluster_id" any="any cluster" clusters=r.unwrap_or_default() selected=cluster />
                    })}
                </Suspense>
                <label for="filter-state">"State"</label>
                <select id="filter-state" name="state">
                    {STATES.iter().map(|(v, l)| view! { <option value=*v selected=move || state.get() == *v>{*l}</option> }).collect_view()}
                </select>
                <button type="submit" class="secondary">"Filter"</button>
                {move || (filter.get() != PeerFilter::default()).then(|| view! { <A href="/peers">"Clear"</A> })}
            </Form>
            <Suspense fallback=Loading>
                {move || peers.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">
                            {if filter.get_untracked() == PeerFilter::default() {
                                "No peer has registered yet. Start dfdaemon with a cluster's id in its [manager] config and it appears here."
                            } else {
                                "No peer matches. Hostnames and IPs must match exactly; clear the filters to see every peer."
                            }}
                        </p>
                    }.into_any(),
                    Ok(mut page) => {
                        let names: HashMap<i64, String> = clusters.get().and_then(Result::ok).unwrap_or_default()
                            .into_iter().map(|c| (c.id, c.name)).collect();
                        let rows = std::mem::take(&mut page.items).into_iter().map(|p| {
                            let cluster = names.get(&p.cluster_id).cloned().unwrap_or_else(|| format!("cluster {}", p.cluster_id));
                            let system = [p.os.clone().unwrap_or_default(), p.platform.clone().unwrap_or_default()]
                                .into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" · ");
                            let dash = |s: &str| if s.is_empty() { "—".to_owned() } else { s.to_owned() };
                            view! {
                                <tr data-hostname=p.hostname.clone()>
                                    <td>{p.hostname.clone()}</td>
                                    <td><code>{format!("{}:{}", p.ip, p.port)}</code></td>
                                    <td><A href=format!("/clusters/{}", p.cluster_id)>{cluster}</A></td>
                                    <td><StateBadge state=p.state.clone() /></td>
                                    <td>{dash(&p.idc)}</td>
                                    <td>{dash(&p.location)}</td>
                                    <td>{dash(&p.version)}</td>
                                    <td>{dash(&system)}</td>
                                    <td>{p.last_keep_alive_at.as_deref().map(short_time).unwrap_or_else(|| "never".into())}</td>
                                </tr>
                            }
                        }).collect_view();
                        let export_href = with_query("export", "csv");
                        view! {
                            <table id="peers-table">
                                <thead><tr>
                                    <th scope="col">"Hostname"</th><th scope="col">"Address"</th><th scope="col">"Cluster"</th>
                                    <th scope="col">"State"</th><th scope="col">"IDC"</th><th scope="col">"Location"</th>
                                    <th scope="col">"Version"</th><th scope="col">"OS · platform"</th><th scope="col">"Last keepalive (UTC)"</th>
                                </tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                            <div class="heading">
                                <A href=export_href attr:id="export-csv" attr:class="button secondary">"Export CSV"</A>
                                <Pager page noun="peers" />
                            </div>
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
        <Suspense>
            {move || csv.get().map(|r| match r {
                Ok(None) => ().into_any(),
                Err(error) => view! { <section class="card"><ErrorNote error /></section> }.into_any(),
                Ok(Some(export)) => view! { <CsvExport export /> }.into_any(),
            })}
        </Suspense>
        <section class="card" aria-labelledby="peer-charts-title">
            <h2 id="peer-charts-title">"Breakdown"</h2>
            <Suspense fallback=Loading>
                {move || counts.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(c) if c.total == 0 => view! { <p class="empty">"No peers to count."</p> }.into_any(),
                    Ok(c) => view! {
                        <p class="muted" id="peer-count">
                            {if c.counted < c.total {
                                format!("The first {} of {} matching peers, counted.", c.counted, c.total)
                            } else {
                                format!("{} matching peers.", c.total)
                            }}
                        </p>
                        <div class="charts">
                            <BarChart id="chart-version" title="By version" buckets=c.by_version />
                            <BarChart id="chart-state" title="By state" buckets=c.by_state />
                            <BarChart id="chart-idc" title="By IDC" buckets=c.by_idc />
                            <BarChart id="chart-location" title="By location" buckets=c.by_location />
                        </div>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

/// The CSV as a download link (a `data:` URL, so no script is needed) and its first lines.
#[component]
fn CsvExport(export: PeerExport) -> impl IntoView {
    let href = format!("data:text/csv;charset=utf-8,{}", encode(&export.csv));
    let preview: String = export.csv.split_inclusive('\n').take(6).collect();
    let note = if export.rows < export.total {
        format!("The first {} of {} matching peers (at most {MAX_PEERS} are exported).", export.rows, export.total)
    } else {
        format!("{} peers.", export.rows)
    };
    view! {
        <section class="card" aria-labelledby="export-title" id="peer-export">
            <div class="heading">
                <h2 id="export-title">"CSV export"</h2>
                <A href=with_query("export", "") attr:class="muted">"Close"</A>
            </div>
            <p class="muted" id="export-note">{note}</p>
            <p><a id="csv-download" class="button" href=href download="peers.csv">"Download peers.csv"</a></p>
            <pre class="preview" aria-label="First lines of the CSV">{preview}</pre>
        </section>
    }
}

/// Bar lengths for `counts`, the largest filling `full`; any count above zero is at least 2
/// long so it stays visible.
fn bar_lengths(counts: &[u64], full: u32) -> Vec<u32> {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .map(|&c| if c == 0 { 0 } else { ((c as f64 / max as f64 * f64::from(full)).round() as u32).max(2) })
        .collect()
}

/// A label cut to `max` characters, with an ellipsis when cut.
fn short_label(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

const ROW: u32 = 26;
const LABEL_W: u32 = 130;
const BAR_W: u32 = 200;
const CHART_W: u32 = LABEL_W + BAR_W + 60;

/// A horizontal bar chart as inline SVG, one bar per bucket; each bar's title gives the exact
/// label and count.
#[component]
fn BarChart(id: &'static str, title: &'static str, buckets: Vec<Bucket>) -> impl IntoView {
    let lengths = bar_lengths(&buckets.iter().map(|b| b.count).collect::<Vec<_>>(), BAR_W);
    let height = ROW * buckets.len() as u32 + 4;
    let caption = format!("{id}-title");
    let bars = buckets
        .into_iter()
        .zip(lengths)
        .enumerate()
        .map(|(i, (b, w))| {
            let y = i as u32 * ROW + 2;
            let tip = format!("{}: {}", b.label, b.count);
            view! {
                <g class="bar" data-label=b.label.clone() data-count=b.count>
                    <title>{tip}</title>
                    <text x=LABEL_W - 8 y=y + 17 text-anchor="end" class="chart-label">{short_label(&b.label, 18)}</text>
                    <rect x=LABEL_W y=y + 4 width=w height=ROW - 8 rx="3" class="chart-bar"></rect>
                    <text x=LABEL_W + w + 6 y=y + 17 class="chart-count">{b.count}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="chart" id=id>
            <figcaption id=caption.clone()>{title}</figcaption>
            <svg role="img" aria-labelledby=caption viewBox=format!("0 0 {CHART_W} {height}") width="100%" height=height>
                {bars}
            </svg>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_stay_visible() {
        assert_eq!(bar_lengths(&[10, 5, 0], 200), vec![200, 100, 0]);
        assert_eq!(bar_lengths(&[1000, 1], 200), vec![200, 2]);
        assert_eq!(bar_lengths(&[], 200), Vec::<u32>::new());
        assert_eq!(bar_lengths(&[0, 0], 200), vec![0, 0]);
    }

    #[test]
    fn long_labels_are_cut() {
        assert_eq!(short_label("v1.2.3", 18), "v1.2.3");
        assert_eq!(short_label("abcdef", 4), "abc…");
        assert_eq!(short_label("ééééé", 5), "ééééé");
    }
}
