//! The bounded set of node hashes a session actor knows are stored.

use std::collections::HashSet;

use crate::merkle::Chain;

/// Hashes known to be stored under the session's org, handed to the store so a warm session
/// inserts only the new suffix of its conversation.
///
/// It is an optimisation only: the store stays correct with an empty set. The bound keeps
/// memory flat however long a session grows: when adding a committed chain would exceed the
/// capacity, the set restarts from that chain alone (its first `capacity` hashes), because
/// the next turn of a session re-sends exactly that history.
#[derive(Debug, Clone, Default)]
pub struct KnownHashes {
    hashes: HashSet<String>,
    capacity: usize,
}

impl KnownHashes {
    /// An empty set that will hold at most `capacity` hashes.
    pub fn with_capacity(capacity: usize) -> Self {
        KnownHashes {
            hashes: HashSet::new(),
            capacity,
        }
    }

    /// True when `hash` is known to be stored.
    pub fn contains(&self, hash: &str) -> bool {
        self.hashes.contains(hash)
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Records that every node of `chain` is now stored.
    pub fn remember(&mut self, chain: &Chain) {
        let unseen = chain
            .nodes
            .iter()
            .filter(|n| !self.hashes.contains(&n.hash))
            .count();
        if self.hashes.len() + unseen > self.capacity {
            self.hashes.clear();
            self.hashes.shrink_to(self.capacity.min(chain.nodes.len()));
        }
        for node in &chain.nodes {
            if self.hashes.len() >= self.capacity {
                break;
            }
            if !self.hashes.contains(&node.hash) {
                self.hashes.insert(node.hash.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{Bucket, ChainNode};

    fn chain(hashes: &[&str]) -> Chain {
        Chain {
            nodes: hashes
                .iter()
                .map(|h| ChainNode {
                    hash: (*h).to_owned(),
                    parent_hash: None,
                    bucket: Bucket::default(),
                    kind: None,
                    thread_id: String::new(),
                    stop_reason: String::new(),
                    usage: None,
                })
                .collect(),
        }
    }

    #[test]
    fn remembers_every_node_of_committed_chains() {
        let mut known = KnownHashes::with_capacity(10);
        known.remember(&chain(&["a", "b"]));
        known.remember(&chain(&["a", "b", "c", "d"]));
        assert_eq!(known.len(), 4);
        for h in ["a", "b", "c", "d"] {
            assert!(known.contains(h));
        }
    }

    #[test]
    fn restarts_from_the_latest_chain_when_full() {
        let mut known = KnownHashes::with_capacity(4);
        known.remember(&chain(&["x", "y", "z"]));
        known.remember(&chain(&["a", "b", "c"]));
        assert_eq!(known.len(), 3);
        assert!(known.contains("a") && !known.contains("x"));
    }

    #[test]
    fn never_exceeds_its_capacity() {
        let mut known = KnownHashes::with_capacity(2);
        known.remember(&chain(&["a", "b", "c", "d"]));
        assert_eq!(known.len(), 2);
        assert!(known.contains("a") && known.contains("b"));
        let mut none = KnownHashes::with_capacity(0);
        none.remember(&chain(&["a"]));
        assert_eq!(none.len(), 0);
    }
}
