//! "Distributable by tenant" (docs/design.md invariant 5): the rule that keeps the
//! schema ready to be spread over many PostgreSQL servers by `tenant_id` (Citus), read
//! from the live catalog, and the Citus statements it implies (`rowguard policies
//! --citus`, README "When one PostgreSQL is not enough").
//!
//! Every table has one placement:
//! * the *distribution root*, `public.tenants`, distributed by its `id`;
//! * a *tenant table*: any table with a `tenant_id` column, distributed by it and
//!   co-located with the root, so that one tenant's rows of every table live on one
//!   server and a request's joins and foreign-key checks never leave it;
//! * a *reference table*: global rows (permissions, plans, users, ...), the same for
//!   every tenant, copied to every server; named in [`REFERENCE_TABLES`];
//! * a *coordinator table*: stays on the coordinator alone; named, with the reason, in
//!   [`COORDINATOR_TABLES`].
//!
//! A table is never placed by a guess: one without `tenant_id` that no list names is a
//! problem, so a new global table must be named here (and so appears in the Citus
//! statements) before `--check` passes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tokio_postgres::GenericClient;

/// The column every tenant table is distributed by.
pub const DISTRIBUTION_COLUMN: &str = "tenant_id";

/// The table whose key is the distribution column's value, and that key.
pub const ROOT_TABLE: &str = "public.tenants";
pub const ROOT_COLUMN: &str = "id";

/// Global tables: the same rows for every tenant, read by every tenant's requests
/// (joins to them stay on one server because every server has a copy), written
/// rarely. Citus: `create_reference_table`.
pub const REFERENCE_TABLES: &[&str] = &[
    "app.admin_withheld_permissions",
    "app.member_email_templates",
    "app.request_job_kinds",
    "app.system_role_grants",
    "auth.email_verification_tokens",
    "auth.password_reset_tokens",
    "auth.user_credentials",
    "public.features",
    "public.permissions",
    "public.plan_features",
    "public.plan_limit_kinds",
    "public.plan_limits",
    "public.plans",
    // A person, who may belong to many tenants; their memberships are tenant rows.
    "public.users",
];

/// Tables that stay on the coordinator, neither spread nor copied, and why.
pub const COORDINATOR_TABLES: &[(&str, &str)] = &[
    (
        "public.jobs",
        "the job queue: workers claim across all tenants with FOR UPDATE SKIP LOCKED, \
         which Citus runs only on one node's table, and platform jobs have no tenant",
    ),
    (
        "public.job_schedules",
        "the periodic jobs' last firing, beside the queue that fires them",
    ),
    (
        "auth.attempts",
        "the login throttle's log: written on every failure, read by the login \
         functions only; one table on one node keeps it shared by every server",
    ),
    (
        "public.sessions",
        "each session's liveness, keyed by the session (which moves between tenants when \
         it switches) and written on every login, refresh and logout, too often for a \
         reference table; the opening statement probes it by its key",
    ),
    (
        "public.payment_callbacks_unknown",
        "raw callbacks that name no payment, so no tenant",
    ),
    (
        "public.refinery_schema_history",
        "the migrations' own bookkeeping",
    ),
];

