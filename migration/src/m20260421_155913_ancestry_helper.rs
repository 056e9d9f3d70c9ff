//! Reference migration 1776787153: `ancestry_chains_rows`, the recursive ancestry walk.
//!
//! This is the reference's function, joining on `hash` alone; reel replaces it with an
//! org-scoped one in its turn-heads migration. SQLite has no stored functions: the store
//! runs the same walk as a recursive CTE.

use sea_orm_migration::prelude::*;

use crate::script::run;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20260421_155913_ancestry_helper"
    }
}

/// Seeds `input_hashes` at depth 0 and follows `parent_hash` while `depth < input_max_depth`.
pub(crate) const CREATE_UNSCOPED_FUNCTION: &str = "
CREATE OR REPLACE FUNCTION ancestry_chains_rows(input_hashes TEXT[], input_max_depth INTEGER)
RETURNS TABLE (
    start_hash TEXT,
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
    depth INTEGER,
    has_usage BOOLEAN
)
LANGUAGE sql STABLE
AS $$
    WITH RECURSIVE walk AS (
        SELECT n.hash AS start_hash, n.hash, n.parent_hash, n.bucket, n.type, n.role, n.content,
               n.model, n.provider, n.agent_name, n.stop_reason, n.prompt_tokens,
               n.completion_tokens, n.total_tokens, n.cache_creation_input_tokens,
               n.cache_read_input_tokens, n.total_duration_ns, n.prompt_duration_ns, n.project,
               n.created_at, 0 AS depth
        FROM nodes n
        WHERE n.hash = ANY(input_hashes)
        UNION ALL
        SELECT w.start_hash, p.hash, p.parent_hash, p.bucket, p.type, p.role, p.content,
               p.model, p.provider, p.agent_name, p.stop_reason, p.prompt_tokens,
               p.completion_tokens, p.total_tokens, p.cache_creation_input_tokens,
               p.cache_read_input_tokens, p.total_duration_ns, p.prompt_duration_ns, p.project,
               p.created_at, w.depth + 1
        FROM walk w
        JOIN nodes p ON p.hash = w.parent_hash
        WHERE w.depth < input_max_depth
    )
    SELECT w.start_hash, w.hash, w.parent_hash, w.bucket, w.type, w.role, w.content, w.model,
           w.provider, w.agent_name, w.stop_reason, w.prompt_tokens, w.completion_tokens,
           w.total_tokens, w.cache_creation_input_tokens, w.cache_read_input_tokens,
           w.total_duration_ns, w.prompt_duration_ns, w.project, w.created_at, w.depth,
           (w.prompt_tokens IS NOT NULL OR w.completion_tokens IS NOT NULL
            OR w.total_tokens IS NOT NULL OR w.cache_creation_input_tokens IS NOT NULL
            OR w.cache_read_input_tokens IS NOT NULL OR w.total_duration_ns IS NOT NULL
            OR w.prompt_duration_ns IS NOT NULL) AS has_usage
    FROM walk w
$$";

pub(crate) const DROP_UNSCOPED_FUNCTION: &str =
    "DROP FUNCTION IF EXISTS ancestry_chains_rows(TEXT[], INTEGER)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &[CREATE_UNSCOPED_FUNCTION], &[]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &[DROP_UNSCOPED_FUNCTION], &[]).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
