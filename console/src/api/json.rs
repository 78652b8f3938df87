//! The encoding of every server function's answer and error: JSON, read with
//! `serde_json::from_str`.
//!
//! Leptos's own `Json` reads answers with `serde_json::from_slice`, while resources read their
//! hydration data with `from_str`; each instantiates serde_json's whole parser for every type it
//! reads, so the browser bundle carried two parsers per answer type. Reading both from text keeps
//! one. The bytes on the wire are the same JSON.

use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType, codec::Post};
use serde::{Serialize, de::DeserializeOwned};

/// JSON read from text (see the module doc).
pub struct TextJson;

/// The answer as [`TextJson`]: every console server function names it as its `output` (its
/// arguments still travel as a form, `PostUrl`, which `ActionForm` needs).
pub type Json = Post<TextJson>;

impl ContentType for TextJson {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for TextJson {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for TextJson {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for TextJson {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(<serde_json::Error as serde::de::Error>::custom)?;
        serde_json::from_str(text)
    }
}
