//! The OpenAI Responses reducer (docs/capture.md §6): a stream of events, or a one-shot
//! Response object, into a reduced response. A raw-only `openai` turn is always a Responses
//! body; Chat Completions bodies have no reducer.

use std::io::{self, BufRead, Read};

use chrono::{DateTime, Utc};
use serde_json::Map;

use super::raw::{Raw, decode, decode_object};
use super::{Block, ReduceError, Reduced, is_stream};
use crate::capture::sse::Events;
use crate::gojson::{GoSlice, in_place_struct, pointer_fields, repair_raw};
use crate::llm::Usage;

const REDUCER: &str = "openai responses reducer";

/// How many leading bytes decide whether a body without a usable Content-Type is a stream:
/// room for some white space and `event:`.
const SNIFF_LEN: usize = 16;

/// A stream when the Content-Type says so, a one-shot body when it names JSON, else
/// whatever the first bytes look like (chatgpt.com's Codex backend sends its streams
/// without a Content-Type).
pub(super) fn reduce(content_type: &str, body: &mut dyn BufRead) -> Result<Reduced, ReduceError> {
    if is_stream(content_type) {
        return Ok(reduce_stream(body));
    }
    if content_type.to_ascii_lowercase().contains("json") {
        return reduce_one_shot(body);
    }
    let mut sniffed = Sniffed::peek(body);
    if sniffed.looks_like_sse() {
        Ok(reduce_stream(&mut sniffed))
    } else {
        reduce_one_shot(&mut sniffed)
    }
}

/// `input_tokens_details`.
#[derive(Debug, Default)]
struct InputDetails {
    cached_tokens: i64,
}

in_place_struct!(InputDetails, "an input_tokens_details object" {
    "cached_tokens" => cached_tokens,
});

#[derive(Debug, Default)]
struct WireUsage {
    input_tokens: i64,
    output_tokens: i64,
    total_tokens: i64,
    input_tokens_details: Option<InputDetails>,
}

in_place_struct!(WireUsage, "a usage object" {
    "input_tokens" => input_tokens,
    "output_tokens" => output_tokens,
    "total_tokens" => total_tokens,
    "input_tokens_details" => input_tokens_details,
});

#[derive(Debug, Default)]
struct IncompleteDetails {
    reason: String,
}

in_place_struct!(IncompleteDetails, "an incomplete_details object" {
    "reason" => reason,
});

/// A Response object, the one-shot body and the `response` of stream events.
#[derive(Debug, Default)]
struct ResponseObject {
    id: String,
    object: String,
    created_at: i64,
    status: String,
    model: String,
    output: Option<GoSlice<Raw>>,
    usage: Option<WireUsage>,
    incomplete_details: Option<IncompleteDetails>,
}

in_place_struct!(ResponseObject, "a response object" {
    "id" => id,
    "object" => object,
    "created_at" => created_at,
    "status" => status,
    "model" => model,
    "output" => output,
    "usage" => usage,
    "incomplete_details" => incomplete_details,
});

/// The data of one stream event.
#[derive(Debug, Default)]
struct Envelope {
    kind: String,
    response: Option<ResponseObject>,
    delta: String,
    item: Option<Raw>,
}

in_place_struct!(Envelope, "a stream event" {
    "type" => kind,
    "response" => response,
    "delta" => delta,
    "item" => item,
});

/// A part of a `message` item's content.
#[derive(Debug, Default)]
struct Part {
    kind: String,
    text: String,
    refusal: String,
}

in_place_struct!(Part, "a content part" {
    "type" => kind,
    "text" => text,
    "refusal" => refusal,
});

/// A part of a `reasoning` item's summary.
#[derive(Debug, Default)]
struct SummaryPart {
    kind: String,
    text: String,
}

in_place_struct!(SummaryPart, "a summary part" {
    "type" => kind,
    "text" => text,
});

/// An output item, as far as the mapping reads it (§6.3).
#[derive(Debug, Default)]
struct Item {
    kind: String,
    role: String,
    content: Option<GoSlice<Part>>,
    call_id: String,
    name: String,
    arguments: String,
    summary: Option<GoSlice<SummaryPart>>,
    encrypted_content: String,
}

