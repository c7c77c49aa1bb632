//! Settings, from flags or the environment (flags win), parsed and validated once at
//! start-up and then passed down explicitly: there is no global configuration.

use std::{convert::Infallible, fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::platform::http::{client::TrustedProxies, cors::CorsOrigins};

/// A secret setting (the JWT key, a database URL that may hold a password): parsed
/// like any other, but `Debug` never prints it, so a logged or printed `Settings`
/// cannot leak it. Read it with [`Secret::expose`], where it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl FromStr for Secret {
    type Err = Infallible;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret(value.to_string()))
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

/// The command line. Each subcommand takes only the flags it uses: the server's
/// settings belong to `serve` and `worker` (and to `rowguard` alone, which serves),
/// the one-shot commands take the database's ([`DatabaseArgs`]) and their own.
#[derive(Debug, Parser)]
#[command(
    name = "rowguard",
    version,
    about = "The multi-tenant core of a SaaS backend",
    // `rowguard --bind x serve` would configure the default command and then run
    // another with its own settings: refused instead of silently ignored.
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The settings of `rowguard` without a subcommand, which serves.
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The command to run: `serve` with the top-level settings when none is named.
    pub fn into_command(self) -> Command {
        self.command
            .unwrap_or_else(|| Command::Serve(Box::new(self.settings)))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(Box<Settings>),
    /// Apply the migrations of `sql/` and the policy files of `policies/`, then exit.
    Migrate(DatabaseArgs),
    /// Report every table's row-level security from the live catalog.
    Policies(PoliciesArgs),
    /// Create the first user (a platform admin) and their tenant; refused once any
    /// user exists. The password is read from ROWGUARD_BOOTSTRAP_PASSWORD, or else
    /// generated and printed once.
    Bootstrap(BootstrapArgs),
    /// Print the OpenAPI document (what `GET /openapi.json` serves) and exit; needs no
    /// database. For client generators.
    Openapi,
    /// Run job workers only (ROWGUARD_WORKERS of them, at least one), no HTTP.
    Worker(Box<Settings>),
    /// The job queue: list jobs, or run a periodic job now.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The database of a development machine: start it afresh, or fill it with a
    /// demo tenant to sign in to.
    #[command(subcommand)]
    Db(DbCommand),
    /// Users, as the operator: create one, give one a role in a tenant.
    #[command(subcommand)]
    User(UserCommand),
    /// A tenant, as the operator: create one, restore its system roles, suspend it
    /// (its members are refused from their next request) or activate it again.
    #[command(subcommand)]
    Tenant(TenantCommand),
}

impl Command {
    /// The log format the command asked for.
    pub fn log_format(&self) -> LogFormat {
        match self {
            Command::Serve(settings) | Command::Worker(settings) => settings.database.log_format,
            Command::Migrate(database) => database.log_format,
            Command::Policies(args) => args.database.log_format,
            Command::Bootstrap(args) => args.database.log_format,
            Command::Openapi => LogFormat::Text,
            Command::Jobs(JobsCommand::List { database, .. }) => database.log_format,
            Command::Jobs(JobsCommand::Run { settings, .. }) => settings.database.log_format,
            Command::Db(DbCommand::Reset(args)) => args.database.log_format,
            Command::Db(DbCommand::Seed(args)) => args.database.log_format,
            Command::User(UserCommand::Create(args)) => args.database.log_format,
            Command::User(UserCommand::AssignRole(args)) => args.database.log_format,
            Command::Tenant(command) => command.database().log_format,
        }
    }

    /// Where a long-running command exports its request spans (OTLP), if anywhere.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        match self {
            Command::Serve(settings) | Command::Worker(settings) => {
                settings.otlp_endpoint.as_deref()
            }
            _ => None,
        }
    }

    /// Whether the command runs until it is stopped (its fatal error goes to the log,
    /// which may be JSON read by a machine) rather than once (to the terminal).
    pub fn is_long_running(&self) -> bool {
        matches!(self, Command::Serve(_) | Command::Worker(_))
    }
}