/// Where a table goes when the schema is distributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    Root,
    Tenant,
    Reference,
    Coordinator,
    /// No `tenant_id`, and named nowhere: a problem.
    Unplaced,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForeignKey {
    pub name: String,
    /// `schema.table` of the referenced table.
    pub references: String,
    /// (referencing column, referenced column) pairs, in key order.
    pub columns: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UniqueKey {
    pub name: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DistributedTable {
    /// `schema.table`.
    pub name: String,
    pub has_tenant_id: bool,
    pub placement: Placement,
    /// `None`: no primary key.
    pub primary_key: Option<Vec<String>>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Unique indexes other than the primary key (constraints and plain indexes).
    pub unique_keys: Vec<UniqueKey>,
}

fn coordinator_reason(name: &str) -> Option<&'static str> {
    COORDINATOR_TABLES
        .iter()
        .find(|(table, _)| *table == name)
        .map(|(_, why)| *why)
}

fn placement(name: &str, has_tenant_id: bool) -> Placement {
    if name == ROOT_TABLE {
        Placement::Root
    } else if coordinator_reason(name).is_some() {
        Placement::Coordinator
    } else if REFERENCE_TABLES.contains(&name) {
        Placement::Reference
    } else if has_tenant_id {
        Placement::Tenant
    } else {
        Placement::Unplaced
    }
}

/// Every ordinary or partitioned table outside the system schemas (partitions follow
/// their parent; tables of extensions are theirs to place), with its keys.
pub async fn tables(
    client: &impl GenericClient,
) -> Result<Vec<DistributedTable>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT format('%s.%s', n.nspname, c.relname), c.oid,
                    EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attname = $1
                              AND a.attnum > 0 AND NOT a.attisdropped)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_%'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d
                               WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                 AND d.deptype = 'e')
             ORDER BY 1",
            &[&DISTRIBUTION_COLUMN],
        )
        .await?;
    let mut tables = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get(0)?;
        let oid: u32 = row.try_get(1)?;
        let has_tenant_id: bool = row.try_get(2)?;
        let keys = client
            .query(
                "SELECT i.indexrelid::regclass::text, i.indisprimary,
                        array(SELECT a.attname::text
                              FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k (attnum, position)
                              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                              ORDER BY k.position)
                 FROM pg_index i
                 WHERE i.indrelid = $1 AND i.indisunique
                 ORDER BY 1",
                &[&oid],
            )
            .await?;
        let mut primary_key = None;
        let mut unique_keys = Vec::new();
        for key in keys {
            let columns: Vec<String> = key.try_get(2)?;
            if key.try_get(1)? {
                primary_key = Some(columns);
            } else {
                unique_keys.push(UniqueKey {
                    name: key.try_get(0)?,
                    columns,
                });
            }
        }
        let foreign_keys = client
            .query(
                "SELECT k.conname::text, format('%s.%s', rn.nspname, r.relname),
                        array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS c (attnum, position)
                              JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = c.attnum
                              ORDER BY c.position),
                        array(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY AS c (attnum, position)
                              JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = c.attnum
                              ORDER BY c.position)
                 FROM pg_constraint k
                 JOIN pg_class r ON r.oid = k.confrelid
                 JOIN pg_namespace rn ON rn.oid = r.relnamespace
                 WHERE k.contype = 'f' AND k.conrelid = $1
                 ORDER BY 1",
                &[&oid],
            )
            .await?
            .iter()
            .map(|key| {
                let from: Vec<String> = key.try_get(2)?;
                let to: Vec<String> = key.try_get(3)?;
                Ok(ForeignKey {
                    name: key.try_get(0)?,
                    references: key.try_get(1)?,
                    columns: from.into_iter().zip(to).collect(),
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()?;
        tables.push(DistributedTable {
            placement: placement(&name, has_tenant_id),
            name,
            has_tenant_id,
            primary_key,
            foreign_keys,
            unique_keys,
        });
    }
    Ok(tables)
}

/// Where each table goes, by name; a referenced table that is not in `tables` (in a
/// schema left out) counts as unplaced.
fn placements(tables: &[DistributedTable]) -> BTreeMap<&str, Placement> {
    tables
        .iter()
        .map(|table| (table.name.as_str(), table.placement))
        .collect()
}

/// The violations of the rule, each naming its table. Empty: the schema can be
/// distributed by the statements of [`citus_statements`].
pub fn problems(tables: &[DistributedTable]) -> Vec<String> {
    let placed = placements(tables);
    let mut problems = Vec::new();
    let listed = REFERENCE_TABLES
        .iter()
        .copied()
        .chain(COORDINATOR_TABLES.iter().map(|(name, _)| *name));
    for name in listed {
        // The migrations' own table appears with the first migration.
        if !placed.contains_key(name) && name != "public.refinery_schema_history" {
            problems.push(format!(
                "distribution: {name} is named in src/platform/db/distribution.rs but does not exist"
            ));
        }
    }
    for table in tables {
        let name = &table.name;
        match table.placement {
            Placement::Unplaced => problems.push(format!(
                "table {name}: not distributable: no {DISTRIBUTION_COLUMN} column, and not named \
                 as a reference or coordinator table in src/platform/db/distribution.rs"
            )),
            Placement::Reference if table.has_tenant_id => problems.push(format!(
                "table {name}: named as a reference table but has a {DISTRIBUTION_COLUMN} column"
            )),
            Placement::Tenant => {
                match &table.primary_key {
                    None => problems.push(format!(
                        "table {name}: not distributable: no primary key (it must include {DISTRIBUTION_COLUMN})"
                    )),
                    Some(columns) if !columns.iter().any(|c| c == DISTRIBUTION_COLUMN) => {
                        problems.push(format!(
                            "table {name}: not distributable: primary key ({}) does not include {DISTRIBUTION_COLUMN}",
                            columns.join(", ")
                        ))
                    }
                    Some(_) => {}
                }
                for key in &table.foreign_keys {
                    let target = placed
                        .get(key.references.as_str())
                        .copied()
                        .unwrap_or(Placement::Unplaced);
                    let joins_tenant = |to: &str| {
                        key.columns
                            .iter()
                            .any(|(from, onto)| from == DISTRIBUTION_COLUMN && onto == to)
                    };
                    match target {
                        Placement::Tenant if !joins_tenant(DISTRIBUTION_COLUMN) => {
                            problems.push(format!(
                                "table {name}: not distributable: foreign key {} to {} does not include {DISTRIBUTION_COLUMN} = {}.{DISTRIBUTION_COLUMN}",
                                key.name, key.references, key.references
                            ))
                        }
                        Placement::Root if !joins_tenant(ROOT_COLUMN) => problems.push(format!(
                            "table {name}: not distributable: foreign key {} to {ROOT_TABLE} is not on {DISTRIBUTION_COLUMN} = {ROOT_TABLE}.{ROOT_COLUMN}",
                            key.name
                        )),
                        Placement::Coordinator => problems.push(format!(
                            "table {name}: not distributable: foreign key {} to the coordinator table {}",
                            key.name, key.references
                        )),
                        _ => {}
                    }
                }
            }
            Placement::Reference | Placement::Root => {
                for key in &table.foreign_keys {
                    let target = placed
                        .get(key.references.as_str())
                        .copied()
                        .unwrap_or(Placement::Unplaced);
                    if !matches!(target, Placement::Reference) {
                        problems.push(format!(
                            "table {name}: not distributable: foreign key {} of a table copied to every server points at {}, which is not",
                            key.name, key.references
                        ));
                    }
                }
            }
            Placement::Coordinator => {}
        }
    }
    problems
}

/// `tables` of one placement, each after the tables it references (Citus distributes
/// a table only once the tables its foreign keys point at are distributed).
fn in_reference_order(tables: &[DistributedTable], placement: Placement) -> Vec<&DistributedTable> {
    let mut pending: Vec<&DistributedTable> = tables
        .iter()
        .filter(|table| table.placement == placement)
        .collect();
    let names: BTreeSet<&str> = pending.iter().map(|table| table.name.as_str()).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let (ready, waiting): (Vec<_>, Vec<_>) = pending.into_iter().partition(|table| {
            table.foreign_keys.iter().all(|key| {
                key.references == table.name
                    || !names.contains(key.references.as_str())
                    || done.contains(key.references.as_str())
            })
        });
        if ready.is_empty() {
            // A cycle: Citus needs the keys dropped and added back; leave the order.
            ordered.extend(waiting);
            break;
        }
        done.extend(ready.iter().map(|table| table.name.as_str()));
        ordered.extend(ready);
        pending = waiting;
    }
    ordered
}

/// The unique indexes of a distributed table that Citus cannot enforce across servers
/// (they leave the distribution column out), described for a comment.
fn unenforceable_unique_keys(table: &DistributedTable) -> Vec<String> {
    let column = if table.placement == Placement::Root {
        ROOT_COLUMN
    } else {
        DISTRIBUTION_COLUMN
    };
    table
        .unique_keys
        .iter()
        .filter(|key| !key.columns.iter().any(|c| c == column))
        .map(|key| {
            format!(
                "{} on {} ({})",
                key.name,
                table.name,
                key.columns.join(", ")
            )
        })
        .collect()
}

/// The Citus statements that distribute this schema, as the coordinator's owner runs
/// them, generated from the catalog (so they follow every migration). Tables the rule
/// has a problem with are left out, with a comment.
pub fn citus_statements(tables: &[DistributedTable]) -> String {
    use std::fmt::Write;
    let placed = placements(tables);
    let problems = problems(tables);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- Generated by `rowguard policies --citus` from the live catalog: the statements that\n\
         -- distribute this schema by {DISTRIBUTION_COLUMN} on a Citus coordinator (README, \"When one\n\
         -- PostgreSQL is not enough\"). Run as the tables' owner, in this order, after\n\
         -- `CREATE EXTENSION citus` and citus_add_node for each worker. One transaction:\n\
         -- all or nothing; sequential, because Citus distributes a table with a foreign key\n\
         -- to a reference table in a transaction only before any parallel command ran.\n\
         BEGIN;\n\
         SET LOCAL citus.multi_shard_modify_mode TO 'sequential';"
    );
    if !problems.is_empty() {
        let _ = writeln!(
            out,
            "\n-- The schema breaks the rule (`rowguard policies --check`); tables named below are left out:"
        );
        for problem in &problems {
            let _ = writeln!(out, "--   {problem}");
        }
    }

    let _ = writeln!(
        out,
        "\n-- Global tables, copied to every server (first: tenant tables reference them)."
    );
    for table in in_reference_order(tables, Placement::Reference) {
        let _ = writeln!(out, "SELECT create_reference_table('{}');", table.name);
    }

    let _ = writeln!(
        out,
        "\n-- Tables that stay on the coordinator. A table there cannot keep a foreign key to a\n\
         -- distributed table; what the key did is then the application's to do."
    );
    for (name, why) in COORDINATOR_TABLES {
        let Some(table) = tables.iter().find(|table| table.name == *name) else {
            continue;
        };
        let _ = writeln!(out, "--   {name}: {why}");
        for key in &table.foreign_keys {
            if matches!(
                placed.get(key.references.as_str()),
                Some(Placement::Root | Placement::Tenant)
            ) {
                let _ = writeln!(
                    out,
                    "ALTER TABLE {name} DROP CONSTRAINT {};  -- to {}",
                    key.name, key.references
                );
            }
        }
    }

    let _ = writeln!(
        out,
        "\n-- The root, then every tenant table co-located with it (one tenant's rows of every\n\
         -- table on one server), each after the tables it references."
    );
    let _ = writeln!(
        out,
        "SELECT create_distributed_table('{ROOT_TABLE}', '{ROOT_COLUMN}');"
    );
    let broken: BTreeSet<&str> = tables
        .iter()
        .filter(|table| {
            problems
                .iter()
                .any(|problem| problem.starts_with(&format!("table {}:", table.name)))
        })
        .map(|table| table.name.as_str())
        .collect();
    let mut blockers = Vec::new();
    for table in tables
        .iter()
        .filter(|table| table.placement == Placement::Root)
    {
        blockers.extend(unenforceable_unique_keys(table));
    }
    for table in in_reference_order(tables, Placement::Tenant) {
        if broken.contains(table.name.as_str()) {
            let _ = writeln!(out, "-- left out, see above: {}", table.name);
            continue;
        }
        let _ = writeln!(
            out,
            "SELECT create_distributed_table('{}', '{DISTRIBUTION_COLUMN}', colocate_with => '{ROOT_TABLE}');",
            table.name
        );
        blockers.extend(unenforceable_unique_keys(table));
    }
    let _ = writeln!(out, "\nCOMMIT;");
    if !blockers.is_empty() {
        let _ = writeln!(
            out,
            "\n-- Citus refuses a unique index of a distributed table that does not include\n\
             -- {DISTRIBUTION_COLUMN} (it cannot enforce it across servers): the statement of each table below\n\
             -- fails until its index is widened to include {DISTRIBUTION_COLUMN} or replaced by a plain one\n\
             -- (README, \"When one PostgreSQL is not enough\"):"
        );
        for blocker in &blockers {
            let _ = writeln!(out, "--   {blocker}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, tenant: bool, primary_key: &[&str]) -> DistributedTable {
        DistributedTable {
            name: name.into(),
            has_tenant_id: tenant,
            placement: placement(name, tenant),
            primary_key: Some(primary_key.iter().map(|c| c.to_string()).collect()),
            foreign_keys: Vec::new(),
            unique_keys: Vec::new(),
        }
    }

    fn key(name: &str, references: &str, columns: &[(&str, &str)]) -> ForeignKey {
        ForeignKey {
            name: name.into(),
            references: references.into(),
            columns: columns
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn schema() -> Vec<DistributedTable> {
        let mut tables = vec![table("public.tenants", false, &["id"])];
        tables.extend(
            REFERENCE_TABLES
                .iter()
                .chain(COORDINATOR_TABLES.iter().map(|(name, _)| name))
                .map(|name| table(name, false, &["id"])),
        );
        let mut stores = table("public.stores", true, &["tenant_id", "id"]);
        stores.foreign_keys = vec![key(
            "stores_tenant_id_fkey",
            "public.tenants",
            &[("tenant_id", "id")],
        )];
        tables.push(stores);
        tables
    }

    #[test]
    fn a_schema_that_follows_the_rule_has_no_problems() {
        assert_eq!(problems(&schema()), Vec::<String>::new());
    }

    #[test]
    fn a_foreign_key_between_tenant_tables_without_the_tenant_is_named() {
        let mut tables = schema();
        let mut shelves = table("public.shelves", true, &["tenant_id", "id"]);
        shelves.foreign_keys = vec![key(
            "shelves_store_fkey",
            "public.stores",
            &[("store_id", "id")],
        )];
        tables.push(shelves);
        assert_eq!(
            problems(&tables),
            vec![
                "table public.shelves: not distributable: foreign key shelves_store_fkey to \
                 public.stores does not include tenant_id = public.stores.tenant_id"
                    .to_string()
            ]
        );
    }

    #[test]
    fn a_referenced_table_is_distributed_before_the_table_that_references_it() {
        let mut tables = schema();
        let mut shelves = table("public.a_shelves", true, &["tenant_id", "id"]);
        shelves.foreign_keys = vec![key(
            "a_shelves_store_fkey",
            "public.stores",
            &[("tenant_id", "tenant_id"), ("store_id", "id")],
        )];
        tables.push(shelves);
        let statements = citus_statements(&tables);
        let stores = statements.find("'public.stores'").unwrap();
        let shelves = statements.find("'public.a_shelves'").unwrap();
        assert!(stores < shelves, "{statements}");
    }
}
