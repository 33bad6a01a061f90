//! [`ReviewStore`] on an embedded SQLite database (bundled SQLite, WAL, foreign keys, busy timeout).
//!
//! Writes run in `BEGIN IMMEDIATE` transactions, so concurrent writers queue on the database lock instead
//! of failing on a lock upgrade; a busy database is retried, never reported to the user.

use crate::crowd::{self, Agreement, Ballot, Decision, UnitStatus, Vote};
use crate::error::{Result, ReviewError};
use crate::model::*;
use crate::placeholders;
use crate::schema::{self, APPLICATION_ID};
use crate::similarity::TrigramIndex;
use crate::store::{Added, ReviewStore, DEFAULT_TM_THRESHOLD};
use crate::xliff::{ImportCounts, ImportResult, ReturnedState, ReturnedTarget, UnitImport};
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior,
};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a connection waits for another writer before retrying.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many fuzzy memory matches a new unit is offered.
const FUZZY_SUGGESTIONS_PER_UNIT: usize = 3;

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A review store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: String,
    tm_cache: Arc<TmCache>,
}

/// One memory entry as fuzzy matching needs it.
struct TmRow {
    id: i64,
    key: String,
    chars: i64,
    source: String,
    target_key: String,
    origin_unit_id: Option<i64>,
}

/// The memory of one language pair with its trigram index, as of one state of the `tm` table.
struct TmSnapshot {
    state: (i64, i64, i64),
    rows: Vec<TmRow>,
    index: TrigramIndex,
}

/// Memory snapshots per language pair, kept across lookups so a fuzzy lookup does not scan the memory;
/// rebuilt when the memory changed (any process bumps `tm_version` with every memory write, and the
/// entry count and highest id are checked too).
#[derive(Default)]
struct TmCache {
    pairs: Mutex<HashMap<(String, String), Arc<TmSnapshot>>>,
}

