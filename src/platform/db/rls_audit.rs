//! The isolation audit, read from the live catalog only: what `rowguard policies`
//! prints, what `--check` fails on, and what the server checks before it serves
//! (docs/design.md invariants 2, 3 and 7).
//!
//! A *tenant-scoped* table is any table with a `tenant_id` column in a schema the
//! runtime role can enter (schema `auth`, which holds credentials and tokens, is closed
//! to it entirely); it is found from the catalog, never from a list, so a new table is
//! covered (or reported) the moment it exists.

use std::collections::BTreeSet;

use serde::Serialize;
use tokio_postgres::GenericClient;

use super::migrate::{POLICY_FILES, apply_policy_file};

/// The runtime role every request switches to.
pub const RUNTIME_ROLE: &str = "rowguard_api";

const COMMANDS: [&str; 4] = ["SELECT", "INSERT", "UPDATE", "DELETE"];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PolicyReport {
    pub name: String,
    /// ALL, SELECT, INSERT, UPDATE or DELETE.
    pub command: String,
    pub permissive: bool,
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub schema: String,
    pub table: String,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    pub tenant_scoped: bool,
    /// Has a `store_id` column: covered like a tenant-scoped table even without
    /// `tenant_id`.
    pub has_store_id: bool,
    pub has_policy_file: bool,
    pub policies: Vec<PolicyReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleReport {
    pub exists: bool,
    pub superuser: bool,
    pub bypass_rls: bool,
    pub can_login: bool,
    pub owned_relations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub runtime_role: RoleReport,
    pub tables: Vec<TableReport>,
    /// SECURITY DEFINER functions outside the system schemas, and whether each fixes
    /// its search_path.
    pub definer_functions: Vec<DefinerFunction>,
    /// Views the runtime role could read, and whether each runs with the caller's
    /// rights (security_invoker), so that the policies of its tables apply.
    pub views: Vec<ViewReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DefinerFunction {
    pub name: String,
    pub fixed_search_path: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViewReport {
    pub name: String,
    pub security_invoker: bool,
}

/// Every table of the `public` schema with its RLS state and policies.
pub async fn tables(
    client: &impl GenericClient,
) -> Result<Vec<TableReport>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                    EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                              AND a.attnum > 0 AND NOT a.attisdropped),
                    EXISTS (SELECT 1 FROM pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attname = 'store_id'
                              AND a.attnum > 0 AND NOT a.attisdropped)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
               AND CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
                        THEN has_schema_privilege($1, n.oid, 'USAGE') ELSE true END
             ORDER BY n.nspname, c.relname",
            &[&RUNTIME_ROLE],
        )
        .await?;
    let mut tables = Vec::with_capacity(rows.len());
    for row in rows {
        let schema: String = row.try_get(0)?;
        let table: String = row.try_get(1)?;
        tables.push(TableReport {
            has_policy_file: schema == "public"
                && POLICY_FILES.iter().any(|file| file.table == table),
            policies: policies(client, &schema, &table).await?,
            schema,
            table,
            rls_enabled: row.try_get(2)?,
            rls_forced: row.try_get(3)?,
            tenant_scoped: row.try_get(4)?,
            has_store_id: row.try_get(5)?,
        });
    }
    Ok(tables)
}

async fn policies(
    client: &impl GenericClient,
    schema: &str,
    table: &str,
) -> Result<Vec<PolicyReport>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT policyname::text, cmd, permissive = 'PERMISSIVE', roles::text[], qual, with_check
             FROM pg_policies WHERE schemaname = $1 AND tablename = $2
             ORDER BY policyname",
            &[&schema, &table],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(PolicyReport {
                name: row.try_get(0)?,
                command: row.try_get(1)?,
                permissive: row.try_get(2)?,
                roles: row.try_get(3)?,
                using: row.try_get(4)?,
                with_check: row.try_get(5)?,
            })
        })
        .collect()
}

/// The runtime role's attributes and whatever it owns.
pub async fn runtime_role(
    client: &impl GenericClient,
) -> Result<RoleReport, tokio_postgres::Error> {
    let role = client
        .query_opt(
            "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1",
            &[&RUNTIME_ROLE],
        )
        .await?;
    let Some(role) = role else {
        return Ok(RoleReport {
            exists: false,
            superuser: false,
            bypass_rls: false,
            can_login: false,
            owned_relations: Vec::new(),
        });
    };
    let owned = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE pg_get_userbyid(c.relowner) = $1
             ORDER BY 1",
            &[&RUNTIME_ROLE],
        )
        .await?;
    Ok(RoleReport {
        exists: true,
        superuser: role.try_get(0)?,
        bypass_rls: role.try_get(1)?,
        can_login: role.try_get(2)?,
        owned_relations: owned
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?,
    })
}

