//! Which databases the manager's tests run on, and a fresh one per test.
//!
//! `DAMSELFLY_TEST_DB=sqlite|postgres|mysql|all` (comma-separated lists too, `mariadb` for
//! `mysql`; default `all`, which is what CI runs) picks the backends; an unknown name fails the
//! tests. [`on_every_database!`](crate::on_every_database) declares one test per backend, and a
//! backend left out passes at once with a note on stderr, so the test list stays the same
//! whatever is chosen.
//!
//! PostgreSQL and MariaDB are the machine's local servers (127.0.0.1, trust / root without
//! password). Each test gets its own database, dropped at the end; when a server is down the
//! harness starts it with the command the machine documents, once.

use std::{fmt, time::Duration};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tokio::sync::OnceCell;

/// The three databases the manager supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

impl Backend {
    /// The name `DAMSELFLY_TEST_DB` uses.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
        }
    }

    /// Whether `DAMSELFLY_TEST_DB` (default `all`) includes this backend.
    pub fn selected(self) -> bool {
        self.chosen_by(&std::env::var("DAMSELFLY_TEST_DB").unwrap_or_default())
    }

    /// Whether `choice` (a `DAMSELFLY_TEST_DB` value; empty means `all`) includes this backend.
    /// An unknown name panics: a typo must not turn every database test into a pass.
    fn chosen_by(self, choice: &str) -> bool {
        let choice = choice.trim();
        choice.is_empty()
            || choice.split(',').map(str::trim).any(|c| match c {
                "all" => true,
                "sqlite" | "postgres" | "mysql" => c == self.name(),
                "mariadb" => self == Backend::Mysql,
                "postgresql" => self == Backend::Postgres,
                other => panic!("DAMSELFLY_TEST_DB: unknown database {other:?} (sqlite, postgres, mysql or all)"),
            })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a per-backend test body may answer: nothing, or a `Result` whose error fails the test.
pub trait Outcome {
    fn check(self);
}

impl Outcome for () {
    fn check(self) {}
}

impl<E: fmt::Debug> Outcome for Result<(), E> {
    #[track_caller]
    fn check(self) {
        if let Err(e) = self {
            panic!("{e:?}");
        }
    }
}

/// Runs `test` on `backend` if `DAMSELFLY_TEST_DB` selects it (the macro's body).
pub async fn run_on<O: Outcome>(backend: Backend, test: impl AsyncFnOnce(Backend) -> O) {
    if !backend.selected() {
        eprintln!("skipped: DAMSELFLY_TEST_DB does not select {backend}");
        return;
    }
    test(backend).await.check();
}

/// Declares one `#[tokio::test]` per backend (modules `sqlite`, `postgres`, `mysql`) for each
/// `async fn(Backend)` named, which may return `()` or a `Result`.
#[macro_export]
macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { $crate::db::run_on($crate::db::Backend::Sqlite, super::$name).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { $crate::db::run_on($crate::db::Backend::Postgres, super::$name).await } )* }
        mod mysql { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { $crate::db::run_on($crate::db::Backend::Mysql, super::$name).await } )* }
    };
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306/mysql";

static PG_UP: OnceCell<()> = OnceCell::const_new();
static MYSQL_UP: OnceCell<()> = OnceCell::const_new();

