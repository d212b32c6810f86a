//! The command line: what to do, and with which store.
//!
//! Every option has an environment variable; a flag wins over the variable.

use std::path::PathBuf;

pub const USAGE: &str = "\
cart: a small shop whose sessions are typed, versioned structs

USAGE:
    cart [OPTIONS]                  serve the shop (the default)
    cart [OPTIONS] seed-v1 N        write N version-1 carts straight into the store
    cart [OPTIONS] migrate-all      migrate every stored cart to the current version now
    cart help                       this text

OPTIONS (flag, or environment variable):
    --framework axum|actix                         SESSIONS_FRAMEWORK   default: axum
    --store sqlite|postgres|mysql|redis|memcached|cookie|memory
                                                   SESSIONS_STORE       default: sqlite
    --port N                                       PORT                 default: 3000 (0: any free port)
    --db PATH          the SQLite file             SESSIONS_DB          default: cart-sessions.db
    --database-url URL PostgreSQL                  DATABASE_URL         default: postgres://postgres@127.0.0.1:5432/postgres
    --redis-url URL    Redis or Valkey             REDIS_URL            default: redis://127.0.0.1:6379
    --mysql-url URL    MySQL or MariaDB            MYSQL_URL            default: mysql://root@127.0.0.1:3306/test
    --memcached-url URL memcached                  MEMCACHED_URL        default: memcache://127.0.0.1:11211
    --cookie-key KEY   the cookie store's key      SESSIONS_COOKIE_KEY  default: a new one per run (printed)
                       (base64url of 32 bytes)

The server binds 127.0.0.1 only.";

/// Where sessions are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
    MySql,
    Redis,
    Memcached,
    Cookie,
    Memory,
}

impl StoreKind {
    fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(StoreKind::Sqlite),
            "postgres" | "postgresql" | "pg" => Ok(StoreKind::Postgres),
            "redis" | "valkey" => Ok(StoreKind::Redis),
            "mysql" | "mariadb" => Ok(StoreKind::MySql),
            "memcached" | "memcache" => Ok(StoreKind::Memcached),
            "cookie" => Ok(StoreKind::Cookie),
            "memory" => Ok(StoreKind::Memory),
            other => Err(format!(
                "unknown store `{other}`: use sqlite, postgres, mysql, redis, memcached, cookie or memory"
            )),
        }
    }
}

/// The web framework the shop runs on: the same routes, handlers and page on either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    Axum,
    Actix,
}

impl Framework {
    fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "axum" => Ok(Framework::Axum),
            "actix" | "actix-web" => Ok(Framework::Actix),
            other => Err(format!("unknown framework `{other}`: use axum or actix")),
        }
    }

    /// The framework's name, for people.
    pub fn name(self) -> &'static str {
        match self {
            Framework::Axum => "axum",
            Framework::Actix => "actix-web",
        }
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Serve,
    SeedV1(usize),
    MigrateAll,
    Help,
}

/// The parsed command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub command: Command,
    pub framework: Framework,
    pub store: StoreKind,
    pub port: u16,
    pub db: PathBuf,
    pub database_url: String,
    pub redis_url: String,
    pub mysql_url: String,
    pub memcached_url: String,
    pub cookie_key: Option<String>,
}

