//! The OpenAPI document's frame: title, security schemes. Paths come from the handlers'
//! `#[utoipa::path]` attributes, so the document cannot drift from the code.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Damselfly manager API", description = "Control plane of the Damselfly P2P distribution system. \
        /api/v1 takes a sign-in token (POST /api/v1/users/signin); /oapi/v1 takes a personal access token. \
        Lists take page and per_page and answer the total in X-Total-Count and page links in Link. \
        Errors answer {code, message, field?}."),
    modifiers(&Security),
    tags(
        (name = "health"), (name = "users"), (name = "tenants"), (name = "clusters"), (name = "schedulers"),
        (name = "seed-peers"), (name = "peers"), (name = "applications"), (name = "configs"), (name = "jobs"),
        (name = "personal-access-tokens"), (name = "audits"), (name = "stats"), (name = "oapi")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("dfly_pat_…").build()),
        );
    }
}
