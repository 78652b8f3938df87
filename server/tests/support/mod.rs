//! A manager started in-process on a fresh database of each kind, and a small HTTP client.
//!
//! PostgreSQL and MariaDB are the machine's local servers (127.0.0.1, trust / root without
//! password). Each test gets its own database, dropped at the end; when a server is down the
//! harness starts it with the command the machine documents, once.

#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use server::{
    Listeners, Manager,
    config::{ManagerConfig, Overrides},
};
use tokio::{net::TcpListener, sync::OnceCell};
use tokio_util::sync::CancellationToken;

pub const ROOT_PASSWORD: &str = "root-password-1";

/// The three databases the manager supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
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

/// A fresh, empty database; [`TestDb::drop_db`] removes it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    name: String,
    _dir: tempfile::TempDir,
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
        Self { backend, url, name, _dir: dir }
    }

    /// Runs raw SQL against the test database (for states the API cannot reach, e.g. expiry).
    pub async fn exec(&self, sql: &str) {
        let db = Database::connect(&self.url).await.unwrap();
        db.execute(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap();
        db.close().await.unwrap();
    }

    pub async fn drop_db(self) {
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

/// A running manager and a client signed in as root.
pub struct TestManager {
    pub base: String,
    /// The gRPC address schedulers and peers register with.
    pub grpc: String,
    pub db: TestDb,
    pub http: reqwest::Client,
    pub root: String,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), server::Error>>,
}

/// An answer: status, body as JSON (Null when empty), headers.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn id(&self) -> i64 {
        self.body["id"].as_i64().unwrap_or_else(|| panic!("no id in {:?} {}", self.status, self.body))
    }

    /// Asserts the status and, for errors, the JSON error shape.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        if status >= 400 {
            assert!(self.body["code"].is_string() && self.body["message"].is_string(), "error shape: {}", self.body);
        }
        self
    }
}

impl TestManager {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut ManagerConfig)) -> Self {
        let db = TestDb::new(backend).await;
        let mut config = ManagerConfig::load(
            None,
            Overrides {
                data_dir: Some(db._dir.path().to_owned()),
                http_addr: Some("127.0.0.1:0".parse().unwrap()),
                grpc_addr: Some("127.0.0.1:0".parse().unwrap()),
                database_url: Some(db.url.clone()),
                site_root: Some(db._dir.path().join("no-site")),
            },
        )
        .unwrap();
        adjust(&mut config);
        let (manager, _) = Manager::open(config, Some(ROOT_PASSWORD)).await.unwrap();
        let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", http_listener.local_addr().unwrap());
        let grpc_addr = grpc.local_addr().unwrap().to_string();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(manager.serve(Listeners { http: http_listener, grpc }, shutdown.clone()));
        let http = reqwest::Client::new();
        let mut m = Self { base, grpc: grpc_addr, db, http, root: String::new(), shutdown, server };
        m.root = m.signin("root", ROOT_PASSWORD).await;
        m
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.server).await.unwrap().unwrap().unwrap();
        self.db.drop_db().await;
    }

    /// Any request; `token` goes into `Authorization: Bearer`.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Answer { status, body, headers }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    pub async fn signin(&self, name: &str, password: &str) -> String {
        let a = self
            .call(Method::POST, "/api/v1/users/signin", None, Some(json!({"name": name, "password": password})))
            .await
            .expect(200);
        a.body["token"].as_str().unwrap().to_owned()
    }

    /// Signs up `name` and answers its id and a sign-in token.
    pub async fn user(&self, name: &str) -> (i64, String) {
        let password = format!("{name}-password");
        let a = self
            .call(Method::POST, "/api/v1/users/signup", None, Some(json!({"name": name, "password": password})))
            .await
            .expect(201);
        (a.id(), self.signin(name, &password).await)
    }
}

/// Declares one `#[tokio::test]` per backend for an `async fn(Backend)`.
#[macro_export]
macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name($crate::support::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name($crate::support::Backend::Postgres).await } )* }
        mod mysql { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name($crate::support::Backend::Mysql).await } )* }
    };
}