impl TmCache {
    fn snapshot(&self, c: &Connection, src_lang: &str, tgt_lang: &str) -> Result<Arc<TmSnapshot>> {
        let state: (i64, i64, i64) = c.query_row(
            "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'tm_version'), 0),
                    count(*), coalesce(max(id), 0)
             FROM tm WHERE src_lang = ?1 AND tgt_lang = ?2",
            params![src_lang, tgt_lang],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let pair = (src_lang.to_string(), tgt_lang.to_string());
        let mut pairs = self.pairs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = pairs.get(&pair).filter(|s| s.state == state) {
            return Ok(Arc::clone(s));
        }
        let rows: Vec<TmRow> = c
            .prepare_cached(
                "SELECT id, source_key, source_chars, source, target_key, origin_unit_id FROM tm
                 WHERE src_lang = ?1 AND tgt_lang = ?2 ORDER BY id",
            )?
            .query_map(params![src_lang, tgt_lang], |r| {
                Ok(TmRow {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    chars: r.get(2)?,
                    source: r.get(3)?,
                    target_key: r.get(4)?,
                    origin_unit_id: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let index = TrigramIndex::build(rows.iter().map(|r| r.key.as_str()));
        let snapshot = Arc::new(TmSnapshot { state, rows, index });
        pairs.insert(pair, Arc::clone(&snapshot));
        Ok(snapshot)
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the review database at `path` and upgrades an older schema in place.
    /// Refuses, without changing anything, a foreign or corrupt file and a database from a newer oerkit.
    pub fn open(path: &Path) -> Result<Self> {
        let display = path.display().to_string();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| ReviewError::from(e).at(&display))?;
        Self::init(conn, display)
    }

    /// A private in-memory store (tests, dry runs).
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|e| ReviewError::from(e).at(":memory:"))?;
        Self::init(conn, ":memory:".into())
    }

    /// Opens a database and brings it to exactly `version` (older versions are kept for migration tests).
    #[doc(hidden)]
    pub fn open_at_version(path: &Path, version: i64) -> Result<Self> {
        let display = path.display().to_string();
        let conn = Connection::open(path).map_err(|e| ReviewError::from(e).at(&display))?;
        let mut store = SqliteStore {
            conn,
            path: display,
            tm_cache: Arc::default(),
        };
        store.configure(version).map_err(|e| e.at(&store.path))?;
        Ok(store)
    }

    fn init(conn: Connection, path: String) -> Result<Self> {
        let mut store = SqliteStore {
            conn,
            path,
            tm_cache: Arc::default(),
        };
        store
            .configure(schema::latest_version())
            .map_err(|e| e.at(&store.path))?;
        Ok(store)
    }

    /// The database file this store works on.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
    }

    /// Direct access for integrity checks in tests and tools.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn configure(&mut self, target_version: i64) -> Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // The first read of the header tells a foreign or corrupt file apart before anything is written.
        let (app_id, version) = read_header(&self.conn)?;
        let fresh = app_id == 0 && version == 0 && {
            let objects: i64 =
                self.conn
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            objects == 0
        };
        if !fresh && app_id != APPLICATION_ID {
            return Err(ReviewError::Foreign {
                path: self.path.clone(),
            });
        }
        if version > schema::latest_version() {
            return Err(ReviewError::TooNew {
                path: self.path.clone(),
                found: version,
                supported: schema::latest_version(),
            });
        }
        self.conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        if version < target_version {
            self.write(|tx| {
                // Another process may have migrated between our header read and taking the write lock.
                let (_, version) = read_header(tx)?;
                if version > schema::latest_version() {
                    return Err(ReviewError::TooNew {
                        path: String::new(),
                        found: version,
                        supported: schema::latest_version(),
                    });
                }
                if version < target_version {
                    tracing::info!(
                        from = version,
                        to = target_version,
                        "migrating review database"
                    );
                    schema::migrate(tx, version, target_version)?;
                    if version >= 1 && target_version >= 2 && version < 2 {
                        recompute_all_statuses(tx, "migration")?;
                    }
                    if version > 0 {
                        log_event(
                            tx,
                            "oerkit",
                            "schema_migrated",
                            None,
                            None,
                            None,
                            json!({"from": version, "to": target_version}),
                        )?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&self.conn).map_err(|e| e.at(&self.path))
    }

    /// Runs `f` in an IMMEDIATE transaction, retrying while the database is busy.
    fn write<T>(&mut self, mut f: impl FnMut(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut attempt = 0u32;
        loop {
            let result = (|| {
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            })();
            match result {
                Err(ReviewError::Database { source, .. }) if is_busy(&source) && attempt < 50 => {
                    attempt += 1;
                    tracing::debug!(attempt, "review database busy, retrying");
                    std::thread::sleep(Duration::from_millis(20 * u64::from(attempt.min(10))));
                }
                other => return other.map_err(|e| e.at(&self.path)),
            }
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn read_header(conn: &Connection) -> Result<(i64, i64)> {
    let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok((app_id, version))
}

fn log_event(
    tx: &Connection,
    actor: &str,
    kind: &str,
    job_id: Option<i64>,
    unit_id: Option<i64>,
    review_id: Option<i64>,
    payload: serde_json::Value,
) -> Result<i64> {
    tx.execute(
        "INSERT INTO events (at, actor, kind, job_id, unit_id, review_id, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![now(), actor, kind, job_id, unit_id, review_id, payload.to_string()],
    )?;
    Ok(tx.last_insert_rowid())
}

const JOB_COLUMNS: &str =
    "id, name, resource, src_lang, tgt_lang, licence, created_by, created_at, approvals_needed, import_sha256";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        name: r.get(1)?,
        resource: r.get(2)?,
        src_lang: r.get(3)?,
        tgt_lang: r.get(4)?,
        licence: r.get(5)?,
        created_by: r.get(6)?,
        created_at: r.get(7)?,
        approvals_needed: r.get(8)?,
        import_sha256: r.get(9)?,
    })
}

fn load_job(c: &Connection, job_id: i64) -> Result<Job> {
    c.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
        [job_id],
        job_from_row,
    )
    .optional()?
    .ok_or_else(|| ReviewError::NoJob(job_id.to_string()))
}

const SUGGESTION_COLUMNS: &str =
    "id, text, origin, engine, model_id, model_sha256, decoding_params, \
     prompt_template_version, time_taken_ms, quality_score, tm_entry_id, tm_score, created_at";

fn suggestion_from_row(r: &Row<'_>) -> rusqlite::Result<Suggestion> {
    let origin: String = r.get(2)?;
    let params: Option<String> = r.get(6)?;
    Ok(Suggestion {
        id: r.get(0)?,
        text: r.get(1)?,
        origin: SuggestionOrigin::parse(&origin).unwrap_or(SuggestionOrigin::Import),
        engine: r.get(3)?,
        model_id: r.get(4)?,
        model_sha256: r.get(5)?,
        decoding_params: params.and_then(|p| serde_json::from_str(&p).ok()),
        prompt_template_version: r.get(7)?,
        time_taken_ms: r.get(8)?,
        quality_score: r.get(9)?,
        tm_entry_id: r.get(10)?,
        tm_score: r.get(11)?,
        created_at: r.get(12)?,
    })
}

/// Primary first: exact memory match, latest machine output, fuzzy memory by score, imported text.
fn suggestion_rank(s: &Suggestion) -> (u8, i64) {
    match s.origin {
        SuggestionOrigin::Tm if s.tm_score.unwrap_or(0.0) >= 1.0 => (0, -s.id),
        SuggestionOrigin::Mt => (1, -s.id),
        SuggestionOrigin::Tm => (2, -((s.tm_score.unwrap_or(0.0) * 1e6) as i64)),
        SuggestionOrigin::Import => (3, s.id),
    }
}

fn load_suggestions(c: &Connection, unit_id: i64) -> Result<Vec<Suggestion>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {SUGGESTION_COLUMNS} FROM suggestions WHERE unit_id = ?1"
    ))?;
    let mut v = stmt
        .query_map([unit_id], suggestion_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    v.sort_by_key(suggestion_rank);
    Ok(v)
}

const REVIEW_COLUMNS: &str =
    "id, unit_id, suggestion_id, reviewer, action, final_text, comment, started_at, \
     submitted_at, active_ms, keystrokes, hter, reported_hter";

fn review_from_row(r: &Row<'_>) -> rusqlite::Result<Review> {
    let action: String = r.get(4)?;
    Ok(Review {
        id: r.get(0)?,
        unit_id: r.get(1)?,
        suggestion_id: r.get(2)?,
        reviewer: r.get(3)?,
        action: Action::parse(&action).unwrap_or(Action::Comment),
        final_text: r.get(5)?,
        comment: r.get(6)?,
        started_at: r.get(7)?,
        submitted_at: r.get(8)?,
        active_ms: r.get(9)?,
        keystrokes: r.get(10)?,
        hter: r.get(11)?,
        reported_hter: r.get(12)?,
    })
}

fn load_reviews(c: &Connection, unit_id: i64) -> Result<Vec<Review>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {REVIEW_COLUMNS} FROM reviews WHERE unit_id = ?1 ORDER BY id"
    ))?;
    let v = stmt
        .query_map([unit_id], review_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

fn ballots(reviews: &[Review]) -> Vec<Ballot> {
    reviews
        .iter()
        .filter_map(|r| {
            let vote = match r.action {
                Action::Accept | Action::Edit => {
                    Vote::Approve(r.final_text.clone().unwrap_or_default())
                }
                Action::Reject => Vote::Reject,
                Action::Comment => return None,
            };
            Some(Ballot {
                review_id: r.id,
                reviewer: r.reviewer.clone(),
                vote,
            })
        })
        .collect()
}

fn load_unit(c: &Connection, unit_id: i64) -> Result<UnitView> {
    let row = c
        .query_row(
            "SELECT u.id, u.job_id, j.name, u.ext_id, u.source, u.context, u.ord, u.status, u.approved_text, \
                    j.approvals_needed
             FROM units u JOIN jobs j ON j.id = u.job_id WHERE u.id = ?1",
            [unit_id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, u32>(9)?,
                ))
            },
        )
        .optional()?
        .ok_or(ReviewError::NoUnit(unit_id))?;
    let (id, job_id, job_name, ext_id, source, context, order, approvals_needed) = row;
    let suggestions = load_suggestions(c, id)?;
    let reviews = load_reviews(c, id)?;
    let decision = crowd::decide(
        &ballots(&reviews),
        approvals_needed,
        !suggestions.is_empty(),
    );
    let current_text = decision
        .leading_text()
        .map(str::to_string)
        .or_else(|| suggestions.first().map(|s| s.text.clone()));
    Ok(UnitView {
        id,
        job_id,
        job_name,
        ext_id,
        source,
        context,
        order,
        status: decision.status,
        approved_text: decision.approved_text.clone(),
        current_text,
        suggestions,
        candidates: decision.candidates,
        reviews,
    })
}

