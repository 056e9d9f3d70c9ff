//! Anthropic Messages API requests (docs/hashing.md#anthropic).
//!
//! Typed fields are checked as Go's decoder checks them; `messages[].content` and `system`
//! are Go `any` values, probed key by key, so a wrong kind inside them is ignored rather
//! than an error. Which members of a content block are read depends on its type, as the
//! rules gate them ([`AnthropicBlocks`]): under `tapes-f237b6e` thinking text is not read
//! (docs/hashing.md#quirks-kept-for-compatibility), so a re-sent thinking block becomes
//! `{type:"thinking"}`.

use std::fmt;

use memchr::memmem;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::parse::{Scope, run};
use super::rules::AnthropicBlocks;
use super::{ChatRequest, ContentBlock, Message, ParseError, RawJson, Rules, SystemPrompt};
use crate::gojson::typed::{Bool, Float, Int, RawList, set_str};
use crate::gojson::{
    AnySkip, AnyValue, BoolProbe, Document, GoSlice, Key, List, ObjectProbe, Path, StrProbe,
    TypedStruct, finished, ignore_kinds, message_of, typed_fields, walk_may_fail,
};

static ROOT: Path<'static> = Path::Root("anthropicRequest");

/// The seed of a whole request under `rules`, filled in as far as `scope` asks. Its
/// tool results' `content` is read in place ([`ContentRead::InPlace`]): when it gives up
/// with [`READ_RAW`], the request is to be parsed again with [`request_seed_exact`], as
/// [`parse`] does.
pub(super) fn request_seed(scope: Scope, rules: &Rules) -> Document<'static, RawRequest> {
    seed_reading(scope, rules, ContentRead::InPlace)
}

/// [`request_seed`] reading every `content` the rules may keep raw as raw text first: the
/// reference's procedure, to which [`ContentRead::InPlace`] gives up.
pub(super) fn request_seed_exact(scope: Scope, rules: &Rules) -> Document<'static, RawRequest> {
    seed_reading(scope, rules, ContentRead::Raw)
}

fn seed_reading(scope: Scope, rules: &Rules, read: ContentRead) -> Document<'static, RawRequest> {
    // Node kinds read the system prompt, so only without them may a chain skip it.
    let system = match (scope, read) {
        (Scope::Chain, _) if !rules.node_metadata => SystemRead::Skip,
        (Scope::Chain, ContentRead::InPlace) => SystemRead::Keep,
        _ => SystemRead::Decode,
    };
    Document(
        ROOT,
        RawRequest {
            system,
            typed_tools: rules.typed_tools,
            gates: Gates {
                blocks: rules.anthropic,
                read,
            },
            ..RawRequest::default()
        },
    )
}

/// Parses a whole request: in place, and where that gives up, again reading raw.
pub(super) fn parse(raw: &str, scope: Scope, rules: &Rules) -> Result<ChatRequest, ParseError> {
    match run(raw, request_seed(scope, rules)) {
        Err(ParseError::Type(text)) if text == READ_RAW => {
            run(raw, request_seed_exact(scope, rules))
        }
        parsed => parsed,
    }
}

/// The error with which a parse reading tool results' `content` in place, or keeping the
/// system prompt as sent, gives up.
pub(super) const READ_RAW: &str = "reel: the request is to be read raw";

/// How `system` is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum SystemRead {
    /// Decoded ([`SystemProbe`]).
    #[default]
    Decode,
    /// Skipped, as Go builds it ([`AnySkip`]): nothing reads it.
    Skip,
    /// Kept as sent, for the classifier to search in place ([`SystemKept`]); where that
    /// cannot be done safely, decoded now or given up with [`READ_RAW`].
    Keep,
}

/// How a block's `content` is read while the rules keep some block types' `content` raw
/// (`raw_result`), before the block's type is final (a later `type` key wins).
///
/// Kept raw, it is decoded again once the type is known: for a tool result as its output.
/// That reads every tool result twice, so while the type so far is `tool_result` or not yet
/// known (clients write `type` first, or sort their keys) the output is read in place
/// instead. Should the final type differ, or the value fail to decode (its error might read
/// otherwise than when decoded again), the parse gives up with [`READ_RAW`], and the whole
/// request is parsed again raw: both ways give the same request or the same error, and a
/// request costs at most two parses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum ContentRead {
    #[default]
    InPlace,
    Raw,
}

/// What a content block is read by: the rules' gates and how `content` is read.
#[derive(Debug, Clone, Copy, Default)]
struct Gates {
    blocks: AnthropicBlocks,
    read: ContentRead,
}