/// What every command that opens the database takes: where it is, how long to wait
/// for it, which environment this is, how to log. The same flags and variables as the
/// server's settings of the same names (README, "Settings").
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL of request sessions: a login role that can only become
    /// rowguard_api (README, "Database roles"). Given alone, in development, it is taken
    /// as the owner's, and the server makes its login roles itself. Without it,
    /// rowguard starts (or reuses) a private cluster under the data directory from the
    /// PostgreSQL binaries installed on the machine.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// PostgreSQL URL of the credential flows (login, sessions, passwords): a login
    /// role that can only become rowguard_auth, which request sessions can never become.
    #[arg(long, env = "ROWGUARD_AUTH_DATABASE_URL", hide_env_values = true)]
    pub auth_database_url: Option<Secret>,

    /// PostgreSQL URL of the tables' owner, for migrations (`rowguard migrate`, or at
    /// start-up when given). Without it, a server with its own login roles does not
    /// migrate, and refuses to start on a database behind this build.
    #[arg(long, env = "ROWGUARD_OWNER_DATABASE_URL", hide_env_values = true)]
    pub owner_database_url: Option<Secret>,

    /// `production` refuses what only development allows: a database given by one
    /// URL, the development-only commands (`db reset`, `db seed`), and a server
    /// without a strong JWT secret.
    #[arg(long = "env", env = "ROWGUARD_ENV", value_enum, default_value_t = Environment::Development)]
    pub environment: Environment,

    /// How long start-up waits for the database to accept connections, in seconds,
    /// retrying with backoff and logging why (a database container that is still
    /// starting, say); then it fails naming the last error. 0: try once.
    #[arg(long, env = "ROWGUARD_DB_WAIT_SECS", default_value_t = DEFAULT_DB_WAIT_SECS)]
    pub db_wait_secs: u64,

    /// Where the embedded PostgreSQL cluster lives when no DATABASE_URL is given
    /// [default: .rowguard]. Run as root, the cluster runs as an unprivileged user; if
    /// that user cannot reach the default, the cluster is kept under /var/lib/rowguard
    /// instead, while a directory given here is used as is or refused.
    #[arg(long, env = "ROWGUARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "ROWGUARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl DatabaseArgs {
    /// The server's settings with these, everything else at its default: what the
    /// services a command goes through are built with.
    pub fn settings(&self) -> Settings {
        Settings {
            database: self.clone(),
            ..Settings::defaults()
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (its system roles, its subscription) with an existing user as
    /// its Owner; prints its id.
    Create(TenantCreateArgs),
    /// Restore the system roles (Owner, Admin, Store Manager, Staff) a tenant lacks,
    /// and the default permissions its system roles lack; nothing is taken away.
    SeedRoles {
        /// The tenant's id.
        id: uuid::Uuid,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Suspend a tenant: 403 `tenant_suspended` for its members from their next request.
    Suspend {
        id: uuid::Uuid,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Activate a suspended tenant again.
    Activate {
        id: uuid::Uuid,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

impl TenantCommand {
    pub fn database(&self) -> &DatabaseArgs {
        match self {
            TenantCommand::Create(args) => &args.database,
            TenantCommand::SeedRoles { database, .. }
            | TenantCommand::Suspend { database, .. }
            | TenantCommand::Activate { database, .. } => database,
        }
    }
}

#[derive(Debug, Args)]
pub struct TenantCreateArgs {
    /// The tenant's name.
    #[arg(long)]
    pub name: String,
    /// The id of the user who becomes its Owner (`rowguard user create` prints it).
    #[arg(long)]
    pub owner: uuid::Uuid,
    /// The plan its subscription starts on [default: ROWGUARD_DEFAULT_PLAN's default, free].
    #[arg(long)]
    pub plan: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (no tenant yet); prints their id. The password is read from
    /// ROWGUARD_USER_PASSWORD, or asked for on the terminal.
    Create(UserCreateArgs),
    /// Give a user a role (by name) in a tenant, tenant-wide or in one store; the user
    /// becomes a member of the tenant first if they are not one.
    AssignRole(AssignRoleArgs),
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub full_name: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct AssignRoleArgs {
    /// The user's id.
    #[arg(long)]
    pub user: uuid::Uuid,
    /// The tenant's id.
    #[arg(long)]
    pub tenant: uuid::Uuid,
    /// The role's name in that tenant (`Owner`, `Admin`, `Store Manager`, `Staff`, or
    /// one of its own).
    #[arg(long)]
    pub role: String,
    /// Only in this store (its id); tenant-wide without it.
    #[arg(long)]
    pub store: Option<uuid::Uuid>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Drop everything in the database and migrate it again (development only:
    /// refused with ROWGUARD_ENV=production). Asks for confirmation unless --yes.
    Reset(DbResetArgs),
    /// Create a demo tenant (stores, products, stock, a member of each system role)
    /// and print how to sign in as each (development only). Refused once seeded.
    /// The members' password is read from ROWGUARD_SEED_PASSWORD, or else generated
    /// and printed once.
    Seed(DbSeedArgs),
}

#[derive(Debug, Args)]
pub struct DbResetArgs {
    /// Do not ask: everything in the database is dropped.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct DbSeedArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// The jobs that are queued, failed or dead (newest first), and the periodic kinds.
    List {
        /// Only jobs in this state.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Run a periodic job now, as of `--at` (default: now): it is enqueued, and run by
    /// this command unless it is already queued. Takes the server's settings: the jobs
    /// send email and call the payment gateway as the server's workers would.
    Run {
        kind: String,
        /// The instant the job takes as "now" (RFC 3339), to rehearse the future.
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        settings: Box<Settings>,
    },
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[arg(long)]
    pub email: String,
    /// Name of the first tenant.
    #[arg(long)]
    pub tenant: String,
    #[arg(long, default_value = "Platform Admin")]
    pub full_name: String,
    #[arg(long, env = "ROWGUARD_BOOTSTRAP_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct PoliciesArgs {
    /// Exit non-zero, naming each problem, when a tenant-scoped table is not covered or
    /// the live policies differ from the files of `policies/`.
    #[arg(long)]
    pub check: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Print instead the Citus statements that distribute this schema by tenant_id
    /// (README, "When one PostgreSQL is not enough"); exits non-zero when the schema
    /// breaks the "distributable by tenant" rule.
    #[arg(long, conflicts_with_all = ["check", "format"])]
    pub citus: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    /// Anyone may register a user and a tenant.
    Open,
    /// `POST /api/v1/auth/register` answers 403.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Where the database is, how long to wait for it, the environment, the log.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address the HTTP server listens on.
    #[arg(long, env = "ROWGUARD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Secret that signs access tokens (HS256). Required in production, and refused
    /// there when shorter than 32 bytes, a published or placeholder value, or too
    /// regular to be random; in development a random one is generated per process.
    #[arg(long, env = "ROWGUARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// Maximum number of pooled database connections; 0 means two per CPU (at least
    /// 4). PostgreSQL does the most work with about two active backends per core:
    /// more only queue in its scheduler instead of in the pool (see the README,
    /// "Performance"). Size it to the database server's cores when that is another
    /// machine.
    #[arg(long, env = "ROWGUARD_POOL_SIZE", default_value_t = 0)]
    pub pool_size: usize,

    /// How long a request waits for a pooled connection before it gets 503.
    #[arg(long, env = "ROWGUARD_POOL_TIMEOUT_MS", default_value_t = 5000)]
    pub pool_timeout_ms: u64,

    /// PostgreSQL statement_timeout for the server's connections.
    #[arg(long, env = "ROWGUARD_STATEMENT_TIMEOUT_MS", default_value_t = 5000)]
    pub statement_timeout_ms: u64,

    /// `open`: anyone may register; `closed`: registration answers 403.
    #[arg(long, env = "ROWGUARD_REGISTRATION", value_enum, default_value_t = Registration::Open)]
    pub registration: Registration,

    /// Issuer (`iss`) of access tokens, checked on every request.
    #[arg(long, env = "ROWGUARD_JWT_ISSUER", default_value = "rowguard")]
    pub jwt_issuer: String,

    /// Audience (`aud`) of access tokens, checked on every request.
    #[arg(long, env = "ROWGUARD_JWT_AUDIENCE", default_value = "rowguard-api")]
    pub jwt_audience: String,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "ROWGUARD_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,

    /// Lifetime of refresh tokens, in seconds.
    #[arg(long, env = "ROWGUARD_REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl_secs: u64,

    /// Failed logins per email from one client address within the throttle window
    /// before 429 (for that email from that address only: an attacker elsewhere cannot
    /// lock the owner out). A wrong current password of `POST /me/password`, and of an
    /// existing user accepting an invitation, counts as a failed login.
    #[arg(
        long,
        env = "ROWGUARD_LOGIN_MAX_FAILURES_PER_EMAIL",
        default_value_t = 10
    )]
    pub login_max_failures_per_email: u32,

    /// Failed logins per client address within the throttle window before 429.
    #[arg(
        long,
        env = "ROWGUARD_LOGIN_MAX_FAILURES_PER_CLIENT",
        default_value_t = 100
    )]
    pub login_max_failures_per_client: u32,

    /// Failed logins per email within the throttle window, from every client address
    /// together, after which each further attempt for it must wait after the latest
    /// failure: 1 s, then twice as long with each failure, up to
    /// ROWGUARD_LOGIN_MAX_DELAY_SECS (429 with `Retry-After` meanwhile). 0: never.
    #[arg(
        long,
        env = "ROWGUARD_LOGIN_DELAY_AFTER_FAILURES_PER_EMAIL",
        default_value_t = 30
    )]
    pub login_delay_after_failures_per_email: u32,

    /// The longest wait of ROWGUARD_LOGIN_DELAY_AFTER_FAILURES_PER_EMAIL, in seconds.
    #[arg(long, env = "ROWGUARD_LOGIN_MAX_DELAY_SECS", default_value_t = 60)]
    pub login_max_delay_secs: u32,

    /// Proxies whose forwarding headers are believed (comma-separated CIDRs, e.g.
    /// `10.0.0.0/8,2001:db8::/32`); default none. When the socket peer is in one, the
    /// client address is the right-most address of `X-Forwarded-For` (else of
    /// `Forwarded`) that is not itself a trusted proxy; otherwise it is the peer, and
    /// the headers are ignored.
    #[arg(long, env = "ROWGUARD_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,

    /// Registrations of an already registered email (409, or 202 when taken emails
    /// are concealed) per client address per hour; past them the client's
    /// registrations answer 429 with `Retry-After`: an account enumeration is
    /// throttled, signing up is not (new emails are never counted). 0: no limit.
    #[arg(
        long,
        env = "ROWGUARD_REGISTER_MAX_TAKEN_EMAILS_PER_CLIENT",
        default_value_t = 10
    )]
    pub register_max_taken_emails_per_client: u32,

    /// Registration does not tell whether an email has an account: a taken email is
    /// answered like a new registration, and both with 202 and no body (the new user
    /// then logs in), while the email's owner is notified of the attempt. Off by
    /// default: a taken email answers 409, a new one 201 with a session.
    #[arg(
        long,
        env = "ROWGUARD_REGISTER_CONCEAL_TAKEN_EMAILS",
        default_value_t = false
    )]
    pub register_conceal_taken_emails: bool,

    /// The login throttle's sliding window, in seconds.
    #[arg(
        long,
        env = "ROWGUARD_LOGIN_THROTTLE_WINDOW_SECS",
        default_value_t = 900
    )]
    pub login_throttle_window_secs: u32,

    /// Password-reset requests acted on per email per hour (the answer is 202 anyway).
    #[arg(
        long,
        env = "ROWGUARD_FORGOT_PASSWORD_MAX_PER_HOUR",
        default_value_t = 5
    )]
    pub forgot_password_max_per_hour: u32,

    /// Logins and password checks hashed at once (each takes 19 MiB); 0 means one per
    /// CPU but one, so that a login storm always leaves a core to everything else.
    /// Unauthenticated hashing (registration, bootstrap, a new user accepting an
    /// invitation, a password reset) has threads of its own beside them (at least two
    /// threads in all, at most half of them unauthenticated), so it never delays a
    /// login.
    #[arg(long, env = "ROWGUARD_HASH_CONCURRENCY", default_value_t = 0)]
    pub hash_concurrency: usize,

    /// Unauthenticated password hashes that may wait for their threads; beyond them
    /// such a request answers 503 `unavailable` at once instead of queueing.
    #[arg(
        long,
        env = "ROWGUARD_HASH_UNAUTHENTICATED_QUEUE",
        default_value_t = 16
    )]
    pub hash_unauthenticated_queue: usize,

    /// Where email goes: `smtp://host:port` (plain), `smtp://host:port?tls=required`
    /// (STARTTLS) or `smtps://user:password@host:port` (TLS). Without it, every message
    /// is written to the server log instead (development: the reset link is in the
    /// terminal).
    #[arg(long, env = "ROWGUARD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,

    /// The sender of every email.
    #[arg(
        long,
        env = "ROWGUARD_MAIL_FROM",
        default_value = "rowguard <no-reply@localhost>"
    )]
    pub mail_from: String,

    /// The base of the links in emails (`{public URL}/console/reset-password?token=...`)
    /// and of the payment callback URL: where users reach this server [default:
    /// http://localhost:8080; required in production].
    #[arg(long, env = "ROWGUARD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The plan a new tenant starts on (`free`, `starter`, `business`): its
    /// subscription is active on it, with no trial. Start-up refuses a plan that
    /// does not exist.
    #[arg(long, env = "ROWGUARD_DEFAULT_PLAN", default_value = "free")]
    pub default_plan: String,

    /// Days a subscription stays `past_due` (an invoice open past its due time,
    /// everything still working) before it is `unpaid` (the gated operations answer
    /// 402 `payment_required`).
    #[arg(long, env = "ROWGUARD_BILLING_GRACE_DAYS", default_value_t = 7)]
    pub billing_grace_days: u32,

    /// Days between a tenant's deletion (`DELETE /tenants/current`) and the erasure
    /// of its rows by the `tenants.purge` job.
    #[arg(long, env = "ROWGUARD_TENANT_PURGE_DAYS", default_value_t = 30)]
    pub tenant_purge_days: u32,

    /// How many tenants one person may create (registration's first included; a
    /// deleted one counts until it is purged): `POST /tenants` answers 409 beyond.
    #[arg(long, env = "ROWGUARD_MAX_TENANTS_PER_USER", default_value_t = 10)]
    pub max_tenants_per_user: u32,

    /// Daraja's base URL: `https://sandbox.safaricom.co.ke` (the sandbox) or
    /// `https://api.safaricom.co.ke` (production); a local fake in tests.
    #[arg(
        long,
        env = "ROWGUARD_MPESA_BASE_URL",
        default_value = "https://sandbox.safaricom.co.ke"
    )]
    pub mpesa_base_url: String,

    /// The Daraja app's consumer key. Without it (or the secret, shortcode, passkey or
    /// callback token) payments are not configured: initiating one answers 503
    /// `payment_gateway_error`.
    #[arg(long, env = "ROWGUARD_MPESA_CONSUMER_KEY", hide_env_values = true)]
    pub mpesa_consumer_key: Option<Secret>,

    /// The Daraja app's consumer secret.
    #[arg(long, env = "ROWGUARD_MPESA_CONSUMER_SECRET", hide_env_values = true)]
    pub mpesa_consumer_secret: Option<Secret>,

    /// The paybill or till number (`BusinessShortCode`, also `PartyB`).
    #[arg(long, env = "ROWGUARD_MPESA_SHORTCODE")]
    pub mpesa_shortcode: Option<String>,

    /// The Lipa Na M-Pesa Online passkey (the STK push `Password` is made from it).
    #[arg(long, env = "ROWGUARD_MPESA_PASSKEY", hide_env_values = true)]
    pub mpesa_passkey: Option<Secret>,

    /// The secret path segment of the callback URL Daraja is given,
    /// `{public URL}/api/v1/payments/callbacks/{token}`: a callback with another
    /// token is a 404. Long and random (`openssl rand -hex 32`).
    #[arg(long, env = "ROWGUARD_MPESA_CALLBACK_TOKEN", hide_env_values = true)]
    pub mpesa_callback_token: Option<Secret>,

    /// Where callbacks may come from (comma-separated CIDRs); anyone else is a 403.
    /// Behind a proxy, the address is the one ROWGUARD_TRUSTED_PROXIES vouch for.
    /// The default is Safaricom's published callback addresses.
    #[arg(
        long,
        env = "ROWGUARD_MPESA_CALLBACK_ALLOW",
        default_value = SAFARICOM_CALLBACK_ADDRESSES
    )]
    pub mpesa_callback_allow: TrustedProxies,

    /// How long a call to Daraja may take (connect and answer), in milliseconds.
    #[arg(long, env = "ROWGUARD_MPESA_TIMEOUT_MS", default_value_t = 10_000)]
    pub mpesa_timeout_ms: u64,

    /// How long Daraja's callback waits for its answer, in milliseconds: the callback
    /// is answered once it is recorded and settled, or after this long while it still
    /// is (a burst queueing for the pool), and the settlement goes on; a shutdown waits
    /// for it.
    #[arg(long, env = "ROWGUARD_MPESA_CALLBACK_ANSWER_MS", default_value_t = 100)]
    pub mpesa_callback_answer_ms: u64,

    /// Job workers in this process (`rowguard serve`); 0: none (then `rowguard worker`
    /// elsewhere runs them).
    #[arg(long, env = "ROWGUARD_WORKERS", default_value_t = 1)]
    pub workers: usize,

    /// How often a server adds the API requests it counted to the database (the
    /// `api_requests` of `GET /api/v1/usage/current` lags by up to this much; the
    /// contract allows a minute). A shutdown flushes once more.
    #[arg(
        long,
        env = "ROWGUARD_USAGE_FLUSH_SECS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..=60)
    )]
    pub usage_flush_secs: u64,

    /// Origins (comma-separated, exact: `https://console.example.com`, scheme and
    /// port as the browser sends them) whose pages may call the API from a browser;
    /// `*`: any origin. Default none: no CORS headers at all, so only pages of the
    /// server's own origin can.
    #[arg(long, env = "ROWGUARD_CORS_ORIGINS", default_value = "")]
    pub cors_origins: CorsOrigins,

    /// Answer `Access-Control-Allow-Credentials: true` to those origins (only needed
    /// for cookies or HTTP authentication, which the API does not use: its bearer
    /// token is a header). Refused with `*`.
    #[arg(long, env = "ROWGUARD_CORS_ALLOW_CREDENTIALS", default_value_t = false)]
    pub cors_allow_credentials: bool,

    /// Where `GET /metrics` (Prometheus text format) is served: an address of its own,
    /// never the API's, so that what is public is only the API (README, "Metrics and
    /// traces"). Bind it to a private interface or loopback. Without it, the server
    /// keeps no metrics at all.
    #[arg(long, env = "ROWGUARD_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// The OTLP/HTTP collector to export request spans to (its base URL, e.g.
    /// `http://localhost:4318`: spans go to `/v1/traces`, http/protobuf). Without it,
    /// nothing is exported and tracing costs nothing beyond the log.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// ROWGUARD_DB_WAIT_SECS's default: long enough for a PostgreSQL container started at