/// Brings the stored status of a unit (and its memory entry) in line with its reviews, logging any change.
fn refresh_unit(tx: &Connection, unit_id: i64, actor: &str) -> Result<(UnitStatus, Decision)> {
    let (job_id, approvals_needed, stored_status, stored_text, source, src_lang, tgt_lang): (
        i64,
        u32,
        String,
        Option<String>,
        String,
        String,
        String,
    ) = tx.query_row(
        "SELECT u.job_id, j.approvals_needed, u.status, u.approved_text, u.source, j.src_lang, j.tgt_lang
         FROM units u JOIN jobs j ON j.id = u.job_id WHERE u.id = ?1",
        [unit_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
    )?;
    let previous = UnitStatus::parse(&stored_status).unwrap_or(UnitStatus::Pending);
    let has_suggestion: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM suggestions WHERE unit_id = ?1)",
        [unit_id],
        |r| r.get(0),
    )?;
    let decision = crowd::decide(
        &ballots(&load_reviews(tx, unit_id)?),
        approvals_needed,
        has_suggestion,
    );
    if decision.status != previous || decision.approved_text != stored_text {
        tx.execute(
            "UPDATE units SET status = ?2, approved_text = ?3 WHERE id = ?1",
            params![unit_id, decision.status.as_str(), decision.approved_text],
        )?;
        log_event(
            tx,
            actor,
            "status_changed",
            Some(job_id),
            Some(unit_id),
            None,
            json!({"from": previous, "to": decision.status, "approved_text": decision.approved_text}),
        )?;
        // The memory holds exactly the currently approved text of each unit.
        let removed = tx.execute("DELETE FROM tm WHERE origin_unit_id = ?1", [unit_id])?;
        if removed > 0 || decision.approved_text.is_some() {
            // Tells every process's memory index (TmCache) that the memory changed.
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('tm_version', '1')
                 ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                [],
            )?;
        }
        if removed > 0 && decision.approved_text.is_none() {
            log_event(
                tx,
                actor,
                "tm_withdrawn",
                Some(job_id),
                Some(unit_id),
                None,
                json!({}),
            )?;
        }
        if let Some(target) = &decision.approved_text {
            let (source_key, map) = placeholders::normalise_source(&source);
            let target_key = placeholders::renumber(target, &map);
            tx.execute(
                "INSERT INTO tm (src_lang, tgt_lang, source_key, source_chars, source, target_key, origin_unit_id,
                                 created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    src_lang,
                    tgt_lang,
                    source_key,
                    source_key.chars().count() as i64,
                    source,
                    target_key,
                    unit_id,
                    now()
                ],
            )?;
            let entry = tx.last_insert_rowid();
            log_event(
                tx,
                actor,
                "tm_entry",
                Some(job_id),
                Some(unit_id),
                None,
                json!({"tm_entry_id": entry, "target": target}),
            )?;
        }
    }
    Ok((previous, decision))
}

