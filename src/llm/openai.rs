//! OpenAI Chat Completions requests (docs/hashing.md#openai-chat-completions).
//!
//! `messages[].content` is a Go `any` (string, parts array, null); tool calls are typed, and
//! their `function.arguments` string is decoded as a JSON object only when it is one: other
//! arguments silently drop the tool call, as the reference does.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{ChatRequest, ContentBlock, Message, Rules};
use crate::gojson::typed::{Bool, Float, Int, ObjectInto, RawList, Str, set_str};
use crate::gojson::{
    AnySkip, AnyValue, Document, Fields, GoSlice, Key, List, Path, StrProbe, TypedStruct, finished,
    go_number, ignore_kinds, repair_lone_surrogates_str, typed_fields,
};

static ROOT: Path<'static> = Path::Root("openaiRequest");

/// The seed of a whole request under `rules`.
pub(super) fn request_seed(rules: &Rules) -> Document<'static, RawRequest> {
    Document(
        ROOT,
        RawRequest {
            typed_tools: rules.typed_tools,
            ..RawRequest::default()
        },
    )
}

/// An `openaiRequest` as decoded; the parameters without a neutral field go to `extra`.
#[derive(Default)]
pub(super) struct RawRequest {
    typed_tools: bool,
    req: ChatRequest,
    frequency_penalty: Option<f64>,
    presence_penalty: Option<f64>,
    response_format: Option<Map<String, Value>>,
    messages: GoSlice<RawMessage>,
}

typed_fields! {
    RawRequest, "openai.openaiRequest", "an OpenAI request object", |this, p, map| {
        "model" => set_str(map, p.field("model"), &mut this.req.model)?,
        "messages" => map.next_value_seed(List::new(
            p.field("messages"),
            "[]openai.openaiMessage",
            &mut this.messages,
        ))?,
        "max_tokens" => this.req.max_tokens = map.next_value_seed(Int(p.field("max_tokens")))?,
        "temperature" => {
            this.req.temperature = map.next_value_seed(Float(p.field("temperature")))?
        },
        "top_p" => this.req.top_p = map.next_value_seed(Float(p.field("top_p")))?,
        "stop" => this.req.stop = map.next_value_seed(StopProbe)?,
        "seed" => this.req.seed = map.next_value_seed(Int(p.field("seed")))?,
        "stream" => this.req.stream = map.next_value_seed(Bool(p.field("stream")))?,
        "frequency_penalty" => {
            this.frequency_penalty =
                map.next_value_seed(Float(p.field("frequency_penalty")))?;
        },
        "presence_penalty" => {
            this.presence_penalty = map.next_value_seed(Float(p.field("presence_penalty")))?;
        },
        "response_format" => {
            map.next_value_seed(ObjectInto(p.field("response_format"), &mut this.response_format))?;
        },
        "tools" if this.typed_tools => {
            this.req.tools = map.next_value_seed(RawList(p.field("tools")))?.unwrap_or(0)
        },
    }
}

impl TypedStruct for RawRequest {
    type Output = ChatRequest;

    fn finish(self) -> ChatRequest {
        let mut req = ChatRequest {
            messages: finished(self.messages),
            ..self.req
        };
        if let Some(v) = self.frequency_penalty {
            req.extra
                .insert("frequency_penalty".into(), Value::Number(go_number(v)));
        }
        if let Some(v) = self.presence_penalty {
            req.extra
                .insert("presence_penalty".into(), Value::Number(go_number(v)));
        }
        if let Some(v) = self.response_format {
            req.extra.insert("response_format".into(), Value::Object(v));
        }
        req
    }
}

/// `stop` (any): a string is one stop sequence, an array keeps its strings.
struct StopProbe;

impl<'de> DeserializeSeed<'de> for StopProbe {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StopProbe {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("stop sequences")
    }

    fn visit_str<E>(self, v: &str) -> Result<Vec<String>, E> {
        Ok(vec![v.to_owned()])
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(StrProbe)? {
            out.extend(item);
        }
        Ok(out)
    }

    ignore_kinds!(Vec::new(); null, bool, number, object);
}

/// `content` as the reference sees it before conversion.
#[derive(Default)]
enum Content {
    /// `null` or no `content` key.
    #[default]
    Missing,
    Text(String),
    /// The blocks built from the object parts of an array.
    Parts(Vec<ContentBlock>),
    /// A number, bool or object.
    Other,
}

