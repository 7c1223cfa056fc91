//! [`Clock`]: the cluster clock, wall or manual (DESIGN.md "Time").

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, ServerError};

/// Where "now" comes from. Cheap to clone; clones share a manual clock.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system clock.
    Wall,
    /// Time moves only through [`Clock::advance`] (`AdminService.AdvanceClock`).
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `now_ms` (Unix ms).
    pub fn manual(now_ms: i64) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(now_ms)))
    }

    /// Now, Unix ms.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::Wall => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            Clock::Manual(now) => now.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock to `now_ms` (never backwards) and returns the clock after the call.
    /// Fails for the wall clock and for a time earlier than the current one.
    pub fn advance(&self, now_ms: i64) -> Result<i64> {
        let Clock::Manual(now) = self else { return Err(ServerError::ClockIsWall) };
        let mut current = now.load(Ordering::SeqCst);
        loop {
            if now_ms < current {
                return Err(ServerError::ClockBackwards { now_ms, current_ms: current });
            }
            match now.compare_exchange(current, now_ms, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Ok(now_ms),
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_only_moves_forward() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.advance(2_000).unwrap(), 2_000);
        assert_eq!(clock.now_ms(), 2_000);
        assert!(matches!(clock.advance(1_500), Err(ServerError::ClockBackwards { .. })));
        assert!(matches!(Clock::Wall.advance(1), Err(ServerError::ClockIsWall)));
    }
}
