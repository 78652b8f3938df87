//! The status page: the manager's health and version.
//!
//! The first render comes complete from the server (readable without WASM); the "Check again"
//! button only works once the page is hydrated, which is what the browser test relies on.

use common::health::{HealthReport, HealthStatus};
use leptos::prelude::*;

use super::signin::PublicHeader;
use crate::api::health::{ManagerHealth, manager_health};

/// Shows the manager's health, with a button to check again.
#[component]
pub fn StatusPage() -> impl IntoView {
    let initial = Resource::new(|| (), |_| manager_health());
    let recheck = ServerAction::<ManagerHealth>::new();
    let checks = recheck.version();
    let latest = move || recheck.value().get().or_else(|| initial.get());

    view! {
        <PublicHeader />
        <main class="content">
        <section class="card" aria-labelledby="status-title">
            <h1 id="status-title">"Manager status"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || latest().map(|r| match r {
                    Ok(report) => view! { <HealthTable report /> }.into_any(),
                    Err(e) => view! {
                        <p class="error" role="alert">
                            "The manager did not answer: " {e.to_string()}
                            ". Check that it is running and reload."
                        </p>
                    }.into_any(),
                })}
            </Suspense>
            <div class="actions">
                <button
                    type="button"
                    id="recheck"
                    on:click=move |_| { recheck.dispatch(ManagerHealth {}); }
                    disabled=move || recheck.pending().get()
                >
                    "Check again"
                </button>
                <span id="check-count" class="muted" aria-live="polite">
                    {move || match checks.get() {
                        0 => "Not re-checked yet".to_string(),
                        1 => "Re-checked once".to_string(),
                        n => format!("Re-checked {n} times"),
                    }}
                </span>
            </div>
        </section>
        </main>
    }
}

#[component]
fn HealthTable(report: HealthReport) -> impl IntoView {
    let (label, class) = match report.status {
        HealthStatus::Ok => ("healthy", "badge ok"),
        HealthStatus::Degraded => ("degraded", "badge warn"),
    };
    view! {
        <dl class="facts">
            <dt>"State"</dt>
            <dd><span id="health-state" class=class>{label}</span></dd>
            <dt>"Version"</dt>
            <dd id="manager-version">{report.version}</dd>
            <dt>"Up for"</dt>
            <dd id="manager-uptime">{format_uptime(report.uptime_secs)}</dd>
        </dl>
    }
}

/// "3d 4h", "5m 2s": short and readable.
fn format_uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::format_uptime;

    #[test]
    fn uptime_is_short_and_readable() {
        assert_eq!(format_uptime(0), "0s");
        assert_eq!(format_uptime(59), "59s");
        assert_eq!(format_uptime(61), "1m 1s");
        assert_eq!(format_uptime(3_600 * 5 + 120), "5h 2m");
        assert_eq!(format_uptime(86_400 * 3 + 3_600 * 4 + 9), "3d 4h");
    }
}