/// the same moment to initialise, short enough that a wrong URL is noticed.
pub const DEFAULT_DB_WAIT_SECS: u64 = 30;

/// The addresses Safaricom publishes for its callbacks (Daraja's documentation, as
/// listed by the `pesafy` library's webhook guide,
/// https://pesafy-package.vercel.app/guide/webhooks): the default of
/// ROWGUARD_MPESA_CALLBACK_ALLOW.
pub const SAFARICOM_CALLBACK_ADDRESSES: &str = "196.201.214.200,196.201.214.206,\
196.201.213.114,196.201.214.207,196.201.214.208,196.201.213.44,196.201.212.127,\
196.201.212.138,196.201.212.129,196.201.212.136,196.201.212.74,196.201.212.69";

/// The data directory when none is given, relative to the working directory (the
/// checkout, under `cargo run`).
pub const DEFAULT_DATA_DIR: &str = ".rowguard";

/// The public URL of a development server: `cargo run`'s own address.
pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:8080";

impl Settings {
    /// Where users reach the server (`ROWGUARD_PUBLIC_URL`), without a trailing slash.
    pub fn public_url(&self) -> &str {
        self.public_url
            .as_deref()
            .unwrap_or(DEFAULT_PUBLIC_URL)
            .trim_end_matches('/')
    }

