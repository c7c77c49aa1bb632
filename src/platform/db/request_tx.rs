//! The request transaction: the one place where a request's tenant context is set.
//!
//! [`Database::begin`] takes a pooled connection and sends, in one round trip, the
//! context with `BEGIN` (see [`context_commands`]: `app.tenant_id`, `app.user_id`,
//! `app.store_id` and `app.session_id` set transaction-locally, then the switch to the pool's runtime role,
//! `rowguard_api`, or `rowguard_auth` for the credential flows), pipelined with the
//! opening statement, `src/platform/db/begin_request.sql` (read it there), which answers
//! under row-level security whether the session, the tenant, the membership, the store
//! and the permission check out. Everything the handler runs afterwards is filtered by
//! row-level security.
//!
//! The context dies with the transaction, and a connection goes back to the pool only
//! after COMMIT or ROLLBACK: a [`RequestTx`] dropped without either (an early return,
//! a panic, a client that went away mid-request) takes its connection out of the pool
//! and closes it, so PostgreSQL rolls the transaction back and no later request can
//! ever run inside it (docs/design.md invariant 1).

use std::sync::LazyLock;

use deadpool_postgres::Object;
use tokio_postgres::{Row, Statement, ToStatement, types::ToSql};
use uuid::Uuid;

use super::{Database, RuntimeRole};
use crate::{error::Error, platform::auth::api_key::PresentedKey};

/// The opening statement: answers the access questions, as the runtime role. Its
/// file is mostly comments; the text prepared is without them, because the statement
/// cache of a pooled connection finds the prepared statement by its text, hashing and
/// comparing all of it on every request: 4 KB instead of 10 saved 17-20 thousand
/// instructions per request, 4-7% of the server's (`bench/run.sh --instructions`;
/// `--profile` showed the hashing and the comparison).
pub(super) static BEGIN_REQUEST: LazyLock<String> =
    LazyLock::new(|| without_comments(include_str!("begin_request.sql")));

/// `sql` without its `--` comments and with each run of whitespace made one space,
/// outside single-quoted literals (kept as they are, `''` included). Enough for the
/// statements of this crate's own files, which use neither `/* */` comments nor
/// dollar quoting (a test checks the opening statement's).
fn without_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut in_literal = false;
    while let Some(c) = chars.next() {
        if in_literal {
            out.push(c);
            if c == '\'' {
                in_literal = false;
            }
        } else if c == '\'' {
            in_literal = true;
            out.push(c);
        } else if c == '-' && chars.peek() == Some(&'-') {
            // To the end of the line, which the whitespace below then stands for.
            for skipped in chars.by_ref() {
                if skipped == '\n' {
                    break;
                }
            }
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// Sets the context from an API key's row: prepared once per connection (a statement
/// in the simple protocol's text would be parsed and planned on every request).
pub(super) const API_KEY_PRINCIPAL: &str = "SELECT pg_catalog.set_config('app.tenant_id', p.tenant_id::text, true), \
     pg_catalog.set_config('app.user_id', p.user_id::text, true) \
     FROM app.api_key_principal($1, $2) AS p";

/// Who is acting, where, and what the operation requires.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub tenant_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub store_id: Option<Uuid>,
    /// The permission the operation declares; `None` for operations open to any
    /// active member (or to anyone, for public ones).
    pub permission: Option<&'static str>,
    /// Whether to list the user's effective permissions in [`Access::permissions`].
    pub with_permissions: bool,
    /// The store whose store-scoped roles count toward `permission` and
    /// [`Access::permissions`]: the store a store-scoped operation acts in. `None`:
    /// only tenant-wide roles grant, whatever store `store_id` names.
    pub grant_store_id: Option<Uuid>,
    /// The session (refresh-token family) of the caller's access token, checked alive
    /// in [`Access::session_active`]; `None` for flows that start from no token.
    pub session_id: Option<Uuid>,
    /// The feature of the plan the operation declares, answered in
    /// [`Access::feature_in_plan`]; `None`: none.
    pub feature: Option<&'static str>,
    /// The operation is gated by the plan (it declares a feature or creates a limited
    /// thing): [`Access::payment_required`] says whether the subscription is unpaid.
    pub gated: bool,
    /// The API key the request presents: then `tenant_id` and `user_id` are `None`,
    /// and the context is set from the key's row (see [`context_commands`]).
    pub api_key: Option<PresentedKey>,
}

impl Scope {
    /// No tenant, no user: public operations. Tenant-scoped rows are invisible.
    pub fn anonymous() -> Self {
        Scope::default()
    }

    pub fn tenant(tenant_id: Uuid, user_id: Uuid) -> Self {
        Scope {
            tenant_id: Some(tenant_id),
            user_id: Some(user_id),
            ..Scope::default()
        }
    }

    /// Acts in `store_id`: it must be reachable, it is the context of store-scoped
    /// tables, and roles scoped to it count.
    pub fn in_store(mut self, store_id: Option<Uuid>) -> Self {
        self.store_id = store_id;
        self.grant_store_id = store_id;
        self
    }

    pub fn requiring(mut self, permission: &'static str) -> Self {
        self.permission = Some(permission);
        self
    }

    pub fn with_permissions(mut self) -> Self {
        self.with_permissions = true;
        self
    }

    pub fn in_session(mut self, session_id: Uuid) -> Self {
        self.session_id = Some(session_id);
        self
    }
}

/// What the opening statement found out about the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The scope's session is alive (true when the scope names none).
    pub session_active: bool,
    pub tenant_active: bool,
    pub member_active: bool,
    /// `active`, `suspended`, or `None` when the user is not a member of the tenant.
    pub member_status: Option<String>,
    pub store_accessible: bool,
    pub permission_granted: bool,
    /// The permission is held tenant-wide or through a role in at least one store.
    pub permission_in_some_store: bool,
    /// The user's effective permissions (in the store, when one was named); `None`
    /// unless the scope asked for them (`Scope::with_permissions`).
    pub permissions: Option<Vec<String>>,
    /// The tenant's plan has the scope's feature (true when it names none).
    pub feature_in_plan: bool,
    /// The scope is gated and the tenant's subscription is unpaid.
    pub payment_required: bool,
    /// The tenant and user the request acts as: the scope's, or for an API key its
    /// row's (`None` when the key is not live).
    pub tenant_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
}

