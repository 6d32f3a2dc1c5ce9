//! In-memory sliding-window limits (code emails per address and per IP).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct RateLimiter {
    hits: Mutex<Hits>,
}

/// Keys with their recent hits. Keys whose hits have all expired are swept out
/// once the map has doubled since the last sweep: sweeping on every call past a
/// fixed size would let a flood of distinct keys (one per IPv6 block, say) make
/// every request scan the whole map.
#[derive(Default)]
struct Hits {
    keys: HashMap<String, VecDeque<Instant>>,
    sweep_above: usize,
}

const SWEEP_FLOOR: usize = 100_000;

impl RateLimiter {
    /// Records a hit for `key` and returns true if it is within `max` per `window`.
    /// A refused hit is not recorded.
    pub fn allow(&self, key: &str, max: u32, window: Duration) -> bool {
        self.allow_all(&[(key.to_string(), max)], window)
    }

    /// Like [`allow`](Self::allow) for several keys at once: the hit is recorded
    /// against all of them only if every one has room.
    pub fn allow_all(&self, limits: &[(String, u32)], window: Duration) -> bool {
        let now = Instant::now();
        let Ok(mut guard) = self.hits.lock() else {
            return false;
        };
        let Hits {
            keys: hits,
            sweep_above,
        } = &mut *guard;
        if hits.len() > SWEEP_FLOOR.max(*sweep_above) {
            hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
            *sweep_above = hits.len() * 2;
        }
        for (key, max) in limits {
            let q = hits.entry(key.clone()).or_default();
            while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                q.pop_front();
            }
            if q.len() >= *max as usize {
                return false;
            }
        }
        for (key, _) in limits {
            hits.entry(key.clone()).or_default().push_back(now);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_per_key() {
        let r = super::RateLimiter::default();
        let w = std::time::Duration::from_secs(60);
        assert!(r.allow("a", 2, w));
        assert!(r.allow("a", 2, w));
        assert!(!r.allow("a", 2, w));
        assert!(r.allow("b", 2, w));
    }

    #[test]
    fn a_flood_of_other_keys_does_not_reset_a_spent_budget() {
        let r = super::RateLimiter::default();
        let w = std::time::Duration::from_secs(60);
        assert!(r.allow("victim", 1, w));
        for n in 0..=2 * super::SWEEP_FLOOR {
            r.allow(&format!("flood-{n}"), 1, w);
        }
        assert!(!r.allow("victim", 1, w));
    }
}