pub async fn report(client: &impl GenericClient) -> Result<Report, tokio_postgres::Error> {
    let definer_functions = client
        .query(
            "SELECT p.oid::regprocedure::text,
                    EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) AS c WHERE c LIKE 'search_path=%')
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_%'
             ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(DefinerFunction {
                name: row.try_get(0)?,
                fixed_search_path: row.try_get(1)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()?;
    let views = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname),
                    coalesce((SELECT option_value::bool FROM pg_options_to_table(c.reloptions)
                              WHERE option_name = 'security_invoker'), false)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('v', 'm')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
               AND CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)
                        THEN has_schema_privilege($1, n.oid, 'USAGE') ELSE true END
             ORDER BY 1",
            &[&RUNTIME_ROLE],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(ViewReport {
                name: row.try_get(0)?,
                security_invoker: row.try_get(1)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()?;
    Ok(Report {
        runtime_role: runtime_role(client).await?,
        tables: tables(client).await?,
        definer_functions,
        views,
    })
}

/// Whether an expression (as PostgreSQL deparses it) admits every row: `true`, or a
/// disjunction with `true` in it.
fn always_true(expression: &str) -> bool {
    let normalized: String = expression
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '(' && *c != ')')
        .collect();
    let normalized = normalized.to_lowercase();
    normalized == "true"
        || normalized.starts_with("trueor")
        || normalized.ends_with("ortrue")
        || normalized.contains("ortrueor")
}

/// Whether a policy applies to the runtime role.
fn applies_to_runtime_role(policy: &PolicyReport) -> bool {
    policy
        .roles
        .iter()
        .any(|role| role == "public" || role == RUNTIME_ROLE)
}

/// Whether an expression (as PostgreSQL deparses it) constrains the row's key column to
/// the request context, and cannot be satisfied regardless of it.
fn constrains(expression: &str, key_column: &str, function: &str) -> bool {
    expression.contains(key_column) && expression.contains(function) && !always_true(expression)
}

/// The problems of the live catalog: invariants 2 and 3, and coverage of the files.
/// Does not look at drift (see [`drift`]).
pub fn problems(report: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    let role = &report.runtime_role;
    if !role.exists {
        problems.push(format!("role {RUNTIME_ROLE} does not exist"));
    }
    if role.superuser {
        problems.push(format!(
            "role {RUNTIME_ROLE} is a superuser and bypasses row-level security"
        ));
    }
    if role.bypass_rls {
        problems.push(format!("role {RUNTIME_ROLE} has BYPASSRLS"));
    }
    if role.can_login {
        problems.push(format!(
            "role {RUNTIME_ROLE} can log in (it must be NOLOGIN)"
        ));
    }
    for relation in &role.owned_relations {
        problems.push(format!(
            "role {RUNTIME_ROLE} owns {relation}: a table owner can switch its row-level security off"
        ));
    }

    for function in &report.definer_functions {
        if !function.fixed_search_path {
            problems.push(format!(
                "function {}: SECURITY DEFINER without a fixed search_path (a caller could redirect it)",
                function.name
            ));
        }
    }
    for view in &report.views {
        if !view.security_invoker {
            problems.push(format!(
                "view {}: not security_invoker, so it reads its tables with its owner's rights, past their policies",
                view.name
            ));
        }
    }

    for table in &report.tables {
        let name = format!("{}.{}", table.schema, table.table);
        if !(table.tenant_scoped || table.has_store_id || table.has_policy_file) {
            continue;
        }
        for policy in &table.policies {
            for (clause, expression) in
                [("USING", &policy.using), ("WITH CHECK", &policy.with_check)]
            {
                if policy.permissive && expression.as_deref().is_some_and(always_true) {
                    problems.push(format!(
                        "table {name}: policy {} {clause} is always true",
                        policy.name
                    ));
                }
            }
        }
        if !table.rls_enabled {
            problems.push(format!("table {name}: row-level security is not enabled"));
        }
        if !table.rls_forced {
            problems.push(format!("table {name}: row-level security is not forced"));
        }
        if !(table.tenant_scoped || table.has_store_id) {
            continue;
        }
        // The column the policies must constrain: tenant_id, or store_id for a table
        // scoped by store alone.
        let (key, function) = if table.tenant_scoped {
            ("tenant_id", "app.current_tenant_id()")
        } else {
            ("store_id", "app.current_store_id()")
        };
        let live: Vec<&PolicyReport> = table
            .policies
            .iter()
            .filter(|policy| policy.permissive && applies_to_runtime_role(policy))
            .collect();
        for command in COMMANDS {
            if !live
                .iter()
                .any(|policy| policy.command == "ALL" || policy.command == command)
            {
                problems.push(format!("table {name}: no policy for {command}"));
            }
        }
        for policy in &table.policies {
            let reads = policy.command != "INSERT";
            let writes = matches!(policy.command.as_str(), "ALL" | "INSERT" | "UPDATE");
            let using = policy.using.as_deref();
            // For ALL and UPDATE without WITH CHECK, PostgreSQL checks new rows with USING.
            let with_check = policy
                .with_check
                .as_deref()
                .or(if policy.command == "INSERT" {
                    None
                } else {
                    using
                });
            if reads && !using.is_some_and(|expression| constrains(expression, key, function)) {
                problems.push(format!(
                    "table {name}: policy {} USING does not constrain {key} to {function}",
                    policy.name
                ));
            }
            if writes && !with_check.is_some_and(|expression| constrains(expression, key, function))
            {
                problems.push(format!(
                    "table {name}: policy {} WITH CHECK does not constrain {key} to {function}",
                    policy.name
                ));
            }
        }
    }
    problems
}

