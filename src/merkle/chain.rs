//! Building a turn's chain of nodes from its payload (docs/hashing.md#the-turn-chain).

use super::kind::{classify, injected_kind};
use super::{Bucket, Chain, ChainNode, MESSAGE_KIND, NodeHasher, NodeKind};
use crate::llm::provider::Provider;
use crate::llm::{ChatRequest, ContentBlock, Rules, Usage, responses};
use crate::wire::{ChatResponse, TurnError, TurnPayload};

/// [`build_chain_under`] the rules reel hashes by until a caller picks others.
pub fn build_chain(payload: TurnPayload) -> Result<Chain, TurnError> {
    build_chain_under(payload, &Rules::default())
}

/// Parses the payload's request with its provider's parser under `rules` (unless the decode
/// already did) and builds the chain: one node per request message in order, then the
/// response node (the head). The payload is consumed: its messages move into the nodes.
///
/// Checks run in the reference's order: unknown provider, unparseable request, invalid
/// reduced response.
pub fn build_chain_under(payload: TurnPayload, rules: &Rules) -> Result<Chain, TurnError> {
    let provider = Provider::from_name(&payload.provider)
        .ok_or_else(|| TurnError::UnsupportedProvider(payload.provider.clone()))?;
    let request = payload.request.into_chain_request(provider, rules)?;
    payload.response.validate()?;
    let mut response = payload.response;
    settle_response(&mut response, provider, rules);
    let thread_id = match payload.meta {
        Some(meta) if rules.node_metadata => meta.thread_id,
        _ => String::new(),
    };
    let turn = Turn {
        provider: provider.name(),
        agent: &payload.agent_name,
        thread_id,
        rules,
    };
    Ok(turn.assemble(request, response))
}

/// The response blocks as the rules hash them: without raw `content` where the rules keep
/// none, and with OpenAI items the reducer kept raw rewritten as tool blocks.
fn settle_response(response: &mut ChatResponse, provider: Provider, rules: &Rules) {
    let Some(blocks) = response.message.content.as_mut() else {
        return;
    };
    if !rules.raw_content {
        for block in blocks.iter_mut() {
            block.content = None;
        }
    }
    if provider == Provider::OpenAi {
        responses::rewrite_items(blocks, rules.rewritten_response_items);
    }
}

/// What every node of one turn shares.
struct Turn<'a> {
    provider: &'static str,
    agent: &'a str,
    thread_id: String,
    rules: &'a Rules,
}

impl Turn<'_> {
    /// Links the request messages and the response into a chain, each node hashed under the
    /// last node of the spine: an injected message hangs off the spine without extending
    /// it. Request nodes carry the request's model; the head carries the response's model,
    /// stop reason and usage.
    fn assemble(&self, request: ChatRequest, response: ChatResponse) -> Chain {
        let call = self
            .rules
            .node_metadata
            .then(|| classify(&request, &response.message));
        let mut hasher = NodeHasher::new(self.rules);
        let mut nodes: Vec<ChainNode> = Vec::with_capacity(request.messages.len() + 1);
        // The index of the spine's last node: the parent of whatever comes next.
        let mut spine: Option<usize> = None;
        let model = request.model;
        for message in request.messages {
            let injected = injected_kind(&message, &self.rules.injected);
            let bucket = self.bucket(message.role, message.content, model.clone());
            let parent = spine.map(|i| nodes[i].hash.clone());
            let node = self.node(&mut hasher, parent, bucket, String::new(), None);
            let kind = match injected {
                Some(name) => Some(NodeKind::Injected(name)),
                None => {
                    spine = Some(nodes.len());
                    call
                }
            };
            nodes.push(ChainNode { kind, ..node });
        }
        let head = self.bucket(
            response.message.role,
            response.message.content,
            response.model,
        );
        let parent = spine.map(|i| nodes[i].hash.clone());
        let head = self.node(
            &mut hasher,
            parent,
            head,
            response.stop_reason,
            response.usage,
        );
        nodes.push(ChainNode { kind: call, ..head });
        Chain { nodes }
    }

    fn bucket(&self, role: String, content: Option<Vec<ContentBlock>>, model: String) -> Bucket {
        Bucket {
            kind: MESSAGE_KIND.to_owned(),
            role,
            content,
            model,
            provider: self.provider.to_owned(),
            agent_name: self.agent.to_owned(),
        }
    }

    fn node(
        &self,
        hasher: &mut NodeHasher,
        parent: Option<String>,
        bucket: Bucket,
        stop_reason: String,
        usage: Option<Usage>,
    ) -> ChainNode {
        ChainNode {
            hash: hasher.hash(parent.as_deref(), &bucket),
            parent_hash: parent,
            bucket,
            kind: None,
            thread_id: self.thread_id.clone(),
            stop_reason,
            usage,
        }
    }
}
