//! The private PostgreSQL cluster the gateway runs when no `DATABASE_URL` is given.
//!
//! It lives in a data folder that survives restarts and listens only on a unix socket
//! (`listen_addresses = ''`), so nothing on the network can reach it. `initdb` refuses to run
//! as root, so when we are root every database process runs as the `postgres` OS user.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};
use nix::unistd::{Gid, Uid, User};
use sqlx::postgres::PgConnectOptions;

use crate::memory;

/// The port only names the socket file; with `listen_addresses = ''` no TCP port is opened.
const PORT: u16 = 5432;
/// Unix socket paths are limited to about 107 bytes on Linux.
const MAX_SOCKET_PATH: usize = 100;
const SUPERUSER: &str = "postgres";

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    pub data_dir: PathBuf,
    /// Empty: search PATH, `pg_config --bindir`, `/usr/lib/postgresql/*/bin`.
    pub bin_dir: PathBuf,
    /// Trade durability for speed (fsync off): for throwaway test clusters only.
    pub throwaway: bool,
}

#[derive(Debug, Clone)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<(Uid, Gid)>,
    started_by_us: bool,
    freshly_initialized: bool,
}

impl EmbeddedPostgres {
    /// Initializes the cluster if the folder is new, recovers from a stale `postmaster.pid`,
    /// and starts it unless it is already running (then it is adopted, not restarted).
    pub fn start(opts: &EmbeddedOptions) -> anyhow::Result<Self> {
        let bin_dir = find_bin_dir(&opts.bin_dir)?;
        let data_dir = std::path::absolute(&opts.data_dir)
            .with_context(|| format!("data folder {}", opts.data_dir.display()))?;
        let run_as = database_user()?;
        let socket_dir = socket_dir_for(&data_dir);

        let mut pg = Self {
            bin_dir,
            data_dir,
            socket_dir,
            run_as,
            started_by_us: false,
            freshly_initialized: false,
        };
        pg.prepare_dirs()?;
        if !pg.data_dir.join("PG_VERSION").exists() {
            pg.initdb()?;
            pg.freshly_initialized = true;
        }
        pg.write_settings(opts.throwaway)?;
        let _starting = pg.start_lock()?;
        if pg.running_postmaster().is_some() {
            tracing::info!(data_dir = %pg.data_dir.display(), "adopting the running embedded PostgreSQL");
            return Ok(pg);
        }
        pg.clear_stale_lock_files()?;
        pg.launch()?;
        pg.started_by_us = true;
        tracing::info!(data_dir = %pg.data_dir.display(), "embedded PostgreSQL started");
        Ok(pg)
    }