/// An `anthropicRequest` as decoded.
#[derive(Default)]
pub(super) struct RawRequest {
    system: SystemRead,
    typed_tools: bool,
    gates: Gates,
    req: ChatRequest,
    /// `MaxTokens` is a plain int in the reference: always reported, 0 when absent.
    max_tokens: i64,
    messages: GoSlice<AnthropicMessage>,
    stop: GoSlice<String>,
}

typed_fields! {
    RawRequest, "anthropic.anthropicRequest", "an Anthropic request object", |this, p, map| {
        "model" => set_str(map, p.field("model"), &mut this.req.model)?,
        "messages" => {
            let gates = this.gates;
            map.next_value_seed(
                List::new(p.field("messages"), "[]anthropic.anthropicMessage", &mut this.messages)
                    .setup(|message| message.gates = gates),
            )?
        },
        // `system` is a Go `any`: a chain needs nothing of it, but Go still builds it, and
        // a number beyond float64 in it fails the request.
        "system" => match this.system {
            SystemRead::Skip => map.next_value_seed(AnySkip)?,
            SystemRead::Keep => this.req.system = map.next_value_seed(SystemKept)?,
            SystemRead::Decode => this.req.system = map.next_value_seed(SystemProbe)?.into(),
        },
        "max_tokens" => {
            if let Some(v) = map.next_value_seed(Int(p.field("max_tokens")))? {
                this.max_tokens = v;
            }
        },
        "temperature" => {
            this.req.temperature = map.next_value_seed(Float(p.field("temperature")))?
        },
        "top_p" => this.req.top_p = map.next_value_seed(Float(p.field("top_p")))?,
        "top_k" => this.req.top_k = map.next_value_seed(Int(p.field("top_k")))?,
        "stop_sequences" => {
            map.next_value_seed(List::new(p.field("stop_sequences"), "[]string", &mut this.stop))?;
        },
        "stream" => this.req.stream = map.next_value_seed(Bool(p.field("stream")))?,
        "tools" if this.typed_tools => {
            this.req.tools = map.next_value_seed(RawList(p.field("tools")))?.unwrap_or(0)
        },
    }
}

impl TypedStruct for RawRequest {
    type Output = ChatRequest;

    fn finish(self) -> ChatRequest {
        ChatRequest {
            max_tokens: Some(self.max_tokens),
            messages: finished(self.messages),
            stop: self.stop.into_vec(),
            ..self.req
        }
    }
}

/// One `anthropicMessage`: `role` string, `content` any, read with the gates of the rules
/// the request is parsed under.
#[derive(Default)]
struct AnthropicMessage {
    message: Message,
    gates: Gates,
}

typed_fields! {
    AnthropicMessage, "anthropic.anthropicMessage", "a message object", |this, p, map| {
        "role" => set_str(map, p.field("role"), &mut this.message.role)?,
        "content" => this.message.content = map.next_value_seed(ContentProbe(this.gates))?,
    }
}

impl TypedStruct for AnthropicMessage {
    type Output = Message;

    fn finish(self) -> Message {
        self.message
    }
}

/// `content` (any): a string is one text block, an array gives one block per object
/// element, anything else (and an array without objects) is nil content.
struct ContentProbe(Gates);

impl<'de> DeserializeSeed<'de> for ContentProbe {
    type Value = Option<Vec<ContentBlock>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ContentVisitor(self.0))
    }
}

struct ContentVisitor(Gates);

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
        while let Some(block) = seq.next_element_seed(BlockProbe(self.0))? {
            blocks.extend(block);
        }
        // The reference appends to a nil slice: no object element leaves it nil.
        Ok((!blocks.is_empty()).then_some(blocks))
    }

    ignore_kinds!(None; null, bool, number, object);
}

/// One element of a content array: objects become blocks by independent key probes, each
/// applied as the gates admit the block's type; other elements are skipped.
struct BlockProbe(Gates);

impl<'de> DeserializeSeed<'de> for BlockProbe {
    type Value = Option<ContentBlock>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(BlockVisitor(self.0))
    }
}

struct BlockVisitor(Gates);

/// A block's `content` as read before its type is known.
enum BlockContent<'de> {
    /// Read as a tool result's output: when no gate reads it raw, only tool results read it.
    Output(Option<String>),
    /// Kept raw, and read once the block's type says how.
    Raw(&'de RawValue),
    /// Read in place as a tool result's output, while the type so far was `tool_result` or
    /// not yet known.
    InPlace(Option<String>),
}

