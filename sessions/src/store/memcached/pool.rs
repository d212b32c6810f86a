//! Connections to the memcached server: a bounded set of clients, each one connection, handed
//! out one call at a time.
//!
//! `async_memcached::Client` is one connection used by one caller at a time; a call cancelled
//! mid-command closes it (its reply would otherwise answer the next command), and a closed or
//! failed client is dropped here rather than handed out again: the next call connects anew.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_memcached::Client;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::StoreError;

/// How long connecting to the server may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a call waits for a connection of the pool before it fails.
pub(super) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// The clients of one server.
pub(super) struct Pool {
    /// `tcp://host:port`, as the client takes it.
    dsn: String,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
    size: usize,
}

/// A client lent to one call, given back when dropped (unless it broke).
pub(super) struct Lease<'p> {
    pool: &'p Pool,
    client: Option<Client>,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub(super) fn new(dsn: String, size: usize) -> Self {
        let size = size.max(1);
        Self {
            dsn,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    pub(super) fn size(&self) -> usize {
        self.size
    }

    pub(super) fn dsn(&self) -> &str {
        &self.dsn
    }

    /// A client: an idle one, or a new connection.
    pub(super) async fn get(&self) -> Result<Lease<'_>, StoreError> {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| backend("no memcached connection free within the acquire timeout"))?
            .map_err(|_| backend("the memcached pool is closed"))?;
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let client = match idle {
            Some(client) => client,
            None => tokio::time::timeout(CONNECT_TIMEOUT, Client::new(&self.dsn))
                .await
                .map_err(|_| backend("connecting to memcached timed out"))?
                .map_err(StoreError::backend)?,
        };
        Ok(Lease {
            pool: self,
            client: Some(client),
            _permit: permit,
        })
    }
}

impl Lease<'_> {
    pub(super) fn client(&mut self) -> &mut Client {
        match self.client.as_mut() {
            Some(client) => client,
            None => unreachable!("a lease holds its client until it is dropped"),
        }
    }

    /// The call failed in a way that may leave the connection unusable: do not hand it out
    /// again.
    pub(super) fn discard(&mut self) {
        self.client = None;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && !client.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(client);
        }
    }
}

fn backend(message: &'static str) -> StoreError {
    StoreError::backend(std::io::Error::new(std::io::ErrorKind::TimedOut, message))
}
