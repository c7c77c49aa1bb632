//! Embeds `policies/*.sql` into the binary (sorted by name), so that a built server
//! applies and checks exactly the policy files it was built from, and rebuilds when
//! a migration or a policy file is added, changed or removed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a build script fails the build by panicking, with the message"
)]

use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=policies");
    println!("cargo:rerun-if-changed=sql");

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("policies/ exists")
        .map(|entry| entry.expect("readable policies/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();

    let mut out = String::from("&[\n");
    for path in files {
        let table = path.file_stem().unwrap().to_string_lossy().into_owned();
        out.push_str(&format!(
            "    PolicyFile {{ table: {table:?}, sql: include_str!({path:?}) }},\n",
            path = path.display().to_string()
        ));
    }
    out.push_str("]\n");
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("policy_files.rs");
    fs::write(dest, out).expect("write policy_files.rs");
}
