//! Jobs: the list, one job with its results, the task-clear tools (`get_task`, `delete_task`)
//! and preheat.

use super::ApiError;
use crate::api::page::Page;
use common::api::{Job, JobResult};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One job as its page shows it: the job (its `result` left out) and that result read into types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    pub job: Job,
    pub result: JobResult,
}

impl JobReport {
    /// Whether the job may still change (the page keeps looking).
    pub fn is_running(&self) -> bool {
        matches!(self.job.state.as_str(), "PENDING" | "RUNNING")
    }
}

/// What the jobs list is filtered by (empty: any).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobFilter {
    pub r#type: String,
    pub state: String,
    pub user_id: String,
    pub cluster_id: String,
}

/// Jobs, newest first, filtered by type, state, user and cluster.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn list_jobs(page: u64, filter: JobFilter) -> Result<Page<Job>, ApiError> {
    let query = [
        ("type", filter.r#type),
        ("state", filter.state),
        ("user_id", filter.user_id),
        ("scheduler_cluster_id", filter.cluster_id),
    ];
    super::client::list("/api/v1/jobs", page.max(1), 20, &query).await
}

#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn get_job(id: i64) -> Result<JobReport, ApiError> {
    let mut job: Job = super::client::get(&format!("/api/v1/jobs/{id}"), &[]).await?;
    // An unreadable result shows as none rather than failing the page.
    let result = job.result.take().and_then(|r| serde_json::from_value(r).ok()).unwrap_or_default();
    Ok(JobReport { job, result })
}

/// Starts a `get_task` (`delete = false`) or `delete_task` job for a task given by id or by URL
/// (with the tag and application it was downloaded with), on one cluster or on all of the tenant's.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn task_job(
    delete: bool,
    task: String,
    tag: String,
    application: String,
    cluster_id: String,
) -> Result<Job, ApiError> {
    #[derive(serde::Serialize)]
    struct Body {
        r#type: &'static str,
        args: serde_json::Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        scheduler_cluster_ids: Option<Vec<i64>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tenant_id: Option<i64>,
    }
    let task = task.trim();
    let args = if task.is_empty() {
        return Err(ApiError::invalid("task", "enter a task id or the URL it was downloaded from"));
    } else if task.contains("://") {
        serde_json::json!({"url": task, "tag": tag.trim(), "application": application.trim()})
    } else {
        serde_json::json!({"task_id": task})
    };
    // Taken before the first await, as every server function that calls the API twice must.
    let caller = super::client::Caller::from_context()?;
    let (scheduler_cluster_ids, tenant_id) = match cluster_id.trim() {
        "" => (None, None),
        id => {
            let id: i64 = super::number("cluster_id", id)?;
            let cluster: common::api::Cluster = caller.get(&format!("/api/v1/clusters/{id}"), &[]).await?;
            (Some(vec![id]), Some(cluster.tenant_id))
        }
    };
    let r#type = if delete { "delete_task" } else { "get_task" };
    caller.post("/api/v1/jobs", &Body { r#type, args, scheduler_cluster_ids, tenant_id }).await
}

/// The preheat form as the browser posts it: text fields, lists one item per line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreheatForm {
    /// `image` or `file`.
    pub kind: String,
    /// An image's manifest URL, or files' URLs one per line.
    pub urls: String,
    /// `os/arch[/variant]` (images only).
    pub platform: String,
    pub scope: String,
    /// IP addresses one per line or separated by commas.
    pub ips: String,
    pub count: String,
    pub percentage: String,
    /// Cluster ids ticked; none: every cluster of the tenant.
    pub clusters: Vec<String>,
    /// `Name: value`, one per line.
    pub headers: String,
    pub username: String,
    pub password: String,
    pub tag: String,
    pub application: String,
    pub filtered_query_params: String,
    pub piece_length: String,
    pub concurrent_count: String,
    pub timeout: String,
}

/// The form's fields, for messages that name none of them.
pub const PREHEAT_FIELDS: &[&str] = &[
    "kind",
    "urls",
    "platform",
    "scope",
    "ips",
    "count",
    "percentage",
    "clusters",
    "headers",
    "username",
    "password",
    "tag",
    "application",
    "filtered_query_params",
    "piece_length",
    "concurrent_count",
    "timeout",
];

/// Starts a preheat job; the API checks every argument and its messages come back naming the
/// form's fields. The password goes to the API in the request body only; the API masks it in
/// every answer.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn preheat(form: PreheatForm) -> Result<Job, ApiError> {
    let clusters = form.clusters.iter().map(|c| super::number::<i64>("clusters", c)).collect::<Result<Vec<_>, _>>()?;
    let args = preheat_body::args(&form)?;
    // Taken before the first await, as every server function that calls the API twice must.
    let caller = super::client::Caller::from_context()?;
    // The job belongs to the tenant of the clusters chosen; with none, the API picks the
    // caller's only tenant (or says to choose).
    let tenant_id = match clusters.first() {
        Some(id) => {
            let cluster: common::api::Cluster = caller.get(&format!("/api/v1/clusters/{id}"), &[]).await?;
            Some(cluster.tenant_id)
        }
        None => None,
    };
    let body = serde_json::json!({
        "type": "preheat",
        "args": args,
        "scheduler_cluster_ids": (!clusters.is_empty()).then_some(clusters),
        "tenant_id": tenant_id,
    });
    caller.post("/api/v1/jobs", &body).await.map_err(preheat_body::form_field)
}

