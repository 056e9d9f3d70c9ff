//! reel's additions: turns counted by their head node, and an org-scoped ancestry walk.
//!
//! * `nodes.is_turn_head` marks a node that was ingested as the head (response) of a turn,
//!   so that a turn is counted exactly once even when its head first arrived as history of a
//!   later turn. Rows written by the reference that carry a stop reason or usage were heads.
//! * `ancestry_chains_rows(org, hashes, max_depth)` replaces the reference's function, whose
//!   joins on `hash` alone mixed the rows of orgs sharing a hash
//!   (docs/divergences.md#org-scoping).

use sea_orm_migration::prelude::*;

use crate::m20260421_155913_ancestry_helper::{CREATE_UNSCOPED_FUNCTION, DROP_UNSCOPED_FUNCTION};
use crate::script::{Script, scripted_migration};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000001_turn_heads"
    }
}

const MARK_EXISTING_HEADS: &str = "UPDATE nodes SET is_turn_head = TRUE
    WHERE stop_reason IS NOT NULL OR prompt_tokens IS NOT NULL
       OR completion_tokens IS NOT NULL OR total_tokens IS NOT NULL
       OR cache_creation_input_tokens IS NOT NULL OR cache_read_input_tokens IS NOT NULL
       OR total_duration_ns IS NOT NULL OR prompt_duration_ns IS NOT NULL";

/// The walk of the reference, with every join constrained to one org. It returns the whole
/// node row, so the store maps it straight onto the `nodes` entity.
pub(crate) const CREATE_SCOPED_FUNCTION: &str = "
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
               n.created_at, n.session_id, n.is_turn_head, 0 AS depth
        FROM nodes n
        WHERE n.org_id = input_org_id AND n.hash = ANY(input_hashes)
        UNION ALL
        SELECT w.start_hash, p.org_id, p.hash, p.parent_hash, p.bucket, p.type, p.role,
               p.content, p.model, p.provider, p.agent_name, p.stop_reason, p.prompt_tokens,
               p.completion_tokens, p.total_tokens, p.cache_creation_input_tokens,
               p.cache_read_input_tokens, p.total_duration_ns, p.prompt_duration_ns, p.project,
               p.created_at, p.session_id, p.is_turn_head, w.depth + 1
        FROM walk w
        JOIN nodes p ON p.org_id = input_org_id AND p.hash = w.parent_hash
        WHERE w.depth < input_max_depth
    )
    SELECT w.start_hash, w.org_id, w.hash, w.parent_hash, w.bucket, w.type, w.role, w.content,
           w.model, w.provider, w.agent_name, w.stop_reason, w.prompt_tokens,
           w.completion_tokens, w.total_tokens, w.cache_creation_input_tokens,
           w.cache_read_input_tokens, w.total_duration_ns, w.prompt_duration_ns, w.project,
           w.created_at, w.session_id, w.is_turn_head, w.depth,
           (w.prompt_tokens IS NOT NULL OR w.completion_tokens IS NOT NULL
            OR w.total_tokens IS NOT NULL OR w.cache_creation_input_tokens IS NOT NULL
            OR w.cache_read_input_tokens IS NOT NULL OR w.total_duration_ns IS NOT NULL
            OR w.prompt_duration_ns IS NOT NULL) AS has_usage
    FROM walk w
$$";

const UP_POSTGRES: Script = &[
    "ALTER TABLE nodes ADD COLUMN IF NOT EXISTS is_turn_head BOOLEAN NOT NULL DEFAULT FALSE",
    MARK_EXISTING_HEADS,
    DROP_UNSCOPED_FUNCTION,
    CREATE_SCOPED_FUNCTION,
];

const DOWN_POSTGRES: Script = &[
    "DROP FUNCTION IF EXISTS ancestry_chains_rows(UUID, TEXT[], INTEGER)",
    CREATE_UNSCOPED_FUNCTION,
    "ALTER TABLE nodes DROP COLUMN IF EXISTS is_turn_head",
];

const UP_SQLITE: Script = &[
    "ALTER TABLE nodes ADD COLUMN is_turn_head BOOLEAN NOT NULL DEFAULT FALSE",
    MARK_EXISTING_HEADS,
];

const DOWN_SQLITE: Script = &["ALTER TABLE nodes DROP COLUMN is_turn_head"];

scripted_migration! {
    up: (UP_POSTGRES, UP_SQLITE),
    down: (DOWN_POSTGRES, DOWN_SQLITE),
}
