//! The node hash (docs/hashing.md#the-node-hash): SHA-256, lowercase hex, of the canonical
//! form of
//! `{"parent": <parent hash or "">, "content": {"type", "role", "content": <projected blocks>}}`.
//!
//! The blocks are marshalled with Go json/v2 rules: a nil content is `[]`, `omitempty`
//! omits only `""` and empty objects, so `"is_error": false` and `"type": ""` are always
//! present. Model, provider, agent, stop reason and usage are not hashed.

use sha2::{Digest, Sha256};

use super::Bucket;
use super::canonical::{write_object, write_str};
use super::projection::{Projector, prunes_to_empty};
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
    projector: Projector,
}

impl NodeHasher {
    pub fn new() -> Self {
        NodeHasher {
            buf: Vec::with_capacity(4096),
            projector: Projector::default(),
        }
    }

    /// The hash of a node with this bucket under `parent` (`None` for a root).
    pub fn hash(&mut self, parent: Option<&str>, bucket: &Bucket) -> String {
        self.buf.clear();
        write_node(
            &mut self.buf,
            &mut self.projector,
            parent,
            &bucket.kind,
            &bucket.role,
            bucket.content.as_deref(),
            Projection::Apply,
        );
        to_hex(&Sha256::digest(&self.buf))
    }
}

/// Lowercase hex of a digest. `hex::encode` goes through a char iterator, which showed up
/// at 4% of chain building; a table lookup per nibble is enough here.
fn to_hex(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digest.len() * 2);
    for &b in digest {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
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
    let mut projector = Projector::default();
    write_node(buf, &mut projector, parent, kind, role, content, projection);
}

fn write_node(
    buf: &mut Vec<u8>,
    projector: &mut Projector,
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
                let projected = projector.project(&block.text);
                // A block whose text projects to nothing is dropped whole.
                if projected.is_empty() {
                    continue;
                }
                projected
            }
            _ => block.text.as_str(),
        };
        if !first {
            buf.push(b',');
        }
        first = false;
        write_block(buf, block, text, projection);
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

#[cfg(test)]
mod tests {
    //! The reference's node tests, and the `Node.Hash` cases of its projection tests
    //! (docs/hashing.md#the-node-hash, docs/hashing.md#projection).

    use super::*;
    use crate::llm::Usage;
    use crate::merkle::ChainNode;

    fn bucket(role: &str, text: &str, model: &str, provider: &str) -> Bucket {
        Bucket {
            kind: "message".into(),
            role: role.into(),
            content: Some(vec![ContentBlock::text(text)]),
            model: model.into(),
            provider: provider.into(),
            agent_name: String::new(),
        }
    }

    fn user(text: &str) -> Bucket {
        bucket("user", text, "test-model", "test-provider")
    }

    /// A node the way the reference's `NewNode` makes one.
    fn new_node(bucket: Bucket, parent: Option<&ChainNode>, usage: Option<Usage>) -> ChainNode {
        let parent_hash = parent.map(|p| p.hash.clone());
        ChainNode {
            hash: node_hash(parent_hash.as_deref(), &bucket),
            parent_hash,
            bucket,
            stop_reason: if usage.is_some() {
                "stop".into()
            } else {
                String::new()
            },
            usage,
        }
    }

    #[test]
    fn root_node_keeps_its_bucket_and_has_no_parent() {
        let node = new_node(user("hello world"), None, None);
        assert_eq!(node.bucket, user("hello world"));
        assert_eq!(node.parent_hash, None);
        assert!(!node.hash.is_empty());
    }

    #[test]
    fn same_bucket_same_hash_different_content_different_hash() {
        assert_eq!(
            node_hash(None, &user("same")),
            node_hash(None, &user("same"))
        );
        assert_ne!(
            node_hash(None, &user("content A")),
            node_hash(None, &user("content B"))
        );
    }