/// One `openaiMessage` as decoded; [`TypedStruct::finish`] converts it to a [`Message`] in
/// the reference's order: content, then the tool calls that decode, then the
/// `role:"tool"` replacement.
#[derive(Default)]
struct RawMessage {
    role: String,
    content: Content,
    tool_call_id: String,
    tool_calls: GoSlice<ToolCall>,
}

typed_fields! {
    RawMessage, "openai.openaiMessage", "a message object", |this, p, map| {
        "role" => set_str(map, p.field("role"), &mut this.role)?,
        "content" => this.content = map.next_value_seed(ContentProbe)?,
        // Typed but unused: only its kind is checked.
        "name" => {
            map.next_value_seed(Str(p.field("name")))?;
        },
        "tool_call_id" => set_str(map, p.field("tool_call_id"), &mut this.tool_call_id)?,
        "tool_calls" => {
            map.next_value_seed(List::new(
                p.field("tool_calls"),
                "[]openai.openaiToolCall",
                &mut this.tool_calls,
            ))?;
        },
    }
}

impl TypedStruct for RawMessage {
    type Output = Message;

    fn finish(self) -> Message {
        let calls = self.tool_calls.into_vec();
        convert(self.role, self.content, calls, self.tool_call_id)
    }
}

fn convert(role: String, content: Content, calls: Vec<ToolCall>, tool_call_id: String) -> Message {
    // A tool message with a call id is replaced wholesale by its result, so whatever the
    // content and tool calls would have produced is never built.
    if role == "tool" && !tool_call_id.is_empty() {
        let output = match content {
            Content::Text(s) => s,
            _ => String::new(),
        };
        let result = ContentBlock {
            kind: "tool_result".to_owned(),
            tool_result_id: tool_call_id,
            tool_output: output,
            ..ContentBlock::default()
        };
        return Message {
            role,
            content: Some(vec![result]),
        };
    }
    let mut blocks = match content {
        Content::Missing => Some(Vec::new()),
        Content::Text(s) => Some(vec![ContentBlock::text(s)]),
        // The reference appends parts to a nil slice: no object part leaves it nil.
        Content::Parts(parts) => (!parts.is_empty()).then_some(parts),
        Content::Other => None,
    };
    for call in calls {
        if let Some(input) = decode_arguments(&call.function.arguments) {
            blocks.get_or_insert_with(Vec::new).push(ContentBlock {
                kind: "tool_use".to_owned(),
                tool_use_id: call.id,
                tool_name: call.function.name,
                tool_input: input,
                ..ContentBlock::default()
            });
        }
    }
    Message {
        role,
        content: blocks,
    }
}

/// Decodes tool-call arguments as Go's `json.Unmarshal` into `map[string]any` would:
/// `Some(Some(map))` for an object, `Some(None)` for `null`, `None` (drop the call) for
/// anything else, including `""` and invalid JSON.
fn decode_arguments(arguments: &str) -> Option<Option<Map<String, Value>>> {
    let arguments = repair_lone_surrogates_str(arguments);
    let mut de = serde_json::Deserializer::from_str(&arguments);
    let value = AnyValue.deserialize(&mut de).ok()?;
    de.end().ok()?;
    match value {
        Value::Object(map) => Some(Some(map)),
        Value::Null => Some(None),
        _ => None,
    }
}

/// `content` (any).
struct ContentProbe;

impl<'de> DeserializeSeed<'de> for ContentProbe {
    type Value = Content;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Content, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ContentProbe {
    type Value = Content;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("message content")
    }

