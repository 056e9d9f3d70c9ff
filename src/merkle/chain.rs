//! Building a turn's chain of nodes from its payload (hashing.md §4.5).

use super::Chain;
use crate::wire::{TurnError, TurnPayload};

/// Parses the payload's request with its provider's parser and builds the chain:
/// one node per request message in order, then the response node (the head).
pub fn build_chain(_payload: &TurnPayload) -> Result<Chain, TurnError> {
    unimplemented!("implemented by the chain work")
}