    #[test]
    fn usage_and_stop_reason_are_not_hashed() {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 20,
            total_tokens: 30,
            ..Usage::default()
        };
        let with = new_node(
            bucket("assistant", "response", "gpt-4", "openai"),
            None,
            Some(usage),
        );
        let without = new_node(
            bucket("assistant", "response", "gpt-4", "openai"),
            None,
            None,
        );
        assert_eq!(with.hash, without.hash);
        assert_eq!(with.stop_reason, "stop");
    }

    #[test]
    fn child_links_to_its_parent() {
        let parent = new_node(user("parent content"), None, None);
        let child = new_node(user("child content"), Some(&parent), None);
        assert_eq!(child.bucket, user("child content"));
        assert_eq!(child.parent_hash.as_deref(), Some(parent.hash.as_str()));
        assert!(!child.hash.is_empty());
        let c1 = new_node(user("child 1"), Some(&parent), None);
        let c2 = new_node(user("child 2"), Some(&c1), None);
        let c3 = new_node(user("child 3"), Some(&c2), None);
        assert_eq!(c1.parent_hash.as_ref(), Some(&parent.hash));
        assert_eq!(c2.parent_hash.as_ref(), Some(&c1.hash));
        assert_eq!(c3.parent_hash.as_ref(), Some(&c2.hash));
    }

    #[test]
    fn same_bucket_under_different_parents_differs() {
        let p1 = new_node(user("parent content"), None, None);
        let p2 = new_node(user("different parent"), None, None);
        let c1 = new_node(user("same content"), Some(&p1), None);
        let c2 = new_node(user("same content"), Some(&p2), None);
        assert_ne!(c1.hash, c2.hash);
    }

    #[test]
    fn hex_matches_the_hex_crate() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(to_hex(&bytes), hex::encode(&bytes));
    }

    #[test]
    fn hash_is_64_lowercase_hex() {
        let hash = node_hash(None, &user("test"));
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
    }

    #[test]
    fn prose_turn_hashes_like_its_drift_fork() {
        let reminders = (1..=3)
            .map(|i| ContentBlock::text(format!("<system-reminder>context {i}</system-reminder>")));
        let mut forked = user("");
        forked.content = Some(
            reminders
                .chain([ContentBlock::text("Fix the bug")])
                .collect(),
        );
        assert_eq!(
            node_hash(None, &forked),
            node_hash(None, &user("Fix the bug"))
        );
    }

    #[test]
    fn stray_blank_line_inside_prose_does_not_fork() {
        assert_eq!(
            node_hash(None, &user("first line\nsecond line")),
            node_hash(None, &user("first line\n\nsecond line"))
        );
    }

    #[test]
    fn real_content_change_still_forks() {
        assert_ne!(
            node_hash(
                None,
                &user("<system-reminder>a</system-reminder>Fix the bug")
            ),
            node_hash(
                None,
                &user("<system-reminder>a</system-reminder>Fix the other bug")
            )
        );
    }

    #[test]
    fn routing_model_and_provider_do_not_change_the_hash() {
        let hashes: Vec<String> = [
            ("claude-haiku", "anthropic"),
            ("claude-opus", "anthropic"),
            ("gpt-5", "openai"),
            ("codex", "openai"),
        ]
        .iter()
        .map(|(model, provider)| node_hash(None, &bucket("user", "Hi", model, provider)))
        .collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn role_is_hashed() {
        assert_ne!(
            node_hash(None, &bucket("user", "Hi", "m", "p")),
            node_hash(None, &bucket("assistant", "Hi", "m", "p"))
        );
    }

    #[test]
    fn writing_projected_blocks_as_is_gives_the_same_bytes() {
        let content = vec![
            ContentBlock::text("<system-reminder>x</system-reminder>\n\nkeep  \r\n"),
            ContentBlock {
                kind: "thinking".into(),
                thinking: "t".into(),
                thinking_signature: "sig".into(),
                ..ContentBlock::default()
            },
        ];
        let projected = crate::merkle::project_content(&content);
        let mut direct = Vec::new();
        write_hash_input(
            &mut direct,
            None,
            "message",
            "user",
            Some(&content),
            Projection::Apply,
        );
        let mut via = Vec::new();
        write_hash_input(
            &mut via,
            None,
            "message",
            "user",
            Some(&projected),
            Projection::AsIs,
        );
        assert_eq!(direct, via);
    }
}
