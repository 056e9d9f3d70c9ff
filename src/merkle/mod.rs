//! Content-addressed nodes: projection, canonical bytes, SHA-256 and chain building.
//!
//! Everything here is a pure function over values: no I/O, no clocks, no globals.

mod canonical;
mod chain;
#[cfg(test)]
mod decoded;
mod hash;
mod kind;
mod projection;
#[cfg(test)]
mod properties;
mod text;
#[cfg(test)]
mod vectors;

pub use canonical::{utf16_cmp, write_number, write_str, write_value};
pub use chain::{build_chain, build_chain_under};
pub use hash::{NodeHasher, Projection, hash_input, node_hash, write_hash_input};
pub use kind::{NodeKind, Offshoot, classify, injected_kind};
pub use projection::{
    Projector, is_zero_value, normalize_whitespace, project_content, project_text,
    prune_zero_values, prunes_to_empty, strip_harness_tags,
};

pub use crate::llm::Rules;

use serde::Serialize;

use crate::llm::{ContentBlock, Usage};

/// The bucket `type` of every node built from a turn.
pub const MESSAGE_KIND: &str = "message";

/// What a node stores (docs/storage.md#column-values-of-a-node). Serialises to the stored
/// `bucket` JSON (v1 rules: `content: null` for a nil content, `agent_name` omitted when
/// empty). Only `kind`, `role` and the projected `content` are hashed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    #[serde(rename = "type")]
    pub kind: String,
    pub role: String,
    pub content: Option<Vec<ContentBlock>>,
    pub model: String,
    pub provider: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub agent_name: String,
}

/// One node of a turn's chain, with its hash and its parent's.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainNode {
    /// 64 lowercase hex characters.
    pub hash: String,
    /// `None` for a root. Usually the node before; an injected node and the node after it
    /// share the last spine node as their parent.
    pub parent_hash: Option<String>,
    /// The unprojected bucket, as it will be stored.
    pub bucket: Bucket,
    /// What the node is to the conversation; `None` under rules without node kinds. Not
    /// hashed.
    pub kind: Option<NodeKind>,
    /// The harness sub-thread of the turn (`meta.thread_id`), `""` for the main thread and
    /// under rules without node metadata. Not hashed.
    pub thread_id: String,
    /// Set on the head (response) node only; not hashed.
    pub stop_reason: String,
    /// Set on the head (response) node only; not hashed.
    pub usage: Option<Usage>,
}

/// A turn's nodes, root first; the last node is the head (the response).
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub nodes: Vec<ChainNode>,
}

impl Chain {
    /// The response node. A chain built by `build_chain` is never empty.
    pub fn head(&self) -> &ChainNode {
        self.nodes
            .last()
            .expect("a built chain always has its response node")
    }

    /// The first node: the first request message (injected or not), or the response when
    /// the request has none.
    pub fn root(&self) -> &ChainNode {
        self.nodes
            .first()
            .expect("a built chain always has its response node")
    }

    /// The synthetic harness session id: the first 16 hex characters of the first node's
    /// hash.
    pub fn synthetic_session_id(&self) -> &str {
        &self.root().hash[..16]
    }
}
