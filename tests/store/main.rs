//! Black-box tests of `reel::store` against real databases: SQLite always, Postgres too when
//! `TEST_DATABASE_URL` is set (one fresh database per test and backend).

#[path = "../support/mod.rs"]
mod support;

mod atomicity;
mod concurrency;
mod connect;
mod fixtures;
mod identity;
mod ingest;
mod keys;
mod migrations;
mod orgs;
mod parents;
mod raw;
mod raw_prune;
mod raw_storage;
mod reads;
mod rules;
mod statements;
