//! OpenAI Responses requests (docs/hashing.md#openai-responses-requests): `input` as a string
//! or a list of items instead of Chat Completions' `messages`, and the items a reducer kept
//! raw in a response.
//!
//! The request's members are typed as Go's decoder types them (a mismatch is a 422); `input`
//! and each of its items are Go `json.RawMessage` values, read afterwards: an item that does
//! not decode is skipped, an item of a type no rule names is kept whole as a block's raw
//! `content`.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{ChatRequest, ContentBlock, Message, RawJson};
use crate::gojson::typed::{Bool, Float, Int, ObjectCheck, RawList, Str, set_str};
use crate::gojson::{
    AnyValue, Document, GoSlice, Key, List, Path, TypedStruct, decode_whole, finished,
    ignore_kinds, match_field, message_of, repair_lone_surrogates_str, typed_fields,
};

static ROOT: Path<'static> = Path::Root("responsesRequest");
static ITEM: Path<'static> = Path::Root("responsesItem");
static PARTS: Path<'static> = Path::Root("[]responsesContentPart");

/// Whether an OpenAI request is a Responses request: an object whose `input` is present and
/// not `null`, and whose `messages` is absent or `null` (keys matched as Go matches struct
/// fields, the last duplicate winning). Anything else, text that is not an object included,
/// is Chat Completions.
pub fn is_responses_request(raw: &str) -> bool {
    decode_whole(raw, Probe).is_ok_and(|(input, messages)| input && !messages)
}

/// `(input present, messages present)`, where `null` is not present.
struct Probe;

impl<'de> DeserializeSeed<'de> for Probe {
    type Value = (bool, bool);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe {
    type Value = (bool, bool);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut input, mut messages) = (false, false);
        let present = |raw: &RawValue| raw.get() != "null";
        while let Some(key) = map.next_key::<Key>()? {
            match_field!(key.as_str(), {
                "input" => input = present(map.next_value()?),
                "messages" => messages = present(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                },
            });
        }
        Ok((input, messages))
    }

    ignore_kinds!((false, false); null, bool, number, string, array);
}

/// The seed of a whole Responses request. Its errors are the typed members' and, after
/// them, an `input` that is neither a string nor an array.
pub(super) fn request_seed() -> RequestSeed {
    RequestSeed
}

pub(super) struct RequestSeed;

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = ChatRequest;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ChatRequest, D::Error> {
        Document(ROOT, RawRequest::default())
            .deserialize(d)?
            .map_err(de::Error::custom)
    }
}

/// A `responsesRequest` as decoded.
#[derive(Default)]
pub(super) struct RawRequest {
    req: ChatRequest,
    instructions: String,
    /// The messages of the last `input`, or Go's text for why it gives none.
    input: Option<Result<Vec<Message>, String>>,
}

typed_fields! {
    RawRequest, "openai.responsesRequest", "a Responses request object", |this, p, map| {
        "model" => set_str(map, p.field("model"), &mut this.req.model)?,
        "input" => this.input = Some(input_messages(map.next_value()?)),
        "instructions" => set_str(map, p.field("instructions"), &mut this.instructions)?,
        "max_output_tokens" => {
            this.req.max_tokens = map.next_value_seed(Int(p.field("max_output_tokens")))?
        },
        "temperature" => {
            this.req.temperature = map.next_value_seed(Float(p.field("temperature")))?
        },
        "top_p" => this.req.top_p = map.next_value_seed(Float(p.field("top_p")))?,
        "stream" => this.req.stream = map.next_value_seed(Bool(p.field("stream")))?,
        "tools" => {
            this.req.tools = map.next_value_seed(RawList(p.field("tools")))?.unwrap_or(0)
        },
        "tool_choice" => this.req.tool_choice_enabled = routes_tools(map.next_value()?),
        // Typed, not kept.
        "reasoning" => map.next_value_seed(ObjectCheck(p.field("reasoning")))?,
        "previous_response_id" => {
            map.next_value_seed(Str(p.field("previous_response_id")))?;
        },
    }
}

