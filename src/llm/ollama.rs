//! Ollama `/api/chat` requests (docs/hashing.md#ollama).
//!
//! Everything here is typed: `content` must be a string and tool-call `arguments` an object,
//! otherwise the request fails as it does in the reference.

use serde_json::{Map, Value};

use super::{ChatRequest, ContentBlock, Message, Rules};
use crate::gojson::typed::{Bool, Float, Int, ObjectInto, RawList, set_str};
use crate::gojson::{
    Document, Fields, GoSlice, List, Path, TypedStruct, finished, go_number, typed_fields,
};

static ROOT: Path<'static> = Path::Root("ollamaRequest");

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

/// An `ollamaRequest` as decoded; `finish` maps the options to neutral fields and keeps
/// the rest in `extra`.
#[derive(Default)]
pub(super) struct RawRequest {
    typed_tools: bool,
    req: ChatRequest,
    format: String,
    keep_alive: String,
    options: Option<Options>,
    messages: GoSlice<RawMessage>,
}

typed_fields! {
    RawRequest, "ollama.ollamaRequest", "an Ollama request object", |this, p, map| {
        "model" => set_str(map, p.field("model"), &mut this.req.model)?,
        "messages" => map.next_value_seed(List::new(
            p.field("messages"),
            "[]ollama.ollamaMessage",
            &mut this.messages,
        ))?,
        "stream" => this.req.stream = map.next_value_seed(Bool(p.field("stream")))?,
        "format" => set_str(map, p.field("format"), &mut this.format)?,
        "keep_alive" => set_str(map, p.field("keep_alive"), &mut this.keep_alive)?,
        // A pointer field: `null` clears it; an object is decoded into the struct it
        // already points to (a repeated key merges), or into a new one.
        "options" => {
            let mut o = this.options.take().unwrap_or_default();
            let object = map.next_value_seed(Fields(p.field("options"), &mut o))?;
            this.options = object.then_some(o);
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
        if let Some(o) = self.options {
            req.temperature = o.temperature;
            req.top_p = o.top_p;
            req.top_k = o.top_k;
            req.seed = o.seed;
            req.max_tokens = o.num_predict;
            req.stop = o.stop.into_vec();
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
        if !self.format.is_empty() {
            req.extra
                .insert("format".into(), Value::String(self.format));
        }
        if !self.keep_alive.is_empty() {
            req.extra
                .insert("keep_alive".into(), Value::String(self.keep_alive));
        }
        req
    }
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
    stop: GoSlice<String>,
}

typed_fields! {
    Options, "ollama.ollamaOptions", "an options object", |this, p, map| {
        "temperature" => {
            this.temperature = map.next_value_seed(Float(p.field("temperature")))?
        },
        "top_p" => this.top_p = map.next_value_seed(Float(p.field("top_p")))?,
        "top_k" => this.top_k = map.next_value_seed(Int(p.field("top_k")))?,
        "seed" => this.seed = map.next_value_seed(Int(p.field("seed")))?,
        "num_predict" => this.num_predict = map.next_value_seed(Int(p.field("num_predict")))?,
        "num_ctx" => this.num_ctx = map.next_value_seed(Int(p.field("num_ctx")))?,
        "repeat_penalty" => {
            this.repeat_penalty = map.next_value_seed(Float(p.field("repeat_penalty")))?;
        },
        "repeat_last_n" => {
            this.repeat_last_n = map.next_value_seed(Int(p.field("repeat_last_n")))?;
        },
        "stop" => map.next_value_seed(List::new(p.field("stop"), "[]string", &mut this.stop))?,
    }
}

/// One `ollamaMessage` as decoded.
#[derive(Default)]
struct RawMessage {
    role: String,
    content: String,
    images: GoSlice<String>,
    tool_calls: GoSlice<ToolCall>,
}

typed_fields! {
    RawMessage, "ollama.ollamaMessage", "a message object", |this, p, map| {
        "role" => set_str(map, p.field("role"), &mut this.role)?,
        "content" => set_str(map, p.field("content"), &mut this.content)?,
        "images" => {
            map.next_value_seed(List::new(p.field("images"), "[]string", &mut this.images))?;
        },
        "tool_calls" => {
            map.next_value_seed(List::new(
                p.field("tool_calls"),
                "[]ollama.ollamaToolCall",
                &mut this.tool_calls,
            ))?;
        },
    }
}

impl TypedStruct for RawMessage {
    type Output = Message;

    /// A text block when `content` is non-empty, then one image block per image, then one
    /// tool_use block per tool call. The content is never nil.
    fn finish(self) -> Message {
        let RawMessage {
            role,
            content: text,
            images,
            tool_calls: calls,
        } = self;
        let (images, calls) = (images.into_vec(), calls.into_vec());
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
            tool_name: call.function.name,
            tool_input: call.function.arguments,
            ..ContentBlock::default()
        }));
        Message {
            role,
            content: Some(content),
        }
    }
}

