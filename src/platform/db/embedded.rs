//! The embedded default: a private PostgreSQL cluster under the data directory, started
//! from the PostgreSQL binaries installed on the machine, so that `cargo run` and
//! `cargo test` work with no database set up and no `DATABASE_URL`.
//!
//! PostgreSQL refuses to run as root, so when rowguard runs as root the cluster runs as
//! an unprivileged system user (`postgres` when it exists, else `nobody`), and start-up
//! says exactly which directory that user cannot enter when it cannot.
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
        fs::{MetadataExt, PermissionsExt},
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
        "the embedded cluster would run as user {user} (uid {uid}) because PostgreSQL refuses to run as root, but {user} cannot enter {dir} (mode {mode:o}, owner uid {owner}); move the data directory (ROWGUARD_DATA_DIR) somewhere {user} can reach, or set DATABASE_URL"
    )]
    Unreachable {
        user: String,
        uid: u32,
        dir: PathBuf,
        mode: u32,
        owner: u32,
    },
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
        if let Some(user) = &run_as {
            check_reachable(&root, user)?;
        }
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

/// Whether PostgreSQL answers the startup handshake on the port: a TCP connect alone
/// succeeds before it is ready to run queries, so ask it to negotiate SSL, which a
/// ready server answers with one byte ('S' or 'N').
fn accepts_connections(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    // SSLRequest: length 8, code 80877103.
    if stream.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).is_err() {
        return false;
    }
    let mut answer = [0u8; 1];
    matches!(stream.read(&mut answer), Ok(1) if answer[0] == b'N' || answer[0] == b'S')
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
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
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

/// The unprivileged user must be able to enter every directory above the cluster.
fn check_reachable(root: &Path, user: &RunAs) -> Result<(), EmbeddedError> {
    for dir in root.ancestors().skip(1) {
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
            return Err(EmbeddedError::Unreachable {
                user: user.name.clone(),
                uid: user.uid,
                dir: dir.to_path_buf(),
                mode,
                owner: meta.uid(),
            });
        }
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
    (alive && accepts_connections(port)).then_some(port)
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

    #[test]
    fn a_directory_the_cluster_user_cannot_enter_is_named() {
        let base = std::env::temp_dir().join(format!("rowguard-reach-{}", std::process::id()));
        let closed = base.join("closed");
        fs::create_dir_all(closed.join("data")).unwrap();
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
        let _ = fs::remove_dir_all(&base);
    }
}
