//! A set of keys that one task at a time may hold, such as "this upload is being
//! written right now". A second claim on a held key is refused rather than queued.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Mutex;

pub struct ClaimSet<K>(Mutex<HashSet<K>>);

impl<K> Default for ClaimSet<K> {
    fn default() -> Self {
        ClaimSet(Mutex::new(HashSet::new()))
    }
}

/// Holds a key until dropped.
pub struct Claim<'a, K: Eq + Hash> {
    set: &'a ClaimSet<K>,
    key: K,
}

impl<K: Eq + Hash + Clone> ClaimSet<K> {
    /// The claim on `key`, or `None` while someone else holds it.
    pub fn claim(&self, key: K) -> Option<Claim<'_, K>> {
        let inserted = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone());
        // Built only when claimed: a refused claim must not run `Drop` (which would
        // release the holder's claim).
        inserted.then(|| Claim { set: self, key })
    }
}

impl<K: Eq + Hash> Drop for Claim<'_, K> {
    fn drop(&mut self) {
        self.set
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::ClaimSet;

    #[test]
    fn a_refused_claim_leaves_the_holder_alone() {
        let set = ClaimSet::<i64>::default();
        let held = set.claim(1).expect("first claim");
        assert!(set.claim(1).is_none(), "second claim refused");
        assert!(set.claim(1).is_none(), "still held after a refusal");
        drop(held);
        assert!(set.claim(1).is_some(), "free again");
    }
}
