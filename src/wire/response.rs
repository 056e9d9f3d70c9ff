//! The reduced response of a turn, its checks, and its decoding.

use crate::gojson::typed::{ObjectCheck, Path};
use crate::gojson::{GoSlice, TimeCheck, in_place_struct};
use crate::llm::{ContentBlock, Message, Usage};

/// The already-reduced, provider-agnostic response.
#[derive(Debug, Default)]
pub struct ChatResponse {
    pub model: String,
    pub message: Message,
    pub done: bool,
    pub stop_reason: String,
    pub usage: Option<Usage>,
}

/// Why a reduced response cannot make a head node (docs/wire.md#reduced-response), in check order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("missing response.message.role")]
    MissingRole,
    #[error("missing response.message.content")]
    MissingContent,
    #[error("missing response.message.content[{0}].type")]
    MissingBlockType(usize),
}

impl ChatResponse {
    /// The response was not sent, or sent with nothing in it: no model, role, content,
    /// done flag, stop reason or usage (`created_at` and `extra` are not looked at).
    pub fn is_absent(&self) -> bool {
        self.model.is_empty()
            && self.message.role.is_empty()
            && self.message.content.as_ref().is_none_or(Vec::is_empty)
            && !self.done
            && self.stop_reason.is_empty()
            && self.usage.is_none()
    }

    /// The reference's checks before a turn is accepted: a role, at least one block, and a
    /// type on every block.
    pub fn validate(&self) -> Result<(), ResponseError> {
        if self.message.role.is_empty() {
            return Err(ResponseError::MissingRole);
        }
        let blocks = self.message.content.as_deref().unwrap_or_default();
        if blocks.is_empty() {
            return Err(ResponseError::MissingContent);
        }
        match blocks.iter().position(|b| b.kind.is_empty()) {
            Some(i) => Err(ResponseError::MissingBlockType(i)),
            None => Ok(()),
        }
    }
}

/// `ChatResponse.message` as Go decodes it: the content keeps its backing array until the
/// whole body is decoded, since a repeated key decodes into it (see [`GoSlice`]).
#[derive(Debug, Default)]
pub(super) struct MessageSlots {
    role: String,
    content: Option<GoSlice<ContentBlock>>,
}

in_place_struct!(MessageSlots, "a message object" {
    "role" => role,
    "content" => content,
});

/// A `ChatResponse` as Go decodes it (see [`MessageSlots`]).
#[derive(Debug, Default)]
pub(super) struct ResponseSlots {
    model: String,
    message: MessageSlots,
    done: bool,
    stop_reason: String,
    usage: Option<Usage>,
}

static RESPONSE: Path<'static> = Path::Root("ChatResponse");

in_place_struct!(ResponseSlots, "a response object" {
    "model" => model,
    // Not kept, but typed in the reference: a wrong kind fails the decode.
    "created_at" => (TimeCheck),
    "message" => message,
    "done" => done,
    "stop_reason" => stop_reason,
    "usage" => usage,
    "extra" => (ObjectCheck(RESPONSE.field("extra"))),
});

impl ResponseSlots {
    pub(super) fn finish(self) -> ChatResponse {
        ChatResponse {
            model: self.model,
            message: Message {
                role: self.message.role,
                content: self.message.content.map(GoSlice::into_vec),
            },
            done: self.done,
            stop_reason: self.stop_reason,
            usage: self.usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_validation_in_order() {
        let mut r = ChatResponse::default();
        assert_eq!(r.validate(), Err(ResponseError::MissingRole));
        r.message.role = "assistant".into();
        assert_eq!(r.validate(), Err(ResponseError::MissingContent));
        r.message.content = Some(vec![]);
        assert_eq!(r.validate(), Err(ResponseError::MissingContent));
        r.message.content = Some(vec![ContentBlock::text("a"), ContentBlock::default()]);
        assert_eq!(r.validate(), Err(ResponseError::MissingBlockType(1)));
        assert_eq!(
            ResponseError::MissingBlockType(1).to_string(),
            "missing response.message.content[1].type"
        );
        r.message.content = Some(vec![ContentBlock::text("a")]);
        assert_eq!(r.validate(), Ok(()));
    }
}