    fn visit_str<E>(self, v: &str) -> Result<Content, E> {
        Ok(Content::Text(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Content, E> {
        Ok(Content::Text(v))
    }

    fn visit_unit<E>(self) -> Result<Content, E> {
        Ok(Content::Missing)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
        let mut parts = Vec::new();
        while let Some(part) = seq.next_element_seed(PartProbe)? {
            parts.extend(part);
        }
        Ok(Content::Parts(parts))
    }

    ignore_kinds!(Content::Other; bool, number, object);
}

/// One element of a content array: an object becomes a block from its `type` and `text`;
/// an `image_url` object turns it into an image with that URL.
struct PartProbe;

impl<'de> DeserializeSeed<'de> for PartProbe {
    type Value = Option<ContentBlock>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PartProbe {
    type Value = Option<ContentBlock>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content part")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut kind, mut text, mut image) = (None, None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "type" => kind = map.next_value_seed(StrProbe)?,
                "text" => text = map.next_value_seed(StrProbe)?,
                "image_url" => image = map.next_value_seed(ImageUrlProbe)?,
                _ => {
                    map.next_value_seed(AnySkip)?;
                }
            }
        }
        let mut block = ContentBlock {
            kind: kind.unwrap_or_default(),
            text: text.unwrap_or_default(),
            ..ContentBlock::default()
        };
        if let Some(url) = image {
            block.kind = "image".to_owned();
            block.image_url = url.unwrap_or_default();
        }
        Ok(Some(block))
    }

    ignore_kinds!(None; null, bool, number, string, array);
}

/// `image_url` (object only): `Some(url)` for an object, whose `url` may be absent.
struct ImageUrlProbe;

impl<'de> DeserializeSeed<'de> for ImageUrlProbe {
    type Value = Option<Option<String>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ImageUrlProbe {
    type Value = Option<Option<String>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an image_url object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut url = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "url" => url = map.next_value_seed(StrProbe)?,
                _ => {
                    map.next_value_seed(AnySkip)?;
                }
            }
        }
        Ok(Some(url))
    }

    ignore_kinds!(None; null, bool, number, string, array);
}

/// One tool call: `id`, `function.name`, `function.arguments`.
#[derive(Default)]
struct ToolCall {
    id: String,
    function: Function,
}

typed_fields! {
    ToolCall, "openai.openaiToolCall", "a tool call object", |this, p, map| {
        "id" => set_str(map, p.field("id"), &mut this.id)?,
        // Typed but unused.
        "type" => {
            map.next_value_seed(Str(p.field("type")))?;
        },
        // A struct field: decoded in place, so a repeated key keeps what it does not name.
        "function" => {
            map.next_value_seed(Fields(p.field("function"), &mut this.function))?;
        },
    }
}

/// `function`: `{name string, arguments string}`.
#[derive(Default)]
struct Function {
    name: String,
    arguments: String,
}

typed_fields! {
    Function, "openai.openaiFunctionCall", "a function object", |this, p, map| {
        "name" => set_str(map, p.field("name"), &mut this.name)?,
        "arguments" => set_str(map, p.field("arguments"), &mut this.arguments)?,
    }
}

#[cfg(test)]
mod tests {
    //! The reference's OpenAI `ParseRequest` tests (docs/hashing.md#openai-chat-completions)
    //! and the
    //! observed outputs of docs/hashing.md#observed-parse-outputs.

    use serde_json::json;

    use super::*;
    use crate::llm::ParseError;
    use crate::llm::parse::run;

    fn parse_request(raw: &str) -> Result<ChatRequest, ParseError> {
        run(raw, request_seed(&Rules::TAPES_F237B6E))
    }

    fn parse(v: Value) -> ChatRequest {
        parse_request(&v.to_string()).unwrap()
    }

    fn content(req: &ChatRequest, i: usize) -> Option<&[ContentBlock]> {
        req.messages[i].content.as_deref()
    }

