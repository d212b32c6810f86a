//! When sessions end: the expiry policy, the times a store keeps, and the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What time it is. The layer and the stores ask a clock, so tests can move time without sleeping.
///
/// ```
/// use sessions::clock::{Clock, SystemClock};
/// let now = SystemClock.now();
/// assert!(now > std::time::UNIX_EPOCH);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
///
/// ```
/// use sessions::clock::{Clock, SystemClock};
/// let _ = SystemClock.now();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to, for tests. Clones share one time.
///
/// ```
/// use std::time::Duration;
/// use sessions::clock::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now().duration_since(start).unwrap(), Duration::from_secs(90));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at 2025-01-01T00:00:00Z.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::clock::{Clock, ManualClock};
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_735_689_600));
    /// ```
    pub fn new() -> Self {
        Self::at(UNIX_EPOCH + Duration::from_secs(1_735_689_600))
    }

    /// A clock standing at `time` (millisecond precision).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::clock::{Clock, ManualClock};
    /// let clock = ManualClock::at(UNIX_EPOCH + Duration::from_micros(1_500));
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_millis(1)); // sub-millisecond part dropped
    /// ```
    pub fn at(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let millis = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        Self {
            millis: Arc::new(AtomicU64::new(millis)),
        }
    }

    /// Moves the clock forward.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessions::clock::{Clock, ManualClock};
    /// let clock = ManualClock::new();
    /// let shared = clock.clone();
    /// let start = clock.now();
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(shared.now(), start + Duration::from_secs(5));
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        // Saturates rather than wrap: a clock moved "forever" stays at its end.
        let _ = self
            .millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |millis| {
                Some(millis.saturating_add(by))
            });
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

/// The times a store keeps beside a session's record.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use sessions::store::Deadline;
/// let d = Deadline { created_at: UNIX_EPOCH, expires_at: UNIX_EPOCH + Duration::from_secs(60) };
/// assert!(d.is_expired(UNIX_EPOCH + Duration::from_secs(60)));
/// assert!(!d.is_expired(UNIX_EPOCH + Duration::from_secs(59)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When the session was created (absolute expiry counts from here).
    pub created_at: SystemTime,
    /// When the session ends, server-side.
    pub expires_at: SystemTime,
}

/// The last second of the year 9999 (UTC), in seconds since the Unix epoch.
const LATEST_SECS: u64 = 253_402_300_799;

/// `time + span`, or [`Deadline::latest`] when that is later (or beyond the clock).
pub(crate) fn later(time: SystemTime, span: Duration) -> SystemTime {
    let latest = Deadline::latest();
    time.checked_add(span).map_or(latest, |end| end.min(latest))
}

impl Deadline {
    /// The latest end a session is given: the last second of the year 9999 (UTC). An expiry
    /// that would end later (`Expiry::idle(Duration::MAX)`) ends here instead of overflowing
    /// the clock; every store keeps it (it is far below what a signed 64-bit count of
    /// milliseconds holds), and a cookie's `Max-Age` says it in whole seconds.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::Expiry;
    /// use sessions::store::Deadline;
    /// let never = Expiry::idle(Duration::MAX).deadline(UNIX_EPOCH, UNIX_EPOCH);
    /// assert_eq!(never.expires_at, Deadline::latest());
    /// assert_eq!(Deadline::latest(), UNIX_EPOCH + Duration::from_secs(253_402_300_799));
    /// ```
    pub fn latest() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(LATEST_SECS)
    }

    /// Whether the session has ended at `now`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::store::Deadline;
    /// let end = UNIX_EPOCH + Duration::from_secs(60);
    /// let deadline = Deadline { created_at: UNIX_EPOCH, expires_at: end };
    /// assert!(!deadline.is_expired(end - Duration::from_millis(1)));
    /// assert!(deadline.is_expired(end));
    /// ```
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }

    /// The time left at `now` (zero once expired).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::store::Deadline;
    /// let deadline = Deadline { created_at: UNIX_EPOCH, expires_at: UNIX_EPOCH + Duration::from_secs(60) };
    /// assert_eq!(deadline.remaining(UNIX_EPOCH + Duration::from_secs(20)), Duration::from_secs(40));
    /// assert_eq!(deadline.remaining(UNIX_EPOCH + Duration::from_secs(90)), Duration::ZERO);
    /// ```
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or_default()
    }
}

/// When sessions end, enforced server-side.
///
/// * [`Expiry::idle`]: on inactivity (rolling): a request, one that reads or one that saves,
///   moves the end forward once [`refresh_share`](Expiry::refresh_share) of the idle time has
///   passed since it last moved (and so do `set_expiry` and `cycle_id`); a save before then
///   leaves the end where it is, except in a [`CookieStore`](crate::CookieStore), where every
///   change re-seals the cookie with a moved end;
/// * [`Expiry::absolute`]: a fixed time after creation, whatever the activity;
/// * [`Expiry::idle_and_absolute`]: both: whichever comes first;
/// * [`Expiry::browser_session`]: the cookie has no `Max-Age`, so the browser drops it when it
///   closes; server-side the session still ends after its idle time.
///
/// The default is 24 hours idle, with a persistent cookie.
///
/// A duration too long for the clock (`Duration::MAX`, a natural "never") is no error: the
/// session then ends at [`Deadline::latest`] (the last second of the year 9999), which every
/// store can keep.
///
/// ```
/// use std::time::Duration;
/// use sessions::Expiry;
/// let expiry = Expiry::idle_and_absolute(Duration::from_secs(30 * 60), Duration::from_secs(8 * 3600))
///     .refresh_share(0.5);
/// assert_eq!(expiry.idle_time(), Some(Duration::from_secs(1800)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expiry {
    idle: Option<Duration>,
    absolute: Option<Duration>,
    browser_session: bool,
    refresh_share: f64,
}

