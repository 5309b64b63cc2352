//! TCP connections to DNS servers, kept open and reused (RFC 7766 §6.2.1), with at
//! most [`PER_SERVER`] open to one server at a time.
//!
//! Why: Knot and BIND listen with a backlog of 10 connections. A run that opens a
//! new connection for every one of its thousands of messages overflows it as soon
//! as more than ten connects arrive before the server accepts them; the kernel
//! drops the SYN and the client waits a full second before it tries again (1 s,
//! then 3 s, 7 s...). Eight connections per server, each carrying one exchange
//! after another, never queue more connects than the server accepts, and the
//! server sets up eight connections instead of thousands.
//!
//! Idle connections are kept as blocking-free `std` sockets, not registered with
//! any runtime, so the pool does not depend on the runtime that opened them.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections open to one server at a time: below the listen backlog of 10 that
/// Knot and BIND use by default.
pub(crate) const PER_SERVER: usize = 8;

/// An idle connection older than this is closed rather than reused: servers close
/// idle connections after a few seconds (PowerDNS 5 s, Knot 10 s, BIND 30 s).
const IDLE_LIMIT: Duration = Duration::from_secs(2);

/// Connections of one server: the permits to open or use one, and the idle ones.
struct Server {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<(std::net::TcpStream, Instant)>>,
}

/// The servers by host and port.
type Servers = HashMap<(String, u16), Arc<Server>>;

static SERVERS: LazyLock<Mutex<Servers>> = LazyLock::new(Mutex::default);

fn server(host: &str, port: u16) -> Arc<Server> {
    let mut servers = SERVERS.lock().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(servers.entry((host.to_string(), port)).or_insert_with(|| {
        Arc::new(Server {
            permits: Arc::new(Semaphore::new(PER_SERVER)),
            idle: Mutex::default(),
        })
    }))
}

/// A connection lent out of the pool. [`Connection::release`] after a complete
/// exchange gives it back for the next one; dropped otherwise, it is closed.
pub(crate) struct Connection {
    pub stream: TcpStream,
    /// True when it carried an earlier exchange: the server may have closed it in
    /// the meantime, so a failure before the first answer byte is worth one retry
    /// on a new connection.
    pub reused: bool,
    server: Arc<Server>,
    _permit: OwnedSemaphorePermit,
}

/// How to get a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Open {
    /// An idle one when there is one, else a new one.
    ReuseOrNew,
    /// Always a new one (the retry after a reused one failed).
    New,
}

/// Waits until fewer than [`PER_SERVER`] connections to `host:port` are in use,
/// then lends an idle one or connects. `connect` bounds the time to connect.
///
/// # Errors
/// The error of the connect.
pub(crate) async fn lend(
    host: &str,
    port: u16,
    open: Open,
    connect_timeout: Duration,
) -> Result<Connection, ConnectError> {
    let server = server(host, port);
    let permit = Arc::clone(&server.permits)
        .acquire_owned()
        .await
        .map_err(|_| ConnectError::Io(io::Error::other("connection pool closed")))?;
    if open == Open::ReuseOrNew
        && let Some(stream) = take_idle(&server)
    {
        return Ok(Connection {
            stream: TcpStream::from_std(stream).map_err(ConnectError::Io)?,
            reused: true,
            server,
            _permit: permit,
        });
    }
    let stream = tokio::time::timeout(connect_timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| ConnectError::Timeout)?
        .map_err(ConnectError::Io)?;
    // One message per write already; no reason to hold a small one back.
    stream.set_nodelay(true).map_err(ConnectError::Io)?;
    Ok(Connection {
        stream,
        reused: false,
        server,
        _permit: permit,
    })
}

/// The newest idle connection that is young enough and still open.
fn take_idle(server: &Server) -> Option<std::net::TcpStream> {
    let mut idle = server.idle.lock().unwrap_or_else(PoisonError::into_inner);
    while let Some((stream, since)) = idle.pop() {
        if since.elapsed() < IDLE_LIMIT && still_open(&stream) {
            return Some(stream);
        }
    }
    None
}

/// An idle connection has nothing to read: end of stream means the server closed
/// it, and bytes nobody asked for mean it is not in a state to reuse.
fn still_open(stream: &std::net::TcpStream) -> bool {
    matches!(stream.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

impl Connection {
    /// Gives the connection back for the next exchange. Only after a complete
    /// exchange: every byte of the answer read, nothing pending.
    pub(crate) fn release(self) {
        // Leaves the runtime's reactor; the socket stays non-blocking.
        if let Ok(stream) = self.stream.into_std() {
            self.server
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((stream, Instant::now()));
        }
    }
}

/// Why no connection could be opened.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Timeout,
    Io(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that echoes one byte per read on every connection it accepts, and
    /// counts the connections.
    async fn echo_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut byte = [0u8; 1];
                    while stream.read_exact(&mut byte).await.is_ok() {
                        if stream.write_all(&byte).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (port, accepted)
    }

    async fn round_trip(connection: &mut Connection) {
        connection.stream.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        connection.stream.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"x");
    }

    #[tokio::test]
    async fn a_released_connection_carries_the_next_exchange() {
        let (port, accepted) = echo_server().await;
        for _ in 0..5 {
            let mut connection = lend("127.0.0.1", port, Open::ReuseOrNew, IDLE_LIMIT)
                .await
                .unwrap();
            round_trip(&mut connection).await;
            connection.release();
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn at_most_per_server_connections_at_once() {
        let (port, accepted) = echo_server().await;
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                tokio::spawn(async move {
                    let mut connection = lend("127.0.0.1", port, Open::ReuseOrNew, IDLE_LIMIT)
                        .await
                        .unwrap();
                    round_trip(&mut connection).await;
                    tokio::task::yield_now().await;
                    connection.release();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let opened = accepted.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=PER_SERVER).contains(&opened), "{opened} connections");
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_lent_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connection = lend("127.0.0.1", port, Open::ReuseOrNew, IDLE_LIMIT)
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        connection.release();
        // On loopback the server's FIN reaches the idle socket within close().
        drop(accepted);
        let again = lend("127.0.0.1", port, Open::ReuseOrNew, IDLE_LIMIT)
            .await
            .unwrap();
        assert!(!again.reused);
    }
}