in_place_struct!(Item, "an output item" {
    "type" => kind,
    "role" => role,
    "content" => content,
    "call_id" => call_id,
    "name" => name,
    "arguments" => arguments,
    "summary" => summary,
    "encrypted_content" => encrypted_content,
});

pointer_fields!(InputDetails, WireUsage, IncompleteDetails, ResponseObject);

/// A one-shot body: a Response object, or nothing.
fn reduce_one_shot(body: &mut dyn BufRead) -> Result<Reduced, ReduceError> {
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes)
        .map_err(|source| ReduceError::Read {
            reducer: REDUCER,
            source,
        })?;
    let (text, repaired) = repair_raw(&bytes);
    let response: ResponseObject = decode(&text).map_err(|message| ReduceError::Parse {
        reducer: REDUCER,
        message,
    })?;
    if response.object != "response" {
        return Err(ReduceError::NotAResponse(response.object));
    }
    let mut replacements = repaired;
    let mut reduced = complete(response, Vec::new(), &mut replacements);
    reduced.replacements = replacements;
    Ok(reduced)
}

/// The events of a stream (§6.4): the first terminal event's response, or a partial
/// reduction (§6.5). Never fails.
fn reduce_stream(body: &mut dyn BufRead) -> Reduced {
    let mut replacements = 0;
    let mut items: Vec<Raw> = Vec::new();
    let mut text = String::new();
    let mut created: Option<ResponseObject> = None;
    for event in Events::new(body) {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                let reason = e.to_string();
                return partial(created, items, text, &reason, replacements);
            }
        };
        let (data, repaired) = repair_raw(&event.data);
        // An event that does not decode is skipped without a trace.
        let Ok(envelope) = decode::<Envelope>(&data) else {
            continue;
        };
        replacements += repaired;
        match envelope.kind.as_str() {
            kind @ ("response.completed" | "response.incomplete" | "response.failed") => {
                let Some(response) = envelope.response else {
                    let reason = format!("terminal event {kind} carried no response object");
                    return partial(created, items, text, &reason, replacements);
                };
                let mut reduced = complete(response, items, &mut replacements);
                reduced.replacements = replacements;
                return reduced;
            }
            "response.created" => created = envelope.response,
            "response.output_item.done" => items.extend(envelope.item),
            "response.output_text.delta" => text.push_str(&envelope.delta),
            _ => {}
        }
    }
    partial(
        created,
        items,
        text,
        "stream ended before terminal response event",
        replacements,
    )
}

/// A whole Response (§6.2); an empty `output` takes the items the stream collected.
fn complete(response: ResponseObject, collected: Vec<Raw>, replacements: &mut usize) -> Reduced {
    let output = response
        .output
        .map(GoSlice::into_vec)
        .filter(|output| !output.is_empty())
        .unwrap_or(collected);
    let stop_reason = match response.status.as_str() {
        "completed" => "stop".to_owned(),
        "incomplete" => response
            .incomplete_details
            .map(|details| details.reason)
            .filter(|reason| !reason.is_empty())
            .unwrap_or_else(|| "incomplete".to_owned()),
        _ => response.status.clone(),
    };
    let usage = response.usage.map(|usage| Usage {
        prompt_tokens: usage.input_tokens,
        completion_tokens: usage.output_tokens,
        total_tokens: usage.total_tokens,
        cache_read_input_tokens: usage
            .input_tokens_details
            .map_or(0, |details| details.cached_tokens),
        ..Usage::default()
    });
    let mut extra = Map::new();
    extra.insert("id".into(), response.id.into());
    extra.insert("object".into(), response.object.into());
    extra.insert("status".into(), response.status.into());
    Reduced {
        model: response.model,
        created_at: unix_time(response.created_at),
        role: "assistant".into(),
        content: blocks(output, replacements),
        done: true,
        stop_reason,
        usage,
        extra,
        ..Reduced::default()
    }
}

