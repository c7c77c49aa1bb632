//! The embedded default as root: PostgreSQL refuses to run as root, so the cluster runs
//! as an unprivileged user, who often cannot enter the checkout (a home of mode 700, a
//! `mktemp -d` folder). These tests need root, and say so when skipped.

use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use rowguard::{
    app,
    config::Settings,
    platform::db::embedded::{ClusterOptions, EmbeddedCluster, RELOCATION_BASE},
};

use crate::helpers::connect;

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Directories removed when the test ends, passed or not: a relocated cluster is
/// outside the temporary directory, where no sweep would find it.
#[derive(Default)]
struct Remove(Vec<PathBuf>);

impl Drop for Remove {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// A directory only root may enter, standing for a checkout in root's home.
fn private_dir(name: &str, remove: &mut Remove) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rowguard-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    remove.0.push(dir.clone());
    dir
}

async fn start(data_dir: &Path, options: &ClusterOptions) -> EmbeddedCluster {
    let (data_dir, options) = (data_dir.to_path_buf(), options.clone());
    tokio::task::spawn_blocking(move || EmbeddedCluster::start(&data_dir, &options))
        .await
        .unwrap()
        .unwrap_or_else(|error| panic!("the embedded cluster did not start: {error}"))
}

async fn stop(cluster: EmbeddedCluster) {
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .unwrap();
}

#[tokio::test]
async fn as_root_a_data_directory_the_cluster_user_cannot_enter_is_kept_where_it_can_and_serves() {
    if !is_root() {
        eprintln!("skipped: only root runs the cluster as another user");
        return;
    }
    // Declared before the clusters, so dropped after them: stopped, then removed.
    let mut remove = Remove::default();
    let private = private_dir("private-checkout", &mut remove);
    let data_dir = private.join("checkout").join(".rowguard");
    let options = ClusterOptions {
        throwaway: true,
        relocate_if_unreachable: true,
        ..ClusterOptions::default()
    };

    let cluster = start(&data_dir, &options).await;
    let home = cluster.dir().to_path_buf();
    remove.0.push(home.clone());
    eprintln!(
        "the cluster of {} lives in {}",
        data_dir.display(),
        home.display()
    );
    assert_eq!(home.parent(), Some(Path::new(RELOCATION_BASE)));
    let name = home.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.contains(&format!(
            "rowguard-test-{}-private-checkout-checkout-.rowguard-",
            std::process::id()
        )),
        "named after the data directory: {name}"
    );
    let meta = fs::metadata(&home).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o7777),
        (0, 0o711),
        "{}",
        home.display()
    );
    let pgdata = fs::metadata(home.join("pgdata")).unwrap();
    assert_ne!(
        pgdata.uid(),
        0,
        "the cluster's own files belong to its user"
    );
    assert_eq!(pgdata.mode() & 0o7777, 0o700);

    let client = connect(&cluster.url("postgres")).await;
    let row = client
        .query_one("SELECT current_setting('data_directory'), 6 * 7", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        home.join("pgdata").display().to_string()
    );
    assert_eq!(row.get::<_, i32>(1), 42);
    client
        .batch_execute("CREATE TABLE kept_across_runs (x int)")
        .await
        .unwrap();
    drop(client);
    stop(cluster).await;

    // The next run of the same checkout finds the same cluster, data and all.
    let again = start(&data_dir, &options).await;
    assert_eq!(again.dir(), home);
    let kept: bool = connect(&again.url("postgres"))
        .await
        .query_one("SELECT to_regclass('kept_across_runs') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(kept, "the second run is on the first run's data");
    stop(again).await;
}

#[tokio::test]
async fn as_root_a_chosen_data_directory_the_cluster_user_cannot_enter_is_refused_not_moved() {
    if !is_root() {
        eprintln!("skipped: only root runs the cluster as another user");
        return;
    }
    let mut remove = Remove::default();
    let private = private_dir("chosen-data-dir", &mut remove);
    let mut settings = Settings::for_database("unused");
    settings.database.database_url = None;
    settings.database.data_dir = Some(private.join("data"));

    let error = match app::database_target(&settings).await {
        Ok(_) => panic!("a chosen directory the cluster's user cannot enter was used"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains(&format!(
            "cannot enter {} (mode 700",
            private.canonicalize().unwrap().display()
        )),
        "{error}"
    );
    assert!(error.contains("ROWGUARD_DATA_DIR"), "{error}");
}