    /// `pg_ctl start`, waiting until the cluster accepts connections (crash recovery, when
    /// the last run ended in a crash, happens before that).
    fn launch(&self) -> anyhow::Result<()> {
        // An operator's own GLIBC_TUNABLES (inherited) is left as it is.
        let tunables = match std::env::var_os("GLIBC_TUNABLES") {
            None => vec![("GLIBC_TUNABLES", memory::glibc_tunables())],
            Some(_) => vec![],
        };
        self.pg_ctl_with(
            &tunables,
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-l",
                &self.log_file().to_string_lossy(),
            ],
        )
        .context("starting the embedded PostgreSQL")
    }

    /// Whether a postmaster serves this data folder now.
    pub fn is_running(&self) -> bool {
        self.running_postmaster().is_some()
    }

    /// Starts the cluster again after its postmaster died. PostgreSQL refuses while processes
    /// of the dead one still hold its shared memory; the caller retries.
    pub fn restart(&self) -> anyhow::Result<()> {
        let _starting = self.start_lock()?;
        if self.is_running() {
            return Ok(());
        }
        self.clear_stale_lock_files()?;
        self.launch()
    }

    /// Held from "is it running?" to "it runs": two processes that find the cluster down (the
    /// server's supervisor and an admin command, or two servers on one folder) must not both
    /// clear the lock files and start it, the second removing those of the first one's live
    /// postmaster, or reading its `postmaster.pid` half-written. Released when dropped.
    fn start_lock(&self) -> anyhow::Result<fs::File> {
        let path = self.data_dir.join("gateway-start.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if let Some((uid, gid)) = self.run_as {
            chown(&path, Some(uid.as_raw()), Some(gid.as_raw()))?;
        }
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(file)
    }

    /// True when this start ran `initdb`: the very first start on this data folder.
    pub fn freshly_initialized(&self) -> bool {
        self.freshly_initialized
    }

    pub fn started_by_us(&self) -> bool {
        self.started_by_us
    }

    /// Makes `stop` stop an adopted cluster too.
    pub fn take_ownership(&mut self) {
        self.started_by_us = true;
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        Self::connect_options_at(&self.data_dir, database)
    }

    /// How to reach the cluster of `data_dir` (running, started by anyone) as its superuser.
    pub fn connect_options_at(data_dir: &Path, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(socket_dir_for(data_dir))
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// Creates `name` unless it exists.
    pub async fn ensure_database(&self, name: &str) -> anyhow::Result<()> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect_with(&self.connect_options("postgres")).await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(name)
                .fetch_optional(&mut conn)
                .await?;
        if exists.is_none() {
            let sql = format!("CREATE DATABASE {}", quote_ident(name));
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(())
    }

    /// Stops the cluster if this process started it; an adopted cluster is left running
    /// because another gateway process may be using it.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if !self.started_by_us {
            return Ok(());
        }
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])
            .context("stopping the embedded PostgreSQL")?;
        self.started_by_us = false;
        tracing::info!("embedded PostgreSQL stopped");
        Ok(())
    }

    fn log_file(&self) -> PathBuf {
        self.data_dir.join("server.log")
    }

    fn prepare_dirs(&self) -> anyhow::Result<()> {
        for dir in [&self.data_dir, &self.socket_dir] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            if let Some((uid, gid)) = self.run_as {
                chown(dir, Some(uid.as_raw()), Some(gid.as_raw()))
                    .with_context(|| format!("giving {} to the postgres user", dir.display()))?;
            }
        }
        if self.run_as.is_some() {
            // Root can write anywhere; the postgres user needs every parent to be searchable.
            let reachable = self
                .command("test")
                .args(["-w", &self.data_dir.to_string_lossy()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !reachable {
                bail!(
                    "the postgres OS user cannot reach {}: a parent folder is not searchable by \
                     others. Choose a data folder under a world-searchable path with \
                     GW_DATABASE__EMBEDDED__DATA_DIR (e.g. /var/lib/hisp-gateway/postgres), or set \
                     DATABASE_URL to use an external PostgreSQL",
                    self.data_dir.display()
                );
            }
        }
        Ok(())
    }

    fn initdb(&self) -> anyhow::Result<()> {
        if fs::read_dir(&self.data_dir)?.next().is_some() {
            bail!(
                "{} is not empty and holds no PostgreSQL cluster; empty it or choose another data folder",
                self.data_dir.display()
            );
        }
        let out = self
            .command(self.bin_dir.join("initdb"))
            .arg("-D")
            .arg(&self.data_dir)
            .args([
                "--username",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
            ])
            .output()
            .context("running initdb")?;
        check(out, "initdb")?;
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir.join("postgresql.conf"))?;
        writeln!(conf, "\ninclude_if_exists = 'gateway.conf'")?;
        Ok(())
    }

    /// Rewritten at every start, so a moved socket folder or changed mode takes effect.
    fn write_settings(&self, throwaway: bool) -> anyhow::Result<()> {
        let mut s = String::from("# Written by hisp-gateway at every start; edits are lost.\n");
        s.push_str("listen_addresses = ''\n");
        s.push_str(&format!(
            "unix_socket_directories = '{}'\n",
            self.socket_dir.to_string_lossy().replace('\'', "''")
        ));
        // Trust auth is safe only because nobody but the owner (and root) may open the socket.
        s.push_str("unix_socket_permissions = 0700\n");
        if throwaway {
            s.push_str("max_connections = 400\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        } else {
            s.push_str("max_connections = 100\n");
            // Pages the backends write out (accepted messages, with their MIME in TOAST) are
            // otherwise left dirty in the kernel's cache until the checkpoint's fsync pushes
            // them all at once, and every commit's WAL flush waits behind that burst (measured:
            // a checkpoint's sync took 0.32 s, 0.08 s with this, see BENCHMARKS.md). Asking the
            // kernel to write them back as they go keeps the burst small.
            s.push_str("backend_flush_after = 256kB\n");
            // PostgreSQL's 1GB starts a checkpoint every few seconds at the rates the gateway
            // accepts C-CDAs, and every checkpoint makes the next writes to each page carry a
            // full copy of it.
            s.push_str("max_wal_size = 4GB\n");
            // Dirty pages must reach the disk within seconds, a little at a time. PostgreSQL
            // 15 writes zeros for every page a table grows by, and the kernel keeps those dirty
            // until its 30 s flush; while data stays in shared buffers for longer than that
            // (2GB of them held a minute of C-CDAs), the flush writes hundreds of MB at once
            // and every commit's WAL flush waits behind it: p99 127–531 ms at half the
            // maximum rate, against 61–112 ms with these settings (BENCHMARKS.md, "writes pages
            // out steadily").
            // PostgreSQL's own 128MB of buffers, and a background writer that writes changed
            // pages out every 10 ms and asks the kernel to write them at once. Backends still
            // write just over half the pages themselves, with backend_flush_after.
            s.push_str("shared_buffers = 128MB\n");
            s.push_str("bgwriter_delay = 10ms\nbgwriter_lru_maxpages = 1000\n");
            s.push_str("bgwriter_lru_multiplier = 4\nbgwriter_flush_after = 256kB\n");
            // Vacuuming the big insert-only tables at PostgreSQL's pace took most of a core for
            // seconds, and sends queued behind it; at a fifth of that pace the same work is
            // spread out.
            s.push_str("autovacuum_vacuum_cost_delay = 10ms\n");
        }
        let path = self.data_dir.join("gateway.conf");
        fs::write(&path, s)?;
        if let Some((uid, gid)) = self.run_as {
            chown(&path, Some(uid.as_raw()), Some(gid.as_raw()))?;
        }
        Ok(())
    }

    /// The pid of a live postmaster serving this data folder, if any.
    fn running_postmaster(&self) -> Option<i32> {
        let text = fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        is_live_postgres(&stat).then_some(pid)
    }

    /// After a crash the lock files name a dead (or recycled) pid and postgres would refuse to
    /// start; we only get here when no live postmaster owns the folder.
    fn clear_stale_lock_files(&self) -> anyhow::Result<()> {
        for lock in [
            self.data_dir.join("postmaster.pid"),
            self.socket_dir.join(format!(".s.PGSQL.{PORT}.lock")),
            self.socket_dir.join(format!(".s.PGSQL.{PORT}")),
        ] {
            if lock.exists() {
                fs::remove_file(&lock).with_context(|| format!("removing {}", lock.display()))?;
                tracing::warn!(file = %lock.display(), "removed a stale lock file left by a crash");
            }
        }
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        self.pg_ctl_with(&[], args)
    }

    fn pg_ctl_with(&self, env: &[(&str, String)], args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .command(self.bin_dir.join("pg_ctl"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("-D")
            .arg(&self.data_dir)
            .args(args)
            // Its own process group: a Ctrl-C on the terminal must reach only the gateway,
            // which then finishes its requests before stopping the database.
            .process_group(0)
            .output()?;
        check(out, "pg_ctl").map_err(|e| {
            let log = fs::read_to_string(self.log_file()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            e.context(format!("server log tail:\n{}", tail.join("\n")))
        })
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_remove("PGDATA")
            .env_remove("PGHOST")
            .env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
            // Our working directory may be unreachable for the postgres user.
            cmd.current_dir(&self.data_dir);
        }
        cmd
    }
}

fn check(out: Output, what: &str) -> anyhow::Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `None` when we may run PostgreSQL as ourselves; the postgres user's ids when we are root.
fn database_user() -> anyhow::Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres")? {
        Some(u) => Ok(Some((u.uid, u.gid))),
        None => bail!(
            "running as root, the embedded PostgreSQL must run as the 'postgres' OS user, which \
             does not exist: install the 'postgresql' package (it creates the user), run as a \
             normal user, or set DATABASE_URL"
        ),
    }
}