impl TypedStruct for RawRequest {
    type Output = Result<ChatRequest, String>;

    fn finish(self) -> Self::Output {
        let messages = self.input.transpose()?.unwrap_or_default();
        Ok(ChatRequest {
            messages,
            system: self.instructions.into(),
            responses: true,
            ..self.req
        })
    }
}

/// Whether `tool_choice` routes to tools: a string other than `""` and `"none"`, or an
/// object with members.
fn routes_tools(raw: &RawValue) -> bool {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::String(choice)) => !choice.is_empty() && choice != "none",
        Ok(Value::Object(members)) => !members.is_empty(),
        _ => false,
    }
}

/// `input`: a string (or `null`) is one user text message; an array gives a message per
/// item that maps to one; anything else is Go's error, reported once the request decoded.
fn input_messages(raw: &RawValue) -> Result<Vec<Message>, String> {
    if let Ok(text) = serde_json::from_str::<Option<String>>(raw.get()) {
        return Ok(vec![Message {
            role: "user".to_owned(),
            content: Some(vec![ContentBlock::text(text.unwrap_or_default())]),
        }]);
    }
    let items = decode_whole(raw.get(), RawItems).map_err(|e| {
        format!(
            "responses input is neither string nor item array: {}",
            message_of(&e)
        )
    })?;
    Ok(items.into_iter().filter_map(item_message).collect())
}

/// `[]json.RawMessage`: the items of an array, each kept as sent.
struct RawItems;

