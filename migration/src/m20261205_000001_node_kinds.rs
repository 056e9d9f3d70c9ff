//! Node metadata of rule sets that have it (docs/storage.md#node-kinds): `nodes.node_kind`
//! (`main`, `unknown`, `offshoot:*`, `injected:*`) and `nodes.thread_id` (the harness
//! sub-thread of the turn that first stored the node, `meta.thread_id`). Neither is hashed;
//! both stay NULL under rules without node metadata (`tapes-f237b6e`) and for rows written
//! before. The org-scoped ancestry walk returns them too, since reads map its rows onto the
//! whole node.

use sea_orm_migration::prelude::*;

use crate::m20261125_000001_turn_heads::CREATE_SCOPED_FUNCTION;
use crate::script::{Script, scripted_migration};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000001_node_kinds"
    }
}

const DROP_FUNCTION: &str = "DROP FUNCTION IF EXISTS ancestry_chains_rows(UUID, TEXT[], INTEGER)";

/// The walk of `m20261125_000001_turn_heads`, with the two columns.
const CREATE_FUNCTION: &str = "
CREATE OR REPLACE FUNCTION ancestry_chains_rows(
    input_org_id UUID, input_hashes TEXT[], input_max_depth INTEGER
)
RETURNS TABLE (
    start_hash TEXT,
    org_id UUID,
    hash TEXT,
    parent_hash TEXT,
    bucket JSONB,
    type TEXT,
    role TEXT,
    content JSONB,
    model TEXT,
    provider TEXT,
    agent_name TEXT,
    stop_reason TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    total_tokens INTEGER,
    cache_creation_input_tokens INTEGER,
    cache_read_input_tokens INTEGER,
    total_duration_ns BIGINT,
    prompt_duration_ns BIGINT,
    project TEXT,
    created_at TIMESTAMPTZ,
    session_id UUID,
    is_turn_head BOOLEAN,
    node_kind TEXT,
    thread_id TEXT,
    depth INTEGER,
    has_usage BOOLEAN
)
LANGUAGE sql STABLE
AS $$
    WITH RECURSIVE walk AS (
        SELECT n.hash AS start_hash, n.org_id, n.hash, n.parent_hash, n.bucket, n.type, n.role,
               n.content, n.model, n.provider, n.agent_name, n.stop_reason, n.prompt_tokens,
               n.completion_tokens, n.total_tokens, n.cache_creation_input_tokens,
               n.cache_read_input_tokens, n.total_duration_ns, n.prompt_duration_ns, n.project,
               n.created_at, n.session_id, n.is_turn_head, n.node_kind, n.thread_id, 0 AS depth
        FROM nodes n
        WHERE n.org_id = input_org_id AND n.hash = ANY(input_hashes)
        UNION ALL
        SELECT w.start_hash, p.org_id, p.hash, p.parent_hash, p.bucket, p.type, p.role,
               p.content, p.model, p.provider, p.agent_name, p.stop_reason, p.prompt_tokens,
               p.completion_tokens, p.total_tokens, p.cache_creation_input_tokens,
               p.cache_read_input_tokens, p.total_duration_ns, p.prompt_duration_ns, p.project,
               p.created_at, p.session_id, p.is_turn_head, p.node_kind, p.thread_id, w.depth + 1
        FROM walk w
        JOIN nodes p ON p.org_id = input_org_id AND p.hash = w.parent_hash
        WHERE w.depth < input_max_depth
    )
    SELECT w.start_hash, w.org_id, w.hash, w.parent_hash, w.bucket, w.type, w.role, w.content,
           w.model, w.provider, w.agent_name, w.stop_reason, w.prompt_tokens,
           w.completion_tokens, w.total_tokens, w.cache_creation_input_tokens,
           w.cache_read_input_tokens, w.total_duration_ns, w.prompt_duration_ns, w.project,
           w.created_at, w.session_id, w.is_turn_head, w.node_kind, w.thread_id, w.depth,
           (w.prompt_tokens IS NOT NULL OR w.completion_tokens IS NOT NULL
            OR w.total_tokens IS NOT NULL OR w.cache_creation_input_tokens IS NOT NULL
            OR w.cache_read_input_tokens IS NOT NULL OR w.total_duration_ns IS NOT NULL
            OR w.prompt_duration_ns IS NOT NULL) AS has_usage
    FROM walk w
$$";

const UP_POSTGRES: Script = &[
    "ALTER TABLE nodes ADD COLUMN node_kind TEXT, ADD COLUMN thread_id TEXT",
    DROP_FUNCTION,
    CREATE_FUNCTION,
];

const DOWN_POSTGRES: Script = &[
    DROP_FUNCTION,
    CREATE_SCOPED_FUNCTION,
    "ALTER TABLE nodes DROP COLUMN node_kind, DROP COLUMN thread_id",
];

const UP_SQLITE: Script = &[
    "ALTER TABLE nodes ADD COLUMN node_kind TEXT",
    "ALTER TABLE nodes ADD COLUMN thread_id TEXT",
];

const DOWN_SQLITE: Script = &[
    "ALTER TABLE nodes DROP COLUMN thread_id",
    "ALTER TABLE nodes DROP COLUMN node_kind",
];

scripted_migration! {
    up: (UP_POSTGRES, UP_SQLITE),
    down: (DOWN_POSTGRES, DOWN_SQLITE),
}
