//! Types every Damselfly component shares, and the console too.
//!
//! This crate owns vocabulary, not behaviour: identifiers, the REST data-transfer objects the
//! manager answers with, and pure arithmetic such as piece layout. It must never do I/O or pull
//! in a runtime, because the console compiles it to `wasm32-unknown-unknown`.

pub mod api;
pub mod bitmap;
pub mod digest;
pub mod health;
pub mod ids;
pub mod piece;
pub mod task_id;

/// The version every Damselfly binary reports (`--version`, health endpoints, registration).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(feature = "runtime")]
pub mod runtime;

/// A bounded property-test run: `cases` inputs (`PROPTEST_CASES` asks for more when hunting),
/// and no regressions file written into the tree.
#[cfg(test)]
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    proptest::test_runner::Config { cases, failure_persistence: None, ..Default::default() }
}
#[cfg(feature = "tls")]
pub mod tls;

/// Implements `prometheus_client`'s `EncodeLabelValue` for a closed enum with snake_case label
/// values, like the rest of Damselfly's API: `snake_label!(Kind { BackToSource => "back_to_source" });`.
/// Expands in the caller, which must depend on `prometheus-client`.
#[macro_export]
macro_rules! snake_label {
    ($ty:ty { $($variant:ident => $text:literal),* $(,)? }) => {
        impl ::prometheus_client::encoding::EncodeLabelValue for $ty {
            fn encode(
                &self,
                encoder: &mut ::prometheus_client::encoding::LabelValueEncoder<'_>,
            ) -> Result<(), ::std::fmt::Error> {
                use ::std::fmt::Write;
                encoder.write_str(match self { $(Self::$variant => $text),* })
            }
        }
    };
}
