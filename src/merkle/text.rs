//! The plain text of a bucket, for embeddings and search; not hashed
//! (docs/hashing.md#plain-text-of-a-bucket).

use std::fmt::Write;

use serde_json::Value;

use super::Bucket;

impl Bucket {
    /// One piece per block, joined with `"\n"`: its text if any, else its tool output,
    /// else `Tool call: <name>` with `(key: value, …)` when it has input. Blocks with none
    /// of these (images, thinking) add nothing. Input keys are listed in sorted order (the
    /// reference iterates a Go map, whose order is random).
    pub fn extract_text(&self) -> String {
        let mut pieces = Vec::new();
        for block in self.content.as_deref().unwrap_or_default() {
            if !block.text.is_empty() {
                pieces.push(block.text.clone());
            } else if !block.tool_output.is_empty() {
                pieces.push(block.tool_output.clone());
            } else if !block.tool_name.is_empty() {
                let mut call = format!("Tool call: {}", block.tool_name);
                if let Some(input) = block.tool_input.as_ref().filter(|m| !m.is_empty()) {
                    call.push('(');
                    for (i, (key, value)) in input.iter().enumerate() {
                        if i > 0 {
                            call.push_str(", ");
                        }
                        let _ = write!(call, "{key}: {}", go_display(value));
                    }
                    call.push(')');
                }
                pieces.push(call);
            }
        }
        pieces.join("\n")
    }
}

/// A decoded JSON value as Go's `fmt` `%v` prints it.
fn go_display(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_display).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_display(v)))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// A float64 as `%v` prints it: the shortest digits, in exponent form (`1e+06`, `1e-05`)
/// when the exponent is below -4 or at least 6 (that is `strconv.FormatFloat(f, 'g', -1, 64)`).
fn go_float(f: f64) -> String {
    // Rust's `{:e}` gives the shortest round-trip digits as `d.ddde<exp>`.
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return sci;
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if exp < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::llm::ContentBlock;

    fn bucket(blocks: Vec<ContentBlock>) -> Bucket {
        Bucket {
            kind: "message".into(),
            role: "assistant".into(),
            content: Some(blocks),
            ..Bucket::default()
        }
    }

    fn tool(name: &str, input: Value) -> ContentBlock {
        ContentBlock {
            kind: "tool_use".into(),
            tool_name: name.into(),
            tool_input: input.as_object().cloned(),
            ..ContentBlock::default()
        }
    }

    #[test]
    fn single_text() {
        assert_eq!(bucket(vec![ContentBlock::text("hi")]).extract_text(), "hi");
    }

    #[test]
    fn joins_blocks_with_newlines() {
        let b = bucket(vec![ContentBlock::text("a"), ContentBlock::text("b")]);
        assert_eq!(b.extract_text(), "a\nb");
    }

    #[test]
    fn tool_output_and_text_plus_tool_output() {
        let out = ContentBlock {
            kind: "tool_result".into(),
            tool_output: "42".into(),
            ..ContentBlock::default()
        };
        assert_eq!(bucket(vec![out.clone()]).extract_text(), "42");
        assert_eq!(
            bucket(vec![ContentBlock::text("answer"), out]).extract_text(),
            "answer\n42"
        );
    }

    #[test]
    fn empty_content_and_images_give_nothing() {
        assert_eq!(bucket(vec![]).extract_text(), "");
        let image = ContentBlock {
            kind: "image".into(),
            image_base64: "AAAA".into(),
            ..ContentBlock::default()
        };
        assert_eq!(
            bucket(vec![image, ContentBlock::text("caption")]).extract_text(),
            "caption"
        );
    }

    #[test]
    fn tool_use_lists_its_parameters() {
        let b = bucket(vec![tool("get_weather", json!({"location": "NYC"}))]);
        assert_eq!(b.extract_text(), "Tool call: get_weather(location: NYC)");
        let b = bucket(vec![tool(
            "search",
            json!({"query": "rust", "limit": 10, "exact": false}),
        )]);
        let text = b.extract_text();
        assert!(text.starts_with("Tool call: search("));
        for part in ["query: rust", "limit: 10", "exact: false"] {
            assert!(text.contains(part), "{text}");
        }
    }

    #[test]
    fn tool_use_without_parameters() {
        let b = bucket(vec![tool("get_time", Value::Null)]);
        assert_eq!(b.extract_text(), "Tool call: get_time");
    }

    #[test]
    fn text_plus_tool_use() {
        let b = bucket(vec![
            ContentBlock::text("Let me check."),
            tool("get_time", json!({})),
        ]);
        assert_eq!(b.extract_text(), "Let me check.\nTool call: get_time");
    }

    #[test]
    fn floats_print_as_go_does() {
        for (f, want) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.25, "-2.25"),
            (1e21, "1e+21"),
        ] {
            assert_eq!(go_float(f), want);
        }
        assert_eq!(
            go_display(&json!({"b": [1, "x"], "a": null})),
            "map[a:<nil> b:[1 x]]"
        );
    }
}
