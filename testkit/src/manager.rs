//! A manager in-process on a fresh database ([`TestManager`]), signed in as root, with a small
//! HTTP client whose answers ([`Answer`]) check the API's JSON error shape.
//!
//! Several managers on one database: [`TestManager::replica`] starts another on the same
//! database with a data dir of its own, as on another machine. A replica, or a manager started
//! with [`TestManager::start_apart`], runs on a Tokio runtime of its own, so
//! [`TestManager::kill`] can drop every one of its tasks and sockets at once with no graceful
//! step, as when its process is killed.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sea_orm::{Database, DatabaseConnection};
use serde_json::{Value, json};
use server::{
    Listeners, Manager,
    config::{ManagerConfig, Overrides},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::db::{Backend, TestDb};

/// The root user's password in every test manager.
pub const ROOT_PASSWORD: &str = "root-password-1";

/// A running manager and a client signed in as root.
pub struct TestManager {
    /// `http://127.0.0.1:<port>` of the REST API and console, or `https://localhost:<port>` when
    /// the manager serves HTTPS (with a certificate of [`crate::pki::web_files`]).
    pub base: String,
    /// The gRPC address schedulers and peers register with.
    pub grpc: String,
    pub db: TestDb,
    /// A second connection to the manager's database, for checks the API cannot make.
    pub sql: DatabaseConnection,
    pub http: reqwest::Client,
    /// A sign-in token of the root user.
    pub root: String,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), server::Error>>,
    /// The runtime the server runs on when it is not the test's own.
    apart: Option<Apart>,
    /// The configuration it was started with (a replica starts from it).
    pub config: ManagerConfig,
    /// The HTTP and gRPC listeners' addresses, which a restart binds again.
    addrs: (std::net::SocketAddr, std::net::SocketAddr),
}

/// Serves an opened manager on `listeners`, on the runtime this runs on.
async fn serve(
    manager: Manager,
    listeners: (std::net::TcpListener, std::net::TcpListener),
    shutdown: CancellationToken,
) -> Result<(), server::Error> {
    let listen = |l: std::net::TcpListener| {
        l.set_nonblocking(true)?;
        TcpListener::from_std(l)
    };
    let listeners = Listeners { http: listen(listeners.0)?, grpc: listen(listeners.1)? };
    manager.serve(listeners, shutdown).await
}

/// A runtime of a manager's own; dropping it drops every task on it at once, from any context.
struct Apart(Option<tokio::runtime::Runtime>);

impl Drop for Apart {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
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

    /// Reads a response into an answer (the body as JSON when it parses, else as a string).
    pub async fn read(res: reqwest::Response) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Self { status, body, headers }
    }
}

