//! A real PostgreSQL for tests and benchmarks (feature `testing`): Debian's server binaries,
//! a cluster made by `initdb` in a temporary directory, listening on a free loopback port, run
//! as an unprivileged user (the `postgres` account, or `nobody`) when the caller is root.
//! It can be stopped and started again on the same port (outages), and is removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A PostgreSQL server of a test's own.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    user: Option<(u32, u32)>,
    durable: bool,
    /// TLS on: the server's certificate (also its own CA) and key.
    tls: Option<(PathBuf, PathBuf)>,
    child: Option<Child>,
}

/// The directory of `initdb` and `postgres`: `ZEN_PG_BIN`, Debian's newest
/// `/usr/lib/postgresql/<version>/bin`, or `pg_config --bindir`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ZEN_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    dir.join("initdb").exists().then_some(dir)
}

/// A free loopback port below Linux's ephemeral range (32768 on): no connection takes it as its
/// source port while the server is stopped, so it can start again on it (an outage).
fn free_port() -> Option<u16> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    (0..12_000u32).find_map(|_| {
        let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = u16::try_from(20_000 + start.wrapping_add(i) % 12_000).ok()?;
        std::net::TcpListener::bind(("127.0.0.1", port))
            .ok()
            .map(|_| port)
    })
}

/// The uid and gid of `name`, from /etc/passwd.
fn account(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.first() == Some(&name))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

fn chown_all(path: &Path, (uid, gid): (u32, u32)) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_all(&entry?.path(), (uid, gid))?;
        }
    }
    Ok(())
}

impl PgServer {
    /// Starts a server for `test`, or says loudly why not and returns `None`; with
    /// `ZEN_REQUIRE_EXTERNAL=1` (as CI sets) a missing PostgreSQL fails instead.
    pub fn start_or_skip(test: &str) -> Option<PgServer> {
        match PgServer::start(false) {
            Ok(server) => Some(server),
            Err(why) => {
                assert!(
                    std::env::var("ZEN_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
                    "PostgreSQL is required (ZEN_REQUIRE_EXTERNAL=1): {why}; .ci/run installs Debian's postgresql"
                );
                eprintln!("SKIPPED {test}: {why}");
                None
            }
        }
    }

    /// Makes a cluster and starts it. `durable`: PostgreSQL's defaults (fsync on, as a
    /// benchmark wants); otherwise fsync is off, for tests' speed — a commit is still a
    /// commit to every client, only a power loss would tell.
    pub fn start(durable: bool) -> Result<PgServer, String> {
        let bin = bin_dir().ok_or("no PostgreSQL server binaries (initdb) found")?;
        let root = rustix::process::geteuid().is_root();
        let user = if root {
            Some(
                account("postgres")
                    .or_else(|| account("nobody"))
                    .ok_or("running as root, and no postgres or nobody account to run as")?,
            )
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("zen-pg-")
            .tempdir()
            .map_err(|e| format!("a temporary directory: {e}"))?;
        if let Some(user) = user {
            chown_all(dir.path(), user)
                .map_err(|e| format!("chown {}: {e}", dir.path().display()))?;
        }
        let port = free_port().ok_or("no free port below the ephemeral range")?;
        let mut server = PgServer {
            bin,
            dir,
            port,
            user,
            durable,
            tls: None,
            child: None,
        };
        let mut initdb = server.command("initdb");
        initdb.arg("-D").arg(server.data()).args([
            "-U",
            "zen",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        let out = initdb
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        server.resume()?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            c.uid(uid).gid(gid);
        }
        c.env_remove("PGDATA").stdin(Stdio::null());
        c
    }

    /// Starts the server again (after [`PgServer::stop`]) on the same port, and waits until it
    /// takes connections.
    pub fn resume(&mut self) -> Result<(), String> {
        let mut postgres = self.command("postgres");
        postgres
            .arg("-D")
            .arg(self.data())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()])
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if !self.durable {
            postgres.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        if let Some((cert, key)) = &self.tls {
            postgres
                .args(["-c", "ssl=on", "-c"])
                .arg(format!("ssl_cert_file={}", cert.display()))
                .arg("-c")
                .arg(format!("ssl_key_file={}", key.display()));
        }
        let child = postgres
            .spawn()
            .map_err(|e| format!("starting postgres: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if ::postgres::Client::connect(&self.url("postgres"), ::postgres::NoTls).is_ok() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("postgres exited at start: {status}"));
            }
            if Instant::now() > deadline {
                return Err("postgres did not take connections within 60 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (a fast shutdown: clients are disconnected, commits stay) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
            }
            let _ = child.wait();
        }
    }

    /// Restarts the server with TLS on: a certificate for 127.0.0.1 and localhost, signed by a
    /// CA made for the test (both by `openssl`); the CA certificate's path, to trust it.
    pub fn enable_tls(&mut self) -> Result<PathBuf, String> {
        let at = |name: &str| self.dir.path().join(name);
        let (ca, ca_key) = (at("ca.crt"), at("ca.key"));
        let (cert, key, csr) = (at("server.crt"), at("server.key"), at("server.csr"));
        let openssl = |args: &[&std::ffi::OsStr]| -> Result<(), String> {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .map_err(|e| format!("running openssl: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "openssl: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        let os = |s: &'static str| std::ffi::OsStr::new(s);
        let key_rsa = [os("-newkey"), os("rsa:2048"), os("-nodes")];
        openssl(
            &[
                &[os("req"), os("-x509")],
                &key_rsa[..],
                &[os("-days"), os("2")],
                &[
                    os("-subj"),
                    os("/CN=zen-watcher test CA"),
                    os("-keyout"),
                    ca_key.as_os_str(),
                    os("-out"),
                    ca.as_os_str(),
                ],
            ]
            .concat(),
        )?;
        openssl(
            &[
                &[os("req")],
                &key_rsa[..],
                &[
                    os("-subj"),
                    os("/CN=localhost"),
                    os("-addext"),
                    os("subjectAltName=IP:127.0.0.1,DNS:localhost"),
                    os("-keyout"),
                    key.as_os_str(),
                    os("-out"),
                    csr.as_os_str(),
                ],
            ]
            .concat(),
        )?;
        openssl(&[
            os("x509"),
            os("-req"),
            os("-in"),
            csr.as_os_str(),
            os("-CA"),
            ca.as_os_str(),
            os("-CAkey"),
            ca_key.as_os_str(),
            os("-CAcreateserial"),
            os("-days"),
            os("2"),
            os("-copy_extensions"),
            os("copy"),
            os("-out"),
            cert.as_os_str(),
        ])?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("chmod {}: {e}", key.display()))?;
        if let Some(user) = self.user {
            for f in [&cert, &key] {
                chown_all(f, user).map_err(|e| format!("chown {}: {e}", f.display()))?;
            }
        }
        self.stop();
        self.tls = Some((cert, key));
        self.resume()?;
        Ok(ca)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The port it listens on, at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `database` (without TLS).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://zen@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Creates a database of its own for one test and returns its URL.
    pub fn database(&self, name: &str) -> String {
        let mut client = ::postgres::Client::connect(&self.url("postgres"), ::postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("creating the database {name}: {e}"));
        self.url(name)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