/// One of `tool_calls`: `{id string, function: {index int, name string, arguments object}}`.
#[derive(Default)]
struct ToolCall {
    id: String,
    function: Function,
}

typed_fields! {
    ToolCall, "ollama.ollamaToolCall", "a tool call object", |this, p, map| {
        "id" => set_str(map, p.field("id"), &mut this.id)?,
        // A struct field: decoded in place, so a repeated key keeps what it does not name.
        "function" => {
            map.next_value_seed(Fields(p.field("function"), &mut this.function))?;
        },
    }
}

#[derive(Default)]
struct Function {
    name: String,
    arguments: Option<Map<String, Value>>,
}

typed_fields! {
    Function, "ollama.ollamaFunction", "a function object", |this, p, map| {
        // Typed but unused.
        "index" => {
            map.next_value_seed(Int(p.field("index")))?;
        },
        "name" => set_str(map, p.field("name"), &mut this.name)?,
        "arguments" => map.next_value_seed(ObjectInto(p.field("arguments"), &mut this.arguments))?,
    }
}

#[cfg(test)]
mod tests {
    //! The reference's Ollama `ParseRequest` tests (docs/hashing.md#ollama) and the
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

    #[test]
    fn repeated_options_merge_and_null_clears_them() {
        let req =
            parse_request(r#"{"options":{"temperature":0.5},"options":{"top_k":3}}"#).unwrap();
        assert_eq!((req.temperature, req.top_k), (Some(0.5), Some(3)));
        let req = parse_request(r#"{"options":{"temperature":0.5},"options":null}"#).unwrap();
        assert_eq!(req.temperature, None);
    }

    #[test]
    fn repeated_keys_decode_into_the_earlier_values() {
        let req = parse_request(
            r#"{"messages":[{"role":"user","content":"a","images":["I","J"]}],
                "messages":[{"images":["K"],"tool_calls":[{"function":{"arguments":{"x":1}}}]}],
                "messages":[{"tool_calls":[{"function":{"name":"f","arguments":{"y":2}}}]}]}"#,
        )
        .unwrap();
        let blocks = req.messages[0].content.as_deref().unwrap();
        assert_eq!(req.messages[0].role, "user");
        assert_eq!(blocks[0], ContentBlock::text("a"));
        assert_eq!(blocks[1].image_base64, "K");
        assert_eq!(blocks[2].tool_name, "f");
        assert_eq!(
            blocks[2].tool_input,
            Some(json!({"x": 1, "y": 2}).as_object().unwrap().clone())
        );
    }

    #[test]
    fn a_request_that_is_not_an_object_is_a_top_level_type_error() {
        assert_eq!(
            parse_request("[1]").unwrap_err().to_string(),
            "json: cannot unmarshal array into Go value of type ollama.ollamaRequest"
        );
        assert_eq!(parse_request("null").unwrap(), ChatRequest::default());
    }

    #[test]
    fn a_repeated_function_key_keeps_the_fields_it_does_not_name() {
        let req = parse_request(
            r#"{"messages":[{"role":"assistant","tool_calls":[{
                "function":{"name":"lookup","arguments":{"q":1}},
                "function":{"index":2}}]}]}"#,
        )
        .unwrap();
        let call = &req.messages[0].content.as_deref().unwrap()[0];
        assert_eq!(call.tool_name, "lookup");
        assert!(
            call.tool_input
                .as_ref()
                .is_some_and(|m| m.contains_key("q"))
        );
    }

    #[test]
    fn key_case_folds_to_struct_fields() {
        let req = parse(json!({"Options": {"Temperature": 0.5, "TOP_\u{212A}": 3},
            "MESSAGES": [{"Role": "user", "Content": "hi", "Images": ["A"]}]}));
        assert_eq!((req.temperature, req.top_k), (Some(0.5), Some(3)));
        let blocks = req.messages[0].content.as_deref().unwrap();
        assert_eq!(blocks[0], ContentBlock::text("hi"));
        assert_eq!(blocks[1].image_base64, "A");
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

    #[test]
    fn tools_are_typed_and_counted_under_the_later_rules() {
        let new = |v: Value| run(&v.to_string(), request_seed(&Rules::TAPES_6EA4DFC));
        assert_eq!(new(json!({"tools": [{}]})).unwrap().tools, 1);
        assert!(new(json!({"tools": 3})).is_err());
        assert!(parse_request(r#"{"tools":3}"#).is_ok());
    }
}
