//! Tenants and their members. Anyone signed in may create a tenant (and becomes its admin);
//! tenant admins rename it and manage members; only platform administrators delete one.

use leptos::prelude::*;

use super::ApiError;
use crate::api::page::Page;
use common::api::{Member, Tenant};

/// The roles a member can have in a tenant, most powerful first.
pub const TENANT_ROLES: &[&str] = &["admin", "member", "guest"];

#[cfg(feature = "ssr")]
fn tenant_role(role: &str) -> Result<String, ApiError> {
    if TENANT_ROLES.contains(&role) {
        Ok(role.to_owned())
    } else {
        Err(ApiError::invalid("role", "role must be admin, member or guest"))
    }
}

#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn list_tenants(page: u64) -> Result<Page<Tenant>, ApiError> {
    super::client::list("/api/v1/tenants", page.max(1), 20, &[]).await
}

/// Every tenant the user can see (for pickers), up to the API's largest page.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn all_tenants() -> Result<Vec<Tenant>, ApiError> {
    Ok(super::client::list("/api/v1/tenants", 1, 1000, &[]).await?.items)
}

#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn get_tenant(id: i64) -> Result<Tenant, ApiError> {
    super::client::get(&format!("/api/v1/tenants/{id}"), &[]).await
}

/// Creates a tenant with the caller as its admin, then goes to its page.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn create_tenant(name: String, bio: String) -> Result<Tenant, ApiError> {
    #[derive(serde::Serialize)]
    struct Body {
        name: String,
        bio: String,
    }
    let body = Body { name: name.trim().to_owned(), bio: bio.trim().to_owned() };
    let tenant: Tenant = super::client::post("/api/v1/tenants", &body).await?;
    leptos_axum::redirect(&format!("/tenants/{}", tenant.id));
    Ok(tenant)
}

/// Renames a tenant or changes its description.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn update_tenant(id: i64, name: String, bio: String) -> Result<Tenant, ApiError> {
    #[derive(serde::Serialize)]
    struct Body {
        name: String,
        bio: String,
    }
    super::client::patch(
        &format!("/api/v1/tenants/{id}"),
        &Body { name: name.trim().to_owned(), bio: bio.trim().to_owned() },
    )
    .await
}

/// Deletes a tenant (it must have no clusters left), then goes to the tenant list.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn delete_tenant(id: i64) -> Result<(), ApiError> {
    super::client::delete(&format!("/api/v1/tenants/{id}")).await?;
    leptos_axum::redirect("/tenants");
    Ok(())
}

/// Members of a tenant, up to the API's largest page.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn list_members(tenant_id: i64) -> Result<Page<Member>, ApiError> {
    super::client::list(&format!("/api/v1/tenants/{tenant_id}/members"), 1, 1000, &[]).await
}

/// Adds a user, by name, to a tenant with a role.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn add_member(tenant_id: i64, user_name: String, role: String) -> Result<Member, ApiError> {
    #[derive(serde::Serialize)]
    struct Body {
        user_name: String,
        role: String,
    }
    let user_name = user_name.trim().to_owned();
    if user_name.is_empty() {
        return Err(ApiError::invalid("user_name", "enter the name of the user to add"));
    }
    let role = tenant_role(&role)?;
    super::client::post(&format!("/api/v1/tenants/{tenant_id}/members"), &Body { user_name, role }).await
}

/// Changes a member's role (a tenant keeps at least one admin; the API refuses otherwise).
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn change_member_role(tenant_id: i64, user_id: i64, role: String) -> Result<Member, ApiError> {
    #[derive(serde::Serialize)]
    struct Body {
        role: String,
    }
    let role = tenant_role(&role)?;
    super::client::patch(&format!("/api/v1/tenants/{tenant_id}/members/{user_id}"), &Body { role }).await
}

/// Removes a member from a tenant.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn remove_member(tenant_id: i64, user_id: i64) -> Result<(), ApiError> {
    super::client::delete(&format!("/api/v1/tenants/{tenant_id}/members/{user_id}")).await
}