impl<'de> Visitor<'de> for BlockVisitor {
    type Value = Option<ContentBlock>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content block")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Gates {
            blocks: gates,
            read,
        } = self.0;
        let raw_results = gates.raw_result.is_open();
        let thinking_blocks = gates.thinking.is_open();
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
        let mut content = None;
        let mut thinking = None;
        let mut signature = None;
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
                "content" if raw_results => {
                    content = Some(
                        if read == ContentRead::InPlace
                            && kind.as_deref().is_none_or(|k| k == "tool_result")
                        {
                            match map.next_value_seed(ToolOutputProbe) {
                                Ok(output) => BlockContent::InPlace(output),
                                Err(_) => return Err(de::Error::custom(READ_RAW)),
                            }
                        } else {
                            BlockContent::Raw(map.next_value()?)
                        },
                    )
                }
                "content" => {
                    content = Some(BlockContent::Output(map.next_value_seed(ToolOutputProbe)?))
                }
                "thinking" if thinking_blocks => thinking = map.next_value_seed(StrProbe)?,
                "signature" if thinking_blocks => signature = map.next_value_seed(StrProbe)?,
                _ => {
                    map.next_value_seed(AnySkip)?;
                }
            }
        }
        let kind = kind.unwrap_or_default();
        let (media_type, data) = source.unwrap_or_default();
        let mut block = ContentBlock {
            text: text.unwrap_or_default(),
            media_type: media_type.unwrap_or_default(),
            image_base64: data.unwrap_or_default(),
            ..ContentBlock::default()
        };
        if gates.tool_use.admits(&kind) {
            block.tool_use_id = id.unwrap_or_default();
            block.tool_name = name.unwrap_or_default();
            block.tool_input = input;
        }
        if gates.thinking.admits(&kind) {
            block.thinking = thinking.unwrap_or_default();
            block.thinking_signature = signature.unwrap_or_default();
        }
        let tool_result = kind == "tool_result";
        if tool_result {
            block.is_error = is_error.unwrap_or_default();
        }
        if tool_result || gates.raw_result.admits(&kind) {
            block.tool_result_id = tool_use_id.unwrap_or_default();
        }
        match content {
            Some(BlockContent::Output(output)) if tool_result => {
                block.tool_output = output.unwrap_or_default();
            }
            Some(BlockContent::Raw(raw)) if tool_result => {
                block.tool_output = reread(raw, ToolOutputProbe)?.unwrap_or_default();
            }
            Some(BlockContent::InPlace(output)) if tool_result => {
                block.tool_output = output.unwrap_or_default();
            }
            // A later `type` made it another block: its `content` was needed raw.
            Some(BlockContent::InPlace(_)) => return Err(de::Error::custom(READ_RAW)),
            // Go decoded the value into an `any` and encodes it again.
            Some(BlockContent::Raw(raw)) if gates.raw_result.admits(&kind) => {
                block.content = Some(RawJson::from_value(&reread(raw, AnyValue)?));
            }
            // Built by Go all the same, so a number beyond float64 fails the request.
            Some(BlockContent::Raw(raw)) => reread(raw, AnySkip)?,
            _ => {}
        }
        block.kind = kind;
        Ok(Some(block))
    }

    ignore_kinds!(None; null, bool, number, string, array);
}

