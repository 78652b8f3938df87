//! The streams a host keeps open with every scheduler (seed orders, host orders), in one shape:
//! start once the host has announced itself (schedulers refuse watchers they do not know), one
//! stream per scheduler in the [`SchedulerSet`] following its changes, each reopened a second
//! after it breaks or cannot be opened, all ended by the shutdown.
//!
//! What a stream is and what its messages do stays with its module ([`super::seed`],
//! [`super::orders`]); this one owns only when streams are opened and for how long.

use std::{future::Future, time::Duration};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming, transport::Channel};

use super::scheduler_set::SchedulerSet;

/// How long a stream that broke or could not be opened waits before it is opened again.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// Runs `each(channel, stop)` for every scheduler in `schedulers` once `announced` turns true,
/// until `shutdown`.
pub(super) async fn on_every_scheduler<F, Fut>(
    schedulers: SchedulerSet,
    mut announced: watch::Receiver<bool>,
    shutdown: CancellationToken,
    each: F,
) where
    F: FnMut(Channel, CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = announced.wait_for(|a| *a) => {}
    }
    schedulers.for_each(&shutdown, each).await;
}

/// Keeps one stream open until `shutdown`: `open` opens it (and says so, or why not, in the
/// log), `each` takes every message. A stream that ends or fails is opened again after
/// [`REOPEN_AFTER`].
pub(super) async fn keep_open<T, Open, Opened>(shutdown: &CancellationToken, mut open: Open, mut each: impl FnMut(T))
where
    Open: FnMut() -> Opened,
    Opened: Future<Output = Result<Streaming<T>, Status>>,
{
    loop {
        if let Ok(mut messages) = open().await {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    msg = messages.message() => match msg {
                        Ok(Some(msg)) => each(msg),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REOPEN_AFTER) => {}
        }
    }
}
