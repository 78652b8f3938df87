//! When a connection has been idle: bytes moved through a [`Watched`] stream, and requests being
//! answered ([`Activity::busy`]), keep it alive; [`Activity::idle_for`] returns once neither has
//! happened for the limit. A request whose answer takes long (a cold blob fetched through P2P
//! before its first byte is sent) is not idleness.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};

/// A connection's last traffic and the requests it is answering.
#[derive(Debug)]
pub(super) struct Activity {
    since: Instant,
    /// Milliseconds after `since` of the last byte read or written (or request answered).
    last: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self { since: Instant::now(), last: AtomicU64::new(0), busy: AtomicUsize::new(0) }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// Marks a request being answered until the guard is dropped.
    pub(super) fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Returns once nothing has moved and no request has been in hand for `limit`.
    pub(super) async fn idle_for(&self, limit: Duration) {
        loop {
            let quiet = Duration::from_millis(self.now().saturating_sub(self.last.load(Ordering::Relaxed)));
            if self.busy.load(Ordering::SeqCst) == 0 && quiet >= limit {
                return;
            }
            let wait = if quiet >= limit { limit } else { limit - quiet };
            tokio::time::sleep(wait.max(Duration::from_millis(50))).await;
        }
    }
}

/// A request in hand; its end counts as traffic.
#[derive(Debug)]
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A stream whose reads and writes are recorded in an [`Activity`].
#[derive(Debug)]
pub(super) struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub(super) fn new(inner: T, activity: Arc<Activity>) -> Self {
        activity.touch();
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn traffic_and_requests_in_hand_keep_a_connection_from_idling() {
        let activity = Arc::new(Activity::new());
        let (a, mut b) = tokio::io::duplex(64);
        let mut watched = Watched::new(a, activity.clone());
        let limit = Duration::from_secs(10);

        // Quiet for the limit: idle.
        tokio::time::timeout(limit + Duration::from_secs(1), activity.idle_for(limit)).await.unwrap();

        // A byte written, then one read 8 s later: idle 10 s after the second.
        let mut byte = [0u8; 1];
        watched.write_all(b"x").await.unwrap();
        b.read_exact(&mut byte).await.unwrap();
        let idle = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_for(limit).await }
        });
        tokio::time::sleep(Duration::from_secs(8)).await;
        tokio::task::yield_now().await;
        assert!(!idle.is_finished(), "idle 8 s after a byte");
        b.write_all(b"x").await.unwrap();
        watched.read_exact(&mut byte).await.unwrap();
        tokio::time::sleep(Duration::from_secs(9)).await;
        tokio::task::yield_now().await;
        assert!(!idle.is_finished(), "idle 9 s after a byte");
        tokio::time::sleep(Duration::from_secs(2)).await;
        tokio::task::yield_now().await;
        assert!(idle.is_finished(), "idle 11 s after a byte");

        // A request in hand for a minute is not idleness.
        let busy = activity.busy();
        let idle = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_for(limit).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        tokio::task::yield_now().await;
        assert!(!idle.is_finished(), "idle while answering");
        drop(busy);
        tokio::time::sleep(Duration::from_secs(11)).await;
        tokio::task::yield_now().await;
        assert!(idle.is_finished());
    }
}
