//! Clusters: list, read, create, edit, delete.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use common::api::Cluster;

use super::{ApiError, page::Page};

/// The cluster form as the browser posts it: text fields, one item per line in the lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterForm {
    pub name: String,
    #[serde(default)]
    pub bio: String,
    /// Empty: the user's only tenant (the API decides).
    #[serde(default)]
    pub tenant_id: String,
    #[serde(default)]
    pub idc: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub cidrs: String,
    #[serde(default)]
    pub hostnames: String,
    pub candidate_parent_limit: String,
    pub filter_parent_limit: String,
    pub job_rate_limit: String,
    pub seed_peer_load_limit: String,
    pub peer_load_limit: String,
    #[serde(default)]
    pub block_applications: String,
    #[serde(default)]
    pub block_urls: String,
    #[serde(default)]
    pub block_tags: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    pub is_default: Option<String>,
}

impl ClusterForm {
    /// The form filled in from an existing cluster.
    pub fn from_cluster(c: &Cluster) -> Self {
        Self {
            name: c.name.clone(),
            bio: c.bio.clone(),
            tenant_id: c.tenant_id.to_string(),
            idc: c.scopes.idc.clone(),
            location: c.scopes.location.clone(),
            cidrs: c.scopes.cidrs.join("\n"),
            hostnames: c.scopes.hostnames.join("\n"),
            candidate_parent_limit: c.scheduler_cluster_config.candidate_parent_limit.to_string(),
            filter_parent_limit: c.scheduler_cluster_config.filter_parent_limit.to_string(),
            job_rate_limit: c.scheduler_cluster_config.job_rate_limit.to_string(),
            seed_peer_load_limit: c.seed_peer_cluster_config.load_limit.to_string(),
            peer_load_limit: c.peer_cluster_config.load_limit.to_string(),
            block_applications: c.peer_cluster_config.block_list.applications.join("\n"),
            block_urls: c.peer_cluster_config.block_list.urls.join("\n"),
            block_tags: c.peer_cluster_config.block_list.tags.join("\n"),
            is_default: c.is_default.then(|| "on".into()),
        }
    }

    /// The manager's defaults, for a new cluster.
    pub fn new_cluster() -> Self {
        Self {
            candidate_parent_limit: "4".into(),
            filter_parent_limit: "40".into(),
            job_rate_limit: "10".into(),
            seed_peer_load_limit: "2000".into(),
            peer_load_limit: "200".into(),
            ..Self::default()
        }
    }
}

#[cfg(any(feature = "ssr", test))]
use body::Body;

/// The API's create / update body, from the form.
#[cfg(any(feature = "ssr", test))]
mod body {
    use serde::Serialize;

    use common::api::{BlockList, PeerClusterConfig, SchedulerClusterConfig, Scopes, SeedPeerClusterConfig};

    use super::ClusterForm;
    use crate::api::ApiError;

    #[derive(Debug, Serialize)]
    pub struct Body {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub tenant_id: Option<i64>,
        pub name: String,
        pub bio: String,
        pub scopes: Scopes,
        pub scheduler_cluster_config: SchedulerClusterConfig,
        pub seed_peer_cluster_config: SeedPeerClusterConfig,
        pub peer_cluster_config: PeerClusterConfig,
        pub is_default: bool,
    }

    impl TryFrom<ClusterForm> for Body {
        type Error = ApiError;

        fn try_from(f: ClusterForm) -> Result<Self, ApiError> {
            use crate::api::{lines, number};
            let tenant_id = match f.tenant_id.trim() {
                "" => None,
                t => Some(number("tenant_id", t)?),
            };
            Ok(Self {
                tenant_id,
                name: f.name.trim().to_owned(),
                bio: f.bio.trim().to_owned(),
                scopes: Scopes {
                    idc: f.idc.trim().to_owned(),
                    location: f.location.trim().to_owned(),
                    cidrs: lines(&f.cidrs),
                    hostnames: lines(&f.hostnames),
                },
                scheduler_cluster_config: SchedulerClusterConfig {
                    candidate_parent_limit: number("candidate_parent_limit", &f.candidate_parent_limit)?,
                    filter_parent_limit: number("filter_parent_limit", &f.filter_parent_limit)?,
                    job_rate_limit: number("job_rate_limit", &f.job_rate_limit)?,
                },
                seed_peer_cluster_config: SeedPeerClusterConfig {
                    load_limit: number("seed_peer_load_limit", &f.seed_peer_load_limit)?,
                },
                peer_cluster_config: PeerClusterConfig {
                    load_limit: number("peer_load_limit", &f.peer_load_limit)?,
                    block_list: BlockList {
                        applications: lines(&f.block_applications),
                        urls: lines(&f.block_urls),
                        tags: lines(&f.block_tags),
                    },
                },
                is_default: f.is_default.is_some(),
            })
        }
    }
}

