//! reel: an actor-based ingest server for the conversations of LLM coding agents.
//!
//! The crate is a library first; `src/main.rs` is a thin binary over it.
//! See `ARCHITECTURE.md` for the map of modules and the invariants they keep.

pub mod app;
pub mod capture;
pub mod chain_cli;
pub mod config;
pub mod cost;
pub mod gojson;
pub mod http;
pub mod import_cli;
pub mod keys_cli;
pub mod llm;
pub mod memory;
pub mod merkle;
pub mod raw_cli;
pub mod rederive_cli;
pub mod reprocess_cli;
pub mod sessions;
pub mod store;
pub mod telemetry;
pub mod turn;
pub mod wire;
