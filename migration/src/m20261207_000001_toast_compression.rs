//! Postgres compresses a stored value over about 2 KB (TOAST). Its default, pglz, is slow
//! enough to be the largest single cost of a node insert; lz4 compresses as well for JSON
//! at a fraction of the CPU, and gives up on incompressible bytes (a `raw_response` still
//! gzip- or zstd-encoded) sooner. Raw request chunks are always zstd: compressing them
//! again only costs the attempt, so they are stored out of line uncompressed (`EXTERNAL`). Only
//! values written from now on are affected; lz4 needs a server built with it (PostgreSQL 14
//! or later, as Debian's and the official images are), and without it the columns keep pglz.
//! SQLite stores values as given: nothing to change there.

use sea_orm_migration::prelude::*;

use crate::script::{Script, scripted_migration};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000001_toast_compression"
    }
}

const UP_POSTGRES: Script = &[
    "ALTER TABLE raw_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
    "DO $$ BEGIN
       IF EXISTS (SELECT 1 FROM pg_settings
                  WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
         ALTER TABLE nodes ALTER COLUMN bucket SET COMPRESSION lz4,
                           ALTER COLUMN content SET COMPRESSION lz4;
         ALTER TABLE raw_turns ALTER COLUMN response SET COMPRESSION lz4,
                               ALTER COLUMN meta SET COMPRESSION lz4,
                               ALTER COLUMN envelope SET COMPRESSION lz4,
                               ALTER COLUMN request_list SET COMPRESSION lz4,
                               ALTER COLUMN raw_response SET COMPRESSION lz4;
       END IF;
     END $$",
];

const DOWN_POSTGRES: Script = &[
    "ALTER TABLE raw_chunks ALTER COLUMN data SET STORAGE EXTENDED",
    "DO $$ BEGIN
       IF EXISTS (SELECT 1 FROM pg_settings
                  WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
         ALTER TABLE nodes ALTER COLUMN bucket SET COMPRESSION DEFAULT,
                           ALTER COLUMN content SET COMPRESSION DEFAULT;
         ALTER TABLE raw_turns ALTER COLUMN response SET COMPRESSION DEFAULT,
                               ALTER COLUMN meta SET COMPRESSION DEFAULT,
                               ALTER COLUMN envelope SET COMPRESSION DEFAULT,
                               ALTER COLUMN request_list SET COMPRESSION DEFAULT,
                               ALTER COLUMN raw_response SET COMPRESSION DEFAULT;
       END IF;
     END $$",
];

const NOTHING: Script = &[];

scripted_migration! {
    up: (UP_POSTGRES, NOTHING),
    down: (DOWN_POSTGRES, NOTHING),
}