impl Access {
    /// The caller's effective permissions; an internal error (a 500: fail closed) if
    /// the operation did not declare `reading_held_permissions()`.
    pub fn held_permissions(&self) -> Result<&[String], Error> {
        self.permissions.as_deref().ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "the operation reads held permissions without declaring reading_held_permissions()"
            ))
        })
    }

    /// The tenant the request acts in (an authorized request always has one).
    pub fn tenant(&self) -> Result<Uuid, Error> {
        self.tenant_id.ok_or(Error::Unauthenticated)
    }

    /// The user the request acts as: the token's, or the key's creator.
    pub fn user(&self) -> Result<Uuid, Error> {
        self.user_id.ok_or(Error::Unauthenticated)
    }

    fn from_row(row: &Row) -> Result<Access, Error> {
        Ok(Access {
            session_active: row.try_get("session_active")?,
            tenant_active: row.try_get("tenant_active")?,
            member_active: row.try_get("member_active")?,
            member_status: row.try_get("member_status")?,
            store_accessible: row.try_get("store_accessible")?,
            permission_granted: row.try_get("permission_granted")?,
            permission_in_some_store: row.try_get("permission_in_some_store")?,
            permissions: row.try_get("permissions")?,
            feature_in_plan: row.try_get("feature_in_plan")?,
            payment_required: row.try_get("payment_required")?,
            tenant_id: row.try_get("tenant_id")?,
            user_id: row.try_get("user_id")?,
        })
    }
}

/// An open request transaction, running as the pool's runtime role with the request's
/// context.
pub struct RequestTx {
    /// `None` once committed or rolled back.
    connection: Option<Object>,
}

/// `BEGIN` and the context of `scope`, as one simple-protocol message: `SET LOCAL`
/// (transaction-local, so COMMIT or ROLLBACK clears it and a pooled connection carries
/// nothing to the next request: invariant 1) of the four settings (the session's only
/// shows the opening statement the row of `public.sessions` it names), then of the role,
/// last, so that everything after it runs under row-level security (invariant 2); a
/// role the login role cannot become fails the transaction. An empty setting reads as
/// no context (`app.setting_uuid`: fail closed).
///
/// The values are written into the text, which is safe by their type alone: a
/// [`Uuid`] prints as 36 characters of hex digits and hyphens, and the role is one of
/// two constants. Utility commands cannot take parameters; as text they cost no
/// statement of their own (a prepared `SELECT set_config(...)` made every request a
/// tenth slower on the list benchmark, bench/compare_lists.py).
///
/// With an API key, the tenant and user are left empty here and, once the role is the
/// runtime role, set from what `app.api_key_principal` answers for the key
/// ([`API_KEY_PRINCIPAL`], pipelined between these commands and the opening
/// statement); a key that is not live answers no row, and the context stays empty (no
/// tenant: refused by the opening statement).
fn context_commands(scope: &Scope, role: RuntimeRole) -> String {
    let text = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    format!(
        "BEGIN; SET LOCAL app.tenant_id = '{}'; SET LOCAL app.user_id = '{}'; \
         SET LOCAL app.store_id = '{}'; SET LOCAL app.session_id = '{}'; SET LOCAL ROLE {}",
        text(scope.tenant_id),
        text(scope.user_id),
        text(scope.store_id),
        text(scope.session_id),
        role.name()
    )
}

