//! A TCP proxy on 127.0.0.1 in front of the server: it can drop every connection and refuse
//! new ones (the server "goes away"), take connections again on the same port, and count the
//! statements that pass through it (the client's `Execute` and simple `Query` messages: one
//! per prepared statement run, one per `BEGIN` or `COMMIT`) and the round trips (the server's
//! `ReadyForQuery` messages, one per `Sync`: sqlx's pool also pings each connection it is given
//! back, a round trip that runs no statement).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    upstream: SocketAddr,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    round_trips: Arc<AtomicUsize>,
    statements: Arc<AtomicUsize>,
}

impl Proxy {
    /// A proxy in front of the server at `url`, and the options that connect through it
    /// (without TLS, so that the proxy can read the server's messages).
    pub(crate) async fn in_front_of(url: &str) -> (Arc<Self>, PgConnectOptions) {
        let options = PgConnectOptions::from_str(url).expect("url");
        let upstream = tokio::net::lookup_host((options.get_host(), options.get_port()))
            .await
            .expect("resolve the server")
            .next()
            .expect("an address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = Arc::new(Self {
            addr: listener.local_addr().expect("local addr"),
            upstream,
            acceptor: Mutex::new(None),
            connections: Arc::new(Mutex::new(Vec::new())),
            round_trips: Arc::new(AtomicUsize::new(0)),
            statements: Arc::new(AtomicUsize::new(0)),
        });
        proxy.serve(listener);
        let port = proxy.addr.port();
        (
            proxy,
            options
                .host("127.0.0.1")
                .port(port)
                .ssl_mode(PgSslMode::Disable),
        )
    }

    /// How many round trips passed so far.
    pub(crate) fn round_trips(&self) -> usize {
        self.round_trips.load(Ordering::SeqCst)
    }

    /// How many statements the clients ran so far.
    pub(crate) fn statements(&self) -> usize {
        self.statements.load(Ordering::SeqCst)
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, connections) = (self.upstream, self.connections.clone());
        let (round_trips, statements) = (self.round_trips.clone(), self.statements.clone());
        let acceptor = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (round_trips, statements) = (round_trips.clone(), statements.clone());
                let relay = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(upstream).await {
                        relay(inbound, outbound, &round_trips, &statements).await;
                    }
                });
                connections.lock().expect("proxy lock").push(relay);
            }
        });
        *self.acceptor.lock().expect("proxy lock") = Some(acceptor);
    }

    /// Drops every connection and closes the port: new connections are refused.
    pub(crate) fn down(&self) {
        if let Some(acceptor) = self.acceptor.lock().expect("proxy lock").take() {
            acceptor.abort();
        }
        for relay in self.connections.lock().expect("proxy lock").drain(..) {
            relay.abort();
        }
    }

    /// Takes connections on the same port again.
    pub(crate) async fn up(&self) {
        // The acceptor's abort drops the listener on its next poll: wait for the port.
        for _ in 0..100 {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.set_reuseaddr(true).expect("reuseaddr");
            if socket.bind(self.addr).is_ok() {
                let listener = socket.listen(128).expect("listen");
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the proxy port {} did not come free", self.addr);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

/// Relays both ways until either side closes, counting the client's statements and the
/// server's `ReadyForQuery` messages.
async fn relay(
    inbound: TcpStream,
    outbound: TcpStream,
    round_trips: &AtomicUsize,
    statements: &AtomicUsize,
) {
    let (client_read, client_write) = inbound.into_split();
    let (server_read, server_write) = outbound.into_split();
    // The client's first message (the startup message) has no type byte.
    let up = forward(
        client_read,
        server_write,
        Messages::untyped_first(),
        |messages, bytes| {
            statements.fetch_add(messages.count(bytes, b"EQ"), Ordering::SeqCst);
        },
    );
    let down = forward(
        server_read,
        client_write,
        Messages::default(),
        |messages, bytes| {
            round_trips.fetch_add(messages.count(bytes, b"Z"), Ordering::SeqCst);
        },
    );
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Copies `from` to `to`, showing `seen` every chunk, until either side closes.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut messages: Messages,
    mut seen: impl FnMut(&mut Messages, &[u8]),
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        seen(&mut messages, &buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The framing of one direction's messages (a type byte, a 4-byte length that counts itself,
/// the body), read across reads.
#[derive(Default)]
struct Messages {
    /// The header bytes of the message being read, while fewer than 5.
    header: Vec<u8>,
    /// How many body bytes of the current message are still to come.
    remaining: usize,
    /// Whether the next message has no type byte (the client's startup message).
    untyped: bool,
}

impl Messages {
    fn untyped_first() -> Self {
        Self {
            untyped: true,
            ..Self::default()
        }
    }

    /// How many messages of the given types start in `bytes`.
    fn count(&mut self, mut bytes: &[u8], types: &[u8]) -> usize {
        if self.untyped && self.header.is_empty() && self.remaining == 0 {
            // Read the untyped message as if a zero type byte came first.
            self.header.push(0);
            self.untyped = false;
        }
        let mut count = 0;
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let skip = self.remaining.min(bytes.len());
                self.remaining -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (5 - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.header.len() == 5 {
                if types.contains(&self.header[0]) {
                    count += 1;
                }
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]);
                self.remaining = (len as usize).saturating_sub(4);
                self.header.clear();
            }
        }
        count
    }
}