impl TestManager {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a manager whose configuration `adjust` changed first.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut ManagerConfig)) -> Self {
        Self::launch(TestDb::new(backend).await, adjust, false).await
    }

    /// Like [`TestManager::start_with`], on a runtime of its own: [`TestManager::kill`] works.
    pub async fn start_apart(backend: Backend, adjust: impl FnOnce(&mut ManagerConfig)) -> Self {
        Self::launch(TestDb::new(backend).await, adjust, true).await
    }

    /// Another manager on this one's database, with this one's configuration (but a data dir
    /// of its own and new ports) changed by `adjust`, on a runtime of its own.
    pub async fn replica(&self, adjust: impl FnOnce(&mut ManagerConfig)) -> Self {
        let db = self.db.shared();
        let mut config = self.config.clone();
        config.data_dir = db.dir().to_owned();
        config.console.site_root = db.dir().join("no-site");
        adjust(&mut config);
        Self::launch(db, |c| *c = config, true).await
    }

    async fn launch(db: TestDb, adjust: impl FnOnce(&mut ManagerConfig), apart: bool) -> Self {
        crate::init_logs();
        let mut config = ManagerConfig::load(
            None,
            Overrides {
                data_dir: Some(db.dir().to_owned()),
                http_addr: Some("127.0.0.1:0".parse().unwrap()),
                grpc_addr: Some("127.0.0.1:0".parse().unwrap()),
                database_url: Some(db.url.clone()),
                site_root: Some(db.dir().join("no-site")),
            },
        )
        .unwrap();
        // The binary's test CA, as an operator's own: schedulers and peers get certificates of it.
        (config.tls.ca_cert, config.tls.ca_key) = crate::pki::ca_files();
        adjust(&mut config);
        let https = config.server.https();
        let http_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let grpc = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let http_listener_addr = http_listener.local_addr().unwrap();
        let port = http_listener_addr.port();
        let base = if https { format!("https://localhost:{port}") } else { format!("http://127.0.0.1:{port}") };
        let grpc_addr = grpc.local_addr().unwrap().to_string();
        let shutdown = CancellationToken::new();
        // Opened (root's password set when it makes the user) on the runtime it serves on, so its
        // database connections are that runtime's.
        let open = Manager::open(config.clone(), Some(ROOT_PASSWORD));
        let (apart, server) = if apart {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let (manager, _) = runtime.spawn(open).await.unwrap().unwrap();
            let server = runtime.spawn(serve(manager, (http_listener, grpc), shutdown.clone()));
            (Some(Apart(Some(runtime))), server)
        } else {
            let (manager, _) = open.await.unwrap();
            (None, tokio::spawn(serve(manager, (http_listener, grpc), shutdown.clone())))
        };
        let sql = Database::connect(&db.url).await.unwrap();
        let http = if https {
            // Trusting the test CA alone, as a browser trusting the operator's CA would.
            let ca = reqwest::Certificate::from_pem(crate::pki::ca().cert_pem().as_bytes()).unwrap();
            let here = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let client = reqwest::Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca);
            client.resolve("localhost", here).build().unwrap()
        } else {
            reqwest::Client::new()
        };
        let addrs = (http_listener_addr, grpc_addr.parse().unwrap());
        let mut m =
            Self { base, grpc: grpc_addr, db, sql, http, root: String::new(), shutdown, server, apart, config, addrs };
        m.root = m.signin("root", ROOT_PASSWORD).await;
        m
    }

    /// Takes a manager started apart down at once, as a killed process: no graceful step runs,
    /// its jobs stay as they were in the database, its sockets close. Answers the database,
    /// which stays for the other managers on it.
    pub async fn kill(mut self) -> TestDb {
        let runtime = self.apart.take().expect("only a manager started apart can be killed");
        drop(runtime);
        self.sql.close().await.unwrap();
        self.db
    }

    /// Stops the manager cleanly and starts it again on the same database and addresses, as an
    /// operator's restart would; sign-in tokens stay valid (the sessions are in the database).
    pub async fn restart(mut self) -> Self {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), &mut self.server).await.unwrap().unwrap().unwrap();
        assert!(self.apart.is_none(), "restart a manager started on the test's runtime");
        let (manager, _) = Manager::open(self.config.clone(), None).await.unwrap();
        let http = TcpListener::bind(self.addrs.0).await.unwrap();
        let grpc = TcpListener::bind(self.addrs.1).await.unwrap();
        self.shutdown = CancellationToken::new();
        self.server = tokio::spawn(manager.serve(Listeners { http, grpc }, self.shutdown.clone()));
        self
    }

    /// Stops the manager (within 10 s, cleanly) and drops its database (unless it is a
    /// replica, whose database belongs to the manager it replicates).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), &mut self.server).await.unwrap().unwrap().unwrap();
        drop(self.apart.take());
        self.sql.close().await.unwrap();
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
        Answer::read(req.send().await.unwrap()).await
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

    /// Creates user `name` (as root: sign-up is closed by default) and answers its id and a
    /// sign-in token.
    pub async fn user(&self, name: &str) -> (i64, String) {
        let password = format!("{name}-password");
        let a = self
            .call(Method::POST, "/api/v1/users", Some(&self.root), Some(json!({"name": name, "password": password})))
            .await
            .expect(201);
        (a.id(), self.signin(name, &password).await)
    }
}