impl Options {
    /// Parses `args` (without the program name), with `env` for what the flags leave out.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut flags: Vec<(String, String)> = Vec::new();
        let mut positional: Vec<String> = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                positional.insert(0, "help".to_owned());
                continue;
            }
            let Some(flag) = arg.strip_prefix("--") else {
                positional.push(arg);
                continue;
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("`--{flag}` needs a value"))?;
                    (flag.to_owned(), value)
                }
            };
            flags.push((name, value));
        }
        let flag = |name: &str| {
            flags
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        for (name, _) in &flags {
            if ![
                "framework",
                "store",
                "port",
                "db",
                "database-url",
                "redis-url",
                "mysql-url",
                "memcached-url",
                "cookie-key",
            ]
            .contains(&name.as_str())
            {
                return Err(format!("unknown option `--{name}`"));
            }
        }
        let pick =
            |name: &str, var: &str| flag(name).or_else(|| env(var).filter(|v| !v.is_empty()));

        let command = match positional.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            [] | ["serve"] => Command::Serve,
            ["help", ..] => Command::Help,
            ["migrate-all"] => Command::MigrateAll,
            ["seed-v1", n] => Command::SeedV1(
                n.parse()
                    .map_err(|_| format!("`seed-v1 {n}`: N is a number of carts"))?,
            ),
            ["seed-v1"] => return Err("`seed-v1` needs a number: `cart seed-v1 3`".to_owned()),
            _ => return Err(format!("unexpected `{}`", positional.join(" "))),
        };
        let framework = match pick("framework", "SESSIONS_FRAMEWORK") {
            Some(text) => Framework::parse(&text)?,
            None => Framework::Axum,
        };
        let store = match pick("store", "SESSIONS_STORE") {
            Some(text) => StoreKind::parse(&text)?,
            None => StoreKind::Sqlite,
        };
        let port = match pick("port", "PORT") {
            Some(text) => text
                .parse()
                .map_err(|_| format!("`{text}` is not a port number"))?,
            None => 3000,
        };
        Ok(Options {
            command,
            framework,
            store,
            port,
            db: pick("db", "SESSIONS_DB")
                .unwrap_or_else(|| "cart-sessions.db".to_owned())
                .into(),
            database_url: pick("database-url", "DATABASE_URL")
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
            redis_url: pick("redis-url", "REDIS_URL")
                .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned()),
            mysql_url: pick("mysql-url", "MYSQL_URL")
                .unwrap_or_else(|| "mysql://root@127.0.0.1:3306/test".to_owned()),
            memcached_url: pick("memcached-url", "MEMCACHED_URL")
                .unwrap_or_else(|| "memcache://127.0.0.1:11211".to_owned()),
            cookie_key: pick("cookie-key", "SESSIONS_COOKIE_KEY"),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Options, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Options::parse(args.iter().map(|a| a.to_string()), move |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_serve_sqlite_on_3000() {
        let options = parse(&[], &[]).unwrap();
        assert_eq!(options.command, Command::Serve);
        assert_eq!(options.framework, Framework::Axum);
        assert_eq!(options.store, StoreKind::Sqlite);
        assert_eq!(options.port, 3000);
        assert_eq!(options.db, PathBuf::from("cart-sessions.db"));
    }

    #[test]
    fn flags_win_over_environment() {
        let env = [("SESSIONS_STORE", "redis"), ("PORT", "8080")];
        let options = parse(&["--store", "postgres", "--port=9000"], &env).unwrap();
        assert_eq!(options.store, StoreKind::Postgres);
        assert_eq!(options.port, 9000);
        let options = parse(&[], &env).unwrap();
        assert_eq!(options.store, StoreKind::Redis);
        assert_eq!(options.port, 8080);
    }

    #[test]
    fn picks_the_framework() {
        let options = parse(&["--framework", "actix"], &[]).unwrap();
        assert_eq!(options.framework, Framework::Actix);
        let options = parse(&[], &[("SESSIONS_FRAMEWORK", "actix-web")]).unwrap();
        assert_eq!(options.framework, Framework::Actix);
        assert!(parse(&["--framework", "rocket"], &[]).is_err());
    }

    #[test]
    fn subcommands() {
        assert_eq!(
            parse(&["seed-v1", "5", "--db", "x.db"], &[])
                .unwrap()
                .command,
            Command::SeedV1(5)
        );
        assert_eq!(
            parse(&["migrate-all"], &[]).unwrap().command,
            Command::MigrateAll
        );
        assert_eq!(parse(&["--help"], &[]).unwrap().command, Command::Help);
        assert!(parse(&["seed-v1"], &[]).is_err());
        assert!(parse(&["seed-v1", "many"], &[]).is_err());
        assert!(parse(&["--store", "mongo"], &[]).is_err());
        assert!(parse(&["--colour", "red"], &[]).is_err());
        assert!(parse(&["--port"], &[]).is_err());
    }
}
