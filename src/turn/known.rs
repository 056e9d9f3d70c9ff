//! The bounded set of node hashes a session actor knows are stored.

use std::collections::HashSet;

use super::RawTurn;
use crate::capture::chunks::ChunkHash;
use crate::merkle::Chain;

/// Hashes known to be stored under the session's org, handed to the store so a warm session
/// inserts only the new suffix of its conversation.
///
/// It is an optimisation only: the store stays correct with an empty set. The bound keeps
/// memory flat however long a session grows: when adding a committed chain would exceed the
/// capacity, the set restarts from that chain alone (its first `capacity` hashes), because
/// the next turn of a session re-sends exactly that history.
///
/// Beside the node hashes it keeps the request chunks the session's raw turns stored, so a
/// warm turn writes its few new chunks without asking first which ones the org has. That
/// is safe only while a raw turn that references each remembered chunk is kept: the owner
/// forgets the chunks well within the shortest retention (`reel prune` keeps at least a
/// day), see [`KnownHashes::forget_chunks`].
#[derive(Debug, Clone, Default)]
pub struct KnownHashes {
    hashes: HashSet<String>,
    capacity: usize,
    chunks: HashSet<ChunkHash>,
}

/// Request chunks remembered per node hash the set may hold: a quarter, since a chunk's
/// 4 KiB hold many messages.
const CHUNKS_PER_HASH: usize = 4;

impl KnownHashes {
    /// An empty set that will hold at most `capacity` hashes.
    pub fn with_capacity(capacity: usize) -> Self {
        KnownHashes {
            hashes: HashSet::new(),
            capacity,
            chunks: HashSet::new(),
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

    /// True when the request chunk `hash` is known to be stored under the session's org.
    pub fn contains_chunk(&self, hash: &ChunkHash) -> bool {
        self.chunks.contains(hash)
    }

    /// Records that every request chunk of `raw` is now stored. Bounded as the node hashes
    /// are: past the bound the set restarts from this turn's chunks.
    pub fn remember_chunks(&mut self, raw: &RawTurn) {
        let capacity = self.capacity / CHUNKS_PER_HASH;
        let pieces = raw.request_chunks().pieces();
        if self.chunks.len() + pieces.len() > capacity {
            self.chunks.clear();
        }
        for piece in pieces
            .iter()
            .take(capacity.saturating_sub(self.chunks.len()))
        {
            self.chunks.insert(*piece.hash());
        }
    }

    /// True when no request chunk is remembered.
    pub fn is_empty_of_chunks(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Forgets every remembered chunk: their raw turns may be pruned some day.
    pub fn forget_chunks(&mut self) {
        self.chunks = HashSet::new();
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

    fn raw(request: &[u8]) -> crate::turn::RawTurn {
        crate::turn::RawTurn::new(crate::turn::Capture {
            request: bytes::Bytes::copy_from_slice(request),
            ..crate::turn::Capture::default()
        })
        .0
    }

    #[test]
    fn remembers_request_chunks_within_a_quarter_of_its_capacity_and_forgets_them() {
        let request: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let turn = raw(&request);
        let pieces = turn.request_chunks().pieces();
        assert!(pieces.len() > 4, "{} chunks", pieces.len());
        let mut known = KnownHashes::with_capacity(4 * pieces.len());
        known.remember_chunks(&turn);
        assert!(pieces.iter().all(|p| known.contains_chunk(p.hash())));
        known.forget_chunks();
        assert!(known.is_empty_of_chunks());
        // Too many for the bound: it keeps at most a quarter of its capacity.
        let mut small = KnownHashes::with_capacity(8);
        small.remember_chunks(&turn);
        assert_eq!(
            pieces
                .iter()
                .filter(|p| small.contains_chunk(p.hash()))
                .count(),
            2
        );
    }
}
