//! Rate-limit counters in Redis, so the manager replicas of one deployment enforce one budget
//! together: a client spreading sign-in attempts or job creations over the replicas behind one
//! address gets no more than from one manager. Without Redis each manager counts alone, which
//! on one machine is the same thing.
//!
//! Each check is one atomic script (no read-then-write race between replicas), timed by
//! Redis's clock (replicas' clocks do not matter). Redis being down or slow never refuses a
//! caller: the check answers [`Unavailable`] and the caller counts in its own memory instead,
//! so a replica still bounds what reaches it. After a failure Redis is left alone for
//! [`REST`], so an outage does not add its timeout to every sign-in.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

/// How long a check waits for Redis before counting locally.
const PATIENCE: Duration = Duration::from_millis(500);
/// How long Redis is not asked after it failed.
const REST: Duration = Duration::from_secs(5);

/// A token bucket per key: `burst` tokens, refilled at `per_second`. Takes one token, or
/// answers the seconds until one is there. Keys expire once full again.
const TAKE_TOKEN: &str = r"
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
";

/// One-second windows per key, admitted all or none: answers 0 and counts one in every key's
/// window when each is under its limit (`ARGV[i]`), else the 1-based index of the first full one.
const ADMIT_ALL: &str = r"
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i]) then return i end
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, 1000) end
end
return 0
";

/// Redis could not be asked; the caller counts locally.
#[derive(Debug)]
pub struct Unavailable(pub String);

/// The shared counters of one deployment.
#[derive(Debug)]
pub struct SharedLimits {
    client: redis::Client,
    prefix: String,
    /// One multiplexed connection, made on first use and again after a failure.
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// Until when Redis is not asked, after a failure.
    resting_until: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl SharedLimits {
    /// Checks the URL; the connection is made when first needed.
    pub fn new(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis.url: {e}"))?;
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
            conn: tokio::sync::Mutex::default(),
            resting_until: std::sync::Mutex::default(),
        })
    }

    /// Takes a token from the bucket `bucket`/`key`: `Ok(Ok(()))`, or `Ok(Err(wait))` when empty.
    pub async fn take(
        &self,
        bucket: &str,
        key: &str,
        burst: u32,
        per_minute: u32,
    ) -> Result<Result<(), Duration>, Unavailable> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(TAKE_TOKEN).arg(1).arg(format!("{}:limit:{bucket}:{key}", self.prefix));
        cmd.arg(burst).arg(f64::from(per_minute) / 60.0);
        let wait: String = self.run(cmd).await?;
        let wait: f64 = wait.parse().map_err(|_| Unavailable(format!("unexpected answer {wait:?}")))?;
        Ok(if wait > 0.0 { Err(Duration::from_secs_f64(wait)) } else { Ok(()) })
    }

    /// Admits one in the current one-second window of every `(key, limit)`, or none: answers
    /// the key that was full.
    pub async fn admit_all<'a>(
        &self,
        bucket: &str,
        keys: &'a [(String, u32)],
    ) -> Result<Result<(), &'a str>, Unavailable> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(ADMIT_ALL).arg(keys.len());
        for (key, _) in keys {
            cmd.arg(format!("{}:limit:{bucket}:{key}", self.prefix));
        }
        for (_, limit) in keys {
            cmd.arg(*limit);
        }
        let full: usize = self.run(cmd).await?;
        Ok(match full.checked_sub(1).and_then(|i| keys.get(i)) {
            Some((key, _)) => Err(key.as_str()),
            None => Ok(()),
        })
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, Unavailable> {
        let now = tokio::time::Instant::now();
        if self.resting_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some_and(|t| now < t) {
            return Err(Unavailable("resting after a failure".into()));
        }
        let answer = self.ask(cmd).await;
        if answer.is_err() {
            *self.resting_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(tokio::time::Instant::now() + REST);
        }
        answer
    }

    async fn ask<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, Unavailable> {
        let attempt = async {
            let mut held = self.conn.lock().await;
            let mut conn = match held.as_ref() {
                Some(conn) => conn.clone(),
                None => {
                    let conn = self.client.get_multiplexed_async_connection().await?;
                    *held = Some(conn.clone());
                    conn
                }
            };
            drop(held);
            let answer = cmd.query_async(&mut conn).await;
            if answer.is_err() {
                *self.conn.lock().await = None;
            }
            answer
        };
        match tokio::time::timeout(PATIENCE, attempt).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Unavailable(e.to_string())),
            Err(_) => {
                *self.conn.lock().await = None;
                Err(Unavailable("timed out".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_redis_is_reported_then_left_alone_for_a_while() {
        // Port 1 on loopback refuses at once.
        let limits = SharedLimits::new("redis://127.0.0.1:1/", "test").unwrap();
        let Err(Unavailable(first)) = limits.take("names", "alice", 3, 60).await else { panic!("no Redis there") };
        assert!(!first.contains("resting"), "{first}");
        let Err(Unavailable(then)) = limits.admit_all("jobs", &[("1".into(), 1)]).await else { panic!("resting") };
        assert!(then.contains("resting"), "{then}");
        assert!(SharedLimits::new("not a url", "test").is_err());
    }
}
