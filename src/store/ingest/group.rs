//! The turns of several sessions in one transaction, written phase by phase: the rows of
//! every session they name read in one statement, their nodes inserted in one, and their
//! session updates written with their raw rows in one (on Postgres; one each on SQLite). A
//! group of warm turns therefore costs three statements however many sessions it holds,
//! where turn by turn it would cost three per turn.
//!
//! Only turns of distinct sessions are written this way: a turn's session update then never
//! precedes another turn's read of the same row, so the order of phases changes nothing a
//! turn reads or writes. Locks keep the order of [`super`]: session keys, node keys, head
//! rows, and the session rows last.

use uuid::Uuid;

use super::{
    Clock, Committed, ConnectionTrait, NaturalKey, NewSession, Placed, PreparedTurn, RawRows, Sql,
    StoreError, finish_turn, insert_nodes, session_row,
};

/// Whether `turns` can be written phase by phase: several turns, of distinct sessions, and
/// none the fork parent of another (whose row that turn inserts or takes over).
pub(super) fn applies(turns: &[PreparedTurn<'_>]) -> bool {
    if turns.len() < 2 {
        return false;
    }
    let keys: Vec<NaturalKey<'_>> = turns.iter().map(PreparedTurn::key).collect();
    // Groups hold at most a few dozen sessions: pairwise comparison allocates nothing more.
    let distinct = keys
        .iter()
        .enumerate()
        .all(|(i, key)| !keys[..i].contains(key));
    distinct
        && turns.iter().all(|turn| {
            turn.parent_key()
                .is_none_or(|parent| !keys.contains(&parent))
        })
}

/// Writes `turns` (for which [`applies`] holds) phase by phase. `chunk_lock`: the advisory
/// lock the first statement takes.
pub(super) async fn write<C: ConnectionTrait>(
    txn: &C,
    turns: &[PreparedTurn<'_>],
    chunk_lock: Option<i64>,
) -> Result<Vec<Committed>, StoreError> {
    let mut clock = Clock::start();
    let now = clock.now;

    // 1. Every session and fork parent row the turns name, in one read; then the parents'
    // missing placeholders, one by one (rare), and the sessions' missing rows in one insert.
    let keys: Vec<NaturalKey<'_>> = turns
        .iter()
        .flat_map(|turn| turn.parent_key().into_iter().chain([turn.key()]))
        .collect();
    let mut found = session_row::find_all(txn, &keys, chunk_lock).await?;
    let mut parents = Vec::with_capacity(turns.len());
    for turn in turns {
        let id = match (&turn.parent, turn.parent_key()) {
            (Some(parent), Some(key)) => Some(match found.iter().find(|row| key.is_of(row)) {
                Some(row) => row.id,
                None => {
                    session_row::find_or_insert(txn, &turn.placeholder(parent, now), None)
                        .await?
                        .0
                }
            }),
            _ => None,
        };
        parents.push(id);
    }
    let mut placed: Vec<Option<Placed>> = turns
        .iter()
        .zip(&parents)
        .map(|(turn, &parent_id)| {
            let key = turn.key();
            let at = found.iter().position(|row| key.is_of(row))?;
            let row = found.swap_remove(at);
            Some(Placed {
                session_id: row.id,
                parent_id,
                existing: Some(row),
            })
        })
        .collect();
    let (at, new): (Vec<usize>, Vec<NewSession<'_>>) = placed
        .iter()
        .enumerate()
        .filter(|(_, placed)| placed.is_none())
        .map(|(i, _)| (i, turns[i].new_session(parents[i], now)))
        .unzip();
    if !new.is_empty() {
        let ids = session_row::insert_all(txn, &new).await?;
        for ((&i, row), id) in at.iter().zip(&new).zip(ids) {
            let (session_id, existing) = match id {
                Some(id) => (id, None),
                // Another transaction committed the key since the read.
                None => {
                    let existing = session_row::find(txn, &row.key).await?.ok_or_else(|| {
                        StoreError::InvalidChain(format!("session {:?} vanished", row.key))
                    })?;
                    (existing.id, Some(existing))
                }
            };
            placed[i] = Some(Placed {
                session_id,
                parent_id: parents[i],
                existing,
            });
        }
    }
    let placed: Vec<Placed> = placed.into_iter().flatten().collect();

    // 2. Every turn's new nodes in one insert (more when the bind limit asks).
    let with_ids: Vec<(&PreparedTurn<'_>, Uuid)> = turns
        .iter()
        .zip(&placed)
        .map(|(turn, placed)| (turn, placed.session_id))
        .collect();
    let inserted = insert_nodes(txn, &with_ids, &mut clock).await?;

    // 3. Heads, raw rows staged; every session update goes with the raw rows' statement.
    let mut raw_rows = RawRows::default();
    let mut outcomes = Vec::with_capacity(turns.len());
    let mut updates = Vec::with_capacity(turns.len());
    for (index, (turn, placed)) in turns.iter().zip(placed).enumerate() {
        let (committed, update) =
            finish_turn(txn, turn, index, placed, &inserted, now, &mut raw_rows).await?;
        outcomes.push(committed);
        updates.extend(update);
    }
    let updates = updates
        .into_iter()
        .map(|update| move |sql: &mut Sql| update.push(sql))
        .collect();
    for row in raw_rows.flush(txn, now, updates).await? {
        let outcome = &mut outcomes[row.turn];
        outcome.raw = Some(row.stored);
        outcome.raw_written = row.written;
    }
    Ok(outcomes)
}