/// Whether a `/proc/PID/stat` line is a postgres process that has not exited. A killed
/// postmaster stays in the process table, under its name, as a zombie until the process that
/// inherited it reaps it: a container's init may take a second for that, a gateway running as
/// PID 1 never does it. Counting a zombie as running kept the supervisor from starting the
/// cluster again for that long.
fn is_live_postgres(stat: &str) -> bool {
    // "PID (NAME) STATE ...": the name may hold spaces and parentheses, the state follows the
    // last ')'.
    let Some((head, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let name = head.split_once('(').map_or("", |(_, name)| name);
    let state = rest.split_whitespace().next().unwrap_or("");
    matches!(name, "postgres" | "postmaster") && !matches!(state, "Z" | "X" | "x")
}

fn socket_dir_for(data_dir: &Path) -> PathBuf {
    let in_data = data_dir.to_string_lossy().len() + format!("/.s.PGSQL.{PORT}.lock").len();
    if in_data <= MAX_SOCKET_PATH {
        return data_dir.to_path_buf();
    }
    // A deep data folder: keep the socket in a short, per-cluster folder instead.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(data_dir.to_string_lossy().as_bytes());
    let tag: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    std::env::temp_dir().join(format!("hisp-gw-pg-{tag}"))
}

fn has_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

/// Finds the folder holding initdb, pg_ctl and postgres.
pub fn find_bin_dir(configured: &Path) -> anyhow::Result<PathBuf> {
    if !configured.as_os_str().is_empty() {
        if has_binaries(configured) {
            return Ok(configured.to_path_buf());
        }
        bail!(
            "database.embedded.bin_dir {} lacks initdb/pg_ctl/postgres",
            configured.display()
        );
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            // Debian puts symlinks on PATH; the real folder has the other binaries beside it.
            if let Ok(real) = fs::canonicalize(dir.join("initdb"))
                && let Some(parent) = real.parent()
            {
                candidates.push(parent.to_path_buf());
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        candidates.extend(versions.into_iter().map(|(_, p)| p));
    }
    candidates
        .into_iter()
        .find(|d| has_binaries(d))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found on PATH, via \
             pg_config --bindir or in /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: \
             `apt-get install postgresql`) or set DATABASE_URL to an existing PostgreSQL"
            )
        })
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_data_dirs_put_the_socket_elsewhere() {
        let short = Path::new("/srv/gw/pg");
        assert_eq!(socket_dir_for(short), short);
        let long = PathBuf::from(format!("/srv/{}/pg", "x".repeat(120)));
        let sock = socket_dir_for(&long);
        assert!(sock.to_string_lossy().len() < 60, "{}", sock.display());
        assert_eq!(sock, socket_dir_for(&long), "stable across starts");
    }

    #[test]
    fn a_configured_bin_dir_without_binaries_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_bin_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("lacks initdb"), "{err}");
    }

    #[test]
    fn a_zombie_postmaster_is_not_running() {
        let stat =
            |name: &str, state: &str| format!("4242 ({name}) {state} 1 4242 4242 0 -1 4194560");
        assert!(is_live_postgres(&stat("postgres", "S")));
        assert!(is_live_postgres(&stat("postgres", "R")));
        assert!(is_live_postgres(&stat("postmaster", "D")));
        assert!(!is_live_postgres(&stat("postgres", "Z")));
        assert!(!is_live_postgres(&stat("postgres", "X")));
        // A recycled pid belongs to some other program.
        assert!(!is_live_postgres(&stat("bash", "S")));
        assert!(!is_live_postgres(&stat("my (postgres) S", "S")));
        assert!(!is_live_postgres(""));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