    pub fn usage_flush_interval(&self) -> Duration {
        Duration::from_secs(self.usage_flush_secs)
    }

    pub fn pool_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_timeout_ms)
    }

    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }

    pub fn pool_size(&self) -> usize {
        if self.pool_size > 0 {
            self.pool_size
        } else {
            std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
        }
    }

    pub fn hash_concurrency(&self) -> usize {
        if self.hash_concurrency > 0 {
            self.hash_concurrency
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
        }
    }

    /// Every setting at its default, as if no flag were given and the environment
    /// held no `ROWGUARD_*` or `DATABASE_URL`: the environment is not read at all, so
    /// what a test or an embedder builds does not depend on the shell it runs in.
    pub fn defaults() -> Self {
        let command = Cli::command().mut_args(|arg| arg.env(None));
        let parsed = command
            .try_get_matches_from(["rowguard"])
            .map_err(|error| error.to_string())
            .and_then(|matches| Cli::from_arg_matches(&matches).map_err(|e| e.to_string()));
        match parsed {
            Ok(cli) => cli.settings,
            // Only a default that does not parse could get here: a bug of this file,
            // caught by the unit tests below.
            Err(error) => unreachable!("the default settings do not parse: {error}"),
        }
    }

    /// Settings for a server whose database is given by URL, everything else default
    /// (see [`Settings::defaults`]). Used by the test harness and by embedders.
    pub fn for_database(database_url: &str) -> Self {
        let mut settings = Settings::defaults();
        settings.database.database_url = Some(database_url.into());
        settings
    }

    /// Checks what clap cannot: combinations and strength. In production the JWT
    /// secret must be given and strong ([`weak_secret`]); development runs with none
    /// (a random key) or any.
    pub fn validate(&self) -> Result<(), String> {
        if self.cors_allow_credentials && self.cors_origins.is_any() {
            return Err(
                "ROWGUARD_CORS_ALLOW_CREDENTIALS cannot be used with ROWGUARD_CORS_ORIGINS=*: \
                 a browser would send any site's requests with the user's credentials; \
                 list the origins instead"
                    .into(),
            );
        }
        if self.database.environment == Environment::Production {
            let Some(secret) = &self.jwt_secret else {
                return Err("ROWGUARD_JWT_SECRET is required when ROWGUARD_ENV=production".into());
            };
            if let Some(why) = weak_secret(secret.expose().as_bytes()) {
                return Err(format!(
                    "ROWGUARD_JWT_SECRET {why}; it is refused when ROWGUARD_ENV=production \
                     (generate one with `openssl rand -base64 32`)"
                ));
            }
            // Without them, reset and invitation links would go to the log (tokens in
            // it, and no user ever gets them) and point at localhost.
            if self
                .smtp_url
                .as_ref()
                .is_none_or(|url| url.expose().trim().is_empty())
            {
                return Err(
                    "ROWGUARD_SMTP_URL is required when ROWGUARD_ENV=production \
                            (without it, emails and their links are only written to the log)"
                        .into(),
                );
            }
            if self.public_url.is_none() {
                return Err(
                    "ROWGUARD_PUBLIC_URL is required when ROWGUARD_ENV=production \
                            (the base of the links in emails)"
                        .into(),
                );
            }
            if let Some(url) = &self.public_url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err("ROWGUARD_PUBLIC_URL must be an http(s) URL".into());
            }
        }
        Ok(())
    }
}

