//! `GET /tenants/current/export`: every row of the tenant, as NDJSON, streamed from the
//! database with bounded memory.
//!
//! The tables are found from the catalog, not listed here: the tenant row itself and
//! every table with a `tenant_id` column the runtime role may read, with the columns
//! it may read. A new module's table is exported without new code, and credentials
//! stay out by the same privileges that keep requests from reading them (invariant 6:
//! `secret_hash` of api_keys is not granted, the job queue and `auth.*` not at all);
//! a column named for a hash, a secret or a password is left out even if granted.
//!
//! Each table is read through a cursor in the request's own transaction, under its
//! row-level security (so only the tenant's rows can appear), `BATCH` rows at a time:
//! the server holds one batch, and the next is fetched only when the client has taken
//! the previous one. Store-scoped tables (whose policies require the context's store)
//! are read once per store of the tenant, with that store as the context.

use futures_util::stream::{self, Stream};
use uuid::Uuid;

use crate::{error::Error, platform::db::RequestTx};

/// Rows per FETCH: one round trip per batch, one batch in memory.
const BATCH: i64 = 500;

/// The cursor's name (one at a time in the transaction).
const CURSOR: &str = "rowguard_export";

/// One cursor's worth of the export: a table, in a store for store-scoped ones.
#[derive(Debug, Clone)]
struct Section {
    table: String,
    /// `SELECT row_to_json(x)::text FROM (SELECT <columns> FROM <table>) AS x`, from
    /// the catalog (identifiers quoted by PostgreSQL's `format('%I')`).
    query: String,
    store: Option<Uuid>,
}

/// The exportable tables: (name, the query of its rows as JSON text, whether its
/// policies require the context's store), the tenant row first.
async fn tables(tx: &RequestTx) -> Result<Vec<(String, String, bool)>, Error> {
    let statement = tx
        .prepare(
            "SELECT c.relname::text AS name,
                    format('SELECT pg_catalog.row_to_json(x)::text FROM (SELECT %s FROM %I.%I) AS x',
                           string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
                           n.nspname, c.relname) AS query,
                    EXISTS (SELECT 1 FROM pg_catalog.pg_policy AS p
                            WHERE p.polrelid = c.oid
                              AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) LIKE '%current_store_id()%')
                        AS store_scoped
             FROM pg_catalog.pg_class AS c
             JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
             JOIN pg_catalog.pg_attribute AS a
               ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
               AND (c.relname = 'tenants'
                    OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS t
                               WHERE t.attrelid = c.oid AND t.attname = 'tenant_id'
                                 AND NOT t.attisdropped))
               AND pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT')
               AND a.attname !~ '(hash|secret|password)'
             GROUP BY c.oid, n.nspname, c.relname
             ORDER BY c.relname <> 'tenants', c.relname",
        )
        .await?;
    tx.query(&statement, &[])
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("name")?,
                row.try_get("query")?,
                row.try_get("store_scoped")?,
            ))
        })
        .collect()
}

/// Every section of the tenant's export, in order.
async fn sections(tx: &RequestTx) -> Result<Vec<Section>, Error> {
    let tables = tables(tx).await?;
    let statement = tx.prepare("SELECT id FROM stores ORDER BY id").await?;
    let stores: Vec<Uuid> = tx
        .query(&statement, &[])
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut sections = Vec::new();
    for (table, query, store_scoped) in tables {
        if store_scoped {
            sections.extend(stores.iter().map(|store| Section {
                table: table.clone(),
                query: query.clone(),
                store: Some(*store),
            }));
        } else {
            sections.push(Section {
                table,
                query,
                store: None,
            });
        }
    }
    Ok(sections)
}

/// Where the stream is.
struct State {
    tx: Option<RequestTx>,
    sections: std::vec::IntoIter<Section>,
    /// The section whose cursor is open, if any.
    current: Option<Section>,
}

/// The export of the context's tenant, read through `tx` (an authorized request's,
/// which it finishes): the sections are found now, so a failure here is still an
/// error response; the rows are read as the stream is polled. A failure mid-stream
/// ends the body early (the client sees a truncated chunked body) and is logged.
pub async fn stream(
    tx: RequestTx,
) -> Result<impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static, Error> {
    let sections = match sections(&tx).await {
        Ok(sections) => sections,
        Err(error) => {
            tx.rollback().await;
            return Err(error);
        }
    };
    let state = State {
        tx: Some(tx),
        sections: sections.into_iter(),
        current: None,
    };
    Ok(stream::try_unfold(state, |mut state| async move {
        match next_batch(&mut state).await {
            Ok(Some(batch)) => Ok(Some((batch, state))),
            Ok(None) => Ok(None),
            Err(error) => {
                tracing::error!(%error, "the tenant export failed mid-stream");
                if let Some(tx) = state.tx.take() {
                    tx.rollback().await;
                }
                Err(std::io::Error::other("the export failed"))
            }
        }
    }))
}

/// The next non-empty batch of lines, or `None` at the end (the transaction is then
/// finished: it only read, so it is rolled back).
async fn next_batch(state: &mut State) -> Result<Option<Vec<u8>>, Error> {
    loop {
        let Some(tx) = state.tx.as_ref() else {
            return Ok(None);
        };
        let Some(section) = state.current.clone() else {
            match state.sections.next() {
                Some(section) => {
                    open(tx, &section).await?;
                    state.current = Some(section);
                    continue;
                }
                None => {
                    if let Some(tx) = state.tx.take() {
                        tx.rollback().await;
                    }
                    return Ok(None);
                }
            }
        };
        let rows = tx
            .query(&format!("FETCH {BATCH} FROM {CURSOR}"), &[])
            .await?;
        if rows.is_empty() {
            tx.batch_execute(&format!("CLOSE {CURSOR}")).await?;
            state.current = None;
            continue;
        }
        let prefix = format!(
            "{{\"type\":{},\"row\":",
            serde_json::Value::String(section.table.clone())
        );
        let mut lines = Vec::with_capacity(rows.len() * 256);
        for row in &rows {
            let json: &str = row.try_get(0)?;
            lines.extend_from_slice(prefix.as_bytes());
            lines.extend_from_slice(json.as_bytes());
            lines.extend_from_slice(b"}\n");
        }
        return Ok(Some(lines));
    }
}

/// Opens the cursor of `section`, with its store as the context for store-scoped
/// tables (transaction-local, like every setting of the context).
async fn open(tx: &RequestTx, section: &Section) -> Result<(), Error> {
    if let Some(store) = section.store {
        let statement = tx
            .prepare("SELECT pg_catalog.set_config('app.store_id', $1, true)")
            .await?;
        tx.query(&statement, &[&store.to_string()]).await?;
    }
    tx.batch_execute(&format!(
        "DECLARE {CURSOR} NO SCROLL CURSOR FOR {}",
        section.query
    ))
    .await
}
