//! List pagination: `?page=1&per_page=10` in, a JSON array plus `X-Total-Count` and `Link` out.

use axum::{
    Json,
    http::{HeaderValue, Uri, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::Error;

/// `page` (from 1) and `per_page` (1 to 1000, default 10).
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page number, from 1. Default: 1.
    #[param(minimum = 1)]
    pub page: Option<u64>,
    /// Items per page, 1 to 1000. Default: 10.
    #[param(minimum = 1, maximum = 1000)]
    pub per_page: Option<u64>,
}

pub use crate::service::{Listed, MAX_PER_PAGE, Page, PageRequest};

impl PageParams {
    /// The page asked for, as a service operation takes it before checking it.
    pub fn request(&self) -> PageRequest {
        PageRequest { page: self.page, per_page: self.per_page }
    }

    pub fn validate(&self) -> Result<Page, Error> {
        self.request().validate()
    }
}

/// One page of a list and how many items there are in all.
#[derive(Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: Page,
    pub uri: Uri,
}

impl<T> Paged<T> {
    /// A page a service listed, answered for the request at `uri`.
    pub fn new(listed: Listed<T>, page: Page, uri: Uri) -> Self {
        Self { items: listed.items, total: listed.total, page, uri }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged { items: self.items.into_iter().map(f).collect(), total: self.total, page: self.page, uri: self.uri }
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let last = self.total.div_ceil(self.page.per_page).max(1);
        let link = |page: u64, rel: &str| {
            let mut pairs: Vec<(String, String)> = self
                .uri
                .query()
                .map(|q| {
                    q.split('&')
                        .filter_map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            (k != "page" && k != "per_page" && !k.is_empty()).then(|| (k.to_owned(), v.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            pairs.push(("page".into(), page.to_string()));
            pairs.push(("per_page".into(), self.page.per_page.to_string()));
            let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("<{}?{}>; rel=\"{rel}\"", self.uri.path(), query.join("&"))
        };
        let mut links = vec![link(1, "first")];
        if self.page.page > 1 {
            links.push(link((self.page.page - 1).min(last), "prev"));
        }
        if self.page.page < last {
            links.push(link(self.page.page + 1, "next"));
        }
        links.push(link(last, "last"));
        let mut response = Json(self.items).into_response();
        let headers = response.headers_mut();
        headers.insert("x-total-count", HeaderValue::from(self.total));
        if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
            headers.insert(header::LINK, v);
        }
        response
    }
}
