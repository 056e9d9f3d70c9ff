//! Parameters the read routes share: ids in paths, page sizes, and opaque page cursors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;

/// Rows a page holds unless `limit` says otherwise.
pub const DEFAULT_PAGE: u64 = 50;
/// Rows a page holds at most.
pub const MAX_PAGE: u64 = 200;

pub fn parse_session_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::BadRequest(format!("invalid session id {raw:?}")))
}

/// A `limit` query parameter: [`DEFAULT_PAGE`] when absent, else 1 to [`MAX_PAGE`].
pub fn page_limit(raw: Option<&str>) -> Result<u64, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_PAGE);
    };
    match raw.parse::<u64>() {
        Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "invalid limit: must be an integer from 1 to {MAX_PAGE}"
        ))),
    }
}

/// A cursor is a position as JSON in unpadded base64url: opaque to clients, and a page
/// request needs nothing but it to continue.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

pub fn decode_cursor<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let invalid = || ApiError::BadRequest("invalid cursor: not a cursor this server issued".into());
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_limit(Some("200")).unwrap(), 200);
        for bad in ["0", "201", "-1", "x", "", "1.5"] {
            assert!(page_limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let token = encode_cursor(&("a", 1));
        assert_eq!(
            decode_cursor::<(String, i32)>(&token).unwrap(),
            ("a".into(), 1)
        );
        assert!(decode_cursor::<(String, i32)>("!!").is_err());
        assert!(decode_cursor::<(String, i32)>(&encode_cursor(&5)).is_err());
    }
}
