//! SeaORM entities, one module per table, in the shape `sea-orm-cli generate entity` writes.
//! They describe the schema the migrations in `migrations/` produce; change both together.

pub mod users;
