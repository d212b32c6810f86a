//! Failing fast while the server is known to be unreachable.
//!
//! Without this, every call during an outage waits the pool's whole acquire timeout (sqlx
//! retries a refused connection until then) before its 503. The circuit opens when the pool
//! cannot get a connection; while it is open, calls fail at once, and one call at a time (a
//! probe) goes through to the pool once the window has passed. The probe getting a connection
//! closes the circuit; its failing opens it for another window.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A call refused at once: the server was unreachable a moment ago.
#[derive(Debug, thiserror::Error)]
#[error(
    "PostgreSQL is unreachable (failing fast for {window:?} after the last failure to connect: {cause})"
)]
pub(super) struct Unreachable {
    window: Duration,
    cause: String,
}

/// The circuit of one pool.
#[derive(Debug)]
pub(super) struct Circuit {
    /// How long calls fail at once after a failure to connect; zero: never.
    window: Duration,
    epoch: Instant,
    /// Microseconds since `epoch` until which calls fail at once; 0: closed.
    open_until: AtomicU64,
    /// Whether a probe is under way.
    probing: AtomicBool,
    /// Why the circuit opened, for the fast failures' message.
    cause: Mutex<String>,
}

/// How a call passed the circuit: with the circuit closed, or as the one call that may try
/// the server while it is open (the probe, released when the pass is dropped).
#[must_use]
pub(super) struct Pass<'a> {
    _probe: Option<Probe<'a>>,
}

impl Pass<'_> {
    /// Whether this call is the probe of an open circuit.
    pub(super) fn is_probe(&self) -> bool {
        self._probe.is_some()
    }
}

struct Probe<'a>(&'a Circuit);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.0.probing.store(false, Ordering::Release);
    }
}

impl Circuit {
    pub(super) fn new(window: Duration) -> Self {
        Self {
            window,
            epoch: Instant::now(),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            cause: Mutex::new(String::new()),
        }
    }

    pub(super) fn window(&self) -> Duration {
        self.window
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX - 1)
    }

    /// Lets a call through (to get a connection), or refuses it at once.
    pub(super) fn enter(&self) -> Result<Pass<'_>, Unreachable> {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return Ok(Pass { _probe: None });
        }
        if self.now() >= until
            && self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Ok(Pass {
                _probe: Some(Probe(self)),
            });
        }
        Err(Unreachable {
            window: self.window,
            cause: self.lock_cause().clone(),
        })
    }

    /// What getting a connection came to: a failure that says the server cannot be reached
    /// opens the circuit (for another window); anything else closes it.
    pub(super) fn after(&self, pass: Pass<'_>, outcome: Result<(), &sqlx::Error>) {
        match outcome {
            Err(err) if self.window > Duration::ZERO && unreachable(err) => {
                *self.lock_cause() = err.to_string();
                let until = self
                    .now()
                    .saturating_add(u64::try_from(self.window.as_micros()).unwrap_or(u64::MAX))
                    .max(1);
                self.open_until.store(until, Ordering::Release);
                tracing::warn!(
                    target: "sessions",
                    store = "postgres",
                    error = %err,
                    window = ?self.window,
                    "cannot reach PostgreSQL; calls fail at once until a probe connects"
                );
            }
            _ => {
                if self.open_until.load(Ordering::Acquire) != 0 {
                    self.open_until.store(0, Ordering::Release);
                    tracing::info!(target: "sessions", store = "postgres", "PostgreSQL is reachable again");
                }
            }
        }
        drop(pass);
    }

    fn lock_cause(&self) -> std::sync::MutexGuard<'_, String> {
        // A panic while holding it leaves a whole string: safe to take over.
        self.cause
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether getting a connection failed because the server cannot be reached (down, refusing,
/// shutting down, out of connection slots) rather than for another reason.
///
/// A pool exhausted for a whole acquire timeout looks the same as a server that refuses
/// connections (sqlx retries those until the timeout): it opens the circuit too.
fn unreachable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P: admin/crash shutdown, cannot connect now;
            // 53300: too many connections.
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }

    #[test]
    fn opens_on_a_failure_to_connect_and_lets_one_probe_through_after_the_window() {
        let circuit = Circuit::new(Duration::from_millis(30));
        let pass = circuit.enter().expect("closed");
        circuit.after(pass, Err(&refused()));
        let err = circuit.enter().err().expect("open: fails at once");
        assert!(err.to_string().contains("unreachable"), "{err}");
        std::thread::sleep(Duration::from_millis(40));
        let probe = circuit.enter().expect("the window passed: a probe");
        assert!(probe.is_probe());
        assert!(circuit.enter().is_err(), "one probe at a time");
        circuit.after(probe, Err(&refused()));
        assert!(circuit.enter().is_err(), "the failed probe reopened it");
        std::thread::sleep(Duration::from_millis(40));
        let probe = circuit.enter().expect("a probe");
        circuit.after(probe, Ok(()));
        assert!(
            circuit.enter().is_ok_and(|pass| !pass.is_probe()),
            "closed again"
        );
    }

    #[test]
    fn a_dropped_probe_lets_the_next_call_probe() {
        let circuit = Circuit::new(Duration::from_millis(1));
        let pass = circuit.enter().expect("closed");
        circuit.after(pass, Err(&refused()));
        std::thread::sleep(Duration::from_millis(5));
        let probe = circuit.enter().expect("a probe");
        drop(probe);
        assert!(circuit.enter().is_ok_and(|pass| pass.is_probe()));
    }

    #[test]
    fn other_errors_and_a_zero_window_never_open_it() {
        let circuit = Circuit::new(Duration::from_secs(5));
        let pass = circuit.enter().expect("closed");
        circuit.after(pass, Err(&sqlx::Error::RowNotFound));
        assert!(circuit.enter().is_ok_and(|pass| !pass.is_probe()));
        let off = Circuit::new(Duration::ZERO);
        let pass = off.enter().expect("closed");
        off.after(pass, Err(&refused()));
        assert!(off.enter().is_ok_and(|pass| !pass.is_probe()));
    }
}
