//! Content-addressed nodes: projection, canonical bytes, SHA-256 and chain building.
