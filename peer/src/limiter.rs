//! Host-wide bandwidth limits (download, upload, back-to-source): one token bucket per
//! direction, shared by every task on the host, so a limit holds however many tasks run.

use std::time::Duration;

use tokio::{sync::Mutex, time::Instant};

/// A token bucket in bytes per second; a rate of 0 means unlimited.
#[derive(Debug)]
pub struct RateLimiter {
    rate: u64,
    /// Most bytes that may be sent in a burst (one second's worth, at least 256 KiB).
    burst: u64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A limiter allowing `rate` bytes per second (0 = unlimited).
    pub fn new(rate: u64) -> Self {
        let burst = rate.max(256 * 1024);
        Self { rate, burst, state: Mutex::new((burst as f64, Instant::now())) }
    }

    /// The configured rate (0 = unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Waits until `bytes` may pass.
    pub async fn acquire(&self, bytes: u64) {
        if self.rate == 0 {
            return;
        }
        let wait = {
            let mut state = self.state.lock().await;
            let (tokens, last) = &mut *state;
            let now = Instant::now();
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate as f64).min(self.burst as f64);
            *last = now;
            *tokens -= bytes as f64;
            if *tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-*tokens / self.rate as f64) }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_after_the_burst() {
        let limiter = RateLimiter::new(1_000_000);
        let start = Instant::now();
        for _ in 0..30 {
            limiter.acquire(100_000).await;
        }
        // 3 MB at 1 MB/s with a 1 MB burst: about 2 s of (virtual) time.
        let took = start.elapsed().as_secs_f64();
        assert!((1.9..=2.2).contains(&took), "took {took}");
    }

    #[tokio::test(start_paused = true)]
    async fn zero_is_unlimited() {
        let limiter = RateLimiter::new(0);
        let start = Instant::now();
        limiter.acquire(u64::MAX / 2).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