/// Published secrets: those of this repository (docker-compose.yml, the test harness,
/// the benchmarks, the fuzzing script) and those people type when asked for one.
/// Anyone can sign tokens with them, whatever their length.
const KNOWN_SECRETS: &[&str] = &[
    "development-only-jwt-secret-not-for-production",
    "change-me-change-me-change-me-change-me",
    "test-secret-test-secret-test-secret-0123456789",
    "benchmark-secret-benchmark-secret-0123456789",
    "fuzzing-secret-fuzzing-secret-0123456789",
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "jwt-secret",
    "jwt_secret",
    "supersecret",
    "password",
];

/// Words that mark an example or a development value rather than a key (compared
/// lowercased): a random secret does not spell them.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "placeholder",
    "example",
    "insecure",
    "development",
    "do-not-use",
    "not-for-production",
];

/// The least a JWT secret takes: 32 bytes, and an estimated 128 bits.
const MIN_SECRET_BYTES: usize = 32;
const MIN_SECRET_BITS: f64 = 128.0;

/// Why `secret` is no key for production, or `None`. Strength cannot be measured from
/// one value, so this refuses the mistakes that are seen: a published or placeholder
/// value, one shorter than 32 bytes (RFC 7518 asks 256 bits of an HS256 key), and
/// one with little variety, by [`estimated_bits`].
fn weak_secret(secret: &[u8]) -> Option<String> {
    let lowered = String::from_utf8_lossy(secret).to_lowercase();
    if KNOWN_SECRETS.contains(&lowered.as_str())
        || PLACEHOLDER_WORDS.iter().any(|word| lowered.contains(word))
    {
        return Some("is a published example or placeholder value".into());
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Some(format!("must be at least {MIN_SECRET_BYTES} bytes"));
    }
    if estimated_bits(secret) < MIN_SECRET_BITS {
        return Some(format!(
            "is too regular to be a key (repeated or sequential characters); use at least \
             {MIN_SECRET_BITS} bits of randomness"
        ));
    }
    None
}

