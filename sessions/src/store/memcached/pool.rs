//! Connections to the memcached server, pipelined: every call on a connection is queued, the
//! calls queued meanwhile go out in one write, and the replies (which memcached sends in the
//! order of the commands) are handed back in order.
//!
//! Why not one connection per call: under load that is a write, a read and a wake-up of a
//! memcached worker thread per command on each side; pipelined, one write and one wake-up carry
//! every command queued meanwhile (as `RedisStore`'s multiplexed connection does).
//!
//! A call cancelled (its timeout, or its request dropped) leaves the connection in step: its
//! reply is still read, then dropped. A connection that fails or stops answering within the
//! response timeout is dropped from the pool; the next call on its slot connects anew.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::errors::StoreError;

/// How long connecting to the server may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a command may take before the call fails (and its connection is closed).
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The most bytes of commands one write carries.
const BATCH: usize = 64 * 1024;

/// The largest value a reply may carry (memcached's default item size limit is 1 MiB).
const MAX_VALUE: usize = 64 * 1024 * 1024;

/// One reply of memcached's meta protocol.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Reply {
    /// The status code: `VA`, `HD`, `EN`, `NS`, `EX`, `NF`, `MN`.
    pub(super) code: [u8; 2],
    /// The CAS token (`c<token>` in the reply's flags).
    pub(super) cas: Option<u64>,
    /// The value of a `VA` reply.
    pub(super) data: Option<Vec<u8>>,
}

type Answer = oneshot::Sender<Result<Reply, StoreError>>;

struct Request {
    command: Vec<u8>,
    answer: Answer,
}

/// One connection: the queue its writer task takes commands from.
struct Conn {
    queue: mpsc::UnboundedSender<Request>,
    tasks: [AbortHandle; 2],
}

impl Drop for Conn {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The connections to one server.
pub(super) struct Pool {
    /// `tcp://host:port` or `unix:///path`.
    dsn: String,
    slots: Vec<Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
}

impl Pool {
    pub(super) fn new(dsn: String, size: usize) -> Self {
        Self {
            dsn,
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    pub(super) fn size(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn dsn(&self) -> &str {
        &self.dsn
    }

    /// Sends `command` (whole, with its `\r\n`s) and waits for its reply.
    pub(super) async fn call(&self, command: Vec<u8>) -> Result<Reply, StoreError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let held = lock(slot)
            .as_ref()
            .filter(|conn| !conn.queue.is_closed())
            .cloned();
        let conn = match held {
            Some(conn) => conn,
            None => {
                let conn = Arc::new(self.connect().await?);
                *lock(slot) = Some(conn.clone());
                conn
            }
        };
        let (answer, reply) = oneshot::channel();
        if conn.queue.send(Request { command, answer }).is_err() {
            return Err(failed("the memcached connection closed"));
        }
        match tokio::time::timeout(RESPONSE_TIMEOUT, reply).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(failed("the memcached connection closed")),
            Err(elapsed) => {
                let mut held = lock(slot);
                if held.as_ref().is_some_and(|now| Arc::ptr_eq(now, &conn)) {
                    *held = None;
                }
                Err(StoreError::backend(elapsed))
            }
        }
    }

    async fn connect(&self) -> Result<Conn, StoreError> {
        let connecting = async {
            if let Some(path) = self.dsn.strip_prefix("unix://") {
                #[cfg(unix)]
                {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    return Ok(spawn(stream));
                }
                #[cfg(not(unix))]
                {
                    let _ = path;
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::Unsupported,
                        "unix sockets",
                    ));
                }
            }
            let address = self.dsn.strip_prefix("tcp://").unwrap_or(&self.dsn);
            let stream = tokio::net::TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(spawn(stream))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(err)) => Err(StoreError::backend(err)),
            Err(_) => Err(failed("connecting to memcached timed out")),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts the writer and the reader of `stream`.
fn spawn<S: AsyncRead + AsyncWrite + Send + 'static>(stream: S) -> Conn {
    let (read, write) = tokio::io::split(stream);
    let (queue, requests) = mpsc::unbounded_channel();
    let (waiting, answers) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(write, requests, waiting));
    let reader = tokio::spawn(read_loop(read, answers));
    Conn {
        queue,
        tasks: [writer.abort_handle(), reader.abort_handle()],
    }
}