/// The API names nested fields by their last segment (`load_limit`); the form has two of those.
/// Point such errors at the form's own field.
#[cfg(feature = "ssr")]
fn form_field(mut e: ApiError) -> ApiError {
    if let Some(f) = e.field.as_deref() {
        let mapped = match f {
            "seed_peer_cluster_config.load_limit" => "seed_peer_load_limit",
            "peer_cluster_config.load_limit" => "peer_load_limit",
            f => f.rsplit('.').next().unwrap_or(f),
        };
        let mapped = match mapped {
            "applications" => "block_applications",
            "urls" => "block_urls",
            "tags" => "block_tags",
            m => m,
        };
        e.field = Some(mapped.to_owned());
    }
    e
}

#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn list_clusters(page: u64, name: String) -> Result<Page<Cluster>, ApiError> {
    super::client::list("/api/v1/clusters", page.max(1), 20, &[("name", name)]).await
}

/// Every cluster the user can see (for pickers), up to the API's largest page.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn all_clusters() -> Result<Vec<Cluster>, ApiError> {
    Ok(super::client::list("/api/v1/clusters", 1, 1000, &[]).await?.items)
}

#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn get_cluster(id: i64) -> Result<Cluster, ApiError> {
    super::client::get(&format!("/api/v1/clusters/{id}"), &[]).await
}

/// The cluster a page's `:id` names; an id that is not a number is a 404 like a missing one.
pub async fn cluster_from_param(id: Option<i64>) -> Result<Cluster, ApiError> {
    match id {
        Some(id) => get_cluster(id).await,
        None => Err(ApiError::not_found("no such cluster")),
    }
}

/// Creates (`id` empty) or updates a cluster, then goes to its page.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn save_cluster(id: Option<i64>, form: ClusterForm) -> Result<Cluster, ApiError> {
    let body = Body::try_from(form)?;
    let saved: Cluster = match id {
        None => super::client::post("/api/v1/clusters", &body).await,
        Some(id) => super::client::patch(&format!("/api/v1/clusters/{id}"), &Body { tenant_id: None, ..body }).await,
    }
    .map_err(form_field)?;
    leptos_axum::redirect(&format!("/clusters/{}", saved.id));
    Ok(saved)
}

#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn delete_cluster(id: i64) -> Result<(), ApiError> {
    super::client::delete(&format!("/api/v1/clusters/{id}")).await?;
    leptos_axum::redirect("/clusters");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_api_body() {
        let form = ClusterForm {
            name: " edge ".into(),
            cidrs: "10.0.0.0/8\n\n 192.168.0.0/16 ".into(),
            block_tags: "secret".into(),
            is_default: Some("on".into()),
            ..ClusterForm::new_cluster()
        };
        let body = Body::try_from(form).unwrap();
        assert_eq!(body.name, "edge");
        assert_eq!(body.scopes.cidrs, vec!["10.0.0.0/8", "192.168.0.0/16"]);
        assert_eq!(body.peer_cluster_config.block_list.tags, vec!["secret"]);
        assert_eq!(body.scheduler_cluster_config.candidate_parent_limit, 4);
        assert!(body.is_default);
        assert_eq!(body.tenant_id, None);
    }

    #[test]
    fn a_bad_number_names_its_field() {
        let form = ClusterForm { name: "x".into(), peer_load_limit: "many".into(), ..ClusterForm::new_cluster() };
        assert_eq!(Body::try_from(form).unwrap_err().field.as_deref(), Some("peer_load_limit"));
    }
}