/// What a stream without terminal response gave (§6.5): its items, else its text.
fn partial(
    created: Option<ResponseObject>,
    items: Vec<Raw>,
    text: String,
    reason: &str,
    mut replacements: usize,
) -> Reduced {
    let mut content = blocks(items, &mut replacements);
    if content.is_empty() && !text.is_empty() {
        content.push(Block::text("text", text));
    }
    let mut extra = Map::new();
    extra.insert("partial".into(), true.into());
    extra.insert("reducer_error".into(), reason.into());
    let (model, created_at) = created.map_or((String::new(), None), |created| {
        (created.model, unix_time(created.created_at))
    });
    Reduced {
        model,
        created_at,
        role: "assistant".into(),
        content,
        extra,
        replacements,
        ..Reduced::default()
    }
}

/// `created_at` seconds as a UTC time, when above zero.
fn unix_time(seconds: i64) -> Option<DateTime<Utc>> {
    if seconds > 0 {
        DateTime::from_timestamp(seconds, 0)
    } else {
        None
    }
}

/// Output items as blocks (§6.3).
fn blocks(items: Vec<Raw>, replacements: &mut usize) -> Vec<Block> {
    let mut out = Vec::with_capacity(items.len());
    for raw in items {
        let Ok(item) = decode::<Item>(&raw.text) else {
            out.push(Block::raw("unparsed", raw.value));
            continue;
        };
        match item.kind.as_str() {
            "message" => {
                let parts = item.content.map(GoSlice::into_vec).unwrap_or_default();
                out.extend(parts.into_iter().map(|part| match part.kind.as_str() {
                    "output_text" => Block::text("text", part.text),
                    "refusal" => Block::text("refusal", part.refusal),
                    _ => Block::text(part.kind, part.text),
                }));
            }
            "function_call" => {
                let mut block = Block {
                    tool_use_id: item.call_id,
                    tool_name: item.name,
                    ..Block::new("tool_use")
                };
                if !item.arguments.is_empty() {
                    match decode_object(&item.arguments, replacements) {
                        Ok(input) => block.tool_input = input,
                        Err(_) => block.content = Some(raw.value),
                    }
                }
                out.push(block);
            }
            "reasoning" => {
                let mut thinking = String::new();
                for part in item.summary.map(GoSlice::into_vec).unwrap_or_default() {
                    if !thinking.is_empty() && !part.text.is_empty() {
                        thinking.push('\n');
                    }
                    thinking.push_str(&part.text);
                }
                out.push(Block {
                    thinking,
                    thinking_signature: item.encrypted_content,
                    ..Block::new("thinking")
                });
            }
            _ => out.push(Block::raw(item.kind, raw.value)),
        }
    }
    out
}

/// A body whose first bytes were read to sniff it, read again from its start: the bytes
/// peeked, then the error the peek met (once), then the rest, as Go's `bufio.Reader` gives
/// them back after a `Peek`.
struct Sniffed<'a> {
    head: Vec<u8>,
    at: usize,
    error: Option<io::Error>,
    rest: &'a mut dyn BufRead,
}

impl<'a> Sniffed<'a> {
    fn peek(rest: &'a mut dyn BufRead) -> Self {
        let mut head = Vec::with_capacity(SNIFF_LEN);
        let mut error = None;
        while head.len() < SNIFF_LEN {
            match rest.fill_buf() {
                Ok([]) => break,
                Ok(chunk) => {
                    let n = chunk.len().min(SNIFF_LEN - head.len());
                    head.extend_from_slice(&chunk[..n]);
                    rest.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        Sniffed {
            head,
            at: 0,
            error,
            rest,
        }
    }

    /// SSE opens with an `event:` or `data:` field, maybe after white space.
    fn looks_like_sse(&self) -> bool {
        let start = self
            .head
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .unwrap_or(self.head.len());
        let head = &self.head[start..];
        head.starts_with(b"event:") || head.starts_with(b"data:")
    }
}

impl Read for Sniffed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Sniffed<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at < self.head.len() {
            return Ok(&self.head[self.at..]);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.rest.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.at < self.head.len() {
            self.at += n;
        } else {
            self.rest.consume(n);
        }
    }
}