/// Writes the commands queued, as many as are waiting in one write; hands each caller's answer
/// to the reader, in the order of the commands.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut requests: mpsc::UnboundedReceiver<Request>,
    waiting: mpsc::UnboundedSender<Answer>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = requests.recv().await {
        batch.clear();
        let mut next = Some(first);
        while let Some(request) = next {
            // A caller gone already (timed out) still gets its command sent: the reader stays
            // in step with the replies.
            batch.extend_from_slice(&request.command);
            if waiting.send(request.answer).is_err() {
                return;
            }
            if batch.len() >= BATCH {
                break;
            }
            next = requests.try_recv().ok();
        }
        if write.write_all(&batch).await.is_err() {
            break;
        }
    }
    let _ = write.shutdown().await;
}

/// Reads the replies, answering the callers in order; ends (failing every waiting caller) at
/// the first error.
async fn read_loop<R: AsyncRead + Unpin>(read: R, mut answers: mpsc::UnboundedReceiver<Answer>) {
    let mut read = BufReader::with_capacity(BATCH, read);
    let mut line = Vec::with_capacity(128);
    loop {
        let reply = read_reply(&mut read, &mut line).await;
        let Some(answer) = answers.recv().await else {
            return;
        };
        match reply {
            Ok(reply) => {
                let _ = answer.send(Ok(reply));
            }
            Err(err) => {
                let _ = answer.send(Err(StoreError::backend(err)));
                return;
            }
        }
    }
}

async fn read_reply<R: AsyncBufReadExt + Unpin>(
    read: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<Reply> {
    line.clear();
    if read.read_until(b'\n', line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let (mut reply, size) = parse_head(line)?;
    if let Some(size) = size {
        let mut data = vec![0; size + 2];
        read.read_exact(&mut data).await?;
        if !data.ends_with(b"\r\n") {
            return Err(invalid("a value not ended by \\r\\n"));
        }
        data.truncate(size);
        reply.data = Some(data);
    }
    Ok(reply)
}

/// A reply's first line, and the length of the value that follows (a `VA` reply).
fn parse_head(line: &[u8]) -> std::io::Result<(Reply, Option<usize>)> {
    let text = line
        .strip_suffix(b"\r\n")
        .ok_or_else(|| invalid("a reply line not ended by \\r\\n"))?;
    let text = std::str::from_utf8(text).map_err(|_| invalid("a reply line not in ASCII"))?;
    let mut words = text.split(' ');
    let code = words.next().unwrap_or_default();
    let code: [u8; 2] = match code.as_bytes() {
        &[a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => [a, b],
        _ => {
            return Err(std::io::Error::other(format!(
                "memcached answered {text:?}"
            )));
        }
    };
    let mut reply = Reply {
        code,
        ..Reply::default()
    };
    let mut size = None;
    if &code == b"VA" {
        size = Some(
            words
                .next()
                .and_then(|size| size.parse::<usize>().ok())
                .filter(|&size| size <= MAX_VALUE)
                .ok_or_else(|| invalid("a VA reply without a valid size"))?,
        );
    }
    for word in words {
        if let Some(cas) = word.strip_prefix('c') {
            reply.cas = Some(
                cas.parse()
                    .map_err(|_| invalid("a CAS token not a number"))?,
            );
        }
    }
    Ok((reply, size))
}

fn invalid(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

fn failed(message: &'static str) -> StoreError {
    StoreError::backend(std::io::Error::new(std::io::ErrorKind::BrokenPipe, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let (hit, size) = parse_head(b"VA 3 c42\r\n").expect("a hit");
        assert_eq!((&hit.code, hit.cas, size), (b"VA", Some(42), Some(3)));
        let (stored, size) = parse_head(b"HD c7\r\n").expect("stored");
        assert_eq!((&stored.code, stored.cas, size), (b"HD", Some(7), None));
        assert_eq!(&parse_head(b"EN\r\n").expect("a miss").0.code, b"EN");
        assert!(parse_head(b"SERVER_ERROR out of memory\r\n").is_err());
        assert!(parse_head(b"VA x\r\n").is_err());
        assert!(parse_head(b"HD").is_err());
    }
}