async fn connect_or_start(url: &str, start: &str) -> DatabaseConnection {
    if let Ok(db) = Database::connect(url).await {
        return db;
    }
    eprintln!("database at {url} is down; starting it with: {start}");
    let _ = std::process::Command::new("sh").arg("-c").arg(start).status();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match Database::connect(url).await {
            Ok(db) => return db,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("cannot reach {url}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn admin(backend: Backend) -> DatabaseConnection {
    match backend {
        Backend::Sqlite => unreachable!(),
        Backend::Postgres => {
            let start = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
            PG_UP.get_or_init(|| async { drop(connect_or_start(PG_ADMIN, start).await) }).await;
            connect_or_start(PG_ADMIN, start).await
        }
        Backend::Mysql => {
            let start = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd";
            MYSQL_UP.get_or_init(|| async { drop(connect_or_start(MYSQL_ADMIN, start).await) }).await;
            connect_or_start(MYSQL_ADMIN, start).await
        }
    }
}

static REDIS_UP: OnceCell<()> = OnceCell::const_new();

/// The machine's Redis (127.0.0.1:6379), started if it is down; answers its URL.
pub async fn redis() -> &'static str {
    const URL: &str = "redis://127.0.0.1:6379/";
    REDIS_UP
        .get_or_init(|| async {
            if tokio::net::TcpStream::connect("127.0.0.1:6379").await.is_ok() {
                return;
            }
            let start = "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no \
                         --dir /var/lib/redis --logfile /var/log/redis/ci.log";
            eprintln!("Redis is down; starting it with: {start}");
            let _ = std::process::Command::new("sh").arg("-c").arg(start).status();
            for _ in 0..120 {
                if tokio::net::TcpStream::connect("127.0.0.1:6379").await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            panic!("cannot reach Redis on 127.0.0.1:6379");
        })
        .await;
    URL
}

/// A fresh, empty database (and a temp dir for the manager's data); [`TestDb::drop_db`]
/// removes it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    name: String,
    dir: tempfile::TempDir,
    /// Whether [`TestDb::drop_db`] drops the database (not for a [`TestDb::shared`] view).
    owner: bool,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("dfly_test_{}", uuid::Uuid::new_v4().simple());
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("manager.db").display()),
            Backend::Postgres => {
                let db = admin(backend).await;
                db.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
                format!("postgres://postgres@127.0.0.1:5432/{name}")
            }
            Backend::Mysql => {
                let db = admin(backend).await;
                db.execute_unprepared(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4")).await.unwrap();
                format!("mysql://root@127.0.0.1:3306/{name}")
            }
        };
        Self { backend, url, name, dir, owner: true }
    }

    /// A temp dir that lives as long as the database (the manager's data dir).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Runs raw SQL against the test database (for states the API cannot reach, e.g. expiry).
    pub async fn exec(&self, sql: &str) {
        let db = Database::connect(&self.url).await.unwrap();
        db.execute(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap();
        db.close().await.unwrap();
    }

    /// The same database with a temp dir of its own, as a second manager on another machine
    /// sees it; dropping the view leaves the database to its owner.
    pub fn shared(&self) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        Self { backend: self.backend, url: self.url.clone(), name: self.name.clone(), dir, owner: false }
    }

    pub async fn drop_db(self) {
        if !self.owner {
            return;
        }
        match self.backend {
            Backend::Sqlite => {}
            Backend::Postgres => {
                let db = admin(self.backend).await;
                db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await.unwrap();
            }
            Backend::Mysql => {
                let db = admin(self.backend).await;
                db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {}", self.name)).await.unwrap();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Backend::{self, *};

    fn chosen(choice: &str) -> Vec<Backend> {
        [Sqlite, Postgres, Mysql].into_iter().filter(|b| b.chosen_by(choice)).collect()
    }

    #[test]
    fn the_choice_of_databases_defaults_to_all_and_takes_lists_and_aliases() {
        assert_eq!(chosen(""), [Sqlite, Postgres, Mysql]);
        assert_eq!(chosen("all"), [Sqlite, Postgres, Mysql]);
        assert_eq!(chosen("sqlite"), [Sqlite]);
        assert_eq!(chosen("postgres"), [Postgres]);
        assert_eq!(chosen("mysql"), [Mysql]);
        assert_eq!(chosen(" sqlite, mariadb "), [Sqlite, Mysql]);
        assert_eq!(chosen("postgresql"), [Postgres]);
    }

    #[test]
    #[should_panic(expected = "unknown database")]
    fn an_unknown_database_is_an_error_not_a_skip() {
        chosen("oracle");
    }
}
