//! The embedded default: a private PostgreSQL cluster under the data directory, started
//! from the PostgreSQL binaries installed on the machine, so that `cargo run` and
//! `cargo test` work with no database set up and no `DATABASE_URL`.
//!
//! PostgreSQL refuses to run as root, so when rowguard runs as root the cluster runs as
//! an unprivileged system user (`postgres` when it exists, else `nobody`). That user
//! often cannot enter the data directory: a checkout in root's home (mode 700) or in a
//! `mktemp -d` folder. Then, when the caller allows it (the default data directory),
//! the cluster is kept under [`RELOCATION_BASE`] instead, in a directory named after
//! the data directory's path; otherwise start-up says which directory is in the way.
//!
//! The postmaster is a child of a thread that lives as long as the cluster, with a
//! parent-death signal, so a crashed or killed rowguard never leaves it running.
//! A cluster found already running (another rowguard on the same data directory) is
//! reused and left running on exit.

use std::{
    fs,
    io::{self, Write},
    net::TcpListener,
    os::unix::{
        fs::{DirBuilderExt, MetadataExt, PermissionsExt},
        process::CommandExt,
    },
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use rand::{Rng, distr::Alphanumeric};

/// The database superuser initdb creates in the private cluster.
const SUPERUSER: &str = "rowguard";

/// Where a cluster goes when its user cannot reach the data directory. A state
/// directory rather than /tmp or /var/tmp: their age-based cleaners (systemd-tmpfiles)
/// would delete the files of relations left untouched for weeks, and anyone can
/// create names there before us.
pub const RELOCATION_BASE: &str = "/var/lib/rowguard";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no PostgreSQL server binaries found (looked for initdb and postgres on PATH, in `pg_config --bindir` and under /usr/lib/postgresql/*/bin); install PostgreSQL or set DATABASE_URL"
    )]
    BinariesNotFound,
    #[error(
        "rowguard runs as root and PostgreSQL refuses to, but there is neither a `postgres` nor a `nobody` user to run the cluster as; run rowguard as a normal user or set DATABASE_URL"
    )]
    NoUnprivilegedUser,
    #[error(
        "the embedded cluster would run as user {user} (uid {uid}) because PostgreSQL refuses to run as root, but {user} cannot enter {dir} (mode {mode:o}, owner uid {owner}); move the data directory (ROWGUARD_DATA_DIR) somewhere {user} can reach, leave ROWGUARD_DATA_DIR unset (the default is then kept under /var/lib/rowguard), or set DATABASE_URL"
    )]
    Unreachable {
        user: String,
        uid: u32,
        dir: PathBuf,
        mode: u32,
        owner: u32,
    },
    #[error(
        "refusing to keep the embedded cluster in {dir}: {problem}; or set ROWGUARD_DATA_DIR to a directory the cluster's user can reach, or DATABASE_URL"
    )]
    UnsafeDirectory { dir: PathBuf, problem: String },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("PostgreSQL did not accept connections within {0:?}; its log is {1}")]
    NotReady(Duration, PathBuf),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> EmbeddedError {
    let context = context.into();
    move |source| EmbeddedError::Io { context, source }
}

/// How to start the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Trade durability for speed (fsync off); for throwaway test clusters only.
    pub throwaway: bool,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
    /// Listen on this port (a restart keeps its address); default: a free one.
    pub port: Option<u16>,
    /// When the cluster's user (rowguard runs as root) cannot reach the directory, keep
    /// the cluster under [`RELOCATION_BASE`] instead of failing. For a default location;
    /// a directory an operator chose is better refused than silently moved.
    pub relocate_if_unreachable: bool,
}

/// A running private cluster.
pub struct EmbeddedCluster {
    root: PathBuf,
    port: u16,
    password: String,
    postmaster: Option<Postmaster>,
}

struct Postmaster {
    pid: i32,
    /// Receives once the postmaster has exited. In a Mutex so a cluster can be shared.
    exited: Mutex<mpsc::Receiver<()>>,
}

/// The system user the cluster runs as when rowguard runs as root.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

impl EmbeddedCluster {
    /// Starts the cluster under `root` (creating it on first use), or reuses the one
    /// already running there.
    pub fn start(root: &Path, options: &ClusterOptions) -> Result<Self, EmbeddedError> {
        let bindir = find_bindir()?;
        fs::create_dir_all(root).map_err(io_err(format!("creating {}", root.display())))?;
        let root = root
            .canonicalize()
            .map_err(io_err(format!("resolving {}", root.display())))?;
        let run_as = run_as_user()?;
        let root = match &run_as {
            Some(user) => reachable_root(root, user, options.relocate_if_unreachable)?,
            None => root,
        };
        let pgdata = root.join("pgdata");
        let password = ensure_password(&root)?;

        if !pgdata.join("PG_VERSION").exists() {
            init_cluster(&bindir, &root, &pgdata, &password, run_as.as_ref())?;
        }

        if let Some(port) = running_port(&pgdata) {
            tracing::info!(port, data = %pgdata.display(), "reusing the running embedded PostgreSQL cluster");
            let cluster = EmbeddedCluster {
                root,
                port,
                password,
                postmaster: None,
            };
            cluster.wait_ready(Duration::from_secs(30))?;
            return Ok(cluster);
        }

        let port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let postmaster = spawn_postmaster(&bindir, &root, &pgdata, port, options, run_as.as_ref())?;
        let cluster = EmbeddedCluster {
            root,
            port,
            password,
            postmaster: Some(postmaster),
        };
        cluster.wait_ready(Duration::from_secs(60))?;
        tracing::info!(port, data = %pgdata.display(), "started the embedded PostgreSQL cluster");
        Ok(cluster)
    }

    /// URL of a database in this cluster, as its superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the cluster lives (its data directory is `pgdata` inside): the directory
    /// given to [`EmbeddedCluster::start`], canonical, or where it was relocated.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), EmbeddedError> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(postmaster) = &self.postmaster
                && postmaster
                    .exited
                    .lock()
                    .is_ok_and(|exited| exited.try_recv().is_ok())
            {
                return Err(EmbeddedError::Command {
                    what: "postgres".into(),
                    detail: format!("exited during start-up; see {}", self.log_path().display()),
                });
            }
            if accepts_connections(self.port) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(EmbeddedError::NotReady(limit, self.log_path()))
    }

    /// Fast shutdown of a cluster this process started; a reused one is left running.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(postmaster) = self.postmaster.take() {
            // SIGINT is PostgreSQL's "fast shutdown": roll back open transactions,
            // disconnect clients, checkpoint, exit.
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(postmaster.pid, libc::SIGINT) };
            if let Ok(exited) = postmaster.exited.lock() {
                let _ = exited.recv_timeout(Duration::from_secs(30));
            }
        }
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn connect_local(port: u16) -> Option<std::net::TcpStream> {
    let stream = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(200),
    )
    .ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    Some(stream)
}

/// Whether a PostgreSQL server, ready or not, listens on the port: it answers an
/// SSLRequest with one byte ('S' or 'N') as soon as it accepts TCP connections.
fn postgres_answers(port: u16) -> bool {
    use std::io::Read;
    let Some(mut stream) = connect_local(port) else {
        return false;
    };
    // SSLRequest: length 8, code 80877103.
    if stream.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).is_err() {
        return false;
    }
    let mut answer = [0u8; 1];
    matches!(stream.read(&mut answer), Ok(1) if answer[0] == b'N' || answer[0] == b'S')
}

/// Whether the server on the port would run queries now. It answers an SSLRequest
/// while still starting up, and says "the database system is starting up" (SQLSTATE
/// 57P03) only after a startup packet: send one, as pg_isready does, and count an
/// authentication request, or any other error, as ready (a real connection then
/// reports that error).
fn accepts_connections(port: u16) -> bool {
    use std::io::Read;
    let Some(mut stream) = connect_local(port) else {
        return false;
    };
    let parameters = format!("user\0{SUPERUSER}\0database\0postgres\0\0");
    let length = u32::try_from(8 + parameters.len()).unwrap_or(u32::MAX);
    let mut packet = Vec::with_capacity(8 + parameters.len());
    packet.extend_from_slice(&length.to_be_bytes());
    // Protocol version 3.0.
    packet.extend_from_slice(&0x0003_0000u32.to_be_bytes());
    packet.extend_from_slice(parameters.as_bytes());
    if stream.write_all(&packet).is_err() {
        return false;
    }
    let mut header = [0u8; 5];
    if stream.read_exact(&mut header).is_err() {
        return false;
    }
    match header[0] {
        b'R' => true,
        b'E' => {
            let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
            let mut fields = vec![0u8; (length as usize).saturating_sub(4).min(8192)];
            if stream.read_exact(&mut fields).is_err() {
                return false;
            }
            // Fields are a type byte and a NUL-terminated value each; 'C' is the code.
            !fields
                .split(|byte| *byte == 0)
                .any(|field| field == b"C57P03")
        }
        _ => false,
    }
}

fn find_bindir() -> Result<PathBuf, EmbeddedError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();

    // initdb on PATH (following symlinks: Debian links only some binaries into /usr/bin).
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if let Ok(real) = dir.join("initdb").canonicalize()
                && let Some(parent) = real.parent()
                && has_server(parent)
            {
                return Ok(parent.to_path_buf());
            }
        }
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    // Debian and Ubuntu: /usr/lib/postgresql/<major>/bin; take the newest major.
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, dir)| dir)
        .ok_or(EmbeddedError::BinariesNotFound)
}

fn run_as_user() -> Result<Option<RunAs>, EmbeddedError> {
    if effective_uid() != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").map_err(io_err("reading /etc/passwd"))?;
    for wanted in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 4
                && fields[0] == wanted
                && let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse())
                && uid != 0
            {
                return Ok(Some(RunAs {
                    name: wanted.to_string(),
                    uid,
                    gid,
                }));
            }
        }
    }
    Err(EmbeddedError::NoUnprivilegedUser)
}

/// A directory on the way to the cluster that its user cannot enter.
#[derive(Debug)]
struct Blocked {
    dir: PathBuf,
    mode: u32,
    owner: u32,
}

/// The unprivileged user must be able to enter the cluster's directory and every one
/// above it.
fn first_blocked(root: &Path, user: &RunAs) -> Result<Option<Blocked>, EmbeddedError> {
    for dir in root.ancestors() {
        let meta = fs::metadata(dir).map_err(io_err(format!("inspecting {}", dir.display())))?;
        let mode = meta.permissions().mode() & 0o7777;
        let can_enter = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !can_enter {
            return Ok(Some(Blocked {
                dir: dir.to_path_buf(),
                mode,
                owner: meta.uid(),
            }));
        }
    }
    Ok(None)
}

fn unreachable(user: &RunAs, blocked: Blocked) -> EmbeddedError {
    EmbeddedError::Unreachable {
        user: user.name.clone(),
        uid: user.uid,
        dir: blocked.dir,
        mode: blocked.mode,
        owner: blocked.owner,
    }
}

fn check_reachable(root: &Path, user: &RunAs) -> Result<(), EmbeddedError> {
    match first_blocked(root, user)? {
        None => Ok(()),
        Some(blocked) => Err(unreachable(user, blocked)),
    }
}

/// `root` when the cluster's user can reach it; else, when allowed, the directory the
/// cluster is kept in instead.
fn reachable_root(root: PathBuf, user: &RunAs, relocate: bool) -> Result<PathBuf, EmbeddedError> {
    let Some(blocked) = first_blocked(&root, user)? else {
        return Ok(root);
    };
    if !relocate {
        return Err(unreachable(user, blocked));
    }
    let elsewhere = relocation_dir(Path::new(RELOCATION_BASE), &root)?;
    check_reachable(&elsewhere, user)?;
    tracing::info!(
        configured = %root.display(),
        "the embedded cluster runs as user {} (PostgreSQL refuses root), who cannot enter {} (mode {:o}, owner uid {}): keeping it in {} instead, where the next run from here finds it",
        user.name,
        blocked.dir.display(),
        blocked.mode,
        blocked.owner,
        elsewhere.display(),
    );
    Ok(elsewhere)
}

/// The directory under `base` that stands for the data directory `configured`
/// (canonical), made if missing. Everything from `/` down to it must be out of reach
/// of anyone but root, or someone could swap in a symlink or files of their own for
/// root to write through (the password, the log).
fn relocation_dir(base: &Path, configured: &Path) -> Result<PathBuf, EmbeddedError> {
    let parent = base.parent().unwrap_or(Path::new("/"));
    let parent = parent
        .canonicalize()
        .map_err(io_err(format!("resolving {}", parent.display())))?;
    let base = parent.join(base.file_name().unwrap_or(base.as_os_str()));
    for dir in parent.ancestors() {
        trusted_ancestor(dir, &base)?;
    }
    // 0711: the cluster's user may pass through to its data directory, but no one
    // else learns which checkouts have clusters here.
    private_dir(&base)?;
    let dir = base.join(relocated_name(configured));
    private_dir(&dir)?;
    Ok(dir)
}

/// Readable and stable: the path's last components, so that a listing says whose
/// cluster is whose, then a digest of the whole path, so that two checkouts never
/// share one.
fn relocated_name(configured: &Path) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::ffi::OsStrExt;
    const READABLE: usize = 64;
    let slug = |part: &std::ffi::OsStr| -> String {
        part.to_string_lossy()
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
                _ => '_',
            })
            .collect()
    };
    let mut readable = String::new();
    for part in configured.iter().rev().filter(|part| *part != "/") {
        let part = slug(part);
        if readable.is_empty() && part.len() > READABLE {
            // ASCII only after the slug, so any byte offset is a character boundary.
            readable = part[part.len() - READABLE..].to_string();
            break;
        }
        if readable.len() + 1 + part.len() > READABLE {
            break;
        }
        readable = if readable.is_empty() {
            part
        } else {
            format!("{part}-{readable}")
        };
    }
    // Not hidden, and never `.` or `..`.
    let readable = readable.trim_start_matches(['.', '-']);
    let digest = hex::encode(Sha256::digest(configured.as_os_str().as_bytes()));
    if readable.is_empty() {
        digest[..12].to_string()
    } else {
        format!("{readable}-{}", &digest[..12])
    }
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// A directory above the relocated cluster: only root may change what it holds,
/// except that a sticky one (like /tmp) lets others add names but not replace ours.
fn trusted_ancestor(dir: &Path, below: &Path) -> Result<(), EmbeddedError> {
    let meta = fs::metadata(dir).map_err(io_err(format!("inspecting {}", dir.display())))?;
    let mode = meta.permissions().mode() & 0o7777;
    let problem = if meta.uid() != 0 {
        format!("{} is owned by uid {}, not root", dir.display(), meta.uid())
    } else if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        format!("others may write to {} (mode {mode:o})", dir.display())
    } else {
        return Ok(());
    };
    Err(EmbeddedError::UnsafeDirectory {
        dir: below.to_path_buf(),
        problem,
    })
}

/// Makes `dir` with mode 0711, or accepts it if it exists as a real directory of
/// ours that no one else may write to. Never follows a symlink in its place.
fn private_dir(dir: &Path) -> Result<(), EmbeddedError> {
    match fs::DirBuilder::new().mode(0o711).create(dir) {
        // The umask may have taken bits away; set exactly the mode meant.
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o711))
            .map_err(io_err(format!("restricting {}", dir.display())))?,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(io_err(format!("creating {}", dir.display()))(error)),
    }
    let unsafe_dir = |problem: String| EmbeddedError::UnsafeDirectory {
        dir: dir.to_path_buf(),
        problem,
    };
    let meta =
        fs::symlink_metadata(dir).map_err(io_err(format!("inspecting {}", dir.display())))?;
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir(
            "it is a symbolic link; remove it (only rowguard should make it)".into(),
        ));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir("it is not a directory; remove it".into()));
    }
    if meta.uid() != effective_uid() {
        return Err(unsafe_dir(format!(
            "it is owned by uid {}, not by uid {} (rowguard); remove it (only rowguard should make it)",
            meta.uid(),
            effective_uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "others may write to it (mode {mode:o}); remove it, or chmod go-w it"
        )));
    }
    Ok(())
}

/// The superuser password, made once and kept readable by the invoking user only.
fn ensure_password(root: &Path) -> Result<String, EmbeddedError> {
    let path = root.join("password");
    if let Ok(existing) = fs::read_to_string(&path)
        && !existing.trim().is_empty()
    {
        return Ok(existing.trim().to_string());
    }
    let password: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(format!("writing {}", path.display())))?;
    file.write_all(password.as_bytes())
        .map_err(io_err(format!("writing {}", path.display())))?;
    Ok(password)
}

use std::os::unix::fs::OpenOptionsExt;

fn as_user(command: &mut Command, run_as: Option<&RunAs>) {
    if let Some(user) = run_as {
        command.uid(user.uid).gid(user.gid);
    }
}

fn chown(path: &Path, run_as: Option<&RunAs>) -> Result<(), EmbeddedError> {
    if let Some(user) = run_as {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).map_err(io_err(format!(
            "handing {} to user {}",
            path.display(),
            user.name
        )))?;
    }
    Ok(())
}

fn init_cluster(
    bindir: &Path,
    root: &Path,
    pgdata: &Path,
    password: &str,
    run_as: Option<&RunAs>,
) -> Result<(), EmbeddedError> {
    tracing::info!(data = %pgdata.display(), "creating the embedded PostgreSQL cluster");
    // A half-made cluster from an interrupted initdb is useless: start over.
    if pgdata.exists() {
        fs::remove_dir_all(pgdata).map_err(io_err(format!("removing {}", pgdata.display())))?;
    }
    fs::create_dir(pgdata).map_err(io_err(format!("creating {}", pgdata.display())))?;
    fs::set_permissions(pgdata, fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("restricting {}", pgdata.display())))?;
    chown(pgdata, run_as)?;

    let pwfile = root.join("initdb.pw");
    fs::write(&pwfile, password).map_err(io_err(format!("writing {}", pwfile.display())))?;
    fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("restricting {}", pwfile.display())))?;
    chown(&pwfile, run_as)?;

    let mut initdb = Command::new(bindir.join("initdb"));
    initdb
        .arg("-D")
        .arg(pgdata)
        .args([
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C",
            "--auth=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .current_dir(root);
    as_user(&mut initdb, run_as);
    let output = initdb.output().map_err(io_err("running initdb"));
    let _ = fs::remove_file(&pwfile);
    let output = output?;
    if !output.status.success() {
        return Err(EmbeddedError::Command {
            what: "initdb".into(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The port of a postmaster already running on this data directory, if any.
fn running_port(pgdata: &Path) -> Option<u16> {
    let pid_file = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let mut lines = pid_file.lines();
    let pid: i32 = lines.next()?.trim().parse().ok()?;
    let port: u16 = lines.nth(2)?.trim().parse().ok()?;
    // SAFETY: kill(pid, 0) only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // Ready or still starting up: either way it is this data directory's postmaster,
    // and `wait_ready` waits for it.
    (alive && postgres_answers(port)).then_some(port)
}

fn free_port() -> Result<u16, EmbeddedError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_err("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_err("finding a free port"))?
        .port();
    Ok(port)
}

fn spawn_postmaster(
    bindir: &Path,
    root: &Path,
    pgdata: &Path,
    port: u16,
    options: &ClusterOptions,
    run_as: Option<&RunAs>,
) -> Result<Postmaster, EmbeddedError> {
    let log_path = root.join("postgres.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io_err(format!("opening {}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(io_err("duplicating the log handle"))?;

    let mut command = Command::new(bindir.join("postgres"));
    command
        .arg("-D")
        .arg(pgdata)
        .arg("-p")
        .arg(port.to_string())
        // TCP on loopback only; no Unix socket, whose path length is limited.
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
        ])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    if options.throwaway {
        command.args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    }
    for (name, value) in &options.settings {
        command.arg("-c").arg(format!("{name}={value}"));
    }
    as_user(&mut command, run_as);
    // SAFETY: prctl and getppid are async-signal-safe, as a pre_exec hook requires.
    unsafe {
        command.pre_exec(|| {
            // Runs after the user switch (which would clear it): the kernel sends SIGINT
            // (fast shutdown) when the thread that spawned the postmaster ends.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() == 1 {
                return Err(io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }

    // The parent-death signal fires when the spawning *thread* ends, so the postmaster
    // is spawned by a thread that lives exactly as long as it does.
    let (spawned_tx, spawned_rx) = mpsc::channel();
    let (exited_tx, exited_rx) = mpsc::channel();
    thread::Builder::new()
        .name("embedded-postgres".into())
        .spawn(move || match command.spawn() {
            Ok(mut child) => {
                let _ = spawned_tx.send(Ok(child.id() as i32));
                let _ = child.wait();
                let _ = exited_tx.send(());
            }
            Err(error) => {
                let _ = spawned_tx.send(Err(error));
            }
        })
        .map_err(io_err("starting the postmaster thread"))?;
    let pid = spawned_rx
        .recv()
        .map_err(|_| EmbeddedError::Command {
            what: "postgres".into(),
            detail: "the postmaster thread ended before spawning".into(),
        })?
        .map_err(io_err("starting postgres"))?;
    Ok(Postmaster {
        pid,
        exited: Mutex::new(exited_rx),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rowguard-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn is_root() -> bool {
        effective_uid() == 0
    }

    #[test]
    fn a_directory_the_cluster_user_cannot_enter_is_named() {
        let base = scratch("reach");
        let closed = base.join("closed");
        fs::create_dir_all(closed.join("data")).unwrap();
        fs::set_permissions(closed.join("data"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
        // A user that owns nothing here (and is not the one running the test).
        let stranger = RunAs {
            name: "stranger".into(),
            uid: 4_000_000_001,
            gid: 4_000_000_001,
        };
        let error = check_reachable(&closed.join("data"), &stranger).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(&closed.display().to_string()), "{message}");
        assert!(message.contains("mode 700"), "{message}");
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_reachable(&closed.join("data"), &stranger).is_ok());
        // The cluster's own directory counts too (a umask of 077 makes it 0700).
        fs::set_permissions(closed.join("data"), fs::Permissions::from_mode(0o700)).unwrap();
        let message = check_reachable(&closed.join("data"), &stranger)
            .unwrap_err()
            .to_string();
        assert!(message.contains(&format!("cannot enter {}", closed.join("data").display())));
        let _ = fs::remove_dir_all(&base);
    }

    /// A server on a free port that answers each connection's first message with
    /// `answer`, whatever it was.
    fn fake_server(answer: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut request = [0u8; 8];
                let _ = io::Read::read(&mut stream, &mut request);
                let _ = stream.write_all(answer);
            }
        });
        port
    }

    #[test]
    fn a_server_still_starting_up_answers_but_is_not_ready() {
        // ErrorResponse: severity, code 57P03, message.
        let mut starting = vec![b'E'];
        let fields = b"SFATAL\0C57P03\0Mthe database system is starting up\0\0";
        starting.extend_from_slice(&(4 + fields.len() as u32).to_be_bytes());
        starting.extend_from_slice(fields);
        let starting: &'static [u8] = starting.leak();
        let port = fake_server(starting);
        assert!(!accepts_connections(port));

        // AuthenticationSASL: a server that asks for a password is ready.
        let port = fake_server(b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0");
        assert!(accepts_connections(port));

        let port = fake_server(b"N");
        assert!(postgres_answers(port));
        assert!(
            !accepts_connections(port),
            "one byte is no answer to a startup packet"
        );
    }

    #[test]
    fn a_relocated_cluster_is_named_readably_after_its_path_and_never_shares_another_s() {
        let name = relocated_name(Path::new("/root/src/rowguard/.rowguard"));
        let (readable, digest) = name.rsplit_once('-').unwrap();
        assert_eq!(readable, "root-src-rowguard-.rowguard");
        assert!(digest.len() == 12 && digest.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            relocated_name(Path::new("/root/src/rowguard/.rowguard")),
            name
        );
        // Paths whose readable parts coincide still differ.
        assert_ne!(
            relocated_name(Path::new("/root/src-rowguard/.rowguard")),
            name
        );

        let odd = relocated_name(Path::new(
            "/home/ünïcode user/a very long directory name that goes on and on/rowguard/.rowguard",
        ));
        assert!(odd.len() <= 64 + 13, "{odd}");
        assert!(
            odd.contains("rowguard-.rowguard-"),
            "the end is kept: {odd}"
        );
        assert!(
            odd.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "{odd}"
        );
        assert!(!relocated_name(Path::new("/.x")).starts_with('.'));
        let one_long = relocated_name(&Path::new("/").join("x".repeat(100)));
        assert_eq!(one_long.len(), 64 + 13, "{one_long}");
    }

    #[test]
    fn a_relocation_directory_in_the_way_that_is_a_symlink_or_open_to_others_is_refused() {
        let base = scratch("private-dir");

        let fresh = base.join("fresh");
        private_dir(&fresh).unwrap();
        let meta = fs::symlink_metadata(&fresh).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o711);
        private_dir(&fresh).expect("our own directory is accepted again");

        // Someone's symlink in its place, pointing at a directory of theirs.
        let target = base.join("theirs");
        fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, base.join("link")).unwrap();
        let message = private_dir(&base.join("link")).unwrap_err().to_string();
        assert!(message.contains("symbolic link"), "{message}");

        let open = base.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let message = private_dir(&open).unwrap_err().to_string();
        assert!(message.contains("mode 777"), "{message}");

        if is_root() {
            let foreign = base.join("foreign");
            fs::create_dir(&foreign).unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
            let message = private_dir(&foreign).unwrap_err().to_string();
            assert!(message.contains("owned by uid 65534"), "{message}");
        }
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn a_relocation_base_under_a_directory_others_may_write_to_is_refused() {
        if !is_root() {
            eprintln!("skipped: the relocation base must be root's");
            return;
        }
        let base = scratch("relocation-base");
        let configured = Path::new("/somewhere/.rowguard");

        let open = base.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let message = relocation_dir(&open.join("rowguard"), configured)
            .unwrap_err()
            .to_string();
        assert!(message.contains(&format!("others may write to {}", open.display())));
        assert!(!open.join("rowguard").exists(), "nothing made under it");

        // Sticky like /tmp: others may add names but not take ours over.
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        let dir = relocation_dir(&open.join("rowguard"), configured).unwrap();
        assert_eq!(dir.parent(), Some(open.join("rowguard").as_path()));
        assert_eq!(dir.file_name(), Some(relocated_name(configured).as_ref()));
        let _ = fs::remove_dir_all(&base);
    }
}
