//! Black-box tests of the HTTP surface: the real server on port 0, real HTTP through `awc`,
//! real databases (SQLite always, Postgres when `TEST_DATABASE_URL` is set).
//!
//! One test binary, modules named after the feature they cover.

#[path = "../support/mod.rs"]
mod support;

mod captured;
mod child;
mod fixtures;
mod harness;

mod actors;
mod admin;
mod auth;
mod backpressure;
mod basics;
mod batch;
mod capture;
mod conformance;
mod console;
mod conversation;
mod heads;
mod hostile;
mod import;
mod ingest;
mod limits;
mod memory;
mod nodes;
mod openapi;
mod ordering;
mod process;
mod prune;
mod raw;
mod raw_turns;
mod rederive;
mod reprocess;
mod rows;
mod rules;
mod sessions;
mod timeouts;
