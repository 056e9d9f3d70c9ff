//! What `reel rederive` keeps while it rebuilds a database's chains under another rule set
//! (docs/storage.md#rederive): which sessions are rebuilt, and the nodes of their new
//! chains. Both are empty except while a rederive is unfinished; its last transaction
//! records the new rule set and clears them.

use sea_orm_migration::prelude::*;

use crate::script::{Script, scripted_migration};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000001_rederive"
    }
}

const UP_POSTGRES: Script = &[
    "CREATE TABLE rederive_sessions (session_id UUID PRIMARY KEY, rules TEXT NOT NULL)",
    "CREATE TABLE rederive_nodes (org_id UUID NOT NULL, hash TEXT NOT NULL, \
     PRIMARY KEY (org_id, hash))",
];

const UP_SQLITE: Script = &[
    "CREATE TABLE rederive_sessions (session_id BLOB PRIMARY KEY, rules TEXT NOT NULL)",
    "CREATE TABLE rederive_nodes (org_id BLOB NOT NULL, hash TEXT NOT NULL, \
     PRIMARY KEY (org_id, hash))",
];

const DOWN: Script = &["DROP TABLE rederive_nodes", "DROP TABLE rederive_sessions"];

scripted_migration! {
    up: (UP_POSTGRES, UP_SQLITE),
    down: (DOWN, DOWN),
}
