//! JSON responses rendered the way the reference's Go encoder renders them.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;

/// The reference answers `Content-Type: application/json` without a charset.
pub const JSON: &str = "application/json";

/// Serialises `value` like Go's `encoding/json` v1: `<`, `>` and `&` become `\u003c`,
/// `\u003e`, `\u0026`, and U+2028/U+2029 are escaped. Those characters can only occur inside
/// strings in serde_json's output (they are not JSON syntax), so rewriting bytes is safe.
pub fn to_go_json<T: Serialize>(value: &T) -> Vec<u8> {
    let plain = match serde_json::to_vec(value) {
        Ok(bytes) => bytes,
        // Our response types are plain structs of strings and numbers: serialisation cannot
        // fail. Should it ever, an error object is still valid JSON.
        Err(_) => return br#"{"error":"internal error: cannot encode response"}"#.to_vec(),
    };
    let mut out = Vec::with_capacity(plain.len() + 16);
    let mut i = 0;
    while i < plain.len() {
        match plain[i] {
            b'<' => out.extend_from_slice(br"\u003c"),
            b'>' => out.extend_from_slice(br"\u003e"),
            b'&' => out.extend_from_slice(br"\u0026"),
            0xE2 if plain.get(i + 1) == Some(&0x80)
                && matches!(plain.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                out.extend_from_slice(if plain[i + 2] == 0xA8 {
                    br"\u2028"
                } else {
                    br"\u2029"
                });
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// A JSON response with the given status.
pub fn respond<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(JSON)
        .body(to_go_json(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let v = serde_json::json!({"error": "a<b>&c \u{2028}\u{2029} é"});
        assert_eq!(
            String::from_utf8(to_go_json(&v)).expect("utf-8"),
            r#"{"error":"a\u003cb\u003e\u0026c \u2028\u2029 é"}"#
        );
    }
}
