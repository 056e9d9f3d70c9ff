//! The unique index of raw turns' request ids leads with `request_key` instead of `org_id`.
//!
//! The request-id lookup before every turn that carries one is a prepared statement. A
//! prepared statement's generic plan is made once, often while `raw_turns` is small and not
//! yet analyzed, and kept; with both this index and `raw_turns_org_idx` led by `org_id`,
//! that plan could read every raw turn of the org instead of one. Led by `request_key` and
//! looked up by it alone (the org is checked on the rows it returns), the lookup has one
//! index it can use. Uniqueness is the same pair of columns, so `ON CONFLICT (org_id,
//! request_key)` still names it.

use sea_orm_migration::prelude::*;

use crate::script::{Script, scripted_migration};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000001_request_key_first"
    }
}

const UP: Script = &[
    "DROP INDEX IF EXISTS raw_turns_request_uq",
    "CREATE UNIQUE INDEX IF NOT EXISTS raw_turns_request_uq ON raw_turns (request_key, org_id)
        WHERE request_key IS NOT NULL",
];

const DOWN: Script = &[
    "DROP INDEX IF EXISTS raw_turns_request_uq",
    "CREATE UNIQUE INDEX IF NOT EXISTS raw_turns_request_uq ON raw_turns (org_id, request_key)
        WHERE request_key IS NOT NULL",
];

scripted_migration! {
    up: (UP, UP),
    down: (DOWN, DOWN),
}