impl Database {
    /// Opens the request transaction for `scope` in one round trip (see the module
    /// documentation). The caller decides what the returned [`Access`] allows.
    pub async fn begin(&self, scope: &Scope) -> Result<(RequestTx, Access), Error> {
        let connection = self.pool.get().await?;
        // Prepared once per connection and cached, so a request costs no Parse. The
        // opening statement names objects only the runtime role may look up, so it
        // was prepared as that role when the connection was made (`Database::connect`).
        let opening = connection.prepare_cached(&BEGIN_REQUEST).await?;
        let begin = context_commands(scope, self.runtime_role);
        // From here the connection may be inside a transaction: RequestTx's Drop
        // discards it unless it is committed or rolled back.
        let tx = RequestTx {
            connection: Some(connection),
        };
        let access = {
            let client = tx.connection();
            let api_key = scope.api_key.as_ref().map(|key| key.id);
            let params: [&(dyn ToSql + Sync); 10] = [
                &scope.tenant_id,
                &scope.user_id,
                &scope.store_id,
                &scope.permission,
                &scope.with_permissions,
                &scope.session_id,
                &scope.grant_store_id,
                &scope.feature,
                &scope.gated,
                &api_key,
            ];
            // Polled together, the two requests are written back to back without
            // waiting for BEGIN's answer: one round trip. `biased`: polled in this order,
            // so BEGIN is queued first (each request is queued on its first poll).
            let row = match &scope.api_key {
                None => {
                    let (begun, row) = tokio::join!(
                        biased;
                        client.batch_execute(&begin),
                        client.query_one(&opening, &params)
                    );
                    begun?;
                    row?
                }
                Some(key) => {
                    // Prepared with the opening statement when the connection was made.
                    let principal = client.prepare_cached(API_KEY_PRINCIPAL).await?;
                    let hash: &[u8] = &key.hash;
                    let principal_params: [&(dyn ToSql + Sync); 2] = [&key.id, &hash];
                    let (begun, principal, row) = tokio::join!(
                        biased;
                        client.batch_execute(&begin),
                        client.query(&principal, &principal_params),
                        client.query_one(&opening, &params)
                    );
                    begun?;
                    principal?;
                    row?
                }
            };
            Access::from_row(&row)?
        };
        Ok((tx, access))
    }
}

impl Database {
    /// Opens a transaction with the context of `scope` and no opening statement (one
    /// round trip): for work that is not a request, whose access was settled when it
    /// was enqueued (a job), or that needs no tenant at all (the queue's machinery).
    pub async fn begin_context(&self, scope: &Scope) -> Result<RequestTx, Error> {
        let connection = self.pool.get().await?;
        let begin = context_commands(scope, self.runtime_role);
        let tx = RequestTx {
            connection: Some(connection),
        };
        tx.connection().batch_execute(&begin).await?;
        Ok(tx)
    }
}

impl RequestTx {
    /// The opening statement's answers for `scope`, asked again inside this
    /// transaction (as its runtime role, under its row-level security): what a request
    /// of that scope would be told, so that explaining a member's access
    /// (`GET /users/{id}/access`) follows the very rules of a request instead of a
    /// copy of them. The scope's tenant must be the context's (the statement reads
    /// through its policies); no session and no key are asked about.
    pub async fn access_of(&self, scope: &Scope) -> Result<Access, Error> {
        let opening = self.prepare(&BEGIN_REQUEST).await?;
        let no_session: Option<Uuid> = None;
        let no_key: Option<Uuid> = None;
        let params: [&(dyn ToSql + Sync); 10] = [
            &scope.tenant_id,
            &scope.user_id,
            &scope.store_id,
            &scope.permission,
            &scope.with_permissions,
            &no_session,
            &scope.grant_store_id,
            &scope.feature,
            &scope.gated,
            &no_key,
        ];
        let row = self.connection().query_one(&opening, &params).await?;
        Access::from_row(&row)
    }
}