/// Differences between the live policies and the files of `policies/`: the files are
/// applied inside a transaction that is rolled back, and the catalog is compared
/// before and after. Changes nothing; needs the rights of the tables' owner.
pub async fn drift(client: &mut tokio_postgres::Client) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let tx = client.transaction().await?;
    let before = tables(&tx).await?;
    for file in POLICY_FILES {
        if !before
            .iter()
            .any(|table| table.schema == "public" && table.table == file.table)
        {
            problems.push(format!(
                "policies/{}.sql: table public.{} does not exist",
                file.table, file.table
            ));
            continue;
        }
        apply_policy_file(&tx, file).await?;
    }
    let after = tables(&tx).await?;
    tx.rollback().await?;

    for live in &before {
        let name = format!("{}.{}", live.schema, live.table);
        let Some(expected) = after
            .iter()
            .find(|table| table.schema == live.schema && table.table == live.table)
        else {
            continue;
        };
        if !live.has_policy_file {
            if !live.policies.is_empty() {
                problems.push(format!(
                    "table {name}: has policies but no file policies/{}.sql",
                    live.table
                ));
            }
            continue;
        }
        if live.rls_enabled != expected.rls_enabled {
            problems.push(format!(
                "table {name}: row-level security is {} but policies/{}.sql {} it",
                if live.rls_enabled {
                    "enabled"
                } else {
                    "disabled"
                },
                live.table,
                if expected.rls_enabled {
                    "enables"
                } else {
                    "does not enable"
                },
            ));
        }
        if live.rls_forced != expected.rls_forced {
            problems.push(format!(
                "table {name}: FORCE ROW LEVEL SECURITY is {} but policies/{}.sql says {}",
                if live.rls_forced { "on" } else { "off" },
                live.table,
                if expected.rls_forced { "on" } else { "off" },
            ));
        }
        let live_set: BTreeSet<&PolicyReport> = live.policies.iter().collect();
        let file_set: BTreeSet<&PolicyReport> = expected.policies.iter().collect();
        for missing in file_set.difference(&live_set) {
            problems.push(format!(
                "table {name}: policy {} of policies/{}.sql is missing or differs in the database",
                missing.name, live.table
            ));
        }
        for extra in live_set.difference(&file_set) {
            problems.push(format!(
                "table {name}: live policy {} is not in policies/{}.sql (or differs from it)",
                extra.name, live.table
            ));
        }
    }
    Ok(problems)
}

/// Renders the report for a DBA.
pub fn render_text(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let role = &report.runtime_role;
    let _ = writeln!(
        out,
        "runtime role {RUNTIME_ROLE}: {}",
        if role.exists {
            format!(
                "superuser={} bypassrls={} login={} owns={}",
                role.superuser,
                role.bypass_rls,
                role.can_login,
                if role.owned_relations.is_empty() {
                    "nothing".to_string()
                } else {
                    role.owned_relations.join(", ")
                }
            )
        } else {
            "missing".to_string()
        }
    );
    for function in &report.definer_functions {
        let _ = writeln!(
            out,
            "security definer {}: search_path {}",
            function.name,
            if function.fixed_search_path {
                "fixed"
            } else {
                "NOT FIXED"
            }
        );
    }
    for view in &report.views {
        let _ = writeln!(
            out,
            "view {}: {}",
            view.name,
            if view.security_invoker {
                "security_invoker"
            } else {
                "runs as its OWNER"
            }
        );
    }
    for table in &report.tables {
        let _ = writeln!(
            out,
            "\n{}.{}  rls={} forced={}{}{}",
            table.schema,
            table.table,
            if table.rls_enabled {
                "enabled"
            } else {
                "DISABLED"
            },
            if table.rls_forced { "yes" } else { "no" },
            if table.tenant_scoped {
                "  tenant-scoped"
            } else {
                ""
            },
            if table.has_policy_file {
                format!("  file=policies/{}.sql", table.table)
            } else {
                String::new()
            },
        );
        if table.policies.is_empty() {
            let _ = writeln!(out, "  (no policies)");
        }
        for policy in &table.policies {
            let _ = writeln!(
                out,
                "  policy {}  {}  {}  to {}",
                policy.name,
                policy.command,
                if policy.permissive {
                    "permissive"
                } else {
                    "restrictive"
                },
                policy.roles.join(", ")
            );
            if let Some(using) = &policy.using {
                let _ = writeln!(out, "    USING      {using}");
            }
            if let Some(with_check) = &policy.with_check {
                let _ = writeln!(out, "    WITH CHECK {with_check}");
            }
        }
    }
    out
}