fn recompute_all_statuses(tx: &Connection, actor: &str) -> Result<()> {
    let ids: Vec<i64> = tx
        .prepare("SELECT id FROM units ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in ids {
        refresh_unit(tx, id, actor)?;
    }
    Ok(())
}

fn tm_threshold(c: &Connection) -> Result<f64> {
    let v: Option<String> = c
        .query_row(
            "SELECT value FROM settings WHERE key = 'tm_threshold'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_TM_THRESHOLD))
}

fn tm_matches(
    c: &Connection,
    cache: &TmCache,
    src_lang: &str,
    tgt_lang: &str,
    source: &str,
    threshold: f64,
    limit: usize,
) -> Result<Vec<TmMatch>> {
    let (key, map) = placeholders::normalise_source(source);
    // ordinal → the queried source's own placeholder id, to carry placeholders over.
    let back: std::collections::BTreeMap<u32, u32> =
        map.iter().map(|(id, ord)| (*ord, *id)).collect();
    let key_chars = key.chars().count() as i64;
    let key_counts = crate::similarity::char_counts(&key);
    let threshold = threshold.clamp(0.0, 1.0);
    // Normalised Levenshtein similarity s = 1 - d / max(len) with d >= |len difference| bounds the lengths.
    let min_len = ((key_chars as f64) * threshold).floor() as i64;
    let max_len = if threshold > 0.0 {
        ((key_chars as f64) / threshold).ceil() as i64
    } else {
        i64::MAX
    };
    let memory = cache.snapshot(c, src_lang, tgt_lang)?;
    let candidates: Vec<&TmRow> = match memory.index.candidates(&key, threshold) {
        Some(positions) => positions.into_iter().map(|i| &memory.rows[i]).collect(),
        None => memory.rows.iter().collect(),
    };
    let mut out = Vec::new();
    for row in candidates {
        if row.chars < min_len || row.chars > max_len {
            continue;
        }
        let score = if row.key == key {
            1.0
        } else if crate::similarity::upper_bound(&key_counts, key_chars as usize, &row.key)
            < threshold
        {
            continue;
        } else {
            strsim::normalized_levenshtein(&key, &row.key)
        };
        if score < threshold {
            continue;
        }
        let target = placeholders::renumber(&row.target_key, &back);
        let placeholders_complete = placeholders::validate(source, &target).is_ok();
        out.push(TmMatch {
            entry_id: row.id,
            score,
            source: row.source.clone(),
            target,
            placeholders_complete,
            origin_unit_id: row.origin_unit_id,
        });
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.entry_id.cmp(&b.entry_id))
    });
    // One suggestion per distinct target.
    let mut seen = std::collections::HashSet::new();
    out.retain(|m| seen.insert(m.target.clone()));
    out.truncate(limit);
    Ok(out)
}

fn insert_suggestion(
    tx: &Connection,
    job_id: i64,
    unit_id: i64,
    s: &NewSuggestion,
    actor: &str,
) -> Result<i64> {
    tx.execute(
        "INSERT INTO suggestions (unit_id, text, origin, engine, model_id, model_sha256, decoding_params,
                                  prompt_template_version, time_taken_ms, quality_score, tm_entry_id, tm_score,
                                  created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            unit_id,
            s.text,
            s.origin.as_str(),
            s.engine,
            s.model_id,
            s.model_sha256,
            s.decoding_params.as_ref().map(|p| p.to_string()),
            s.prompt_template_version,
            s.time_taken_ms,
            s.quality_score,
            s.tm_entry_id,
            s.tm_score,
            now()
        ],
    )?;
    let id = tx.last_insert_rowid();
    log_event(
        tx,
        actor,
        "suggestion_added",
        Some(job_id),
        Some(unit_id),
        None,
        json!({"suggestion_id": id, "origin": s.origin, "text": s.text, "model_id": s.model_id,
               "tm_score": s.tm_score}),
    )?;
    Ok(id)
}

