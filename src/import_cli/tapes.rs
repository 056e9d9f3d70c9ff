//! `reel import --from-tapes`: a database of the reference copied row by row, every node
//! under its own hash (nothing is re-derived: a tapes node is already content-addressed),
//! sessions first so that every node can be linked to its session.

use std::io::Write;

use super::progress::Bar;
use super::{ImportError, ImportReport, Outcome};
use crate::store::{Store, StoreError, TAPES_PAGE, TapesDb};

/// What the copy did beyond the nodes' report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapesReport {
    pub sessions: u64,
    pub sessions_new: u64,
    pub parents_linked: u64,
    pub nodes_linked: u64,
}

fn database(e: StoreError) -> ImportError {
    ImportError::store(e)
}

/// Copies the reference database at `url` into `store`: its sessions, their fork parents,
/// then its nodes, page by page. The report counts nodes as turns are counted elsewhere:
/// accepted when inserted, duplicates when the org held the hash already.
pub async fn run(
    store: &Store,
    url: &str,
    progress: bool,
    out: &mut impl Write,
) -> Result<(ImportReport, TapesReport), ImportError> {
    let source = TapesDb::open(url).await.map_err(database)?;
    let result = copy(store, &source, progress).await;
    source.close().await;
    let (report, tapes) = result?;
    writeln!(
        out,
        "sessions {}: new {}, fork parents linked {}; nodes linked to sessions {}",
        tapes.sessions, tapes.sessions_new, tapes.parents_linked, tapes.nodes_linked
    )
    .map_err(ImportError::Output)?;
    writeln!(out, "{}", report.summary().replacen("turns", "nodes", 1))
        .map_err(ImportError::Output)?;
    out.flush().map_err(ImportError::Output)?;
    Ok((report, tapes))
}

async fn copy(
    store: &Store,
    source: &TapesDb,
    progress: bool,
) -> Result<(ImportReport, TapesReport), ImportError> {
    let (sessions, nodes) = source.counts().await.map_err(database)?;
    // Sessions are read twice (rows, then fork parents), nodes once.
    let bar = Bar::rows(2 * sessions + nodes, progress);
    let mut tapes = TapesReport::default();
    let mut report = ImportReport::default();

    for linking in [false, true] {
        let mut after = None;
        loop {
            let page = source.sessions(after, TAPES_PAGE).await.map_err(database)?;
            let Some(last) = page.last() else { break };
            after = Some(last.row.id);
            let written = if linking {
                store.link_tapes_parents(&page).await
            } else {
                store.import_tapes_sessions(&page).await
            }
            .map_err(database)?;
            if linking {
                tapes.parents_linked += written.linked;
            } else {
                tapes.sessions += page.len() as u64;
                tapes.sessions_new += written.inserted;
            }
            bar.advance(page.len() as u64);
            if (page.len() as u64) < TAPES_PAGE {
                break;
            }
        }
    }

    let mut after = None;
    loop {
        let page = source.nodes(after, TAPES_PAGE).await.map_err(database)?;
        let Some(last) = page.last() else { break };
        after = Some((last.row.org_id, last.row.hash.clone()));
        let written = store.import_tapes_nodes(&page).await.map_err(database)?;
        let count = page.len() as u64;
        for _ in 0..written.inserted {
            report.add(&Outcome::Accepted);
        }
        for _ in written.inserted..count {
            report.add(&Outcome::Duplicate { quarantined: false });
        }
        tapes.nodes_linked += written.linked;
        bar.advance(count);
        bar.turns(&report);
        if count < TAPES_PAGE {
            break;
        }
    }
    bar.finish();
    Ok((report, tapes))
}