impl Default for Expiry {
    fn default() -> Self {
        Self::idle(Duration::from_secs(24 * 3600))
    }
}

impl Expiry {
    /// Ends a session after `idle` without activity.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::Expiry;
    /// let policy = Expiry::idle(Duration::from_secs(60));
    /// assert_eq!((policy.idle_time(), policy.absolute_time()), (Some(Duration::from_secs(60)), None));
    /// // activity moves the end forward: 100 s after creation, the session still has 60 s
    /// let later = UNIX_EPOCH + Duration::from_secs(100);
    /// assert_eq!(policy.deadline(UNIX_EPOCH, later).expires_at, later + Duration::from_secs(60));
    /// ```
    pub fn idle(idle: Duration) -> Self {
        Self {
            idle: Some(idle),
            absolute: None,
            browser_session: false,
            refresh_share: 0.25,
        }
    }

    /// Ends a session `absolute` after its creation.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::Expiry;
    /// let policy = Expiry::absolute(Duration::from_secs(60));
    /// assert_eq!(policy.idle_time(), None);
    /// // activity does not move the end
    /// let later = UNIX_EPOCH + Duration::from_secs(50);
    /// assert_eq!(policy.deadline(UNIX_EPOCH, later).expires_at, UNIX_EPOCH + Duration::from_secs(60));
    /// ```
    pub fn absolute(absolute: Duration) -> Self {
        Self {
            idle: None,
            absolute: Some(absolute),
            browser_session: false,
            refresh_share: 0.25,
        }
    }

    /// Ends a session after `idle` without activity or `absolute` after creation, whichever is first.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessions::Expiry;
    /// let policy = Expiry::idle_and_absolute(Duration::from_secs(60), Duration::from_secs(3600));
    /// assert_eq!(policy.idle_time(), Some(Duration::from_secs(60)));
    /// assert_eq!(policy.absolute_time(), Some(Duration::from_secs(3600)));
    /// assert!(!policy.is_browser_session());
    /// ```
    pub fn idle_and_absolute(idle: Duration, absolute: Duration) -> Self {
        Self {
            idle: Some(idle),
            absolute: Some(absolute),
            browser_session: false,
            refresh_share: 0.25,
        }
    }

    /// A browser-session cookie (no `Max-Age`); server-side the session ends after `idle`
    /// without activity.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessions::Expiry;
    /// let policy = Expiry::browser_session(Duration::from_secs(1800));
    /// assert!(policy.is_browser_session());
    /// assert_eq!(policy.idle_time(), Some(Duration::from_secs(1800)));
    /// ```
    pub fn browser_session(idle: Duration) -> Self {
        Self {
            idle: Some(idle),
            absolute: None,
            browser_session: true,
            refresh_share: 0.25,
        }
    }

    /// Adds an absolute limit to this policy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessions::Expiry;
    /// let policy = Expiry::browser_session(Duration::from_secs(1800)).with_absolute(Duration::from_secs(8 * 3600));
    /// assert!(policy.is_browser_session());
    /// assert_eq!(policy.absolute_time(), Some(Duration::from_secs(8 * 3600)));
    /// ```
    pub fn with_absolute(mut self, absolute: Duration) -> Self {
        self.absolute = Some(absolute);
        self
    }

    /// How much of the idle time must pass since the end last moved before a request moves it
    /// again (0.0 = every request, 1.0 = never; default 0.25). It holds for a request that
    /// saves as for one that reads: a save before then writes its fields and leaves the end
    /// (and the cookie) alone. A [`CookieStore`](crate::CookieStore) moves the end on every
    /// change, since it re-seals the cookie anyway.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::Expiry;
    /// let every_request = Expiry::idle(Duration::from_secs(100)).refresh_share(0.0);
    /// let default = Expiry::idle(Duration::from_secs(100)); // 0.25
    /// let deadline = default.deadline(UNIX_EPOCH, UNIX_EPOCH);
    /// let soon = UNIX_EPOCH + Duration::from_secs(1);
    /// assert!(every_request.refresh_due(&deadline, soon));
    /// assert!(!default.refresh_due(&deadline, soon));
    /// ```
    pub fn refresh_share(mut self, share: f64) -> Self {
        self.refresh_share = share.clamp(0.0, 1.0);
        self
    }

