//! Ollama `/api/chat` requests (hashing.md §3.3).
//!
//! Everything here is typed: `content` must be a string and tool-call `arguments` an object,
//! otherwise the request fails as it does in the reference.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{ChatRequest, ContentBlock, Message, ParseError, request};
use crate::gojson::typed::{Bool, Float, Int, Object, Str, StrList};
use crate::gojson::{Element, Key, List, Path, go_number, reject_kinds, reject_top_level};

const REQUEST_TYPE: &str = "ollama.ollamaRequest";
static ROOT: Path<'static> = Path::Root("ollamaRequest");

/// Parses an Ollama chat request body.
pub fn parse_request(raw: &str) -> Result<ChatRequest, ParseError> {
    request::run(raw, RequestSeed)
}

pub(super) struct RequestSeed;

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
        f.write_str("an Ollama request object")
    }

    fn visit_unit<E>(self) -> Result<ChatRequest, E> {
        Ok(ChatRequest::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChatRequest, A::Error> {
        let mut req = ChatRequest::default();
        let mut format = String::new();
        let mut keep_alive = String::new();
        let mut options = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "model" => {
                    if let Some(v) = map.next_value_seed(Str(ROOT.field("model")))? {
                        req.model = v;
                    }
                }
                "messages" => {
                    req.messages = map.next_value_seed(messages(ROOT.field("messages")))?
                }
                "stream" => req.stream = map.next_value_seed(Bool(ROOT.field("stream")))?,
                "format" => {
                    if let Some(v) = map.next_value_seed(Str(ROOT.field("format")))? {
                        format = v;
                    }
                }
                "keep_alive" => {
                    if let Some(v) = map.next_value_seed(Str(ROOT.field("keep_alive")))? {
                        keep_alive = v;
                    }
                }
                "options" => options = map.next_value_seed(OptionsSeed(ROOT.field("options")))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(o) = options {
            req.temperature = o.temperature;
            req.top_p = o.top_p;
            req.top_k = o.top_k;
            req.seed = o.seed;
            req.max_tokens = o.num_predict;
            req.stop = o.stop;
            if let Some(v) = o.num_ctx {
                req.extra.insert("num_ctx".into(), Value::from(v));
            }
            if let Some(v) = o.repeat_penalty {
                req.extra
                    .insert("repeat_penalty".into(), Value::Number(go_number(v)));
            }
            if let Some(v) = o.repeat_last_n {
                req.extra.insert("repeat_last_n".into(), Value::from(v));
            }
        }
        if !format.is_empty() {
            req.extra.insert("format".into(), Value::String(format));
        }
        if !keep_alive.is_empty() {
            req.extra
                .insert("keep_alive".into(), Value::String(keep_alive));
        }
        Ok(req)
    }

    reject_top_level!(REQUEST_TYPE; bool, number, string, array);
}

/// `options` (`*ollamaOptions`).
#[derive(Default)]
struct Options {
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<i64>,
    seed: Option<i64>,
    num_predict: Option<i64>,
    num_ctx: Option<i64>,
    repeat_penalty: Option<f64>,
    repeat_last_n: Option<i64>,
    stop: Vec<String>,
}

struct OptionsSeed<'p>(Path<'p>);

impl<'de> DeserializeSeed<'de> for OptionsSeed<'_> {
    type Value = Option<Options>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(OptionsVisitor {
            path: self.0,
            target: "ollama.ollamaOptions",
        })
    }
}

struct OptionsVisitor<'p> {
    path: Path<'p>,
    target: &'static str,
}

impl<'de> Visitor<'de> for OptionsVisitor<'_> {
    type Value = Option<Options>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an options object")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let p = &self.path;
        let mut o = Options::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "temperature" => {
                    o.temperature = map.next_value_seed(Float(p.field("temperature")))?
                }
                "top_p" => o.top_p = map.next_value_seed(Float(p.field("top_p")))?,
                "top_k" => o.top_k = map.next_value_seed(Int(p.field("top_k")))?,
                "seed" => o.seed = map.next_value_seed(Int(p.field("seed")))?,
                "num_predict" => {
                    o.num_predict = map.next_value_seed(Int(p.field("num_predict")))?
                }
                "num_ctx" => o.num_ctx = map.next_value_seed(Int(p.field("num_ctx")))?,
                "repeat_penalty" => {
                    o.repeat_penalty = map.next_value_seed(Float(p.field("repeat_penalty")))?;
                }
                "repeat_last_n" => {
                    o.repeat_last_n = map.next_value_seed(Int(p.field("repeat_last_n")))?;
                }
                "stop" => {
                    o.stop = map.next_value_seed(StrList(p.field("stop")))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(o))
    }

    reject_kinds!(bool, number, string, array);
}