/// Decodes a value kept raw with `seed`, as it would have been decoded in place; its
/// errors read as they would have there.
fn reread<'de, S: DeserializeSeed<'de>, E: de::Error>(
    raw: &'de RawValue,
    seed: S,
) -> Result<S::Value, E> {
    crate::gojson::decode_whole(raw.get(), seed).map_err(|e| E::custom(message_of(&e)))
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
                    map.next_value_seed(AnySkip)?;
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
                    map.next_value_seed(AnySkip)?;
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

/// Decodes a system prompt kept as sent ([`SystemKept`]).
pub(super) fn decode_system(json: &str) -> Result<String, serde_json::Error> {
    crate::gojson::decode_whole(json, SystemProbe)
}

/// `system` kept as sent, once it is certain to decode later as [`SystemProbe`] would have
/// decoded it here: without error (it is valid JSON, and [`walk_may_fail`] finds no number
/// beyond float64 and no deep nesting), and to text read off its bytes (it holds no `\u`
/// escape, which the classifier's in-place search could not see through). A value with a
/// `\u` escape is decoded now; a value that might fail, or fails, gives up with
/// [`READ_RAW`], so that the exact parse reports what Go reports.
struct SystemKept;

impl<'de> DeserializeSeed<'de> for SystemKept {
    type Value = SystemPrompt;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<SystemPrompt, D::Error> {
        let json = <&RawValue>::deserialize(d).map_err(|_| give_up())?.get();
        if memmem::find(json.as_bytes(), br"\u").is_some() {
            return decode_system(json)
                .map(SystemPrompt::from)
                .map_err(|_| give_up());
        }
        if walk_may_fail(json) {
            return Err(give_up());
        }
        Ok(SystemPrompt::anthropic_json(json))
    }
}

fn give_up<E: de::Error>() -> E {
    E::custom(READ_RAW)
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

#[cfg(test)]
mod tests {
    //! The reference's Anthropic `ParseRequest` tests (docs/hashing.md#anthropic) and the
    //! observed outputs of docs/hashing.md#observed-parse-outputs.

    use serde_json::json;

    use super::*;
    use crate::llm::ParseError;
    use crate::llm::parse::run;

    const OLD: Rules = Rules::TAPES_F237B6E;
    const NEW: Rules = Rules::TAPES_6EA4DFC;

    fn parse_request(raw: &str) -> Result<ChatRequest, ParseError> {
        super::parse(raw, Scope::Full, &OLD)
    }

    fn parse_for_chain(raw: &str) -> Result<ChatRequest, ParseError> {
        super::parse(raw, Scope::Chain, &OLD)
    }

    fn parse_new(v: serde_json::Value) -> Result<ChatRequest, ParseError> {
        super::parse(&v.to_string(), Scope::Chain, &NEW)
    }

    fn parse(v: serde_json::Value) -> ChatRequest {
        parse_request(&v.to_string()).unwrap()
    }

    fn only_content(req: &ChatRequest) -> &[ContentBlock] {
        req.messages[0].content.as_deref().unwrap()
    }

    #[test]
    fn simple_text() {
        let req = parse(json!({"model": "claude-3", "max_tokens": 1024,
            "messages": [{"role": "user", "content": "Hello"}]}));
        assert_eq!(req.model, "claude-3");
        assert_eq!(req.max_tokens, Some(1024));
        assert_eq!(req.messages[0].role, "user");
        assert_eq!(only_content(&req), [ContentBlock::text("Hello")]);
    }

    #[test]
    fn chain_scope_skips_only_the_system_prompt() {
        let raw = json!({"model": "m", "system": [{"type": "text", "text": "sys"}],
            "messages": [{"role": "user", "content": "Hi"}]})
        .to_string();
        let full = parse_request(&raw).unwrap();
        let chain = parse_for_chain(&raw).unwrap();
        assert_eq!(full.system, "sys");
        assert_eq!(chain.system, "");
        assert_eq!(
            (&chain.model, &chain.messages),
            (&full.model, &full.messages)
        );
        assert!(parse_for_chain(r#"{"system":"s","max_tokens":1.5}"#).is_err());
    }

    #[test]
    fn repeated_keys_decode_into_the_earlier_messages() {
        let req = parse_request(
            r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}],
                "messages":[{"content":"c"}],"stop_sequences":["x","y"],"stop_sequences":[null]}"#,
        )
        .unwrap();
        // Element 0 keeps its role; `content` is an `any`, replaced whole.
        assert_eq!(req.messages.len(), 1);
        assert_eq!(req.messages[0].role, "user");
        assert_eq!(only_content(&req), [ContentBlock::text("c")]);
        assert_eq!(req.stop, ["x"]);
    }

    #[test]
    fn max_tokens_is_zero_when_absent() {
        assert_eq!(parse(json!({"messages": []})).max_tokens, Some(0));
        assert_eq!(parse_request("null").unwrap().max_tokens, Some(0));
    }

    #[test]
    fn text_blocks() {
        let req = parse(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]}));
        assert_eq!(
            only_content(&req),
            [ContentBlock::text("one"), ContentBlock::text("two")]
        );
    }

    #[test]
    fn base64_image_and_document() {
        let req = parse(json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
            {"type": "image", "source": {"type": "url", "url": "https://e/x.png"}}]}]}));
        let blocks = only_content(&req);
        assert_eq!(blocks[0].kind, "image");
        assert_eq!(blocks[0].media_type, "image/png");
        assert_eq!(blocks[0].image_base64, "iVBOR");
        assert_eq!(blocks[1].image_base64, "JVBER");
        assert_eq!(blocks[1].media_type, "application/pdf");
        // A URL image keeps only its type: every URL image collides.
        assert_eq!(
            blocks[2],
            ContentBlock {
                kind: "image".into(),
                ..ContentBlock::default()
            }
        );
    }

    #[test]
    fn system_prompt_is_never_a_message() {
        let req = parse(json!({"system": "You are helpful.",
            "messages": [{"role": "user", "content": "Hi"}]}));
        assert_eq!(req.system, "You are helpful.");
        assert_eq!(req.messages.len(), 1);
        let req = parse(
            json!({"system": [{"type": "text", "text": ""}, {"type": "image"}, "s",
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
        );
        assert_eq!(req.system, "a\nb");
        assert_eq!(parse(json!({"system": 5})).system, "");
    }

    #[test]
    fn sampling_parameters_stop_sequences_and_stream() {
        let req = parse(json!({"temperature": 0.7, "top_p": 0.9, "top_k": 40,
            "stop_sequences": ["END", "STOP"], "stream": true}));
        assert_eq!(req.temperature, Some(0.7));
        assert_eq!(req.top_p, Some(0.9));
        assert_eq!(req.top_k, Some(40));
        assert_eq!(req.stop, ["END", "STOP"]);
        assert_eq!(req.stream, Some(true));
        assert_eq!(parse(json!({"stream": false})).stream, Some(false));
        assert_eq!(parse(json!({})).stream, None);
    }

    #[test]
    fn tool_use() {
        let req = parse(json!({"messages": [{"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "NYC"}}]}]}));
        let block = &only_content(&req)[0];
        assert_eq!(block.kind, "tool_use");
        assert_eq!(block.tool_use_id, "toolu_1");
        assert_eq!(block.tool_name, "get_weather");
        assert_eq!(block.tool_input.as_ref().unwrap()["location"], "NYC");
    }

    #[test]
    fn tool_results() {
        let req = parse(json!({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
             "content": [{"type": "text", "text": "line one"}, {"type": "text", "text": "line two"}]},
            {"type": "tool_result", "tool_use_id": "toolu_3",
             "content": [{"type": "text", "text": "a"}, "x", {"type": "text", "text": ""}]}]}]}));
        let blocks = only_content(&req);
        assert_eq!(blocks[0].tool_result_id, "toolu_1");
        assert_eq!(blocks[0].tool_output, "42");
        assert!(!blocks[0].is_error);
        assert_eq!(blocks[1].tool_output, "line one\nline two");
        assert!(blocks[1].is_error);
        assert_eq!(blocks[2].tool_output, "a\n");
    }

    #[test]
    fn tool_result_fields_apply_only_to_tool_results() {
        let req = parse(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "t", "tool_use_id": "x", "is_error": true, "content": "c"}]}]}));
        assert_eq!(only_content(&req), [ContentBlock::text("t")]);
    }

    #[test]
    fn key_probes_run_for_every_block_and_skip_non_objects() {
        let req = parse(json!({"messages": [{"role": "user", "content":
            [1, "s", {"type": "text", "text": "t", "id": "i", "name": "n", "input": [1]}]}]}));
        assert_eq!(
            only_content(&req),
            [ContentBlock {
                kind: "text".into(),
                text: "t".into(),
                tool_use_id: "i".into(),
                tool_name: "n".into(),
                ..ContentBlock::default()
            }]
        );
    }

    #[test]
    fn thinking_text_is_dropped_on_the_request_side() {
        let req = parse(json!({"messages": [{"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "SIG"},
            {"type": "redacted_thinking", "data": "abc"}]}]}));
        let blocks = only_content(&req);
        assert_eq!(blocks[0].kind, "thinking");
        assert_eq!(blocks[0].thinking, "");
        assert_eq!(blocks[0].thinking_signature, "");
        assert_eq!(blocks[1].kind, "redacted_thinking");
    }

    #[test]
    fn content_of_other_kinds_is_nil_and_empty_string_is_one_block() {
        for content in [
            json!(null),
            json!(5),
            json!({"type": "text"}),
            json!(true),
            json!([]),
            json!([1]),
        ] {
            let req = parse(json!({"messages": [{"role": "user", "content": content}]}));
            assert_eq!(req.messages[0].content, None, "{content}");
        }
        let req = parse(json!({"messages": [{"role": "user"}]}));
        assert_eq!(req.messages[0].content, None);
        let req = parse(json!({"messages": [{"role": "user", "content": ""}]}));
        assert_eq!(only_content(&req), [ContentBlock::text("")]);
    }

    #[test]
    fn key_case_folds_to_struct_fields_but_not_to_content_keys() {
        let req = parse(json!({"MODEL": "x", "Messages": [{"ROLE": "user", "content": "hi"}]}));
        assert_eq!(req.model, "x");
        assert_eq!(req.messages[0].role, "user");
        assert_eq!(only_content(&req), [ContentBlock::text("hi")]);
        // The last of an exact and a folded key wins, whichever comes first.
        for body in [
            r#"{"model":"a","Model":"b"}"#,
            r#"{"MODEL":"a","model":"b"}"#,
        ] {
            assert_eq!(parse_request(body).unwrap().model, "b", "{body}");
        }
        assert_eq!(
            parse_request(r#"{"max_tokens":1,"max_to\u212Aen\u017F":2}"#)
                .unwrap()
                .max_tokens,
            Some(2)
        );
        // Folded keys are typed like exact ones.
        assert!(parse_request(r#"{"Max_Tokens":1.5}"#).is_err());
        // Content blocks are Go maps, probed by exact key.
        let req = parse(json!({"messages": [{"role": "user", "content": [
            {"TYPE": "text", "Text": "t"}]}]}));
        assert_eq!(only_content(&req), [ContentBlock::default()]);
    }

    #[test]
    fn a_number_beyond_float64_in_an_any_value_fails_the_request() {
        for body in [
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"t","cache_control":{"ttl":1e400}}]}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"text","x":[1e400]}]}]}]}"#,
            r#"{"messages":[{"role":"user","content":{"a":1e400}}]}"#,
            r#"{"messages":[{"role":"user","content":[1e400]}]}"#,
            r#"{"system":[{"type":"text","text":"s","n":-1e400}]}"#,
        ] {
            assert!(
                matches!(
                    parse_request(body),
                    Err(ParseError::Syntax(_) | ParseError::Type(_))
                ),
                "{body}"
            );
            assert!(parse_for_chain(body).is_err(), "{body}");
        }
        // Keys no field takes are skipped unbuilt, by Go as here.
        assert!(parse_request(r#"{"tools":[{"n":1e400}],"messages":[]}"#).is_ok());
        assert!(parse_request(r#"{"messages":[{"role":"user","extra":1e400}]}"#).is_ok());
    }

    #[test]
    fn type_errors_use_go_texts() {
        let err = |v: serde_json::Value| parse_request(&v.to_string()).unwrap_err().to_string();
        assert_eq!(
            err(json!({"max_tokens": 64.5})),
            "json: cannot unmarshal number 64.5 into Go struct field anthropicRequest.max_tokens of type int"
        );
        assert_eq!(
            err(json!({"messages": "hi"})),
            "json: cannot unmarshal string into Go struct field anthropicRequest.messages of type []anthropic.anthropicMessage"
        );
        assert_eq!(
            err(json!({"messages": [{"role": 1}]})),
            "json: cannot unmarshal number into Go struct field anthropicRequest.messages.0.role of type string"
        );
        assert_eq!(
            err(json!("not-valid-json-object")),
            "json: cannot unmarshal string into Go value of type anthropic.anthropicRequest"
        );
        assert!(matches!(
            parse_request(r#"{"stop_sequences":["a",2]}"#),
            Err(ParseError::Type(_))
        ));
        assert!(matches!(
            parse_request(r#"{"model":"#),
            Err(ParseError::UnexpectedEnd)
        ));
        assert!(matches!(
            parse_request("{nope}"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(parse_request("{} x"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn the_later_rules_read_thinking_and_gate_tool_members_by_type() {
        let req = parse_new(json!({"messages": [{"role": "assistant", "content": [
            {"type": "thinking", "thinking": "let me think", "signature": "sig123"},
            {"type": "thinking", "thinking": 5, "signature": ["x"]},
            {"type": "mcp_tool_use", "id": "m1", "name": "n", "input": {"a": 1}},
            {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"q": "x"}},
            {"type": "text", "text": "t", "id": "i", "name": "n", "input": {"a": 1},
             "thinking": "not read"}]}]}))
        .unwrap();
        let blocks = only_content(&req);
        assert_eq!(
            (&*blocks[0].thinking, &*blocks[0].thinking_signature),
            ("let me think", "sig123")
        );
        assert_eq!(
            (&*blocks[1].thinking, &*blocks[1].thinking_signature),
            ("", "")
        );
        assert_eq!(
            blocks[2],
            ContentBlock {
                kind: "mcp_tool_use".into(),
                ..ContentBlock::default()
            }
        );
        assert_eq!(blocks[3].tool_use_id, "s1");
        assert_eq!(blocks[3].tool_input.as_ref().unwrap()["q"], "x");
        assert_eq!(blocks[4], ContentBlock::text("t"));
    }

    #[test]
    fn the_later_rules_keep_web_search_results_raw_as_go_re_encodes_them() {
        let req = parse_new(json!({"messages": [{"role": "assistant", "content": [
            {"type": "web_search_tool_result", "tool_use_id": "s", "content":
                [{"type": "web_search_result", "n": 1.5, "big": 9007199254740993_u64}]},
            {"type": "web_search_tool_result", "tool_use_id": "s", "content": null},
            {"type": "mcp_tool_result", "tool_use_id": "m", "content": [{"a": 1}]},
            {"type": "tool_result", "tool_use_id": "t", "content": [
                {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}]}))
        .unwrap();
        let blocks = only_content(&req);
        assert_eq!(blocks[0].tool_result_id, "s");
        assert_eq!(
            blocks[0].content.as_ref().map(RawJson::get),
            Some(r#"[{"big":9007199254740992,"n":1.5,"type":"web_search_result"}]"#)
        );
        assert_eq!(blocks[1].content.as_ref().map(RawJson::get), Some("null"));
        assert_eq!(
            blocks[2],
            ContentBlock {
                kind: "mcp_tool_result".into(),
                ..ContentBlock::default()
            }
        );
        assert_eq!(blocks[3].tool_output, "a\nb");
        assert_eq!(blocks[3].content, None);
    }

    #[test]
    fn a_number_beyond_float64_in_content_read_raw_fails_the_request() {
        for body in [
            r#"{"messages":[{"role":"user","content":[{"type":"tool_result","content":[1e400]}]}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"x","content":{"a":1e400}}]}]}"#,
            r#"{"messages":[{"role":"user","content":[{"content":[1e400],"type":"web_search_tool_result"}]}]}"#,
        ] {
            for rules in [OLD, NEW] {
                let parsed = super::parse(body, Scope::Chain, &rules);
                assert!(parsed.is_err(), "{body}");
                assert_ne!(parsed, Err(ParseError::Type(READ_RAW.into())), "{body}");
            }
        }
        let fine =
            r#"{"messages":[{"role":"user","content":[{"type":"x","content":{"a":1e300}}]}]}"#;
        assert!(super::parse(fine, Scope::Chain, &NEW).is_ok());
    }

    /// Tool results read in place give what reading them raw gives, and where reading in
    /// place gives up (a later `type`, a value that fails), the raw reading's request or
    /// error is the answer.
    #[test]
    fn tool_results_read_in_place_parse_as_read_raw() {
        let bodies = [
            r#"[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"a\n\"b\""},{"text":7},{"type":"image"}]}]"#,
            r#"[{"type":"tool_result","content":"plain","is_error":true}]"#,
            r#"[{"content":"before the type","type":"tool_result"}]"#,
            r#"[{"type":"tool_result","content":[{"n":1e400}]}]"#,
            r#"[{"type":"tool_result","content":[1e400],"content":"replaced"}]"#,
            r#"[{"type":"tool_result","content":[{"type":"web_search_result","n":1.50}],"type":"web_search_tool_result"}]"#,
            r#"[{"type":"tool_result","content":"x","type":"text","text":"t"}]"#,
            r#"[{"type":"tool_result","content":[{"a":1e400}],"type":"other"}]"#,
            r#"[{"type":"tool_result","content":{"deep":[[[1]]]}},{"type":"tool_result","content":[]}]"#,
        ];
        for content in bodies {
            let body = format!(r#"{{"messages":[{{"role":"user","content":{content}}}]}}"#);
            for scope in [Scope::Chain, Scope::Full] {
                for rules in [OLD, NEW] {
                    let parsed = super::parse(&body, scope, &rules);
                    assert_eq!(
                        parsed,
                        run(&body, request_seed_exact(scope, &rules)),
                        "{body}"
                    );
                    assert_ne!(parsed, Err(ParseError::Type(READ_RAW.into())), "{body}");
                }
            }
        }
        // The in-place reading gives up exactly where the type changes or the value fails.
        let gives_up = |content: &str| {
            let body = format!(r#"{{"messages":[{{"role":"user","content":{content}}}]}}"#);
            run(&body, request_seed(Scope::Chain, &NEW)) == Err(ParseError::Type(READ_RAW.into()))
        };
        assert!(gives_up(bodies[3]) && gives_up(bodies[5]) && gives_up(bodies[6]));
        assert!(!gives_up(bodies[0]) && !gives_up(bodies[2]));
        assert!(gives_up(
            r#"[{"content":"x","type":"web_search_tool_result"}]"#
        ));
        assert!(gives_up(r#"[{"content":"x"}]"#));
    }

    #[test]
    fn tools_are_typed_and_counted_under_the_later_rules() {
        assert_eq!(
            parse_new(json!({"tools": [{"name": "a"}, 1, null]}))
                .unwrap()
                .tools,
            3
        );
        assert_eq!(parse_new(json!({"tools": null})).unwrap().tools, 0);
        assert_eq!(
            parse_new(json!({"tools": "Bash"})).unwrap_err().to_string(),
            "json: cannot unmarshal string into Go struct field anthropicRequest.tools of type []json.RawMessage"
        );
        assert!(parse_request(&json!({"tools": "Bash"}).to_string()).is_ok());
    }

    #[test]
    fn a_chain_under_the_later_rules_reads_the_system_prompt() {
        let raw = json!({"system": [{"type": "text", "text": "You are a security monitor"}]});
        assert_eq!(
            parse_new(raw.clone()).unwrap().system,
            "You are a security monitor"
        );
        assert_eq!(parse_for_chain(&raw.to_string()).unwrap().system, "");
    }

    /// A chain under the later rules keeps the system prompt as sent where it will decode
    /// to the same text later, decodes it now where it holds a `\u` escape, and gives up on
    /// it where decoding might fail; the request or error is always the exact parse's.
    #[test]
    fn a_system_prompt_kept_as_sent_parses_as_decoded() {
        let cases = [
            (r#""plain \"quoted\" \\ \/ text\n""#, Some(true)),
            (
                r#"[{"type":"text","text":"a"},{"text":"b","type":"text"},{"type":"image"}]"#,
                Some(true),
            ),
            (
                r#"[{"type":"text","text":"dated 2025-10-01","cache_control":{"ttl":3600}}]"#,
                Some(true),
            ),
            (
                r#"[{"type":"text","text":"t","type":"image"},"s",7,null,[1]]"#,
                Some(true),
            ),
            (
                r#"{"type":"text","text":"an object is no prompt"}"#,
                Some(true),
            ),
            ("null", Some(true)),
            ("12345", Some(true)),
            ("1e400", None),
            (r#""caf\u00e9 \ud83d\ude00""#, Some(false)),
            (
                r#"[{"type":"text","text":"\\u is a backslash and a u"}]"#,
                Some(false),
            ),
            (r#"[{"type":"text","text":"s","n":-1e400}]"#, None),
            (r#"[{"type":"text","text":"s","n":1e300}]"#, Some(true)),
            (
                r#"[{"type":"text","text":"s"},{"deep":[[[[[[[[[[[[[["123"]]]]]]]]]]]]]]}]"#,
                Some(true),
            ),
            (r#"[{"type":"text","text":"s""#, None),
            (r#"[{"type":"text","text":"bad \x escape"}]"#, None),
            (r#"[{"type":"text","text":"s"},]"#, None),
        ];
        for (system, kept) in cases {
            let body = format!(r#"{{"system":{system},"messages":[]}}"#);
            let parsed = super::parse(&body, Scope::Chain, &NEW);
            assert_eq!(
                parsed,
                run(&body, request_seed_exact(Scope::Chain, &NEW)),
                "{body}"
            );
            assert_ne!(parsed, Err(ParseError::Type(READ_RAW.into())), "{body}");
            let in_place = run(&body, request_seed(Scope::Chain, &NEW));
            match kept {
                Some(kept) => assert_eq!(
                    in_place.map(|req| req.system.json().is_some()),
                    Ok(kept),
                    "{body}"
                ),
                None => assert!(in_place.is_err(), "{body}"),
            }
        }
        // Go walks a value 150 levels deep with digits in it, and fails; without digits
        // in it, serde_json skips it unwalked, whatever else holds digits.
        let (open, close) = ("[".repeat(150), "]".repeat(150));
        for (system, fails) in [
            (
                format!(r#"[{{"type":"text","text":"t"}},{open}123{close}]"#),
                true,
            ),
            (
                format!(r#"[{{"type":"text","text":"123"}},{open}{close}]"#),
                false,
            ),
        ] {
            let body = format!(r#"{{"system":{system}}}"#);
            let parsed = super::parse(&body, Scope::Chain, &NEW);
            assert_eq!(parsed.is_err(), fails);
            assert_eq!(parsed, run(&body, request_seed_exact(Scope::Chain, &NEW)));
        }
    }
}
