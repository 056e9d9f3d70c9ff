//! The node hash (hashing.md §4.2–4.3): SHA-256, lowercase hex, of the canonical form of
//! `{"parent": <parent hash or "">, "content": {"type", "role", "content": <projected blocks>}}`.
//!
//! The blocks are marshalled with Go json/v2 rules: a nil content is `[]`, `omitempty`
//! omits only `""` and empty objects, so `"is_error": false` and `"type": ""` are always
//! present. Model, provider, agent, stop reason and usage are not hashed.

use sha2::{Digest, Sha256};

use super::Bucket;
use super::canonical::{write_object, write_str};
use super::projection::{project_text, prunes_to_empty};
use crate::llm::ContentBlock;

/// Whether blocks are projected while they are written. The hash always projects;
/// `AsIs` serves to check the writer against [`super::project_content`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    Apply,
    AsIs,
}

/// Hashes nodes, reusing one buffer for their canonical bytes.
#[derive(Debug, Default)]
pub struct NodeHasher {
    buf: Vec<u8>,
}

impl NodeHasher {
    pub fn new() -> Self {
        NodeHasher {
            buf: Vec::with_capacity(4096),
        }
    }

    /// The hash of a node with this bucket under `parent` (`None` for a root).
    pub fn hash(&mut self, parent: Option<&str>, bucket: &Bucket) -> String {
        self.buf.clear();
        write_hash_input(
            &mut self.buf,
            parent,
            &bucket.kind,
            &bucket.role,
            bucket.content.as_deref(),
            Projection::Apply,
        );
        hex::encode(Sha256::digest(&self.buf))
    }
}

/// The hash of one node (see [`NodeHasher`] to hash many).
pub fn node_hash(parent: Option<&str>, bucket: &Bucket) -> String {
    NodeHasher::default().hash(parent, bucket)
}

/// The exact bytes that are hashed for a node; shown when debugging a mismatch.
pub fn hash_input(parent: Option<&str>, bucket: &Bucket) -> Vec<u8> {
    let mut buf = Vec::new();
    write_hash_input(
        &mut buf,
        parent,
        &bucket.kind,
        &bucket.role,
        bucket.content.as_deref(),
        Projection::Apply,
    );
    buf
}

/// Appends the canonical hash input of a node. Keys are written in their sorted order:
/// `content` < `parent`, and `content` < `role` < `type` inside.
pub fn write_hash_input(
    buf: &mut Vec<u8>,
    parent: Option<&str>,
    kind: &str,
    role: &str,
    content: Option<&[ContentBlock]>,
    projection: Projection,
) {
    buf.extend_from_slice(br#"{"content":{"content":["#);
    let mut first = true;
    for block in content.unwrap_or_default() {
        let text = match projection {
            Projection::Apply if !block.text.is_empty() => {
                let projected = project_text(&block.text);
                // A block whose text projects to nothing is dropped whole.
                if projected.is_empty() {
                    continue;
                }
                projected
            }
            _ => std::borrow::Cow::Borrowed(block.text.as_str()),
        };
        if !first {
            buf.push(b',');
        }
        first = false;
        write_block(buf, block, &text, projection);
    }
    buf.extend_from_slice(br#"],"role":"#);
    write_str(buf, role);
    buf.extend_from_slice(br#","type":"#);
    write_str(buf, kind);
    buf.extend_from_slice(br#"},"parent":"#);
    write_str(buf, parent.unwrap_or_default());
    buf.push(b'}');
}

/// One block, members in sorted order, `text` already projected.
fn write_block(buf: &mut Vec<u8>, block: &ContentBlock, text: &str, projection: Projection) {
    let mut obj = Members { buf, first: true };
    obj.string("image_base64", &block.image_base64);
    obj.string("image_url", &block.image_url);
    obj.key("is_error");
    obj.buf
        .extend_from_slice(if block.is_error { b"true" } else { b"false" });
    obj.string("media_type", &block.media_type);
    obj.string("text", text);
    obj.string("thinking", &block.thinking);
    if projection == Projection::AsIs {
        obj.string("thinking_signature", &block.thinking_signature);
    }
    if let Some(input) = &block.tool_input {
        let prune = projection == Projection::Apply;
        let empty = if prune {
            prunes_to_empty(input)
        } else {
            input.is_empty()
        };
        if !empty {
            obj.key("tool_input");
            write_object(obj.buf, input, prune);
        }
    }
    obj.string("tool_name", &block.tool_name);
    obj.string("tool_output", &block.tool_output);
    obj.string("tool_result_id", &block.tool_result_id);
    obj.string("tool_use_id", &block.tool_use_id);
    obj.key("type");
    write_str(obj.buf, &block.kind);
    obj.buf.push(b'}');
}

/// Writes the members of one object in the order they are given.
struct Members<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl Members<'_> {
    fn key(&mut self, key: &str) {
        self.buf.push(if self.first { b'{' } else { b',' });
        self.first = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// A string member, omitted when empty (json/v2 `omitempty`).
    fn string(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.key(key);
            write_str(self.buf, value);
        }
    }
}
