//! Throwaway Redis and PostgreSQL servers on free loopback ports, each in its own temp directory,
//! for tests that stop and restart them. They never touch the shared servers on the standard ports,
//! and they are stopped when dropped. These tests are asked for with `--features server-tests`; a
//! server binary that is not installed fails them with its name and how to get it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now (the OS picks it; the server binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The path of `program` on `PATH`, or a failure that names it and how to install it.
fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the server tests need `{program}`, which is not on PATH: install it (Debian: \
             `apt-get install {package}`), or run `cargo test` without `--features server-tests`"
        )
    })
}

fn redis_answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

/// A `redis-server` of the test's own, keeping nothing on disk.
pub struct ThrowawayRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl ThrowawayRedis {
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        redis.resume();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once, as a crash or a network cut would look to its clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(!redis_answers_ping(self.port), "redis still answers after the kill");
    }

    /// Starts the server again on the same port (empty: it kept nothing).
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(require("redis-server", "redis-server"))
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (is it installed?)");
        self.child = Some(child);
        let port = self.port;
        wait_until("redis-server", Duration::from_secs(10), || redis_answers_ping(port));
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A PostgreSQL cluster of the test's own (initdb + pg_ctl in a temp dir), with durable commits.
/// PostgreSQL refuses to run as root; when the tests do, its tools run as the `postgres` user.
pub struct ThrowawayPostgres {
    port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_user: Option<String>,
    running: bool,
}

/// Where `initdb` and `pg_ctl` live: `pg_config --bindir`, or Debian's versioned directory (its
/// server package keeps them off `PATH`).
fn postgres_bin_dir() -> PathBuf {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let debian = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|versions| {
        let mut dirs: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
        dirs.sort();
        dirs.pop()
    });
    let dir = [from_pg_config, debian]
        .into_iter()
        .flatten()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
    dir.unwrap_or_else(|| {
        panic!(
            "the server tests need PostgreSQL's `initdb` and `pg_ctl` (looked in `pg_config --bindir` \
             and /usr/lib/postgresql/*/bin): install PostgreSQL (Debian: `apt-get install postgresql`), \
             or run `cargo test` without `--features server-tests`"
        )
    })
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn chown_to(path: &Path, user: &str) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, user]).output().expect("id runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    std::os::unix::fs::chown(path, Some(id("-u")), Some(id("-g"))).expect("chown the cluster directory");
}

impl ThrowawayPostgres {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let as_user = running_as_root().then(|| {
            require("runuser", "util-linux");
            "postgres".to_owned()
        });
        if let Some(user) = &as_user {
            chown_to(dir.path(), user);
        }
        let mut pg = Self {
            port: free_port(),
            dir,
            bin: postgres_bin_dir(),
            as_user,
            running: false,
        };
        pg.tool(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.resume();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// One of PostgreSQL's tools, as the user the cluster belongs to.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        match &self.as_user {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(&program);
                cmd
            }
            None => Command::new(&program),
        }
    }

    fn tool(&self, name: &str, args: &[&str]) {
        let out = self
            .command(name)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{name} runs: {e}"));
        assert!(
            out.status.success(),
            "{name} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server the hard way (`immediate`: no checkpoint, like a crash); what was committed
    /// survives through crash recovery on the next start.
    pub fn kill(&mut self) {
        self.tool("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
        self.running = false;
    }

    pub fn resume(&mut self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=on -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        self.running = true;
        let port = self.port;
        wait_until("postgres", Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = self
                .command("pg_ctl")
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}
