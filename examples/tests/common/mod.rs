//! Running the cart shop from tests: in-process through the test kit ([`shop`]), and as the
//! `cart` binary (a temp directory, the server process started, killed and restarted on the
//! same port, its CLI commands, and a one-request HTTP/1.1 client that sends the cookie it is
//! given and keeps nothing).
#![allow(dead_code, unreachable_pub)] // each test file uses its own part of this module

pub mod shop;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variables the app reads: cleared, so the caller's shell cannot steer a test.
const APP_VARS: &[&str] = &[
    "SESSIONS_FRAMEWORK",
    "SESSIONS_STORE",
    "PORT",
    "SESSIONS_DB",
    "DATABASE_URL",
    "REDIS_URL",
    "SESSIONS_COOKIE_KEY",
];

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("sessions-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cart_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cart"));
    command.args(args);
    for var in APP_VARS {
        command.env_remove(var);
    }
    command.env("RUST_LOG", "info");
    command
}

/// Runs a `cart` command to completion (`seed-v1`, `migrate-all`).
pub fn run_cart(args: &[&str]) -> Output {
    let output = cart_command(args).output().expect("run the cart binary");
    assert!(
        output.status.success(),
        "cart {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The `cart` server, running with a SQLite file; killed when dropped.
pub struct CartServer {
    framework: &'static str,
    db: PathBuf,
    log: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl CartServer {
    /// Starts the server (`--framework axum` or `actix`) on any free port with sessions in `db`.
    pub fn start(framework: &'static str, db: &Path, log: &Path) -> Self {
        let mut server = CartServer {
            framework,
            db: db.to_owned(),
            log: log.to_owned(),
            port: 0,
            child: None,
        };
        server.spawn();
        server
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let port = self.port.to_string();
        let db = self.db.display().to_string();
        let mut child = cart_command(&[
            "--framework",
            self.framework,
            "--store",
            "sqlite",
            "--db",
            &db,
            "--port",
            &port,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start the cart binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, first) = mpsc::channel();
        std::thread::spawn(move || {
            // Hand over the first line, then keep draining so the app never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        self.child = Some(child);
        let line = match first.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(err) => panic!(
                "the cart server printed no URL ({err}); its log:\n{}",
                self.log_text()
            ),
        };
        let url = line
            .strip_prefix("cart shop serving on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        self.port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"));
    }

    /// Kills the process (SIGKILL: no graceful shutdown, as in a crash) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts a new process on the same port and database file.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for CartServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `session` cookie this response sets: `Some("")` when it clears it.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.strip_prefix("session="))
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
            .next_back()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request to `127.0.0.1:port` (`Connection: close`), with an optional session
/// cookie and JSON body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    session: Option<&str>,
    json: Option<&str>,
) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the app");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a timeout");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(id) = session {
        request.push_str(&format!("Cookie: session={id}\r\n"));
    }
    let body = json.unwrap_or("");
    if json.is_some() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")),
        "this little client reads only sized bodies"
    );
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}
