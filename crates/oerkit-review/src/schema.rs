//! The SQLite schema and its versioned migrations. `PRAGMA user_version` holds the schema version and
//! `PRAGMA application_id` marks the file as an oerkit review database. Migrations only ever append:
//! a database written by an older oerkit is upgraded in place, in one transaction.

use rusqlite::Transaction;

/// `PRAGMA application_id` of every oerkit review database ("OERR").
pub const APPLICATION_ID: i64 = 0x4F45_5252;

/// One schema step: the version it brings the database to and its SQL.
pub struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

/// All migrations in order; the last version is the one this build writes.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: r#"
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    resource TEXT NOT NULL,
    src_lang TEXT NOT NULL,
    tgt_lang TEXT NOT NULL,
    licence TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    import_sha256 TEXT
);
CREATE INDEX jobs_import ON jobs(import_sha256);
CREATE TABLE units (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    ext_id TEXT NOT NULL,
    source TEXT NOT NULL,
    context TEXT NOT NULL DEFAULT '',
    ord INTEGER NOT NULL,
    UNIQUE (job_id, ext_id)
);
CREATE INDEX units_order ON units(job_id, ord);
CREATE TABLE suggestions (
    id INTEGER PRIMARY KEY,
    unit_id INTEGER NOT NULL REFERENCES units(id),
    text TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('mt', 'tm', 'import')),
    engine TEXT,
    model_id TEXT,
    model_sha256 TEXT,
    decoding_params TEXT,
    prompt_template_version TEXT,
    time_taken_ms INTEGER,
    quality_score REAL,
    tm_entry_id INTEGER,
    tm_score REAL,
    created_at TEXT NOT NULL
);
CREATE INDEX suggestions_unit ON suggestions(unit_id);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    unit_id INTEGER NOT NULL REFERENCES units(id),
    suggestion_id INTEGER REFERENCES suggestions(id),
    reviewer TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('accept', 'edit', 'reject', 'comment')),
    final_text TEXT,
    comment TEXT,
    started_at TEXT,
    submitted_at TEXT NOT NULL,
    active_ms INTEGER,
    keystrokes INTEGER,
    hter REAL,
    reported_hter REAL
);
CREATE INDEX reviews_unit ON reviews(unit_id, reviewer);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    job_id INTEGER REFERENCES jobs(id),
    unit_id INTEGER REFERENCES units(id),
    review_id INTEGER REFERENCES reviews(id),
    payload TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_unit ON events(unit_id);
CREATE INDEX events_job ON events(job_id);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER reviews_append_only_update BEFORE UPDATE ON reviews
    BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
CREATE TRIGGER reviews_append_only_delete BEFORE DELETE ON reviews
    BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
CREATE TRIGGER suggestions_append_only_update BEFORE UPDATE ON suggestions
    BEGIN SELECT RAISE(ABORT, 'suggestions are append-only'); END;
"#,
    },
    Migration {
        version: 2,
        sql: r#"
ALTER TABLE jobs ADD COLUMN approvals_needed INTEGER NOT NULL DEFAULT 1 CHECK (approvals_needed >= 1);
ALTER TABLE units ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE units ADD COLUMN approved_text TEXT;
CREATE INDEX units_status ON units(job_id, status, ord);
CREATE TABLE tm (
    id INTEGER PRIMARY KEY,
    src_lang TEXT NOT NULL,
    tgt_lang TEXT NOT NULL,
    source_key TEXT NOT NULL,
    source_chars INTEGER NOT NULL,
    source TEXT NOT NULL,
    target_key TEXT NOT NULL,
    origin_unit_id INTEGER UNIQUE REFERENCES units(id),
    created_at TEXT NOT NULL
);
CREATE INDEX tm_exact ON tm(src_lang, tgt_lang, source_key);
CREATE INDEX tm_length ON tm(src_lang, tgt_lang, source_chars);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO settings (key, value) VALUES ('pseudonym_salt', lower(hex(randomblob(16))));
INSERT INTO settings (key, value) VALUES ('tm_threshold', '0.75');
"#,
    },
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Applies every migration above `from` up to `to`, inside the caller's transaction.
pub fn migrate(tx: &Transaction<'_>, from: i64, to: i64) -> rusqlite::Result<()> {
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > from && m.version <= to)
    {
        tx.execute_batch(m.sql)?;
        tx.pragma_update(None, "user_version", m.version)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    Ok(())
}
