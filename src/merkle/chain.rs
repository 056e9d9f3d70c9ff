//! Building a turn's chain of nodes from its payload (docs/hashing.md#the-turn-chain).

use super::{Bucket, Chain, ChainNode, MESSAGE_KIND, NodeHasher};
use crate::llm::provider::Provider;
use crate::llm::{ChatRequest, Usage};
use crate::wire::{ChatResponse, TurnError, TurnPayload};

/// Parses the payload's request with its provider's parser (unless the decode already did)
/// and builds the chain: one node per request message in order, then the response node
/// (the head). The payload is consumed: its messages move into the nodes.
///
/// Checks run in the reference's order: unknown provider, unparseable request, invalid
/// reduced response.
pub fn build_chain(payload: TurnPayload) -> Result<Chain, TurnError> {
    let provider = Provider::from_name(&payload.provider)
        .ok_or_else(|| TurnError::UnsupportedProvider(payload.provider.clone()))?;
    let request = payload.request.into_chain_request(provider)?;
    payload.response.validate()?;
    Ok(assemble(
        provider.name(),
        &payload.agent_name,
        request,
        payload.response,
    ))
}

/// Links the request messages and the response into a chain, each node hashed under its
/// predecessor. Request nodes carry the request's model; the head carries the response's
/// model, stop reason and usage.
fn assemble(provider: &str, agent: &str, request: ChatRequest, response: ChatResponse) -> Chain {
    let mut hasher = NodeHasher::new();
    let mut nodes = Vec::with_capacity(request.messages.len() + 1);
    let model = request.model;
    for message in request.messages {
        let bucket = Bucket {
            kind: MESSAGE_KIND.to_owned(),
            role: message.role,
            content: message.content,
            model: model.clone(),
            provider: provider.to_owned(),
            agent_name: agent.to_owned(),
        };
        push(&mut nodes, &mut hasher, bucket, String::new(), None);
    }
    let head = Bucket {
        kind: MESSAGE_KIND.to_owned(),
        role: response.message.role,
        content: response.message.content,
        model: response.model,
        provider: provider.to_owned(),
        agent_name: agent.to_owned(),
    };
    push(
        &mut nodes,
        &mut hasher,
        head,
        response.stop_reason,
        response.usage,
    );
    Chain { nodes }
}

fn push(
    nodes: &mut Vec<ChainNode>,
    hasher: &mut NodeHasher,
    bucket: Bucket,
    stop_reason: String,
    usage: Option<Usage>,
) {
    let parent_hash = nodes.last().map(|n: &ChainNode| n.hash.clone());
    let hash = hasher.hash(parent_hash.as_deref(), &bucket);
    nodes.push(ChainNode {
        hash,
        parent_hash,
        bucket,
        stop_reason,
        usage,
    });
}