/// Validates and records one review inside `tx`; returns the outcome.
fn submit_in(
    tx: &Connection,
    review: &NewReview,
    reported_hter: Option<f64>,
) -> Result<ReviewOutcome> {
    let unit = load_unit(tx, review.unit_id)?;
    let reviewer = review.reviewer.trim();
    if reviewer.is_empty() {
        return Err(ReviewError::BadReview {
            unit: unit.id,
            message: "no reviewer name; pass --reviewer NAME or set OERKIT_REVIEWER".into(),
        });
    }
    let final_text = match review.action {
        Action::Accept => Some(
            review
                .text
                .clone()
                .or_else(|| unit.current_text.clone())
                .ok_or(ReviewError::NothingToAccept(unit.id))?,
        ),
        Action::Edit => Some(review.text.clone().ok_or_else(|| ReviewError::BadReview {
            unit: unit.id,
            message: "an edit needs the corrected text".into(),
        })?),
        Action::Reject | Action::Comment => None,
    };
    if let Some(text) = &final_text {
        placeholders::validate(&unit.source, text).map_err(|problems| {
            ReviewError::Placeholders {
                unit: unit.id,
                problems: Box::new(problems),
            }
        })?;
    }
    let comment = review
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if review.action == Action::Comment && comment.is_none() {
        return Err(ReviewError::BadReview {
            unit: unit.id,
            message: "a comment needs its text".into(),
        });
    }
    let primary = unit.primary_suggestion();
    let hter = match (primary, &final_text) {
        (Some(s), Some(t)) => crate::hter::hter(&s.text, t),
        _ => None,
    };
    tx.execute(
        "INSERT INTO reviews (unit_id, suggestion_id, reviewer, action, final_text, comment, started_at, submitted_at,
                              active_ms, keystrokes, hter, reported_hter)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            unit.id,
            primary.map(|s| s.id),
            reviewer,
            review.action.as_str(),
            final_text,
            comment,
            review.started_at,
            now(),
            review.active_ms,
            review.keystrokes,
            hter,
            reported_hter
        ],
    )?;
    let review_id = tx.last_insert_rowid();
    log_event(
        tx,
        reviewer,
        "review",
        Some(unit.job_id),
        Some(unit.id),
        Some(review_id),
        json!({"action": review.action, "final_text": final_text, "comment": comment, "hter": hter,
               "suggestion_id": primary.map(|s| s.id), "active_ms": review.active_ms,
               "keystrokes": review.keystrokes}),
    )?;
    let (previous_status, decision) = refresh_unit(tx, unit.id, reviewer)?;
    Ok(ReviewOutcome {
        review_id,
        unit_id: unit.id,
        status: decision.status,
        previous_status,
        approved_text: decision.approved_text,
        hter,
    })
}

fn add_units_in(
    tx: &Connection,
    cache: &TmCache,
    job: &Job,
    units: &[NewUnit],
    actor: &str,
    threshold: f64,
) -> Result<Added> {
    let mut next_ord: i64 = tx.query_row(
        "SELECT coalesce(max(ord), -1) + 1 FROM units WHERE job_id = ?1",
        [job.id],
        |r| r.get(0),
    )?;
    let mut added = Added {
        added: 0,
        already_present: 0,
    };
    for unit in units {
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM units WHERE job_id = ?1 AND ext_id = ?2)",
            params![job.id, unit.ext_id],
            |r| r.get(0),
        )?;
        if exists {
            added.already_present += 1;
            continue;
        }
        tx.execute(
            "INSERT INTO units (job_id, ext_id, source, context, ord) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![job.id, unit.ext_id, unit.source, unit.context, next_ord],
        )?;
        let unit_id = tx.last_insert_rowid();
        next_ord += 1;
        log_event(
            tx,
            actor,
            "unit_added",
            Some(job.id),
            Some(unit_id),
            None,
            json!({"ext_id": unit.ext_id, "source": unit.source}),
        )?;
        for s in &unit.suggestions {
            insert_suggestion(tx, job.id, unit_id, s, actor)?;
        }
        // Approved work is reused: memory matches join the machine suggestions (imports bring their own).
        if unit.imported_review.is_none()
            && !unit
                .suggestions
                .iter()
                .any(|s| s.origin == SuggestionOrigin::Tm)
        {
            let matches = tm_matches(
                tx,
                cache,
                &job.src_lang,
                &job.tgt_lang,
                &unit.source,
                threshold,
                FUZZY_SUGGESTIONS_PER_UNIT,
            )?;
            for m in matches {
                let s = NewSuggestion {
                    text: m.target,
                    origin: SuggestionOrigin::Tm,
                    engine: Some("translation-memory".into()),
                    model_id: None,
                    model_sha256: None,
                    decoding_params: None,
                    prompt_template_version: None,
                    time_taken_ms: None,
                    quality_score: None,
                    tm_entry_id: Some(m.entry_id),
                    tm_score: Some(m.score),
                };
                insert_suggestion(tx, job.id, unit_id, &s, actor)?;
            }
        }
        if let Some(imported) = &unit.imported_review {
            let primary = load_suggestions(tx, unit_id)?.into_iter().next();
            let action = match &primary {
                Some(s) if s.text == imported.final_text => Action::Accept,
                _ => Action::Edit,
            };
            let mut review = NewReview::new(unit_id, imported.reviewer.clone(), action);
            review.text = Some(imported.final_text.clone());
            submit_in(tx, &review, imported.reported_hter)?;
        } else {
            refresh_unit(tx, unit_id, actor)?;
        }
        added.added += 1;
    }
    Ok(added)
}

