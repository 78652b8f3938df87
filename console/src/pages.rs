//! One module per page (or per family of pages).

pub mod audit;
pub mod cluster_detail;
pub mod cluster_form;
pub mod clusters;
pub mod jobs;
pub mod overview;
pub mod peers;
pub mod preheat;
pub mod profile;
pub mod roles;
pub mod signin;
pub mod status;
pub mod task_clear;
pub mod task_graph;
pub mod tenants;
pub mod tokens;
pub mod topology;
pub mod users;
