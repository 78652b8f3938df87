//! The contract the matrix holds the server to, written from the issue and not from the server's
//! policy: root everything; admin everything in its tenant; member reads and creates jobs; guest
//! reads; tokens are private to their owner and the tenant's admins; objects of a tenant one has
//! no role in are not found. A personal access token acts as its owner inside its one tenant,
//! and only within its scopes.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Root,
    Admin,
    Member,
    Guest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tenant,
    /// A membership: `/tenants/{id}/members/{user_id}`.
    Member,
    Cluster,
    Application,
    Job,
    Token,
    Scheduler,
    SeedPeer,
    Peer,
    /// A cluster's join token: only those who may change the cluster see or revoke it.
    JoinToken,
}

impl Kind {
    /// Rows registered over gRPC: read and forgotten over REST, never changed.
    pub fn is_host(self) -> bool {
        matches!(self, Kind::Scheduler | Kind::SeedPeer | Kind::Peer)
    }

    /// The `/api/v1` collection, for kinds that have one of their own.
    pub fn collection(self) -> Option<&'static str> {
        Some(match self {
            Kind::Tenant => "tenants",
            Kind::Cluster => "clusters",
            Kind::Application => "applications",
            Kind::Job => "jobs",
            Kind::Token => "personal-access-tokens",
            Kind::Scheduler => "schedulers",
            Kind::SeedPeer => "seed-peers",
            Kind::Peer => "peers",
            Kind::Member | Kind::JoinToken => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Patch,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Forbidden,
    NotFound,
}

/// What `role` (none: no role in the object's tenant) may do to an existing object; `own`: the
/// caller owns it (tokens).
pub fn expected(role: Option<Role>, kind: Kind, method: Method, own: bool) -> Outcome {
    use Outcome::*;
    let Some(role) = role else { return NotFound };
    if role == Role::Root {
        return Allowed;
    }
    let read = method == Method::Get;
    match kind {
        Kind::Token if own || role == Role::Admin => Allowed,
        Kind::Token => NotFound,
        Kind::JoinToken if role == Role::Admin => Allowed,
        Kind::JoinToken => Forbidden,
        Kind::Tenant if method == Method::Delete => Forbidden,
        kind if kind.is_host() && method == Method::Patch => unreachable!("hosts are not changed over REST"),
        _ if read || role == Role::Admin => Allowed,
        _ => Forbidden,
    }
}

/// Whether `role` may create a `kind` inside a tenant.
pub fn expected_create(role: Option<Role>, kind: Kind) -> Outcome {
    use Outcome::*;
    match (role, kind) {
        (None, _) => NotFound,
        (Some(Role::Root | Role::Admin), _) => Allowed,
        (Some(_), Kind::Token) => Allowed,
        (Some(Role::Member), Kind::Job) => Allowed,
        (Some(_), _) => Forbidden,
    }
}

/// The audit log is the tenant admins' (and root's): nobody else sees an entry.
pub fn sees_audits(role: Option<Role>) -> bool {
    matches!(role, Some(Role::Root | Role::Admin))
}

/// What a personal access token bound to `bound` (its owner's role there: `role`), with
/// `scopes`, may do on `/oapi/v1` to an object of kind `kind` in `tenant` (`None`: creating).
pub fn expected_token(
    role: Role,
    bound: &str,
    scopes: &[&str],
    kind: Kind,
    tenant: &str,
    method: Option<Method>,
) -> Outcome {
    let scope = match kind {
        Kind::Job => "job",
        Kind::Cluster => "cluster",
        _ => unreachable!("/oapi/v1 serves jobs and clusters"),
    };
    if !scopes.contains(&scope) {
        return Outcome::Forbidden;
    }
    let role = (tenant == bound).then_some(role);
    match method {
        Some(method) => expected(role, kind, method, false),
        None => expected_create(role, kind),
    }
}

/// The status an outcome answers to `method` (`None`: a creation).
pub fn status_of(outcome: Outcome, method: Option<Method>) -> u16 {
    match (outcome, method) {
        (Outcome::Allowed, Some(Method::Delete)) => 204,
        (Outcome::Allowed, Some(_)) => 200,
        (Outcome::Allowed, None) => 201,
        (Outcome::Forbidden, _) => 403,
        (Outcome::NotFound, _) => 404,
    }
}
