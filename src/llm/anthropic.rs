//! Anthropic Messages API requests (hashing.md §3.1).
//!
//! Typed fields are checked as Go's decoder checks them; `messages[].content` and `system`
//! are Go `any` values, probed key by key, so a wrong kind inside them is ignored rather
//! than an error. Thinking text and signatures are not extracted on the request side
//! (hashing.md §4.8): a re-sent thinking block becomes `{type:"thinking"}`.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{ChatRequest, ContentBlock, Message, ParseError, request};
use crate::gojson::typed::{Bool, Float, Int, Str, StrList};
use crate::gojson::{
    BoolProbe, Key, ObjectProbe, Path, StrProbe, ignore_kinds, reject_kinds, reject_top_level,
};

const REQUEST_TYPE: &str = "anthropic.anthropicRequest";
static ROOT: Path<'static> = Path::Root("anthropicRequest");

/// Parses an Anthropic request body.
pub fn parse_request(raw: &str) -> Result<ChatRequest, ParseError> {
    request::run(raw, RequestSeed)
}

struct RequestSeed;

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = ChatRequest;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ChatRequest, D::Error> {
        d.deserialize_any(RequestVisitor)
    }
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = ChatRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an Anthropic request object")
    }

    fn visit_unit<E>(self) -> Result<ChatRequest, E> {
        Ok(ChatRequest {
            max_tokens: Some(0),
            ..ChatRequest::default()
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChatRequest, A::Error> {
        let mut req = ChatRequest::default();
        // `MaxTokens` is a plain int in the reference: always reported, 0 when absent.
        let mut max_tokens = 0;
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "model" => {
                    if let Some(v) = map.next_value_seed(Str(ROOT.field("model")))? {
                        req.model = v;
                    }
                }
                "messages" => {
                    req.messages = map.next_value_seed(Messages(ROOT.field("messages")))?
                }
                "system" => req.system = map.next_value_seed(SystemProbe)?,
                "max_tokens" => {
                    if let Some(v) = map.next_value_seed(Int(ROOT.field("max_tokens")))? {
                        max_tokens = v;
                    }
                }
                "temperature" => {
                    req.temperature = map.next_value_seed(Float(ROOT.field("temperature")))?;
                }
                "top_p" => req.top_p = map.next_value_seed(Float(ROOT.field("top_p")))?,
                "top_k" => req.top_k = map.next_value_seed(Int(ROOT.field("top_k")))?,
                "stop_sequences" => {
                    req.stop = map
                        .next_value_seed(StrList(ROOT.field("stop_sequences")))?
                        .unwrap_or_default();
                }
                "stream" => req.stream = map.next_value_seed(Bool(ROOT.field("stream")))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        req.max_tokens = Some(max_tokens);
        Ok(req)
    }

    reject_top_level!(REQUEST_TYPE; bool, number, string, array);
}

/// `messages`: `[]anthropicMessage`.
struct Messages<'p>(Path<'p>);

impl<'de> DeserializeSeed<'de> for Messages<'_> {
    type Value = Vec<Message>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Message>, D::Error> {
        d.deserialize_any(MessagesVisitor {
            path: self.0,
            target: "[]anthropic.anthropicMessage",
        })
    }
}

struct MessagesVisitor<'p> {
    path: Path<'p>,
    target: &'static str,
}

impl<'de> Visitor<'de> for MessagesVisitor<'_> {
    type Value = Vec<Message>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of messages")
    }

    fn visit_unit<E>(self) -> Result<Vec<Message>, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Message>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(8));
        while let Some(msg) = seq.next_element_seed(MessageSeed(self.path.index(out.len())))? {
            out.push(msg);
        }
        Ok(out)
    }

    reject_kinds!(bool, number, string, object);
}

/// One `anthropicMessage`: `role` string, `content` any.
struct MessageSeed<'p>(Path<'p>);

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = Message;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Message, D::Error> {
        d.deserialize_any(MessageVisitor {
            path: self.0,
            target: "anthropic.anthropicMessage",
        })
    }
}

struct MessageVisitor<'p> {
    path: Path<'p>,
    target: &'static str,
}

impl<'de> Visitor<'de> for MessageVisitor<'_> {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message object")
    }

    fn visit_unit<E>(self) -> Result<Message, E> {
        Ok(Message::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let mut msg = Message::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "role" => {
                    if let Some(v) = map.next_value_seed(Str(self.path.field("role")))? {
                        msg.role = v;
                    }
                }
                "content" => msg.content = map.next_value_seed(ContentProbe)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(msg)
    }

    reject_kinds!(bool, number, string, array);
}

/// `content` (any): a string is one text block, an array gives one block per object
/// element, anything else (and an array without objects) is nil content.
struct ContentProbe;

impl<'de> DeserializeSeed<'de> for ContentProbe {
    type Value = Option<Vec<ContentBlock>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ContentVisitor)
    }
}

struct ContentVisitor;

impl<'de> Visitor<'de> for ContentVisitor {
    type Value = Option<Vec<ContentBlock>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("message content")
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(vec![ContentBlock::text(v)]))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(vec![ContentBlock::text(v)]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut blocks = Vec::new();
        while let Some(block) = seq.next_element_seed(BlockProbe)? {
            blocks.extend(block);
        }
        // The reference appends to a nil slice: no object element leaves it nil.
        Ok((!blocks.is_empty()).then_some(blocks))
    }

    ignore_kinds!(None; null, bool, number, object);
}