impl<'de> DeserializeSeed<'de> for RawItems {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RawItems {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an item array")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(items)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(items_mismatch("bool"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(items_mismatch("number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(items_mismatch("number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(items_mismatch("number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(items_mismatch("string"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(items_mismatch("object"))
    }
}

fn items_mismatch<E: de::Error>(found: &str) -> E {
    crate::gojson::mismatch(found, &Path::Root("[]json.RawMessage"), "[]json.RawMessage")
}

/// One `responsesItem`: its strings, its summary parts, and its `content` and `output`
/// (raw in Go) read as the item types that use them read them.
#[derive(Default)]
struct Item {
    kind: String,
    role: String,
    call_id: String,
    name: String,
    arguments: String,
    input: String,
    encrypted_content: String,
    summary: GoSlice<Part>,
    content: Option<Vec<ContentBlock>>,
    output: Option<Output>,
}

typed_fields! {
    Item, "openai.responsesItem", "a Responses item", |this, p, map| {
        "type" => set_str(map, p.field("type"), &mut this.kind)?,
        "role" => set_str(map, p.field("role"), &mut this.role)?,
        "call_id" => set_str(map, p.field("call_id"), &mut this.call_id)?,
        "name" => set_str(map, p.field("name"), &mut this.name)?,
        "arguments" => set_str(map, p.field("arguments"), &mut this.arguments)?,
        "input" => set_str(map, p.field("input"), &mut this.input)?,
        "encrypted_content" => {
            set_str(map, p.field("encrypted_content"), &mut this.encrypted_content)?
        },
        "summary" => map.next_value_seed(List::new(
            p.field("summary"),
            "[]openai.responsesContentPart",
            &mut this.summary,
        ))?,
        "content" => this.content = Some(content_blocks(map.next_value()?)),
        "output" => this.output = Some(Output::of(map.next_value()?)),
    }
}

impl TypedStruct for Item {
    type Output = Item;

    fn finish(self) -> Item {
        self
    }
}

/// An item decoded as Go decodes it into a `responsesItem`: `None` when it is neither an
/// object nor `null`, or a member has the wrong type.
fn decode_item(raw: &str) -> Option<Item> {
    decode_whole(raw, Document(ITEM, Item::default())).ok()
}

/// The message an input item gives, if it decodes (docs/hashing.md#items).
fn item_message(raw: &RawValue) -> Option<Message> {
    let item = decode_item(raw.get())?;
    let (role, block) = match item.kind.as_str() {
        "message" => return Some(message_item(item)),
        "" if !item.role.is_empty() => return Some(message_item(item)),
        "function_call" => ("assistant", function_call(item, raw)),
        "function_call_output" => ("tool", tool_result(item.call_id, item.output, false)),
        "custom_tool_call" => ("assistant", custom_tool_call(item)),
        "custom_tool_call_output" => ("tool", tool_result(item.call_id, item.output, true)),
        "reasoning" => ("assistant", reasoning(item)),
        _ => (
            "assistant",
            ContentBlock {
                kind: item.kind,
                content: Some(RawJson::from_raw(raw)),
                ..ContentBlock::default()
            },
        ),
    };
    Some(Message {
        role: role.to_owned(),
        content: Some(vec![block]),
    })
}

fn message_item(item: Item) -> Message {
    Message {
        role: item.role,
        content: Some(item.content.unwrap_or_default()),
    }
}

/// A `function_call`: arguments that are an object are its input, `null` none; any other
/// arguments keep the whole item as the block's raw content.
fn function_call(item: Item, raw: &RawValue) -> ContentBlock {
    let mut block = ContentBlock {
        kind: "tool_use".to_owned(),
        tool_use_id: item.call_id,
        tool_name: item.name,
        ..ContentBlock::default()
    };
    if !item.arguments.is_empty() {
        match decode_arguments(&item.arguments) {
            Some(input) => block.tool_input = input,
            None => block.content = Some(RawJson::from_raw(raw)),
        }
    }
    block
}

/// Arguments decoded as Go's `json.Unmarshal` into `map[string]any` decodes them:
/// `Some(Some(map))` for an object, `Some(None)` for `null`, `None` for anything else.
fn decode_arguments(arguments: &str) -> Option<Option<Map<String, Value>>> {
    let arguments = repair_lone_surrogates_str(arguments);
    match decode_whole(&arguments, AnyValue).ok()? {
        Value::Object(map) => Some(Some(map)),
        Value::Null => Some(None),
        _ => None,
    }
}

/// A `custom_tool_call`: its freeform `input`, when there is one, under the key `input`.
fn custom_tool_call(item: Item) -> ContentBlock {
    let tool_input = (!item.input.is_empty()).then(|| {
        let mut input = Map::new();
        input.insert("input".to_owned(), Value::String(item.input));
        input
    });
    ContentBlock {
        kind: "tool_use".to_owned(),
        tool_use_id: item.call_id,
        tool_name: item.name,
        tool_input,
        ..ContentBlock::default()
    }
}

/// A tool output item. A custom tool's output joins the texts of its parts; a function's
/// keeps an array as it was sent.
fn tool_result(call_id: String, output: Option<Output>, custom: bool) -> ContentBlock {
    let output = output.unwrap_or_default();
    ContentBlock {
        kind: "tool_result".to_owned(),
        tool_result_id: call_id,
        tool_output: match output.parts {
            Some(joined) if custom => joined,
            _ => output.text,
        },
        ..ContentBlock::default()
    }
}

/// A `reasoning` item: the summary texts, a newline before each non-empty one that follows
/// some text; the encrypted content as the signature.
fn reasoning(item: Item) -> ContentBlock {
    let mut thinking = String::new();
    for part in item.summary.into_vec() {
        if !thinking.is_empty() && !part.text.is_empty() {
            thinking.push('\n');
        }
        thinking.push_str(&part.text);
    }
    ContentBlock {
        kind: "thinking".to_owned(),
        thinking,
        thinking_signature: item.encrypted_content,
        ..ContentBlock::default()
    }
}

/// An item's `output` as text: a string is its value, `null` is `""`, anything else its
/// text as sent; an array of parts also has its parts' texts joined, which custom tool
/// outputs use.
#[derive(Default)]
struct Output {
    text: String,
    parts: Option<String>,
}

impl Output {
    fn of(raw: &RawValue) -> Output {
        if let Ok(text) = serde_json::from_str::<Option<String>>(raw.get()) {
            return Output {
                text: text.unwrap_or_default(),
                parts: None,
            };
        }
        let parts = decode_parts(raw.get())
            .map(|parts| parts.into_iter().map(|part| part.text).collect::<String>());
        Output {
            text: raw.get().to_owned(),
            parts,
        }
    }
}

/// A message item's `content`: absent is no block, `null` one empty text block, a string one
/// text block, an array of parts a block per part; anything else one text block holding
/// the value raw.
fn content_blocks(raw: &RawValue) -> Vec<ContentBlock> {
    if let Ok(text) = serde_json::from_str::<Option<String>>(raw.get()) {
        return vec![ContentBlock::text(text.unwrap_or_default())];
    }
    match decode_parts(raw.get()) {
        Some(parts) => parts.into_iter().map(Part::into_block).collect(),
        None => vec![ContentBlock {
            kind: "text".to_owned(),
            content: Some(RawJson::from_raw(raw)),
            ..ContentBlock::default()
        }],
    }
}

/// `[]responsesContentPart`: `None` when the value is not an array of objects (or `null`s)
/// with string members.
fn decode_parts(raw: &str) -> Option<Vec<Part>> {
    let mut parts = GoSlice::<Part>::default();
    decode_whole(
        raw,
        List::new(PARTS, "[]openai.responsesContentPart", &mut parts),
    )
    .ok()?;
    Some(finished(parts))
}

/// One `responsesContentPart`.
#[derive(Default)]
struct Part {
    kind: String,
    text: String,
    refusal: String,
    image_url: String,
}

typed_fields! {
    Part, "openai.responsesContentPart", "a content part", |this, p, map| {
        "type" => set_str(map, p.field("type"), &mut this.kind)?,
        "text" => set_str(map, p.field("text"), &mut this.text)?,
        "refusal" => set_str(map, p.field("refusal"), &mut this.refusal)?,
        "image_url" => set_str(map, p.field("image_url"), &mut this.image_url)?,
    }
}

impl TypedStruct for Part {
    type Output = Part;

    fn finish(self) -> Part {
        self
    }
}

impl Part {
    fn into_block(self) -> ContentBlock {
        match self.kind.as_str() {
            "input_text" | "output_text" | "summary_text" => ContentBlock::text(self.text),
            "refusal" => ContentBlock {
                kind: "refusal".to_owned(),
                text: self.refusal,
                ..ContentBlock::default()
            },
            "input_image" => ContentBlock {
                kind: "image".to_owned(),
                image_url: self.image_url,
                ..ContentBlock::default()
            },
            _ => ContentBlock {
                kind: self.kind,
                text: self.text,
                ..ContentBlock::default()
            },
        }
    }
}

/// Rewrites the response blocks whose type is one of `kinds` (of the custom tool items the
/// reducer keeps raw) as the request parser maps the same item, when their raw `content`
/// decodes as an item with a `call_id`; other blocks stay as they are.
pub fn rewrite_items(blocks: &mut [ContentBlock], kinds: &[&str]) {
    for block in blocks {
        if !kinds.contains(&block.kind.as_str()) {
            continue;
        }
        let Some(item) = block
            .content
            .as_ref()
            .and_then(|raw| decode_item(raw.get()))
        else {
            continue;
        };
        if item.call_id.is_empty() {
            continue;
        }
        match block.kind.as_str() {
            "custom_tool_call" => *block = custom_tool_call(item),
            "custom_tool_call_output" => *block = tool_result(item.call_id, item.output, true),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::llm::ParseError;
    use crate::llm::parse::run;

    fn parse(v: Value) -> Result<ChatRequest, ParseError> {
        run(&v.to_string(), request_seed())
    }

    fn messages(input: Value) -> Vec<Message> {
        parse(json!({"model": "m", "input": input}))
            .unwrap()
            .messages
    }

    fn one(input: Value) -> ContentBlock {
        let mut messages = messages(json!([input]));
        assert_eq!(messages.len(), 1);
        let mut blocks = messages.remove(0).content.unwrap();
        assert_eq!(blocks.len(), 1);
        blocks.remove(0)
    }

    fn raw(block: &ContentBlock) -> Option<&str> {
        block.content.as_ref().map(RawJson::get)
    }

    #[test]
    fn detection_needs_input_and_no_messages() {
        for (body, responses) in [
            (r#"{"input":"hi"}"#, true),
            (r#"{"input":[],"messages":null}"#, true),
            (r#"{"INPUT":"hi"}"#, true),
            (r#"{"input":"hi","messages":[]}"#, false),
            (r#"{"input":null}"#, false),
            (r#"{"input":"hi","input":null}"#, false),
            (r#"{"messages":[]}"#, false),
            (r#""input""#, false),
            ("null", false),
            ("{", false),
        ] {
            assert_eq!(is_responses_request(body), responses, "{body}");
        }
    }

    #[test]
    fn a_string_input_is_one_user_message_and_instructions_are_the_system_prompt() {
        let req = parse(json!({"model": "m", "input": "hi", "instructions": "sys",
            "stream": true, "max_output_tokens": 9, "tools": [{}, {}]}))
        .unwrap();
        assert_eq!(req.model, "m");
        assert_eq!(req.system, "sys");
        assert_eq!(req.max_tokens, Some(9));
        assert_eq!(
            (req.tools, req.stream, req.responses),
            (2, Some(true), true)
        );
        assert_eq!(req.messages.len(), 1);
        assert_eq!(req.messages[0].role, "user");
        assert_eq!(
            req.messages[0].content.as_deref(),
            Some(&[ContentBlock::text("hi")][..])
        );
        assert_eq!(
            messages(json!(""))[0].content.as_deref(),
            Some(&[ContentBlock::text("")][..])
        );
        assert!(messages(json!([])).is_empty());
    }

    #[test]
    fn typed_members_and_input_give_go_errors_in_go_s_order() {
        let err = |v: Value| parse(v).unwrap_err().to_string();
        assert_eq!(
            err(json!({"input": "hi", "instructions": ["a"]})),
            "json: cannot unmarshal array into Go struct field responsesRequest.instructions of type string"
        );
        assert_eq!(
            err(json!({"input": 5})),
            "responses input is neither string nor item array: json: cannot unmarshal number into Go value of type []json.RawMessage"
        );
        assert_eq!(
            err(json!({"input": {"role": "user"}})),
            "responses input is neither string nor item array: json: cannot unmarshal object into Go value of type []json.RawMessage"
        );
        // A typed member fails first, wherever the input is.
        assert!(err(json!({"input": 5, "stream": "yes"})).contains("responsesRequest.stream"));
        assert!(err(json!({"input": "x", "tools": {"a": 1}})).contains("responsesRequest.tools"));
    }

    #[test]
    fn tool_choice_routes_when_named_or_described() {
        let routes = |choice: Value| {
            parse(json!({"input": "x", "tool_choice": choice}))
                .unwrap()
                .tool_choice_enabled
        };
        assert!(routes(json!("auto")) && routes(json!({"type": "function"})));
        for off in [
            json!(""),
            json!("none"),
            json!({}),
            json!(null),
            json!(true),
            json!([1]),
        ] {
            assert!(!routes(off.clone()), "{off}");
        }
    }

    #[test]
    fn message_items_with_and_without_type() {
        let blocks = |item: Value| messages(json!([item])).remove(0);
        let m = blocks(json!({"type": "message", "role": "developer", "content": [
            {"type": "input_text", "text": "a"}, {"type": "output_text", "text": "b"},
            {"type": "summary_text", "text": "c"}, {"type": "refusal", "refusal": "no"},
            {"type": "input_image", "image_url": "https://i/x.png"},
            {"type": "input_file", "file_id": "f", "text": "t"}, null]}));
        assert_eq!(m.role, "developer");
        let content = m.content.unwrap();
        let kinds: Vec<(&str, &str)> = content
            .iter()
            .map(|b| (b.kind.as_str(), b.text.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("text", "a"),
                ("text", "b"),
                ("text", "c"),
                ("refusal", "no"),
                ("image", ""),
                ("input_file", "t"),
                ("", "")
            ]
        );
        assert_eq!(content[4].image_url, "https://i/x.png");
        let m = blocks(json!({"role": "assistant", "content": "plain"}));
        assert_eq!(
            (m.role.as_str(), m.content.unwrap()),
            ("assistant", vec![ContentBlock::text("plain")])
        );
        let m = blocks(json!({"type": "message", "content": "no role"}));
        assert_eq!(m.role, "");
    }

    #[test]
    fn message_content_of_every_shape() {
        let content = |c: Option<Value>| {
            let mut item = json!({"type": "message", "role": "user"});
            if let Some(c) = c {
                item["content"] = c;
            }
            messages(json!([item])).remove(0).content.unwrap()
        };
        assert_eq!(content(None), []);
        assert_eq!(
            content(Some(json!(null))),
            [ContentBlock {
                kind: "text".into(),
                ..ContentBlock::default()
            }]
        );
        for odd in [
            json!(5),
            json!({"type": "input_text", "text": "obj"}),
            json!([5, {"type": "input_text"}]),
            json!([{"text": 1}]),
        ] {
            let blocks = content(Some(odd.clone()));
            assert_eq!(blocks.len(), 1, "{odd}");
            assert_eq!(blocks[0].kind, "text");
            assert_eq!(
                raw(&blocks[0]).map(|r| serde_json::from_str::<Value>(r).unwrap()),
                Some(odd)
            );
        }
    }

    #[test]
    fn function_calls_keep_object_arguments_and_the_item_otherwise() {
        let call = |args: &str| {
            one(json!({"type": "function_call", "call_id": "c", "name": "f", "arguments": args}))
        };
        let object = call(r#"{"a":{"b":false},"c":1E2}"#);
        assert_eq!(
            (&*object.kind, &*object.tool_use_id, &*object.tool_name),
            ("tool_use", "c", "f")
        );
        assert_eq!(
            object.tool_input.as_ref().unwrap()["c"].as_f64(),
            Some(100.0)
        );
        assert_eq!(object.content, None);
        for none in ["", "null"] {
            let b = call(none);
            assert_eq!(
                (b.tool_input.as_ref(), b.content.as_ref()),
                (None, None),
                "{none:?}"
            );
        }
        for bad in ["[1]", "{bad", "7", "{} x"] {
            let b = call(bad);
            assert_eq!(b.tool_input, None, "{bad}");
            let kept: Value = serde_json::from_str(raw(&b).unwrap()).unwrap();
            assert_eq!(kept["arguments"], bad);
        }
    }

    #[test]
    fn outputs_render_strings_and_keep_other_values_as_sent() {
        let body = r#"{"input":[
            {"type":"function_call_output","call_id":"c","output":{"b": 2, "a": [1, 2.5]}},
            {"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"x"}]},
            {"type":"function_call_output","call_id":"c"},
            {"type":"custom_tool_call_output","call_id":"c","output":[{"type":"input_text","text":"Done"},{"text":"!"}]},
            {"type":"custom_tool_call_output","call_id":"c","output":{"k": "v"}},
            {"type":"custom_tool_call_output","call_id":"c","output":12},
            {"type":"custom_tool_call_output","call_id":"c","output":"  spaced\n\n\nout  "},
            {"type":"custom_tool_call_output","call_id":"c","output":[5]}]}"#;
        let req = run(body, request_seed()).unwrap();
        let outputs: Vec<(&str, &str)> = req
            .messages
            .iter()
            .map(|m| {
                let b = &m.content.as_deref().unwrap()[0];
                assert_eq!(
                    (m.role.as_str(), b.kind.as_str(), b.tool_result_id.as_str()),
                    ("tool", "tool_result", "c")
                );
                (b.tool_output.as_str(), "")
            })
            .collect();
        let outputs: Vec<&str> = outputs.into_iter().map(|(o, _)| o).collect();
        assert_eq!(
            outputs,
            [
                r#"{"b": 2, "a": [1, 2.5]}"#,
                r#"[{"type":"input_text","text":"x"}]"#,
                "",
                "Done!",
                r#"{"k": "v"}"#,
                "12",
                "  spaced\n\n\nout  ",
                "[5]"
            ]
        );
    }

    #[test]
    fn custom_calls_reasoning_and_unknown_items() {
        let custom = one(
            json!({"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin"}),
        );
        assert_eq!(custom.tool_input.as_ref().unwrap()["input"], "*** Begin");
        let empty = one(json!({"type": "custom_tool_call", "call_id": "c2", "name": "x"}));
        assert_eq!(empty.tool_input, None);
        let thinking = one(
            json!({"type": "reasoning", "encrypted_content": "gAAA", "summary": [
            {"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": ""},
            {"type": "summary_text", "text": "b"}]}),
        );
        assert_eq!(
            (
                &*thinking.kind,
                &*thinking.thinking,
                &*thinking.thinking_signature
            ),
            ("thinking", "a\nb", "gAAA")
        );
        let leading = one(json!({"type": "reasoning", "summary": [{"text": ""}, {"text": "b"}]}));
        assert_eq!(leading.thinking, "b");
        let body = r#"{"input":[{"type":"web_search_call", "id":"ws_1","action":{"q":1}}]}"#;
        let unknown = run(body, request_seed()).unwrap().messages.remove(0);
        assert_eq!(unknown.role, "assistant");
        let block = &unknown.content.unwrap()[0];
        assert_eq!(block.kind, "web_search_call");
        assert_eq!(
            raw(block),
            Some(r#"{"type":"web_search_call", "id":"ws_1","action":{"q":1}}"#)
        );
    }

    #[test]
    fn malformed_items_are_skipped_and_null_is_an_empty_item() {
        let got = messages(
            json!([5, "s", null, [], {"type": "function_call", "arguments": {"x": 1}},
            {"role": 7}, {"content": "no role no type"}, {"type": "message", "summary": "x"}]),
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].role, "assistant");
        assert_eq!(raw(&got[0].content.as_deref().unwrap()[0]), Some("null"));
        assert_eq!(got[0].content.as_deref().unwrap()[0].kind, "");
        assert_eq!(
            raw(&got[1].content.as_deref().unwrap()[0]),
            Some(r#"{"content":"no role no type"}"#)
        );
    }

    #[test]
    fn response_items_with_a_call_id_are_rewritten() {
        let kinds = ["custom_tool_call", "custom_tool_call_output"];
        let block = |kind: &str, content: &str| ContentBlock {
            kind: kind.into(),
            content: RawJson::from_text(content),
            ..ContentBlock::default()
        };
        let mut blocks = vec![
            block(
                "custom_tool_call",
                r#"{"type":"custom_tool_call","call_id":"call_1","name":"exec","input":"ls"}"#,
            ),
            block(
                "custom_tool_call_output",
                r#"{"call_id":"call_1","output":[{"type":"input_text","text":"a"},{"type":"input_text","text":"b"}]}"#,
            ),
            block("custom_tool_call", r#"{"name":"exec","input":"ls"}"#),
            block("custom_tool_call", r#"{"call_id":5}"#),
            block("web_search_call", r#"{"call_id":"w"}"#),
        ];
        let before = blocks.clone();
        rewrite_items(&mut blocks, &kinds);
        assert_eq!(blocks[0].kind, "tool_use");
        assert_eq!(
            (&*blocks[0].tool_use_id, &*blocks[0].tool_name),
            ("call_1", "exec")
        );
        assert_eq!(blocks[0].tool_input.as_ref().unwrap()["input"], "ls");
        assert_eq!(blocks[0].content, None);
        assert_eq!(
            (&*blocks[1].kind, &*blocks[1].tool_output),
            ("tool_result", "ab")
        );
        assert_eq!(blocks[2..], before[2..]);
        let mut untouched = before.clone();
        rewrite_items(&mut untouched, &[]);
        assert_eq!(untouched, before);
    }
}
