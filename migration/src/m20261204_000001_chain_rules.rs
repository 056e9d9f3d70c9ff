//! The database records the rule set its chains are hashed by (docs/hashing.md#rule-sets).
//!
//! `settings` holds one row per setting the database keeps about itself; the first is
//! `chain_rules`. A database that already holds nodes was written before rule sets existed,
//! so its chains are `tapes-f237b6e` and the migration says so. An empty database gets no
//! row here: the first server or `reel migrate` records the configured rule set.

use sea_orm_migration::prelude::*;

use crate::script::{Script, scripted_migration};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000001_chain_rules"
    }
}

const CREATE: &str = "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)";

const RECORD_EXISTING: &str = "INSERT INTO settings (name, value)
    SELECT 'chain_rules', 'tapes-f237b6e' WHERE EXISTS (SELECT 1 FROM nodes)";

const UP: Script = &[CREATE, RECORD_EXISTING];

const DOWN: Script = &["DROP TABLE settings"];

scripted_migration! {
    up: (UP, UP),
    down: (DOWN, DOWN),
}