impl RequestTx {
    #[allow(
        clippy::expect_used,
        reason = "the connection is taken only by commit, rollback and query_and_commit, which consume the RequestTx"
    )]
    fn connection(&self) -> &Object {
        self.connection
            .as_ref()
            .expect("a RequestTx holds its connection until commit or rollback")
    }

    /// Prepares (once per connection, then from the cache) a statement.
    pub async fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        Ok(self.connection().prepare_cached(sql).await?)
    }

    pub async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        Ok(self.connection().query(statement, params).await?)
    }

    pub async fn query_opt<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        Ok(self.connection().query_opt(statement, params).await?)
    }

    pub async fn query_one<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>
    where
        T: ?Sized + ToStatement,
    {
        Ok(self.connection().query_one(statement, params).await?)
    }

    pub async fn execute<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
    {
        Ok(self.connection().execute(statement, params).await?)
    }

    /// Runs the request's last statement and commits, written to PostgreSQL together:
    /// a list costs two round trips (BEGIN with the opening statement, then this)
    /// instead of three. The transaction is taken by value, so nothing can run after
    /// the COMMIT, when the connection is back to the login role without a context.
    /// Only a prepared [`Statement`]: one still to prepare would be parsed first, and
    /// the COMMIT would overtake it. If the statement fails, PostgreSQL answers the
    /// COMMIT by rolling back, and the connection goes back to the pool clean.
    pub async fn query_and_commit(
        mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let (rows, committed) = {
            let client = self.connection();
            // `biased`: polled in this order, so the statement is queued before the
            // COMMIT (each on its first poll), and both before either answer is awaited.
            tokio::join!(
                biased;
                client.query(statement, params),
                client.batch_execute("COMMIT")
            )
        };
        let Some(connection) = self.connection.take() else {
            return Err(finished_twice());
        };
        match committed {
            Ok(()) => Ok(rows?),
            Err(error) => {
                // Whatever state it is in now, it does not go back to the pool.
                let _ = Object::take(connection);
                Err(rows.err().unwrap_or(error).into())
            }
        }
    }

    /// A read by id as the request's last statement: [`Self::query_and_commit`] for at
    /// most one row, so `GET /things/{id}` costs two round trips like a list.
    pub async fn query_opt_and_commit(
        self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        let mut rows = self.query_and_commit(statement, params).await?;
        if rows.len() > 1 {
            return Err(Error::Internal(anyhow::anyhow!(
                "a read by id returned {} rows",
                rows.len()
            )));
        }
        Ok(rows.pop())
    }

    /// For tests and tools: statements without parameters, in the simple protocol.
    pub async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        Ok(self.connection().batch_execute(sql).await?)
    }

    /// Commits and returns the connection to the pool, clean.
    pub async fn commit(mut self) -> Result<(), Error> {
        let Some(connection) = self.connection.take() else {
            return Err(finished_twice());
        };
        match connection.batch_execute("COMMIT").await {
            Ok(()) => Ok(()),
            Err(error) => {
                // Whatever state it is in now, it does not go back to the pool.
                let _ = Object::take(connection);
                Err(error.into())
            }
        }
    }

    /// Rolls back and returns the connection to the pool, clean.
    pub async fn rollback(mut self) {
        // Taken only here and by the other consuming methods: never absent.
        let Some(connection) = self.connection.take() else {
            return;
        };
        if connection.batch_execute("ROLLBACK").await.is_err() {
            let _ = Object::take(connection);
        }
    }
}

/// Unreachable by construction (the methods that finish a transaction consume it);
/// an error rather than a panic all the same.
fn finished_twice() -> Error {
    Error::Internal(anyhow::anyhow!(
        "the request transaction was already finished"
    ))
}

impl Drop for RequestTx {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // Dropped mid-transaction: close the connection instead of pooling it.
            // PostgreSQL rolls back the transaction when the session ends.
            tracing::debug!("request transaction dropped unfinished; discarding its connection");
            drop(Object::take(connection));
        }
    }
}

impl RequestTx {
    /// Ends the transaction by the handler's result: COMMIT on `Ok`, ROLLBACK on `Err`.
    /// The usual way to finish: `let result = async { ... }.await; tx.finish(result).await`.
    pub async fn finish<T>(self, result: Result<T, Error>) -> Result<T, Error> {
        match result {
            Ok(value) => {
                self.commit().await?;
                Ok(value)
            }
            Err(error) => {
                self.rollback().await;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_runs_of_whitespace_go_and_literals_stay_as_they_are() {
        let sql =
            "SELECT a, -- the first\n    'x -- not a comment  ''quoted''' AS b\n\n  FROM t -- end";
        assert_eq!(
            without_comments(sql),
            "SELECT a, 'x -- not a comment  ''quoted''' AS b FROM t"
        );
    }

    #[test]
    fn the_opening_statement_is_prepared_without_its_comments_and_keeps_every_literal() {
        let file = include_str!("begin_request.sql");
        assert!(
            !file.contains("/*") && !file.contains("$$"),
            "without_comments handles neither"
        );
        let prepared = BEGIN_REQUEST.as_str();
        assert!(!prepared.contains("--"));
        assert!(
            prepared.len() * 2 < file.len(),
            "{} of {} bytes",
            prepared.len(),
            file.len()
        );
        for literal in ["'active'", "'unpaid'", "'api_keys'", "'{}'"] {
            assert!(prepared.contains(literal), "{literal}");
        }
        assert!(prepared.starts_with("SELECT $6::uuid IS NULL OR EXISTS"));
    }
}