/// Decides and records one returned XLIFF target inside `tx` (see [`crate::xliff`] for the mapping).
fn import_one(
    tx: &Connection,
    job_id: i64,
    reviewer: &str,
    t: &ReturnedTarget,
) -> Result<UnitImport> {
    let unit = load_unit(tx, t.unit_id)?;
    if unit.job_id != job_id {
        return Err(ReviewError::Invalid(format!(
            "unit {} is not in job {job_id}; this is a bug in the XLIFF import",
            unit.id
        )));
    }
    let mut report = UnitImport {
        unit_id: unit.id,
        ext_id: t.ext_id.clone(),
        xliff_id: t.xliff_id.clone(),
        line: t.line,
        state: t.state_name.clone(),
        result: ImportResult::Untranslated,
        review_id: None,
        status: Some(unit.status),
        message: None,
    };
    let Some(text) = t.text.as_deref() else {
        return Ok(report);
    };
    let changed = unit.current_text.as_deref() != Some(text);
    let action = match t.state {
        ReturnedState::Untranslated => return Ok(report),
        ReturnedState::NeedsReview => {
            report.result = ImportResult::NeedsReview;
            return Ok(report);
        }
        ReturnedState::Translated if !changed => {
            report.result = ImportResult::Unchanged;
            return Ok(report);
        }
        ReturnedState::Translated => Action::Edit,
        ReturnedState::Confirmed if changed => Action::Edit,
        ReturnedState::Confirmed => Action::Accept,
    };
    let latest = unit
        .reviews
        .iter()
        .rev()
        .find(|r| r.reviewer == reviewer && r.action != Action::Comment);
    if latest.is_some_and(|r| r.final_text.as_deref() == Some(text)) {
        report.result = ImportResult::AlreadyRecorded;
        return Ok(report);
    }
    let mut review = NewReview::new(unit.id, reviewer, action);
    review.text = Some(text.to_string());
    match submit_in(tx, &review, None) {
        Ok(outcome) => {
            report.result = match action {
                Action::Accept => ImportResult::Accept,
                _ => ImportResult::Edit,
            };
            report.review_id = Some(outcome.review_id);
            report.status = Some(outcome.status);
        }
        // Both are refused before anything is written, so the rest of the file can still be recorded.
        Err(e @ (ReviewError::Placeholders { .. } | ReviewError::BadReview { .. })) => {
            report.result = ImportResult::Refused;
            report.message = Some(format!(
                "XLIFF unit {} (line {}): {e}; fix the target in the CAT tool and import the file again",
                t.xliff_id, t.line
            ));
        }
        Err(e) => return Err(e),
    }
    Ok(report)
}

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<Event> {
    let payload: String = r.get(7)?;
    Ok(Event {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        kind: r.get(3)?,
        job_id: r.get(4)?,
        unit_id: r.get(5)?,
        review_id: r.get(6)?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
    })
}

