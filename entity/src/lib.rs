//! sea-orm entities of reel's schema.
