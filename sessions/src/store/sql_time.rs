//! Times as the SQL stores keep them: milliseconds since the Unix epoch in a 64-bit integer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::errors::RecordError;

/// A time as stored: milliseconds since the Unix epoch (negative before it, clamped at the
/// ends).
pub(crate) fn millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// A stored time back as a `SystemTime`.
pub(crate) fn time(millis: i64) -> Result<SystemTime, RecordError> {
    let offset = Duration::from_millis(millis.unsigned_abs());
    let time = if millis >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    time.ok_or_else(|| RecordError::Malformed(format!("stored time {millis} ms is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_and_after_the_epoch_come_back() {
        for ms in [0, 1, -1, 1_700_000_000_123, -86_400_000] {
            let stored = time(ms).map(millis);
            assert_eq!(stored.ok(), Some(ms), "{ms}");
        }
        assert_eq!(millis(UNIX_EPOCH + Duration::from_secs(1 << 62)), i64::MAX);
    }
}
