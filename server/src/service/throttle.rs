//! Sign-in throttling. Every attempt costs an Argon2 hash (tens of MiB and tens of milliseconds
//! of a core), so a flood of them would exhaust the manager and a slow trickle would guess
//! passwords. Attempts are bounded per user name and per client address with token buckets, and
//! hashes run a few at a time: a caller over its budget is told 429 with `Retry-After` before any
//! hash is made, and one that waits too long for a hashing turn is told 429 too.
//!
//! The console signs its visitors in over loopback, so loopback callers are bounded by name only.
//!
//! With Redis configured the buckets are kept there ([`SharedLimits`]), one budget for every
//! manager replica, so spreading attempts over replicas gains nothing; while Redis is away, and
//! without it, each manager keeps its own. The hashing turns are always this manager's own:
//! they guard its CPU and memory.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::shared_limits::{SharedLimits, Unavailable};
use crate::Error;

/// A bucket per key: `burst` tokens, refilled at `per_minute`; at most `MAX_KEYS` keys are kept
/// (full buckets are dropped first, then the whole table when every key is busy).
#[derive(Debug)]
struct Buckets {
    /// What the buckets are (`names`, `addresses`): their keys' place in Redis.
    kind: &'static str,
    burst: f64,
    per_minute: f64,
    keys: Mutex<HashMap<String, (f64, Instant)>>,
}

const MAX_KEYS: usize = 100_000;

impl Buckets {
    fn new(kind: &'static str, burst: u32, per_minute: u32) -> Self {
        Self { kind, burst: f64::from(burst), per_minute: f64::from(per_minute), keys: Mutex::default() }
    }

    /// Takes a token for `key` from Redis when given and reachable, else from this manager's own.
    async fn take_shared(&self, shared: Option<&SharedLimits>, key: &str) -> Result<(), Duration> {
        if let Some(shared) = shared {
            // Both fit: they were made from u32.
            let (burst, per_minute) = (self.burst as u32, self.per_minute as u32);
            match shared.take(self.kind, key, burst, per_minute).await {
                Ok(answer) => return answer,
                Err(Unavailable(e)) => {
                    tracing::warn!(error = %e, "Redis unavailable for the sign-in limits; counting on this manager");
                }
            }
        }
        self.take(key, Instant::now())
    }

    /// Takes a token for `key`, or says how long until one is there.
    fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut keys = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            let (burst, rate) = (self.burst, self.per_minute);
            keys.retain(|_, (tokens, at)| refill(*tokens, *at, now, burst, rate) < burst);
            if keys.len() >= MAX_KEYS {
                keys.clear();
            }
        }
        let (tokens, at) = keys.entry(key.to_owned()).or_insert((self.burst, now));
        let available = refill(*tokens, *at, now, self.burst, self.per_minute);
        if available >= 1.0 {
            *tokens = available - 1.0;
            *at = now;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - available) * 60.0 / self.per_minute))
        }
    }
}

fn refill(tokens: f64, at: Instant, now: Instant, burst: f64, per_minute: f64) -> f64 {
    (tokens + now.duration_since(at).as_secs_f64() * per_minute / 60.0).min(burst)
}

/// The manager's sign-in budget.
#[derive(Debug)]
pub struct SignInThrottle {
    names: Buckets,
    addresses: Buckets,
    hashing: Semaphore,
    wait: Duration,
    /// Where the buckets are kept for every replica, when Redis is configured.
    shared: Option<std::sync::Arc<SharedLimits>>,
}

impl Default for SignInThrottle {
    /// 20 attempts per name at once, then 20 a minute; 100 per address, then 60 a minute; four
    /// hashes at a time, a caller waiting at most 5 s for its turn.
    fn default() -> Self {
        Self::new(20, 20, 100, 60, 4, Duration::from_secs(5))
    }
}

impl SignInThrottle {
    pub fn new(
        name_burst: u32,
        name_per_minute: u32,
        address_burst: u32,
        address_per_minute: u32,
        hashes_at_once: usize,
        wait: Duration,
    ) -> Self {
        Self {
            names: Buckets::new("sign-in-names", name_burst, name_per_minute),
            addresses: Buckets::new("sign-in-addresses", address_burst, address_per_minute),
            hashing: Semaphore::new(hashes_at_once.max(1)),
            wait,
            shared: None,
        }
    }

    /// The same budget, kept in `shared` for every replica.
    pub fn shared_through(mut self, shared: std::sync::Arc<SharedLimits>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Admits one attempt for `name` from `from` (loopback: the console, bounded by name only),
    /// and waits for a hashing turn.
    pub async fn admit(&self, name: &str, from: Option<IpAddr>) -> Result<SemaphorePermit<'_>, Error> {
        let shared = self.shared.as_deref();
        if let Some(ip) = from.filter(|ip| !ip.is_loopback()) {
            let key = ip.to_string();
            self.addresses.take_shared(shared, &key).await.map_err(|after| throttled("from this address", after))?;
        }
        let key: String = name.chars().take(256).collect::<String>().to_lowercase();
        self.names.take_shared(shared, &key).await.map_err(|after| throttled("for this user", after))?;
        tokio::time::timeout(self.wait, self.hashing.acquire())
            .await
            .map_err(|_| throttled("while the manager is busy", Duration::from_secs(1)))?
            .map_err(|_| Error::Unavailable("the manager is shutting down".into()))
    }
}

fn throttled(what: &str, after: Duration) -> Error {
    let secs = after.as_secs_f64().ceil().max(1.0) as u64;
    Error::Throttled { message: format!("too many sign-in attempts {what}; retry in {secs} s"), retry_after_secs: secs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn attempts_are_bounded_per_name_and_per_address_and_refill() {
        let t = SignInThrottle::new(3, 60, 5, 60, 2, Duration::from_millis(50));
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..3 {
            drop(t.admit("alice", Some(remote)).await.unwrap());
        }
        let Err(Error::Throttled { retry_after_secs, .. }) = t.admit("Alice", Some(remote)).await else {
            panic!("the fourth attempt for a name (any case) is refused");
        };
        assert_eq!(retry_after_secs, 1);
        // Other names from the same address share the address's budget of 5.
        drop(t.admit("bob", Some(remote)).await.unwrap());
        assert!(t.admit("carol", Some(remote)).await.is_err(), "the address's sixth attempt is refused");
        // Loopback (the console) is bounded by name only.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..2 {
            drop(t.admit("dave", Some(lo)).await.unwrap());
        }
        // A bucket refills: one token a second here.
        let b = Buckets::new("test", 1, 60);
        let now = Instant::now();
        assert!(b.take("k", now).is_ok());
        assert!(b.take("k", now).is_err());
        assert!(b.take("k", now + Duration::from_millis(1100)).is_ok());
    }

    #[tokio::test]
    async fn hashes_run_a_few_at_a_time_and_a_long_wait_is_refused() {
        let t = SignInThrottle::new(100, 100, 100, 100, 1, Duration::from_millis(50));
        let turn = t.admit("a", None).await.unwrap();
        assert!(matches!(t.admit("b", None).await, Err(Error::Throttled { .. })));
        drop(turn);
        assert!(t.admit("c", None).await.is_ok());
    }

    #[test]
    fn the_key_table_is_bounded() {
        let b = Buckets::new("test", 1, 1);
        let now = Instant::now();
        for i in 0..MAX_KEYS + 10 {
            let _ = b.take(&i.to_string(), now);
        }
        assert!(b.keys.lock().unwrap().len() <= MAX_KEYS);
    }
}