    /// The idle time, if the policy has one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessions::Expiry;
    /// assert_eq!(Expiry::default().idle_time(), Some(Duration::from_secs(24 * 3600)));
    /// assert_eq!(Expiry::absolute(Duration::from_secs(60)).idle_time(), None);
    /// ```
    pub fn idle_time(&self) -> Option<Duration> {
        self.idle
    }

    /// The absolute time, if the policy has one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessions::Expiry;
    /// assert_eq!(Expiry::default().absolute_time(), None);
    /// assert_eq!(Expiry::absolute(Duration::from_secs(60)).absolute_time(), Some(Duration::from_secs(60)));
    /// ```
    pub fn absolute_time(&self) -> Option<Duration> {
        self.absolute
    }

    /// Whether cookies are browser-session cookies (no `Max-Age`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessions::Expiry;
    /// assert!(!Expiry::default().is_browser_session());
    /// assert!(Expiry::browser_session(Duration::from_secs(60)).is_browser_session());
    /// ```
    pub fn is_browser_session(&self) -> bool {
        self.browser_session
    }

    /// The deadline of a session created at `created_at`, active at `now`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::Expiry;
    /// let policy = Expiry::idle_and_absolute(Duration::from_secs(10), Duration::from_secs(15));
    /// let t0 = UNIX_EPOCH;
    /// assert_eq!(policy.deadline(t0, t0).expires_at, t0 + Duration::from_secs(10));
    /// // activity at 8 s: idle would reach 18 s, the absolute limit stops it at 15 s
    /// assert_eq!(policy.deadline(t0, t0 + Duration::from_secs(8)).expires_at, t0 + Duration::from_secs(15));
    /// ```
    pub fn deadline(&self, created_at: SystemTime, now: SystemTime) -> Deadline {
        let by_idle = self.idle.map(|idle| later(now, idle));
        let by_absolute = self.absolute.map(|absolute| later(created_at, absolute));
        let expires_at = match (by_idle, by_absolute) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            // Unreachable through the constructors; a day keeps the store bounded regardless.
            (None, None) => later(now, Duration::from_secs(24 * 3600)),
        };
        Deadline {
            created_at,
            expires_at,
        }
    }

    /// Whether a read-only request at `now` should move `current` forward.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use sessions::Expiry;
    /// let policy = Expiry::idle(Duration::from_secs(100)).refresh_share(0.25);
    /// let d = policy.deadline(UNIX_EPOCH, UNIX_EPOCH);
    /// assert!(!policy.refresh_due(&d, UNIX_EPOCH + Duration::from_secs(24)));
    /// assert!(policy.refresh_due(&d, UNIX_EPOCH + Duration::from_secs(26)));
    /// ```
    pub fn refresh_due(&self, current: &Deadline, now: SystemTime) -> bool {
        let Some(idle) = self.idle else { return false };
        let next = self.deadline(current.created_at, now);
        if next.expires_at <= current.expires_at {
            return false;
        }
        let remaining = current.remaining(now);
        let elapsed = idle.saturating_sub(remaining);
        elapsed.as_secs_f64() >= idle.as_secs_f64() * self.refresh_share
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every policy, with durations at the clock's extremes.
    fn extreme_policies() -> Vec<Expiry> {
        let huge = [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 2),
            Duration::from_millis(u64::MAX),
        ];
        let mut policies = Vec::new();
        for span in huge {
            policies.extend([
                Expiry::idle(span),
                Expiry::absolute(span),
                Expiry::browser_session(span),
                Expiry::idle_and_absolute(span, span),
                Expiry::idle_and_absolute(Duration::from_secs(60), span),
                Expiry::browser_session(span).with_absolute(span),
                Expiry::idle(span).refresh_share(0.0),
            ]);
        }
        policies
    }

    #[test]
    fn durations_too_long_for_the_clock_end_at_the_latest_time_never_panic() {
        let now = UNIX_EPOCH + Duration::from_secs(1_735_689_600);
        // A creation time as far as a stored entry can say (u64::MAX milliseconds).
        let far = UNIX_EPOCH + Duration::from_millis(u64::MAX);
        for policy in extreme_policies() {
            for created_at in [UNIX_EPOCH, now, far] {
                let deadline = policy.deadline(created_at, now);
                assert!(deadline.expires_at <= Deadline::latest(), "{policy:?}");
                assert!(deadline.expires_at > now, "{policy:?} from {created_at:?}");
                let _ = policy.refresh_due(&deadline, now);
                let _ = policy.refresh_due(&deadline, far);
                let _ = deadline.remaining(now);
            }
        }
        let never = Expiry::idle(Duration::MAX).deadline(now, now);
        assert_eq!(never.expires_at, Deadline::latest());
        let minute = Expiry::idle_and_absolute(Duration::from_secs(60), Duration::MAX);
        assert_eq!(
            minute.deadline(now, now).expires_at,
            now + Duration::from_secs(60)
        );
    }

    #[test]
    fn a_manual_clock_moved_forever_stays_at_its_end() {
        let clock = ManualClock::new();
        clock.advance(Duration::MAX);
        let end = clock.now();
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), end);
        assert_eq!(end, UNIX_EPOCH + Duration::from_millis(u64::MAX));
    }
}
