//! Redis as the job queue's transport, when `[redis] url` is set: creating a job pushes its
//! id on a list and an idle runner blocked on `BLPOP` takes it at once, on whichever manager
//! replica is free. The database stays the source of truth (state, results, the claim), so a
//! push lost to a Redis outage only delays a job until the next database poll.

use std::time::Duration;

use redis::AsyncCommands;

/// A Redis list of job ids.
#[derive(Debug, Clone)]
pub struct RedisQueue {
    client: redis::Client,
    key: String,
}

impl RedisQueue {
    /// Checks the URL; connections are made when needed, so a Redis that is down at start does
    /// not keep the manager from serving.
    pub fn new(url: &str, key: &str) -> Result<Self, String> {
        if key.is_empty() {
            return Err("jobs.redis_key must not be empty".into());
        }
        redis::Client::open(url)
            .map(|client| Self { client, key: key.to_owned() })
            .map_err(|e| format!("jobs.redis_url: {e}"))
    }

    /// Announces a new job.
    pub async fn push(&self, id: i64) -> Result<(), String> {
        let attempt = async {
            let mut conn = self.client.get_multiplexed_async_connection().await?;
            conn.rpush::<_, _, ()>(&self.key, id).await
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// A connection for one runner's blocking pops.
    pub async fn listener(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        self.client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())
    }

    /// Waits up to `wait` for a job id.
    pub async fn pop(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        wait: Duration,
    ) -> Result<Option<i64>, String> {
        let popped: Option<(String, i64)> = redis::cmd("BLPOP")
            .arg(&self.key)
            .arg(wait.as_secs_f64().max(0.1))
            .query_async(conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(popped.map(|(_, id)| id))
    }
}
