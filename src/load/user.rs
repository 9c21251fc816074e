//! One simulated user: a keep-alive HTTP/1.1 connection driven in the user's own task,
//! requests in a loop, statistics recorded locally (no locks, one relaxed atomic add per
//! request for the live progress).

use super::config::Plan;
use super::report::{Failure, UserStats};
use bytes::Bytes;
use futures::FutureExt;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Read-only state shared by every user of a run, plus the live counters.
pub(crate) struct Shared {
    pub plan: Plan,
    pub addr: SocketAddr,
    pub transactions: AtomicU64,
    pub failures: AtomicU64,
}

type Driver = Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

/// A connection: the request handle and the future that does the connection's I/O.
/// The driver is polled only by this user's task, so no cross-task wake-ups happen.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: Driver,
}

/// Runs user number `user` until its repetitions are done; the caller stops it at the
/// deadline or on cancellation by dropping this future (statistics stay in `stats`).
pub(crate) async fn simulate(user: u32, shared: &Shared, stats: &mut UserStats) {
    let plan = &shared.plan;
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let mut conn: Option<Conn> = None;
    // --rate spreads the users' start times evenly over one period, then each user
    // starts a request every `concurrency / rate` seconds without catching up bursts.
    let period = plan
        .rate
        .map(|rate| Duration::from_secs_f64(f64::from(plan.concurrency) / rate));
    let mut next_start = Instant::now()
        + period.map_or(Duration::ZERO, |p| {
            p.mul_f64(f64::from(user) / f64::from(plan.concurrency))
        });
    // One timer per user, re-armed for each request, bounds every request.
    let mut timer = std::pin::pin!(tokio::time::sleep(plan.timeout));
    let mut done: u64 = 0;
    while plan.repetitions.is_none_or(|reps| done < reps) {
        if let Some(period) = period {
            tokio::time::sleep_until(next_start).await;
            next_start = (next_start + period).max(Instant::now());
        }
        let started = Instant::now();
        timer.as_mut().reset(started + plan.timeout);
        let outcome = tokio::select! {
            biased;
            outcome = exchange(&mut conn, shared) => outcome,
            () = timer.as_mut() => Err(Failure::Timeout),
        };
        let counted = match outcome {
            Ok((status, bytes)) => stats.response(status, bytes, started.elapsed()),
            Err(failure) => {
                conn = None;
                stats.failure(failure);
                false
            }
        };
        if counted {
            shared.transactions.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.failures.fetch_add(1, Ordering::Relaxed);
        }
        done += 1;
        if let Some(delay) = plan.delay {
            tokio::time::sleep(delay.mul_f64(rng.random::<f64>())).await;
        }
    }
}

/// Sends one request on the user's connection (opening one when needed) and reads the
/// whole response; returns the status and the body length.
async fn exchange(slot: &mut Option<Conn>, shared: &Shared) -> Result<(u16, u64), Failure> {
    let conn = ready_connection(slot, shared.addr).await?;
    let response = conn.sender.send_request(request(&shared.plan));
    let transaction = async move {
        let response = response.await.map_err(|_| Failure::Dropped)?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Failure::Dropped)?;
            if let Some(data) = frame.data_ref() {
                bytes += data.len() as u64;
            }
        }
        Ok((status, bytes))
    };
    tokio::pin!(transaction);
    let finished = tokio::select! {
        biased;
        result = &mut transaction => Some(result),
        _closed = conn.driver.as_mut() => None,
    };
    match finished {
        Some(Ok(ok)) => Ok(ok),
        Some(Err(failure)) => {
            *slot = None;
            Err(failure)
        }
        None => {
            // The connection ended (e.g. `Connection: close`); the response is complete
            // or lost, and dropping the connection settles which.
            *slot = None;
            transaction.await
        }
    }
}

/// The user's connection, ready for a request: a kept-alive one if the server has not
/// closed it, otherwise a new one.
async fn ready_connection(slot: &mut Option<Conn>, addr: SocketAddr) -> Result<&mut Conn, Failure> {
    if let Some(conn) = slot
        && (conn.sender.is_closed() || (&mut conn.driver).now_or_never().is_some())
    {
        *slot = None;
    }
    for _attempt in 0..2 {
        let reused = slot.is_some();
        let conn = match slot {
            Some(conn) => conn,
            None => slot.insert(connect(addr).await?),
        };
        if conn.sender.is_ready() {
            return slot.as_mut().ok_or(Failure::Dropped);
        }
        let ready = tokio::select! {
            biased;
            ready = conn.sender.ready() => ready.is_ok(),
            _closed = conn.driver.as_mut() => false,
        };
        if ready {
            return slot.as_mut().ok_or(Failure::Dropped);
        }
        *slot = None;
        if !reused {
            return Err(Failure::Dropped);
        }
    }
    Err(Failure::Dropped)
}

async fn connect(addr: SocketAddr) -> Result<Conn, Failure> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| Failure::Connect)?;
    // Requests are small and latency-bound: send them without Nagle's delay.
    let _ = stream.set_nodelay(true);
    let (sender, driver) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Failure::Connect)?;
    Ok(Conn {
        sender,
        driver: Box::pin(driver),
    })
}

fn request(plan: &Plan) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(plan.body.clone()));
    *request.method_mut() = plan.method.clone();
    *request.uri_mut() = plan.target.path.clone();
    *request.headers_mut() = plan.headers.clone();
    request
}