/// The API's preheat `args` from the form, and the API's field names back to the form's.
#[cfg(any(feature = "ssr", test))]
mod preheat_body {
    use serde_json::{Map, Value, json};

    use super::PreheatForm;
    use crate::api::{ApiError, lines};

    /// Dragonfly's `args`: only what the form says, so the API's defaults apply to the rest.
    /// Numbers go as numbers when they are numbers, and as text otherwise, for the API to refuse
    /// by name.
    pub fn args(f: &PreheatForm) -> Result<Value, ApiError> {
        let mut args = Map::new();
        let image = f.kind.trim() != "file";
        args.insert("type".into(), json!(if image { "image" } else { "file" }));
        let urls = lines(&f.urls);
        match urls.as_slice() {
            [] => {
                return Err(ApiError::invalid(
                    "urls",
                    if image { "give the image's manifest URL" } else { "give at least one URL" },
                ));
            }
            [url] => {
                args.insert("url".into(), json!(url));
            }
            _ if image => return Err(ApiError::invalid("urls", "an image preheat takes one manifest URL")),
            _ => {
                args.insert("urls".into(), json!(urls));
            }
        }
        let mut text = |key: &str, value: &str| {
            if !value.trim().is_empty() {
                args.insert(key.into(), json!(value.trim()));
            }
        };
        if image {
            text("platform", &f.platform);
            text("username", &f.username);
        }
        text("scope", &f.scope);
        text("tag", &f.tag);
        text("application", &f.application);
        text("filtered_query_params", &f.filtered_query_params);
        for (key, value) in [
            ("count", &f.count),
            ("percentage", &f.percentage),
            ("piece_length", &f.piece_length),
            ("concurrent_count", &f.concurrent_count),
            ("timeout", &f.timeout),
        ] {
            let value = value.trim();
            if !value.is_empty() {
                let number = value.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(value));
                args.insert(key.into(), number);
            }
        }
        let ips: Vec<&str> = f.ips.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).collect();
        if !ips.is_empty() {
            args.insert("ips".into(), json!(ips));
        }
        let mut headers = Map::new();
        for (i, line) in f.headers.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                ApiError::invalid("headers", format!("line {}: write a header as Name: value", i + 1))
            })?;
            headers.insert(name.trim().to_owned(), json!(value.trim()));
        }
        if !headers.is_empty() {
            args.insert("headers".into(), Value::Object(headers));
        }
        // Sent as typed, not trimmed: a password is what it is.
        if image && !f.password.is_empty() {
            args.insert("password".into(), json!(f.password));
        }
        Ok(Value::Object(args))
    }

    /// Points an API error at the form's field: `args.urls[2]` is line 3 of the URLs,
    /// `args.type` the type, `scheduler_cluster_ids` (or a tenant to choose) the clusters.
    pub fn form_field(mut e: ApiError) -> ApiError {
        let Some(field) = e.field.take() else { return e };
        let mapped = match field.as_str() {
            "args.url" | "args.urls" => "urls".to_owned(),
            "args.type" => "kind".to_owned(),
            "scheduler_cluster_ids" => "clusters".to_owned(),
            "tenant_id" => {
                e.message = "you belong to several tenants: tick the clusters to preheat".into();
                "clusters".to_owned()
            }
            f => match f.strip_prefix("args.urls[").and_then(|i| i.strip_suffix(']')?.parse::<usize>().ok()) {
                Some(i) => {
                    e.message = e.message.replace(&field, &format!("line {}", i + 1));
                    "urls".to_owned()
                }
                None => f.strip_prefix("args.").unwrap_or(f).to_owned(),
            },
        };
        e.field = Some(mapped);
        e
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn form(kind: &str, urls: &str) -> PreheatForm {
            PreheatForm { kind: kind.into(), urls: urls.into(), ..PreheatForm::default() }
        }

        #[test]
        fn a_file_preheat_sends_what_the_form_says() {
            let f = PreheatForm {
                scope: "all_peers".into(),
                count: " 2 ".into(),
                percentage: "abc".into(),
                ips: "10.0.0.1, 10.0.0.2\n::1".into(),
                headers: "X-A: 1\n\nAccept: a:b".into(),
                platform: "linux/arm64".into(),
                password: " p ".into(),
                ..form("file", "http://o/a\n\n http://o/b ")
            };
            let a = args(&f).unwrap();
            assert_eq!(a["type"], "file");
            assert_eq!(a["urls"], json!(["http://o/a", "http://o/b"]));
            assert_eq!((a["count"].clone(), a["percentage"].clone()), (json!(2), json!("abc")));
            assert_eq!(a["ips"], json!(["10.0.0.1", "10.0.0.2", "::1"]));
            assert_eq!(a["headers"], json!({"X-A": "1", "Accept": "a:b"}));
            // Image-only fields are not sent for files.
            assert!(a.get("platform").is_none() && a.get("password").is_none());
            let one = args(&form("file", "http://o/a")).unwrap();
            assert_eq!((one["url"].clone(), one.get("urls")), (json!("http://o/a"), None));
        }

        #[test]
        fn an_image_preheat_takes_one_url_and_its_credentials() {
            let f = PreheatForm {
                platform: "linux/amd64".into(),
                username: "u".into(),
                password: " secret ".into(),
                ..form("image", "https://r/v2/a/manifests/1")
            };
            let a = args(&f).unwrap();
            assert_eq!((a["platform"].clone(), a["password"].clone()), (json!("linux/amd64"), json!(" secret ")));
            assert_eq!(args(&form("image", "https://r/a\nhttps://r/b")).unwrap_err().field.as_deref(), Some("urls"));
            assert_eq!(args(&form("file", " \n")).unwrap_err().field.as_deref(), Some("urls"));
            let bad = PreheatForm { headers: "no colon".into(), ..form("file", "http://o/a") };
            assert_eq!(args(&bad).unwrap_err().field.as_deref(), Some("headers"));
        }

        #[test]
        fn api_fields_point_at_the_form() {
            let api = |field: &str, message: &str| ApiError {
                status: 422,
                code: "invalid".into(),
                message: message.into(),
                field: Some(field.into()),
            };
            let e = form_field(api("args.urls[1]", "args.urls[1] is not a URL"));
            assert_eq!((e.field.as_deref(), e.message.as_str()), (Some("urls"), "line 2 is not a URL"));
            assert_eq!(form_field(api("args.percentage", "m")).field.as_deref(), Some("percentage"));
            assert_eq!(form_field(api("args.url", "m")).field.as_deref(), Some("urls"));
            assert_eq!(form_field(api("args.type", "m")).field.as_deref(), Some("kind"));
            assert_eq!(form_field(api("scheduler_cluster_ids", "m")).field.as_deref(), Some("clusters"));
            assert_eq!(form_field(api("tenant_id", "m")).field.as_deref(), Some("clusters"));
        }
    }
}