/// One element of a content array: objects become blocks by independent key probes;
/// other elements are skipped.
struct BlockProbe;

impl<'de> DeserializeSeed<'de> for BlockProbe {
    type Value = Option<ContentBlock>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(BlockVisitor)
    }
}

struct BlockVisitor;

impl<'de> Visitor<'de> for BlockVisitor {
    type Value = Option<ContentBlock>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content block")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Each probe keeps the last occurrence of its key (a Go map), and a value of the
        // wrong kind clears it, exactly as a failed `v.(string)` would.
        let mut kind = None;
        let mut text = None;
        let mut source = None;
        let mut id = None;
        let mut name = None;
        let mut input = None;
        let mut tool_use_id = None;
        let mut is_error = None;
        let mut output = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "type" => kind = map.next_value_seed(StrProbe)?,
                "text" => text = map.next_value_seed(StrProbe)?,
                "source" => source = map.next_value_seed(SourceProbe)?,
                "id" => id = map.next_value_seed(StrProbe)?,
                "name" => name = map.next_value_seed(StrProbe)?,
                "input" => input = map.next_value_seed(ObjectProbe)?,
                "tool_use_id" => tool_use_id = map.next_value_seed(StrProbe)?,
                "is_error" => is_error = map.next_value_seed(BoolProbe)?,
                "content" => output = map.next_value_seed(ToolOutputProbe)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let (media_type, data) = source.unwrap_or_default();
        let mut block = ContentBlock {
            kind: kind.unwrap_or_default(),
            text: text.unwrap_or_default(),
            media_type: media_type.unwrap_or_default(),
            image_base64: data.unwrap_or_default(),
            tool_use_id: id.unwrap_or_default(),
            tool_name: name.unwrap_or_default(),
            tool_input: input,
            ..ContentBlock::default()
        };
        if block.kind == "tool_result" {
            block.tool_result_id = tool_use_id.unwrap_or_default();
            block.is_error = is_error.unwrap_or_default();
            block.tool_output = output.unwrap_or_default();
        }
        Ok(Some(block))
    }

    ignore_kinds!(None; null, bool, number, string, array);
}

/// `source` (object only): `(media_type, data)` when they are strings.
struct SourceProbe;

type Source = (Option<String>, Option<String>);

impl<'de> DeserializeSeed<'de> for SourceProbe {
    type Value = Option<Source>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(SourceVisitor)
    }
}

struct SourceVisitor;

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = Option<Source>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a source object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut media_type, mut data) = (None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "media_type" => media_type = map.next_value_seed(StrProbe)?,
                "data" => data = map.next_value_seed(StrProbe)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some((media_type, data)))
    }

    ignore_kinds!(None; null, bool, number, string, array);
}

/// A tool result's `content`: a string verbatim, or the string `text` of every object part
/// joined with `"\n"` (including empty ones; images and non-objects are skipped).
struct ToolOutputProbe;

impl<'de> DeserializeSeed<'de> for ToolOutputProbe {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ToolOutputVisitor)
    }
}

struct ToolOutputVisitor;

impl<'de> Visitor<'de> for ToolOutputVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("tool result content")
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut joined = String::new();
        let mut first = true;
        while let Some(part) = seq.next_element_seed(TextPartProbe { only_type: None })? {
            if let Some(text) = part {
                if !first {
                    joined.push('\n');
                }
                joined.push_str(&text);
                first = false;
            }
        }
        Ok(Some(joined))
    }

    ignore_kinds!(None; null, bool, number, object);
}

/// An element of a text-part array: the string `text` of an object, optionally only when
/// its `type` is `only_type`. `None` for anything else.
struct TextPartProbe {
    only_type: Option<&'static str>,
}

impl<'de> DeserializeSeed<'de> for TextPartProbe {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextPartProbe {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a text part")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut kind, mut text) = (None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "type" if self.only_type.is_some() => kind = map.next_value_seed(StrProbe)?,
                "text" => text = map.next_value_seed(StrProbe)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match self.only_type {
            Some(wanted) if kind.as_deref() != Some(wanted) => Ok(None),
            _ => Ok(text),
        }
    }

    ignore_kinds!(None; null, bool, number, string, array);
}

/// `system` (any): a string as-is; an array keeps the non-empty `text` of `type:"text"`
/// objects joined with `"\n"`; anything else is `""`.
struct SystemProbe;

impl<'de> DeserializeSeed<'de> for SystemProbe {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(SystemVisitor)
    }
}

struct SystemVisitor;

impl<'de> Visitor<'de> for SystemVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a system prompt")
    }

    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        let mut joined = String::new();
        let probe = || TextPartProbe {
            only_type: Some("text"),
        };
        while let Some(part) = seq.next_element_seed(probe())? {
            match part {
                Some(text) if !text.is_empty() => {
                    if !joined.is_empty() {
                        joined.push('\n');
                    }
                    joined.push_str(&text);
                }
                _ => {}
            }
        }
        Ok(joined)
    }

    ignore_kinds!(String::new(); null, bool, number, object);
}
