//! SeaORM entities, one module per table. They mirror `migrations/` and hold no logic.

pub mod applications;
pub mod audits;
pub mod certificates;
pub mod clusters;
pub mod configs;
pub mod job_clusters;
pub mod jobs;
pub mod join_tokens;
pub mod manager_secrets;
pub mod members;
pub mod peers;
pub mod personal_access_tokens;
pub mod scheduler_samples;
pub mod schedulers;
pub mod seed_peers;
pub mod sessions;
pub mod task_records;
pub mod tenants;
pub mod user_identities;
pub mod users;
