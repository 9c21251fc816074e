//! Message storage in Redis: an atomic append (Lua script) and a newest-first read.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::message::Message;

/// Redis key of the list holding messages as JSON, newest first.
pub const LIST_KEY: &str = "hello-k8s:messages";
/// Redis key of the id counter.
pub const SEQ_KEY: &str = "hello-k8s:next-id";
/// How many messages Redis keeps; older ones are trimmed on append.
pub const MAX_STORED: usize = 10_000;

/// Upper bound on one store operation, reconnect included, so callers answer 503 promptly.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// Allocates the id and pushes the record in one server-side step, so concurrent appends
/// can neither lose nor duplicate a message.
const APPEND_LUA: &str = r"
if ARGV[4] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return seen end
end
local id = redis.call('INCR', KEYS[1])
local rec = cjson.encode({id = id, text = ARGV[1], time = ARGV[2]})
redis.call('LPUSH', KEYS[2], rec)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], rec, 'EX', tonumber(ARGV[4])) end
return rec
";

/// Prefix of the keys that remember a post's idempotency key with the message it stored.
pub const POSTED_PREFIX: &str = "hello-k8s:posted:";

/// How long a post's key is remembered: a resend within this time is not stored twice.
const POSTED_SECONDS: u64 = 24 * 3600;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis refused, dropped or did not answer.
    #[error("Redis at {addr} is unavailable ({source}); it is retried on the next request")]
    Unavailable {
        /// host:port
        addr: String,
        /// The client error.
        source: redis::RedisError,
    },
    /// Redis did not answer in time.
    #[error(
        "Redis at {addr} did not answer within {} s; it is retried on the next request",
        OP_TIMEOUT.as_secs()
    )]
    Timeout {
        /// host:port
        addr: String,
    },
    /// A stored record is not the JSON this program writes.
    #[error("a record in Redis list {LIST_KEY} is not a message ({0}); delete the key to reset")]
    Corrupt(String),
    /// The Redis URL could not be built.
    #[error("invalid Redis address {addr}: {source}")]
    Address {
        /// host:port
        addr: String,
        /// The parse error.
        source: redis::RedisError,
    },
}

/// A cloneable handle over one multiplexed, self-reconnecting Redis connection.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    addr: String,
    append: redis::Script,
}

impl Store {
    /// Prepares the connection without contacting Redis, so the API starts before Redis does.
    pub fn new(host: &str, port: u16) -> Result<Self, StoreError> {
        let addr = format!("{host}:{port}");
        let client = redis::Client::open(format!("redis://{addr}/")).map_err(|source| {
            StoreError::Address {
                addr: addr.clone(),
                source,
            }
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|source| {
            StoreError::Address {
                addr: addr.clone(),
                source,
            }
        })?;
        Ok(Store {
            conn,
            addr,
            append: redis::Script::new(APPEND_LUA),
        })
    }

    /// host:port of the Redis server.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs `op` on the connection within [`OP_TIMEOUT`]. A refused connection is tried once
    /// more: the manager answers the first command after a failed connect with that failure
    /// and only then reconnects, and a refused command was never sent, so repeating it is safe.
    async fn bounded<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempts = async {
            match op(self.conn.clone()).await {
                Err(e) if e.is_connection_refusal() => op(self.conn.clone()).await,
                done => done,
            }
        };
        match tokio::time::timeout(OP_TIMEOUT, attempts).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(StoreError::Unavailable {
                addr: self.addr.clone(),
                source,
            }),
            Err(_) => Err(StoreError::Timeout {
                addr: self.addr.clone(),
            }),
        }
    }

    /// Answers whether Redis replies to PING.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self
            .bounded(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await?;
        debug_assert_eq!(pong, "PONG");
        Ok(())
    }

    /// Appends a message (already validated) and returns it with its id and time. With a
    /// `key`, a second append with the same key stores nothing and returns the first one's
    /// message (a resent form after a lost answer), atomically in one script.
    pub async fn append(&self, text: &str, key: Option<&str>) -> Result<Message, StoreError> {
        let time = jiff::Timestamp::now()
            .round(jiff::Unit::Millisecond)
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let mut inv = self.append.prepare_invoke();
        inv.key(SEQ_KEY)
            .key(LIST_KEY)
            .key(format!("{POSTED_PREFIX}{}", key.unwrap_or_default()))
            .arg(text)
            .arg(time.to_string())
            .arg(MAX_STORED)
            .arg(key.map_or(String::new(), |_| POSTED_SECONDS.to_string()));
        let inv = &inv;
        let rec: String = self
            .bounded(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        serde_json::from_str(&rec).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The newest `limit` messages, newest first.
    pub async fn latest(&self, limit: usize) -> Result<Vec<Message>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let stop = isize::try_from(limit)
            .unwrap_or(isize::MAX)
            .saturating_sub(1);
        let recs: Vec<String> = self
            .bounded(|mut c| async move {
                let mut range = redis::cmd("LRANGE");
                range.arg(LIST_KEY).arg(0).arg(stop);
                range.query_async(&mut c).await
            })
            .await?;
        recs.iter()
            .map(|r| serde_json::from_str(r).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }
}