/// `messages`: `[]ollamaMessage`.
fn messages(path: Path<'_>) -> List<'_, MessageElement> {
    List {
        path,
        target: "[]ollama.ollamaMessage",
        element: MessageElement,
    }
}

/// One `ollamaMessage`: a text block when `content` is non-empty, then one image block per
/// image, then one tool_use block per tool call. The content is never nil.
struct MessageElement;

impl<'de> Element<'de> for MessageElement {
    type Value = Message;

    fn decode<D: Deserializer<'de>>(&self, path: Path<'_>, d: D) -> Result<Message, D::Error> {
        d.deserialize_any(MessageVisitor {
            path,
            target: "ollama.ollamaMessage",
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
        Ok(Message {
            role: String::new(),
            content: Some(Vec::new()),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let p = &self.path;
        let mut role = String::new();
        let mut text = String::new();
        let mut images = Vec::new();
        let mut calls = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "role" => {
                    if let Some(v) = map.next_value_seed(Str(p.field("role")))? {
                        role = v;
                    }
                }
                "content" => {
                    if let Some(v) = map.next_value_seed(Str(p.field("content")))? {
                        text = v;
                    }
                }
                "images" => {
                    images = map.next_value_seed(StrList(p.field("images")))?;
                }
                "tool_calls" => calls = map.next_value_seed(tool_calls(p.field("tool_calls")))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut content =
            Vec::with_capacity(usize::from(!text.is_empty()) + images.len() + calls.len());
        if !text.is_empty() {
            content.push(ContentBlock::text(text));
        }
        content.extend(images.into_iter().map(|image| ContentBlock {
            kind: "image".to_owned(),
            image_base64: image,
            ..ContentBlock::default()
        }));
        content.extend(calls.into_iter().map(|call| ContentBlock {
            kind: "tool_use".to_owned(),
            tool_use_id: call.id,
            tool_name: call.name,
            tool_input: call.arguments,
            ..ContentBlock::default()
        }));
        Ok(Message {
            role,
            content: Some(content),
        })
    }

    reject_kinds!(bool, number, string, array);
}

#[derive(Default)]
struct ToolCall {
    id: String,
    name: String,
    arguments: Option<Map<String, Value>>,
}

/// `tool_calls`: `[{id string, function: {index int, name string, arguments object}}]`.
fn tool_calls(path: Path<'_>) -> List<'_, ToolCallElement> {
    List {
        path,
        target: "[]ollama.ollamaToolCall",
        element: ToolCallElement,
    }
}

struct ToolCallElement;

impl<'de> Element<'de> for ToolCallElement {
    type Value = ToolCall;

    fn decode<D: Deserializer<'de>>(&self, path: Path<'_>, d: D) -> Result<ToolCall, D::Error> {
        d.deserialize_any(ToolCallVisitor {
            path,
            target: "ollama.ollamaToolCall",
        })
    }
}

struct ToolCallVisitor<'p> {
    path: Path<'p>,
    target: &'static str,
}

impl<'de> Visitor<'de> for ToolCallVisitor<'_> {
    type Value = ToolCall;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tool call object")
    }

    fn visit_unit<E>(self) -> Result<ToolCall, E> {
        Ok(ToolCall::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ToolCall, A::Error> {
        let mut call = ToolCall::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                "id" => {
                    if let Some(v) = map.next_value_seed(Str(self.path.field("id")))? {
                        call.id = v;
                    }
                }
                "function" => {
                    map.next_value_seed(FunctionSeed {
                        path: self.path.field("function"),
                        call: &mut call,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(call)
    }

    reject_kinds!(bool, number, string, array);
}

/// `function`: decoded into the tool call in place (a Go struct field).
struct FunctionSeed<'p, 'c> {
    path: Path<'p>,
    call: &'c mut ToolCall,
}

impl<'de> DeserializeSeed<'de> for FunctionSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(FunctionVisitor {
            path: self.path,
            target: "ollama.ollamaFunction",
            call: self.call,
        })
    }
}

struct FunctionVisitor<'p, 'c> {
    path: Path<'p>,
    target: &'static str,
    call: &'c mut ToolCall,
}

impl<'de> Visitor<'de> for FunctionVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a function object")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key>()? {
            match key.as_str() {
                // Typed but unused.
                "index" => {
                    map.next_value_seed(Int(self.path.field("index")))?;
                }
                "name" => {
                    if let Some(v) = map.next_value_seed(Str(self.path.field("name")))? {
                        self.call.name = v;
                    }
                }
                "arguments" => {
                    self.call.arguments =
                        map.next_value_seed(Object(self.path.field("arguments")))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    reject_kinds!(bool, number, string, array);
}

#[cfg(test)]
mod tests {
    //! The reference's Ollama `ParseRequest` tests (reference-tests.md §8.11) and the
    //! observed outputs of hashing.md §3.4.

    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> ChatRequest {
        parse_request(&v.to_string()).unwrap()
    }

    #[test]
    fn system_and_user() {
        let req = parse(json!({"model": "llama3", "messages": [
            {"role": "system", "content": "be brief"}, {"role": "user", "content": "Hi"}]}));
        assert_eq!(req.model, "llama3");
        assert_eq!(req.messages[0].role, "system");
        assert_eq!(
            req.messages[1].content.as_deref().unwrap(),
            [ContentBlock::text("Hi")]
        );
    }

    #[test]
    fn options_map_to_common_fields_and_extra() {
        let req = parse(
            json!({"options": {"temperature": 0.8, "top_p": 0.9, "top_k": 40,
            "num_predict": 100, "seed": 7, "stop": ["x"], "num_ctx": 4096, "repeat_penalty": 1.1,
            "repeat_last_n": 64}, "format": "json", "keep_alive": "5m"}),
        );
        assert_eq!(req.temperature, Some(0.8));
        assert_eq!(req.top_p, Some(0.9));
        assert_eq!(req.top_k, Some(40));
        assert_eq!(req.max_tokens, Some(100));
        assert_eq!(req.seed, Some(7));
        assert_eq!(req.stop, ["x"]);
        assert_eq!(req.extra["num_ctx"], 4096);
        assert_eq!(req.extra["repeat_penalty"], 1.1);
        assert_eq!(req.extra["repeat_last_n"], 64);
        assert_eq!(req.extra["format"], "json");
        assert_eq!(req.extra["keep_alive"], "5m");
    }

    #[test]
    fn stream_flag() {
        assert_eq!(parse(json!({"stream": true})).stream, Some(true));
        assert_eq!(parse(json!({"stream": false})).stream, Some(false));
    }

    #[test]
    fn images_follow_the_text() {
        let req = parse(
            json!({"messages": [{"role": "user", "content": "what is this?",
            "images": ["AAA", "BBB"]}]}),
        );
        let blocks = req.messages[0].content.as_deref().unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0], ContentBlock::text("what is this?"));
        assert_eq!(blocks[1].kind, "image");
        assert_eq!(blocks[1].image_base64, "AAA");
        assert_eq!(blocks[2].image_base64, "BBB");
    }

    #[test]
    fn tool_calls_become_tool_use_blocks() {
        let req = parse(
            json!({"messages": [{"role": "assistant", "content": "", "tool_calls": [
            {"function": {"index": 0, "name": "get_weather", "arguments": {"city": "Tokyo"}}},
            {"id": "t2", "function": {"name": "noop", "arguments": null}}]}]}),
        );
        let blocks = req.messages[0].content.as_deref().unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].kind, "tool_use");
        assert_eq!(blocks[0].tool_name, "get_weather");
        assert_eq!(blocks[0].tool_input.as_ref().unwrap()["city"], "Tokyo");
        assert_eq!(blocks[1].tool_use_id, "t2");
        assert_eq!(blocks[1].tool_input, None);
    }

    #[test]
    fn empty_content_is_an_empty_array_and_tool_role_stays_text() {
        let req = parse(json!({"messages": [{"role": "assistant", "content": ""},
            {"role": "tool", "content": "sunny"}, null]}));
        assert_eq!(req.messages[0].content, Some(vec![]));
        assert_eq!(
            req.messages[1].content.as_deref().unwrap(),
            [ContentBlock::text("sunny")]
        );
        assert_eq!(req.messages[2].content, Some(vec![]));
    }

    #[test]
    fn type_errors() {
        let err = |v: Value| parse_request(&v.to_string()).unwrap_err().to_string();
        assert_eq!(
            err(json!({"model": "m", "messages": [{"role": "user", "content": ["x"]}]})),
            "json: cannot unmarshal array into Go struct field ollamaRequest.messages.0.content of type string"
        );
        assert!(err(json!({"format": {"type": "object"}})).contains("ollamaRequest.format"));
        assert!(err(json!({"keep_alive": 300})).contains("ollamaRequest.keep_alive"));
        assert!(
            err(json!({"options": {"num_ctx": "big"}})).contains("ollamaRequest.options.num_ctx")
        );
        assert!(
            err(json!({"messages": [{"tool_calls": [{"function": {"arguments": "{}"}}]}]}))
                .contains("tool_calls.0.function.arguments")
        );
        assert!(parse_request("{invalid").is_err());
    }
}