    #[test]
    fn a_repeated_function_key_keeps_the_fields_it_does_not_name() {
        // Go decodes a struct field in place: the second `function` only sets `arguments`.
        let req = parse_request(
            r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c1",
                "function":{"name":"lookup","arguments":"[]"},
                "function":{"arguments":"{\"q\":1}"}}]}]}"#,
        )
        .unwrap();
        let call = &content(&req, 0).unwrap()[0];
        assert_eq!(call.tool_name, "lookup");
        assert_eq!(
            call.tool_input.as_ref().and_then(|m| m["q"].as_f64()),
            Some(1.0)
        );
    }

    #[test]
    fn key_case_folds_to_struct_fields() {
        let req = parse(json!({"Messages": [{"Role": "assistant", "TOOL_CALLS": [
            {"ID": "c", "Function": {"NAME": "f", "Arguments": "{}"}}]}], "STREAM": true}));
        assert_eq!(req.stream, Some(true));
        let call = &content(&req, 0).unwrap()[0];
        assert_eq!((&*call.tool_use_id, &*call.tool_name), ("c", "f"));
        // Content parts are Go maps, probed by exact key.
        let req = parse(json!({"messages": [{"role": "user", "content": [{"Type": "text"}]}]}));
        assert_eq!(content(&req, 0).unwrap()[0].kind, "");
    }

    #[test]
    fn repeated_keys_decode_into_the_earlier_values() {
        let req = parse_request(
            r#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"f"}}]}],
                "messages":[{"tool_calls":[{"function":{"arguments":"{}"}}]}],
                "response_format":{"type":"json_schema","a":1},"response_format":{"type":"json_object"}}"#,
        )
        .unwrap();
        let call = &content(&req, 0).unwrap()[0];
        assert_eq!(req.messages[0].role, "assistant");
        assert_eq!((&*call.tool_use_id, &*call.tool_name), ("c1", "f"));
        assert_eq!(
            req.extra["response_format"],
            json!({"type": "json_object", "a": 1})
        );
    }

    #[test]
    fn system_and_user_are_ordinary_messages() {
        let req = parse(json!({"model": "gpt-4", "messages": [
            {"role": "system", "content": "be brief"}, {"role": "user", "content": "Hi"}]}));
        assert_eq!(req.model, "gpt-4");
        assert_eq!(req.messages[0].role, "system");
        assert_eq!(content(&req, 0).unwrap(), [ContentBlock::text("be brief")]);
        assert_eq!(req.system, "");
    }

    #[test]
    fn parameters() {
        let req = parse(
            json!({"max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "seed": 42,
            "stream": true, "stop": "END"}),
        );
        assert_eq!(req.max_tokens, Some(100));
        assert_eq!(req.temperature, Some(0.5));
        assert_eq!(req.top_p, Some(0.9));
        assert_eq!(req.seed, Some(42));
        assert_eq!(req.stream, Some(true));
        assert_eq!(req.stop, ["END"]);
        assert_eq!(parse(json!({"stop": ["a", 1, "b"]})).stop, ["a", "b"]);
        assert!(parse(json!({"stop": 5})).stop.is_empty());
    }

    #[test]
    fn penalties_and_response_format_go_to_extra() {
        let req = parse(json!({"frequency_penalty": 0.5, "presence_penalty": 0.25,
            "response_format": {"type": "json_object"}}));
        assert_eq!(req.extra["frequency_penalty"], 0.5);
        assert_eq!(req.extra["presence_penalty"], 0.25);
        assert_eq!(req.extra["response_format"], json!({"type": "json_object"}));
        assert!(parse(json!({})).extra.is_empty());
    }

    #[test]
    fn image_url_parts() {
        let req = parse(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
            {"type": "image_url", "image_url": "https://plain/string.png"},
            {"type": "input_audio", "input_audio": {"data": "x"}},
            7]}]}));
        let blocks = content(&req, 0).unwrap();
        assert_eq!(blocks.len(), 4);
        assert_eq!(blocks[1].kind, "image");
        assert_eq!(blocks[1].image_url, "data:image/png;base64,AAAA");
        assert_eq!(blocks[2].kind, "image_url");
        assert_eq!(blocks[2].image_url, "");
        assert_eq!(blocks[3].kind, "input_audio");
    }

    #[test]
    fn tool_calls_with_null_content() {
        let req = parse(
            json!({"messages": [{"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"location\":\"NYC\"}"}}]}]}),
        );
        let blocks = content(&req, 0).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].kind, "tool_use");
        assert_eq!(blocks[0].tool_use_id, "call_1");
        assert_eq!(blocks[0].tool_name, "get_weather");
        assert_eq!(blocks[0].tool_input.as_ref().unwrap()["location"], "NYC");
    }

    #[test]
    fn undecodable_arguments_drop_the_call() {
        let call = |id: &str, args: &str| {
            json!({"id": id, "type": "function",
            "function": {"name": "f", "arguments": args}})
        };
        let req = parse(
            json!({"messages": [{"role": "assistant", "content": "pre", "tool_calls": [
            call("c1", ""), call("c2", "null"), call("c3", "[1]"), call("c4", "{\"a\":1}"),
            call("c5", "{\"a\":1} x"), call("c6", "{not json")]}]}),
        );
        let blocks = content(&req, 0).unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0], ContentBlock::text("pre"));
        assert_eq!(blocks[1].tool_use_id, "c2");
        assert_eq!(blocks[1].tool_input, None);
        assert_eq!(blocks[2].tool_use_id, "c4");
        assert_eq!(blocks[2].tool_input.as_ref().unwrap()["a"], 1);
    }

    #[test]
    fn arguments_tolerate_lone_surrogates() {
        let req = parse(json!({"messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "function": {"name": "f", "arguments": "{\"s\":\"\\ud800x\"}"}}]}]}));
        assert_eq!(
            content(&req, 0).unwrap()[0].tool_input.as_ref().unwrap()["s"],
            "\u{fffd}x"
        );
    }

    #[test]
    fn tool_message_becomes_a_tool_result() {
        let req = parse(json!({"messages": [
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "x"}]},
            {"role": "tool", "content": "no id"}]}));
        assert_eq!(
            content(&req, 0).unwrap(),
            [ContentBlock {
                kind: "tool_result".into(),
                tool_result_id: "call_1".into(),
                tool_output: "sunny".into(),
                ..ContentBlock::default()
            }]
        );
        assert_eq!(content(&req, 1).unwrap()[0].tool_output, "");
        assert_eq!(content(&req, 2).unwrap(), [ContentBlock::text("no id")]);
    }

    #[test]
    fn empty_and_null_content_differ() {
        let req = parse(json!({"messages": [
            {"role": "user"}, {"role": "user", "content": null}, {"role": "user", "content": ""},
            {"role": "user", "content": 7}, {"role": "user", "content": []}, {"role": "user", "content": {}}]}));
        assert_eq!(content(&req, 0), Some(&[][..]));
        assert_eq!(content(&req, 1), Some(&[][..]));
        assert_eq!(
            content(&req, 2).unwrap(),
            [ContentBlock {
                kind: "text".into(),
                ..ContentBlock::default()
            }]
        );
        assert_eq!(content(&req, 3), None);
        assert_eq!(content(&req, 4), None);
        assert_eq!(content(&req, 5), None);
    }

    #[test]
    fn a_number_beyond_float64_in_an_any_value_fails_the_request() {
        for body in [
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"t","x":1e400}]}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u","w":1e400}}]}]}"#,
            r#"{"stop":["a",1e400]}"#,
        ] {
            assert!(parse_request(body).is_err(), "{body}");
        }
        assert!(
            parse_request(r#"{"tools":[1e400],"messages":[{"role":"user","audio":1e400}]}"#)
                .is_ok()
        );
        // Arguments that do not decode drop the call, as a failed `json.Unmarshal` does.
        let req = parse(json!({"messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "function": {"name": "f", "arguments": "{\"a\":1e400}"}}]}]}));
        assert_eq!(content(&req, 0), Some(&[][..]));
    }

    #[test]
    fn type_errors() {
        let err = |v: Value| parse_request(&v.to_string()).unwrap_err().to_string();
        assert_eq!(
            err(json!({"messages": [{"role": "assistant", "tool_calls": [
                {"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}]}]})),
            "json: cannot unmarshal object into Go struct field openaiRequest.messages.0.tool_calls.0.function.arguments of type string"
        );
        assert_eq!(
            err(json!({"response_format": "json"})),
            "json: cannot unmarshal string into Go struct field openaiRequest.response_format of type map[string]interface {}"
        );
        assert_eq!(
            err(json!({"model": 5, "messages": []})),
            "json: cannot unmarshal number into Go struct field openaiRequest.model of type string"
        );
        assert_eq!(
            err(json!([1, 2])),
            "json: cannot unmarshal array into Go value of type openai.openaiRequest"
        );
        assert!(
            err(json!({"messages": [{"role": "user", "name": 5}]})).contains("messages.0.name")
        );
        assert!(err(json!({"seed": 1.5})).contains("number 1.5"));
        assert!(parse_request("{invalid").is_err());
        assert!(parse_request("null").unwrap().messages.is_empty());
    }

    #[test]
    fn tools_are_typed_and_counted_under_the_later_rules() {
        let new = |v: Value| run(&v.to_string(), request_seed(&Rules::TAPES_6EA4DFC));
        let unbuilt = run(
            r#"{"tools":[{"type":"function"},1e400]}"#,
            request_seed(&Rules::TAPES_6EA4DFC),
        );
        assert_eq!(unbuilt.unwrap().tools, 2);
        assert!(
            new(json!({"tools": {"a": 1}}))
                .unwrap_err()
                .to_string()
                .contains("openaiRequest.tools of type []json.RawMessage")
        );
        assert!(parse(json!({"tools": {"a": 1}})).tools == 0);
    }
}