impl ReviewStore for SqliteStore {
    fn create_job(&mut self, job: &NewJob, units: &[NewUnit]) -> Result<(Job, Added)> {
        if job.name.trim().is_empty() {
            return Err(ReviewError::Invalid("a job needs a name".into()));
        }
        let cache = Arc::clone(&self.tm_cache);
        self.write(|tx| {
            let taken: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM jobs WHERE name = ?1)", [&job.name], |r| r.get(0))?;
            if taken {
                return Err(ReviewError::JobExists(job.name.clone()));
            }
            tx.execute(
                "INSERT INTO jobs (name, resource, src_lang, tgt_lang, licence, created_by, created_at,
                                   approvals_needed, import_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    job.name,
                    job.resource,
                    job.src_lang,
                    job.tgt_lang,
                    job.licence,
                    job.created_by,
                    now(),
                    job.approvals_needed.max(1),
                    job.import_sha256
                ],
            )?;
            let job_id = tx.last_insert_rowid();
            log_event(tx, &job.created_by, "job_created", Some(job_id), None, None, serde_json::to_value(job)
                .unwrap_or_default())?;
            let stored = load_job(tx, job_id)?;
            let added = add_units_in(tx, &cache, &stored, units, &job.created_by, tm_threshold(tx)?)?;
            Ok((stored, added))
        })
    }

    fn add_units(&mut self, job_id: i64, units: &[NewUnit], actor: &str) -> Result<Added> {
        let cache = Arc::clone(&self.tm_cache);
        self.write(|tx| {
            let job = load_job(tx, job_id)?;
            add_units_in(tx, &cache, &job, units, actor, tm_threshold(tx)?)
        })
    }

    fn job(&self, name_or_id: &str) -> Result<Job> {
        self.read(|c| {
            let by_name = c
                .query_row(
                    &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE name = ?1"),
                    [name_or_id],
                    job_from_row,
                )
                .optional()?;
            match (by_name, name_or_id.parse::<i64>()) {
                (Some(j), _) => Ok(j),
                (None, Ok(id)) => {
                    load_job(c, id).map_err(|_| ReviewError::NoJob(name_or_id.to_string()))
                }
                (None, Err(_)) => Err(ReviewError::NoJob(name_or_id.to_string())),
            }
        })
    }

    fn job_by_import(&self, sha256: &str) -> Result<Option<Job>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE import_sha256 = ?1 ORDER BY id LIMIT 1"
                ),
                [sha256],
                job_from_row,
            )
            .optional()?)
        })
    }

    fn status(&self) -> Result<Vec<JobStatus>> {
        self.read(|c| {
            let jobs: Vec<Job> = c
                .prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id"))?
                .query_map([], job_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for job in jobs {
                let counts = c.query_row(
                    "SELECT count(*),
                            coalesce(sum(EXISTS (SELECT 1 FROM suggestions s WHERE s.unit_id = u.id)), 0),
                            coalesce(sum(status = 'in_review'), 0), coalesce(sum(status = 'conflict'), 0),
                            coalesce(sum(status = 'approved'), 0), coalesce(sum(status = 'rejected'), 0)
                     FROM units u WHERE job_id = ?1",
                    [job.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )?;
                let reviews: u64 = c.query_row(
                    "SELECT count(*) FROM reviews r JOIN units u ON u.id = r.unit_id WHERE u.job_id = ?1",
                    [job.id],
                    |r| r.get(0),
                )?;
                let (units, suggested, in_review, conflict, approved, rejected) = counts;
                out.push(JobStatus { job, units, suggested, in_review, conflict, approved, rejected, reviews });
            }
            Ok(out)
        })
    }

    fn set_approvals_needed(&mut self, job_id: i64, approvals: u32, actor: &str) -> Result<()> {
        if approvals == 0 {
            return Err(ReviewError::Invalid(
                "a unit needs at least 1 approval".into(),
            ));
        }
        self.write(|tx| {
            let job = load_job(tx, job_id)?;
            tx.execute(
                "UPDATE jobs SET approvals_needed = ?2 WHERE id = ?1",
                params![job_id, approvals],
            )?;
            log_event(
                tx,
                actor,
                "approvals_needed_changed",
                Some(job_id),
                None,
                None,
                json!({"from": job.approvals_needed, "to": approvals}),
            )?;
            let ids: Vec<i64> = tx
                .prepare("SELECT id FROM units WHERE job_id = ?1 ORDER BY id")?
                .query_map([job_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for id in ids {
                refresh_unit(tx, id, actor)?;
            }
            Ok(())
        })
    }

    fn unit(&self, unit_id: i64) -> Result<UnitView> {
        self.read(|c| load_unit(c, unit_id))
    }

    fn units_of(&self, job_id: i64) -> Result<Vec<UnitRow>> {
        self.read(|c| {
            load_job(c, job_id)?;
            let v = c
                .prepare(
                    "SELECT id, ext_id, source, status FROM units WHERE job_id = ?1 ORDER BY ord",
                )?
                .query_map([job_id], |r| {
                    let status: String = r.get(3)?;
                    Ok(UnitRow {
                        id: r.get(0)?,
                        ext_id: r.get(1)?,
                        source: r.get(2)?,
                        status: UnitStatus::parse(&status).unwrap_or(UnitStatus::Pending),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(v)
        })
    }

    fn next_unit(&self, job_id: Option<i64>, reviewer: &str) -> Result<Option<UnitView>> {
        self.read(|c| {
            if let Some(job_id) = job_id {
                load_job(c, job_id)?;
            }
            let id: Option<i64> = c
                .query_row(
                    "SELECT u.id FROM units u
                     WHERE (?1 IS NULL OR u.job_id = ?1) AND u.status NOT IN ('approved', 'rejected')
                       AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.unit_id = u.id AND r.reviewer = ?2
                                       AND r.action != 'comment')
                     ORDER BY u.job_id, u.ord LIMIT 1",
                    params![job_id, reviewer],
                    |r| r.get(0),
                )
                .optional()?;
            id.map(|id| load_unit(c, id)).transpose()
        })
    }

    fn submit(&mut self, review: &NewReview) -> Result<ReviewOutcome> {
        self.write(|tx| submit_in(tx, review, None))
    }

    fn history(&self, unit_id: i64) -> Result<Vec<Event>> {
        self.read(|c| {
            load_unit(c, unit_id)?;
            let v = c
                .prepare(
                    "SELECT id, at, actor, kind, job_id, unit_id, review_id, payload FROM events
                          WHERE unit_id = ?1 ORDER BY id",
                )?
                .query_map([unit_id], event_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(v)
        })
    }

    fn job_events(&self, job_id: i64) -> Result<Vec<Event>> {
        self.read(|c| {
            load_job(c, job_id)?;
            let v = c
                .prepare(
                    "SELECT id, at, actor, kind, job_id, unit_id, review_id, payload FROM events
                          WHERE job_id = ?1 ORDER BY id",
                )?
                .query_map([job_id], event_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(v)
        })
    }

    fn tm_matches(
        &self,
        src_lang: &str,
        tgt_lang: &str,
        source: &str,
        threshold: f64,
        limit: usize,
    ) -> Result<Vec<TmMatch>> {
        self.read(|c| {
            tm_matches(
                c,
                &self.tm_cache,
                src_lang,
                tgt_lang,
                source,
                threshold,
                limit,
            )
        })
    }

    fn tm_threshold(&self) -> Result<f64> {
        self.read(tm_threshold)
    }

    fn set_tm_threshold(&mut self, threshold: f64, actor: &str) -> Result<()> {
        if !(0.0..=1.0).contains(&threshold) || threshold.is_nan() {
            return Err(ReviewError::Invalid(format!(
                "memory threshold {threshold} is outside 0–1 (0.75 means 75% similar)"
            )));
        }
        self.write(|tx| {
            let previous = tm_threshold(tx)?;
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('tm_threshold', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [threshold.to_string()],
            )?;
            log_event(
                tx,
                actor,
                "tm_threshold_changed",
                None,
                None,
                None,
                json!({"from": previous, "to": threshold}),
            )?;
            Ok(())
        })
    }

    fn agreement(&self, job_id: i64) -> Result<Agreement> {
        self.read(|c| {
            load_job(c, job_id)?;
            let ids: Vec<i64> = c
                .prepare("SELECT id FROM units WHERE job_id = ?1 ORDER BY ord")?
                .query_map([job_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut units = Vec::with_capacity(ids.len());
            for id in ids {
                units.push(ballots(&load_reviews(c, id)?));
            }
            Ok(crowd::agreement(&units))
        })
    }

    fn research_rows(&self, job_id: i64) -> Result<Vec<ResearchRow>> {
        self.read(|c| {
            let job = load_job(c, job_id)?;
            let mut stmt = c.prepare(
                "SELECT u.id, u.ext_id, u.source, u.status, s.text, s.origin, s.engine, s.model_id, s.model_sha256,
                        s.decoding_params, s.prompt_template_version, s.time_taken_ms, s.quality_score, s.tm_score,
                        r.action, r.final_text, r.comment, r.reviewer, r.started_at, r.submitted_at, r.active_ms,
                        r.keystrokes, r.hter, r.reported_hter
                 FROM reviews r JOIN units u ON u.id = r.unit_id LEFT JOIN suggestions s ON s.id = r.suggestion_id
                 WHERE u.job_id = ?1 ORDER BY r.id",
            )?;
            let rows = stmt
                .query_map([job_id], |r| {
                    let status: String = r.get(3)?;
                    let origin: Option<String> = r.get(5)?;
                    let params: Option<String> = r.get(9)?;
                    let action: String = r.get(14)?;
                    Ok(ResearchRow {
                        job: job.name.clone(),
                        unit_id: r.get(0)?,
                        unit_ext_id: r.get(1)?,
                        src_lang: job.src_lang.clone(),
                        tgt_lang: job.tgt_lang.clone(),
                        src: r.get(2)?,
                        unit_status: UnitStatus::parse(&status).unwrap_or(UnitStatus::Pending),
                        mt: r.get(4)?,
                        mt_origin: origin.as_deref().and_then(SuggestionOrigin::parse),
                        engine: r.get(6)?,
                        model_id: r.get(7)?,
                        model_sha256: r.get(8)?,
                        decoding_params: params.and_then(|p| serde_json::from_str(&p).ok()),
                        prompt_template_version: r.get(10)?,
                        mt_time_ms: r.get(11)?,
                        quality_score: r.get(12)?,
                        tm_score: r.get(13)?,
                        action: Action::parse(&action).unwrap_or(Action::Comment),
                        final_text: r.get(15)?,
                        comment: r.get(16)?,
                        reviewer: r.get(17)?,
                        started_at: r.get(18)?,
                        submitted_at: r.get(19)?,
                        active_ms: r.get(20)?,
                        keystrokes: r.get(21)?,
                        hter: r.get(22)?,
                        reported_hter: r.get(23)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn approved_pairs(&self, job_id: i64) -> Result<Vec<ApprovedPair>> {
        self.read(|c| {
            load_job(c, job_id)?;
            let v = c
                .prepare(
                    "SELECT u.id, u.ext_id, u.source, u.approved_text,
                            (SELECT max(e.at) FROM events e WHERE e.unit_id = u.id AND e.kind = 'status_changed')
                     FROM units u WHERE u.job_id = ?1 AND u.status = 'approved' AND u.approved_text IS NOT NULL
                     ORDER BY u.ord",
                )?
                .query_map([job_id], |r| {
                    Ok(ApprovedPair {
                        unit_id: r.get(0)?,
                        ext_id: r.get(1)?,
                        source: r.get(2)?,
                        target: r.get(3)?,
                        approved_at: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(v)
        })
    }

    fn import_returned(
        &mut self,
        job_id: i64,
        reviewer: &str,
        targets: &[ReturnedTarget],
        file: &Path,
        file_sha256: &str,
    ) -> Result<Vec<UnitImport>> {
        let reviewer = reviewer.trim();
        if reviewer.is_empty() {
            return Err(ReviewError::Invalid(
                "no reviewer name for the imported reviews; pass --reviewer NAME or set OERKIT_REVIEWER".into(),
            ));
        }
        self.write(|tx| {
            load_job(tx, job_id)?;
            let mut out = Vec::with_capacity(targets.len());
            for t in targets {
                out.push(import_one(tx, job_id, reviewer, t)?);
            }
            let counts = ImportCounts::of(&out);
            log_event(
                tx,
                reviewer,
                "xliff_imported",
                Some(job_id),
                None,
                None,
                json!({"file": file.display().to_string(), "sha256": file_sha256, "counts": counts}),
            )?;
            Ok(out)
        })
    }

    fn pseudonym_salt(&self) -> Result<String> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT value FROM settings WHERE key = 'pseudonym_salt'",
                [],
                |r| r.get(0),
            )?)
        })
    }
}