/// An upper estimate of the randomness in `secret`: its length times the Shannon
/// entropy (bits per byte) of the frequencies of its bytes, or of the steps between
/// neighbouring bytes when that is less. The first is low for a small alphabet or a
/// repeated word (`aaaa...`, `abcabc...`), the second for runs and sequences
/// (`abcdef...`, `0123...`), which use many bytes once each but always step by one.
/// Both overestimate a human choice (`test-secret-test-secret-...` scores 145, hence
/// the list of published values), so the bar is the least a key needs, not a measure
/// of its strength: 128 bits. The output of a generator clears it by far (`openssl
/// rand -base64 32` scores about 215 and never below 190 in 20 000 draws, `-hex 32`
/// about 245), and 32 hex digits (128 real bits, half of what HS256 wants) never do.
fn estimated_bits(secret: &[u8]) -> f64 {
    let bytes = shannon(secret.iter().copied());
    let steps = shannon(secret.windows(2).map(|pair| pair[1].wrapping_sub(pair[0])));
    secret.len() as f64 * bytes.min(steps)
}

/// The Shannon entropy, in bits per value, of the frequencies of `values`.
fn shannon(values: impl Iterator<Item = u8>) -> f64 {
    let mut counts = [0u32; 256];
    let mut total = 0u32;
    for value in values {
        counts[usize::from(value)] += 1;
        total += 1;
    }
    counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = f64::from(count) / f64::from(total);
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the environment of the child run of the test below.
    const CHILD: &str = "ROWGUARD_TEST_DEFAULTS_CHILD";

    #[test]
    fn default_settings_do_not_read_the_environment() {
        if std::env::var_os(CHILD).is_some() {
            // The child, with the variables below set. The command line reads them
            // (`rowguard serve` is configured from its environment)...
            let cli = Cli::try_parse_from(["rowguard"]).unwrap();
            assert_eq!(cli.settings.registration, Registration::Closed);
            assert_eq!(cli.settings.pool_size, 3);
            // ...and the defaults that tests and embedders build on do not.
            let settings = Settings::defaults();
            assert_eq!(settings.registration, Registration::Open);
            assert_eq!(settings.pool_size, 0);
            assert!(settings.database.database_url.is_none());
            assert!(settings.jwt_secret.is_none());
            return;
        }
        // Setting variables in this multi-threaded process would race with other
        // tests: run this test again in a child process with them set.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "config::tests::default_settings_do_not_read_the_environment",
            ])
            .env(CHILD, "1")
            .env("ROWGUARD_REGISTRATION", "closed")
            .env("ROWGUARD_POOL_SIZE", "3")
            .env("DATABASE_URL", "postgres://elsewhere/db")
            .env("ROWGUARD_JWT_SECRET", "from-the-environment")
            .status()
            .unwrap();
        assert!(status.success(), "the child run failed: {status}");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        // clap's own checks (an argument defined twice, as a `global` setting flattened
        // into `serve` would be, panics here rather than at a user's first run).
        Cli::command().debug_assert();
    }

    #[test]
    fn rowguard_alone_serves_with_the_top_level_settings() {
        let cli = Cli::try_parse_from(["rowguard", "--bind", "127.0.0.1:9999"]).unwrap();
        match cli.into_command() {
            Command::Serve(settings) => assert_eq!(settings.bind.port(), 9999),
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["rowguard", "serve", "--bind", "127.0.0.1:9998"]).unwrap();
        match cli.into_command() {
            Command::Serve(settings) => assert_eq!(settings.bind.port(), 9998),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_server_flag_is_refused_by_a_one_shot_command() {
        assert!(Cli::try_parse_from(["rowguard", "migrate", "--bind", "127.0.0.1:1"]).is_err());
        assert!(Cli::try_parse_from(["rowguard", "--bind", "127.0.0.1:1", "migrate"]).is_err());
    }

    #[test]
    fn credentials_for_any_origin_are_refused() {
        let mut settings = Settings::defaults();
        settings.cors_origins = "*".parse().unwrap();
        assert_eq!(settings.validate(), Ok(()));
        settings.cors_allow_credentials = true;
        assert!(
            settings
                .validate()
                .unwrap_err()
                .contains("ROWGUARD_CORS_ORIGINS=*")
        );
        settings.cors_origins = "https://console.example.com".parse().unwrap();
        assert_eq!(settings.validate(), Ok(()));
    }

    #[test]
    fn the_command_line_reads_its_flags() {
        let cli = Cli::try_parse_from(["rowguard", "--registration", "closed"]).unwrap();
        assert_eq!(cli.settings.registration, Registration::Closed);
    }

    /// Production settings with email set up, and `secret` as the JWT key.
    fn production_settings(secret: Option<&str>) -> Settings {
        let mut settings = Settings::defaults();
        settings.database.environment = Environment::Production;
        settings.jwt_secret = secret.map(Secret::from);
        settings.smtp_url = Some("smtps://mailer:password@smtp.example:465".into());
        settings.public_url = Some("https://app.example".into());
        settings
    }

    fn production(secret: Option<&str>) -> Result<(), String> {
        production_settings(secret).validate()
    }

    #[test]
    fn production_refuses_to_run_without_an_smtp_server_or_a_public_url() {
        let secret = generated(false);
        assert_eq!(production(Some(&secret)), Ok(()));
        let mut without_smtp = production_settings(Some(&secret));
        without_smtp.smtp_url = None;
        assert!(
            without_smtp
                .validate()
                .unwrap_err()
                .contains("ROWGUARD_SMTP_URL")
        );
        let mut without_url = production_settings(Some(&secret));
        without_url.public_url = None;
        assert!(
            without_url
                .validate()
                .unwrap_err()
                .contains("ROWGUARD_PUBLIC_URL")
        );
        // Development writes email to the log and links to localhost.
        assert_eq!(Settings::defaults().validate(), Ok(()));
        assert_eq!(Settings::defaults().public_url(), "http://localhost:8080");
    }

    /// What a deployment would do: 32 random bytes, base64 or hex.
    fn generated(hex: bool) -> String {
        use base64::Engine as _;
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        if hex {
            key.iter().map(|byte| format!("{byte:02x}")).collect()
        } else {
            base64::engine::general_purpose::STANDARD.encode(key)
        }
    }

    #[test]
    fn development_runs_with_no_secret_or_any() {
        let mut settings = Settings::defaults();
        assert_eq!(settings.database.environment, Environment::Development);
        assert_eq!(settings.validate(), Ok(()));
        settings.jwt_secret = Some("changeme".into());
        assert_eq!(settings.validate(), Ok(()));
    }

    #[test]
    fn production_refuses_a_missing_secret() {
        let refused = production(None).unwrap_err();
        assert!(refused.contains("required"), "{refused}");
    }

    #[test]
    fn production_accepts_a_generated_secret() {
        for _ in 0..1000 {
            for hex in [false, true] {
                let secret = generated(hex);
                assert_eq!(production(Some(&secret)), Ok(()), "{secret}");
            }
        }
    }

    #[test]
    fn production_refuses_the_secrets_this_repository_publishes() {
        let compose = include_str!("../docker-compose.yml");
        assert!(
            compose.contains("development-only-jwt-secret-not-for-production"),
            "docker-compose.yml's secret is no longer the one refused here"
        );
        for secret in KNOWN_SECRETS {
            let refused = production(Some(secret)).unwrap_err();
            assert!(refused.contains("placeholder"), "{secret}: {refused}");
            assert!(!refused.contains(secret), "the message shows the secret");
        }
    }

    #[test]
    fn production_refuses_a_placeholder_however_long() {
        for secret in [
            "ChangeMe-ChangeMe-ChangeMe-ChangeMe-ChangeMe",
            "please-replace-me-with-a-real-key-9f8e7d6c5b4a",
            "my-EXAMPLE-key-Qm9vbGVhbiBhbGdlYnJhIGlzIGZ1bg",
        ] {
            let refused = production(Some(secret)).unwrap_err();
            assert!(refused.contains("placeholder"), "{secret}: {refused}");
        }
    }

    #[test]
    fn production_refuses_a_secret_shorter_than_32_bytes() {
        let secret = &generated(false)[..31];
        let refused = production(Some(secret)).unwrap_err();
        assert!(refused.contains("32 bytes"), "{refused}");
    }

    #[test]
    fn production_refuses_a_long_secret_with_little_variety() {
        for secret in [
            "a".repeat(64),
            "abcabcabcabcabcabcabcabcabcabcabcabcabc".into(),
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".into(),
            "0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            "zyxwvutsrqponmlkjihgfedcba9876543210".into(),
            // 32 hex digits: 128 bits, half of what an HS256 key needs.
            generated(true)[..32].to_string(),
        ] {
            let refused = production(Some(&secret)).unwrap_err();
            assert!(refused.contains("too regular"), "{secret}: {refused}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let mut settings = Settings::defaults();
        settings.jwt_secret = Some("hunter2-hunter2-hunter2-hunter2-hunter2".into());
        settings.database.database_url = Some("postgres://app:s3cret@db/rowguard".into());
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
    }
}
