//! Task-id derivation: which downloads are the same task.
//!
//! Peers share pieces only within one task, so two downloads of the same content must get the
//! same id even when they arrive through different presigned URLs (S3, GCS, OSS, OBS, COS sign
//! every URL with a fresh date, credential and signature). We therefore drop signing query
//! parameters and the fragment before hashing, keep every other parameter in its original order
//! (order can matter to an origin), and mix in what else changes the bytes a peer stores: the
//! user's tag, the application, and the piece length.
//!
//! The dfdaemon, dfget and the scheduler all derive ids with this one function; it is pure so the
//! console can show the id a URL would get.

use sha2::{Digest as _, Sha256};
use url::Url;

use crate::ids::TaskId;

/// Query parameters removed by default: the signing parameters of S3, GCS, OSS, OBS and COS
/// presigned URLs, plus `ns`. Names match case-insensitively.
pub const DEFAULT_FILTERED_QUERY_PARAMS: &[&str] = &[
    // Amazon S3 (SigV4)
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "X-Amz-User-Agent",
    // Google Cloud Storage (V4)
    "X-Goog-Algorithm",
    "X-Goog-Credential",
    "X-Goog-Date",
    "X-Goog-Expires",
    "X-Goog-SignedHeaders",
    "X-Goog-Signature",
    // Alibaba Cloud OSS
    "OSSAccessKeyId",
    "Expires",
    "Signature",
    "security-token",
    // Huawei Cloud OBS
    "AccessKeyId",
    "X-Obs-Date",
    "X-Obs-Security-Token",
    // Tencent Cloud COS
    "q-sign-algorithm",
    "q-ak",
    "q-sign-time",
    "q-key-time",
    "q-header-list",
    "q-url-param-list",
    "q-signature",
    "x-cos-security-token",
    // Namespaces added by some registries' redirects.
    "ns",
];

/// Everything that decides a download's task id.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskSpec<'a> {
    /// The URL as the user gave it; filtered before hashing.
    pub url: &'a str,
    /// Free-form user tag that separates otherwise identical downloads ("" for none).
    pub tag: &'a str,
    /// The calling application ("" for none).
    pub application: &'a str,
    /// An explicit piece length; `None` means the default for the content length. Different
    /// piece lengths give different pieces, so they must be different tasks.
    pub piece_length: Option<u64>,
    /// Query parameter names to drop. Empty means [`DEFAULT_FILTERED_QUERY_PARAMS`]; a non-empty
    /// list replaces the defaults entirely (dfget's `--filtered-query-param`).
    pub filtered_query_params: &'a [String],
    /// An OCI blob URL (`/v2/<repository>/blobs/<algorithm>:<hex>`) is named by its digest alone:
    /// the same blob from any registry, mirror or repository is one task. Its content is checked
    /// against the digest before it is served. No effect on other URLs.
    pub blob_digest: bool,
}

/// Why a task id could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskIdError {
    /// The URL is not an absolute URL.
    #[error("invalid URL {url:?}: {source}")]
    InvalidUrl {
        url: String,
        #[source]
        source: url::ParseError,
    },
    /// The piece length is outside what a download may ask for.
    #[error(transparent)]
    PieceLength(#[from] crate::piece::PieceError),
}

/// `url` without the fragment and without the query parameters named in `filtered`
/// ([`DEFAULT_FILTERED_QUERY_PARAMS`] when `filtered` is empty).
///
/// Names are compared case-insensitively after percent-decoding; kept parameters stay in their
/// original order and original encoding. The `?` disappears when no parameter remains. The URL is
/// otherwise normalised by the WHATWG parser (lower-case scheme and host, default port dropped).
pub fn filtered_url(url: &str, filtered: &[String]) -> Result<String, TaskIdError> {
    let mut parsed = Url::parse(url).map_err(|source| TaskIdError::InvalidUrl { url: url.to_owned(), source })?;
    parsed.set_fragment(None);
    let kept: Option<String> = parsed.query().map(|query| {
        query
            .split('&')
            .filter(|pair| !pair.is_empty() && !is_filtered(param_name(pair).as_ref(), filtered))
            .collect::<Vec<_>>()
            .join("&")
    });
    match kept {
        Some(query) if !query.is_empty() => parsed.set_query(Some(&query)),
        _ => parsed.set_query(None),
    }
    Ok(parsed.into())
}

/// The task id of `spec` (refused when its piece length is outside
/// [`crate::piece::REQUESTABLE_PIECE_LENGTHS`]): lower-case hex SHA-256 of
/// `<filtered url>|<tag>|<application>|<piece length>`, the piece length in decimal or empty when
/// `None`. With [`TaskSpec::blob_digest`] and an OCI blob URL, `oci-blob|<digest>` stands for the
/// URL (a URL always has `:` before any `|`, so the two never meet).
///
/// This format is stable: changing it splits every running task in a cluster of mixed versions.
pub fn task_id(spec: &TaskSpec) -> Result<TaskId, TaskIdError> {
    if let Some(length) = spec.piece_length {
        crate::piece::requested_piece_length(length)?;
    }
    let url = filtered_url(spec.url, spec.filtered_query_params)?;
    let named = match spec.blob_digest {
        true => Url::parse(&url)
            .ok()
            .and_then(|u| crate::digest::Digest::from_oci_blob_path(u.path()))
            .map(|digest| format!("oci-blob|{digest}")),
        false => None,
    };
    let piece_length = spec.piece_length.map(|len| len.to_string()).unwrap_or_default();
    let input = [named.as_deref().unwrap_or(&url), spec.tag, spec.application, &piece_length].join("|");
    Ok(TaskId(hex::encode(Sha256::digest(input.as_bytes()))))
}

/// The percent-decoded name of one raw `name=value` query pair.
fn param_name(pair: &str) -> std::borrow::Cow<'_, str> {
    let raw = pair.split_once('=').map_or(pair, |(name, _)| name);
    url::form_urlencoded::parse(raw.as_bytes()).next().map_or(std::borrow::Cow::Borrowed(raw), |(name, _)| name)
}

fn is_filtered(name: &str, filtered: &[String]) -> bool {
    if filtered.is_empty() {
        DEFAULT_FILTERED_QUERY_PARAMS.iter().any(|f| f.eq_ignore_ascii_case(name))
    } else {
        filtered.iter().any(|f| f.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECT: &str = "https://bucket.s3.amazonaws.com/dir/object.bin";

    fn s3_presigned(date: &str, signature: &str) -> String {
        format!(
            "{OBJECT}?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIA%2F{date}%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date={date}T000000Z&X-Amz-Expires=3600\
             &X-Amz-Security-Token=tok&X-Amz-SignedHeaders=host\
             &X-Amz-Signature={signature}"
        )
    }

    fn id(spec: TaskSpec) -> TaskId {
        task_id(&spec).unwrap()
    }

    #[test]
    fn a_blob_digest_id_is_the_same_from_every_registry_and_repository() {
        let hex = "a".repeat(64);
        let a = format!("https://reg-a.example/v2/library/app/blobs/sha256:{hex}");
        let b = format!("http://10.0.0.5:5000/v2/team/other/blobs/sha256:{hex}?ns=reg-a.example");
        let by_digest = |url| id(TaskSpec { url, blob_digest: true, ..TaskSpec::default() });
        assert_eq!(by_digest(&a), by_digest(&b));
        assert_ne!(by_digest(&a), id(TaskSpec { url: &a, ..TaskSpec::default() }), "the mode is part of the id");
        assert_ne!(id(TaskSpec { url: &a, ..TaskSpec::default() }), id(TaskSpec { url: &b, ..TaskSpec::default() }));
        // Tag, application and piece length still separate tasks.
        assert_ne!(by_digest(&a), id(TaskSpec { url: &a, blob_digest: true, tag: "t", ..TaskSpec::default() }));
        // Another digest is another task; a URL that names no blob keeps its URL id.
        let other = format!("https://reg-a.example/v2/library/app/blobs/sha256:{}", "b".repeat(64));
        assert_ne!(by_digest(&a), by_digest(&other));
        let manifest = "https://reg-a.example/v2/library/app/manifests/1.0";
        assert_eq!(by_digest(manifest), id(TaskSpec { url: manifest, ..TaskSpec::default() }));
    }

    #[test]
    fn presigned_urls_of_one_object_are_one_task() {
        let a = s3_presigned("20240101", "aaaa");
        let b = s3_presigned("20250607", "bbbb");
        assert_ne!(a, b);
        assert_eq!(id(TaskSpec { url: &a, ..Default::default() }), id(TaskSpec { url: &b, ..Default::default() }));
        assert_eq!(filtered_url(&a, &[]).unwrap(), OBJECT);
    }

    #[test]
    fn different_objects_are_different_tasks() {
        let a = id(TaskSpec { url: "https://h/a", ..Default::default() });
        let b = id(TaskSpec { url: "https://h/b", ..Default::default() });
        assert_ne!(a, b);
    }

    #[test]
    fn tag_application_and_piece_length_separate_tasks() {
        let base = TaskSpec {
            url: OBJECT,
            tag: "v1",
            application: "app",
            piece_length: Some(4 << 20),
            filtered_query_params: &[],
            blob_digest: false,
        };
        let variants = [
            TaskSpec { tag: "v2", ..base },
            TaskSpec { tag: "", ..base },
            TaskSpec { application: "other", ..base },
            TaskSpec { piece_length: Some(8 << 20), ..base },
            TaskSpec { piece_length: None, ..base },
        ];
        let base_id = id(base);
        for variant in variants {
            assert_ne!(id(variant), base_id, "{variant:?}");
        }
    }

    #[test]
    fn id_format_is_pinned() {
        // Computed independently: printf '%s' '<input>' | sha256sum
        let spec = TaskSpec {
            url: "https://bucket.s3.amazonaws.com/dir/object.bin?versionId=7&X-Amz-Date=x#frag",
            tag: "v1",
            application: "app",
            piece_length: Some(4194304),
            filtered_query_params: &[],
            blob_digest: false,
        };
        assert_eq!(id(spec).0, "32a2d3a352fb052cb9b52c4687b963d376ca135553129fdba26a47c90e3252c7");
        let spec = TaskSpec { url: "https://example.com/a", application: "dfget", ..Default::default() };
        assert_eq!(id(spec).0, "8363f0b4f6f11493b4f3a69d9eaefd2b282785aa3dea78f0a3a8e2f1e8abfefd");
        let blob = format!("http://reg.example/v2/lib/blobs/sha256:{}", "a".repeat(64));
        let spec = TaskSpec { url: &blob, blob_digest: true, ..Default::default() };
        assert_eq!(id(spec).0, "74948bd265c07090d08ea80ca2e7087d496562f0b0a4ecec1597b7968dceaa0a");
    }

    #[test]
    fn every_default_cloud_parameter_is_dropped() {
        for name in DEFAULT_FILTERED_QUERY_PARAMS {
            let url = format!("https://h/o?keep=1&{name}=secret");
            assert_eq!(filtered_url(&url, &[]).unwrap(), "https://h/o?keep=1", "{name}");
        }
    }

    #[test]
    fn other_parameters_keep_their_order_and_encoding() {
        let url = "https://h/o?z=1&X-Amz-Date=d&a=2&Signature=s&m=a%20b&flag";
        assert_eq!(filtered_url(url, &[]).unwrap(), "https://h/o?z=1&a=2&m=a%20b&flag");
    }

    #[test]
    fn names_match_case_insensitively() {
        let url = "https://h/o?x-amz-signature=s&X-AMZ-DATE=d&SIGNATURE=s&NS=n&keep=1";
        assert_eq!(filtered_url(url, &[]).unwrap(), "https://h/o?keep=1");
        let user = vec!["Token".to_owned()];
        assert_eq!(filtered_url("https://h/o?TOKEN=1&k=2", &user).unwrap(), "https://h/o?k=2");
    }

    #[test]
    fn percent_encoded_names_are_decoded_before_matching() {
        // "X-Amz-Date" with its hyphens percent-encoded.
        let url = "https://h/o?X%2DAmz%2DDate=d&keep=1";
        assert_eq!(filtered_url(url, &[]).unwrap(), "https://h/o?keep=1");
    }

    #[test]
    fn user_list_replaces_the_defaults() {
        let user = vec!["token".to_owned(), "expiry".to_owned()];
        let url = "https://h/o?token=t&X-Amz-Signature=s&expiry=9&k=v";
        assert_eq!(filtered_url(url, &user).unwrap(), "https://h/o?X-Amz-Signature=s&k=v");
        let with_defaults = id(TaskSpec { url, ..Default::default() });
        let with_user = id(TaskSpec { url, filtered_query_params: &user, ..Default::default() });
        assert_ne!(with_defaults, with_user);
    }

    #[test]
    fn question_mark_and_fragment_disappear() {
        let cases = [
            ("https://h/o?X-Amz-Date=d", "https://h/o"),
            ("https://h/o?", "https://h/o"),
            ("https://h/o?&&", "https://h/o"),
            ("https://h/o#part", "https://h/o"),
            ("https://h/o?Expires=1#part", "https://h/o"),
            ("https://h/o?k=v#part", "https://h/o?k=v"),
            ("https://h/o?a=1&&b=2", "https://h/o?a=1&b=2"),
        ];
        for (url, expected) in cases {
            assert_eq!(filtered_url(url, &[]).unwrap(), expected, "{url}");
        }
    }

    #[test]
    fn parameter_values_are_not_names() {
        // A kept parameter whose value looks like a filtered name stays.
        let url = "https://h/o?key=X-Amz-Signature";
        assert_eq!(filtered_url(url, &[]).unwrap(), url);
    }

    #[test]
    fn bad_urls_are_errors() {
        for url in ["", "not a url", "/relative/path", "http://"] {
            let err = filtered_url(url, &[]).unwrap_err();
            assert!(matches!(err, TaskIdError::InvalidUrl { .. }), "{url}");
            assert!(task_id(&TaskSpec { url, ..Default::default() }).is_err(), "{url}");
        }
    }

    #[test]
    fn piece_lengths_outside_1_kib_to_1_gib_are_refused() {
        for bad in [0, 3, 100_000_000_000] {
            let spec = TaskSpec { url: "https://o.example/f", piece_length: Some(bad), ..TaskSpec::default() };
            let err = task_id(&spec).unwrap_err();
            assert!(err.to_string().contains("between 1 KiB and 1 GiB"), "{err}");
        }
    }

    #[test]
    fn derived_ids_parse_as_task_ids() {
        let derived = id(TaskSpec { url: "https://o.example/f", ..TaskSpec::default() });
        assert_eq!(TaskId::parse(&derived.0), Ok(derived));
    }

    #[test]
    fn deterministic() {
        let url = s3_presigned("20240101", "aaaa");
        let spec = TaskSpec { url: &url, tag: "t", application: "a", ..Default::default() };
        assert_eq!(id(spec), id(spec));
        assert_eq!(id(spec).0.len(), 64);
    }
}

/// URLs, filter lists and piece lengths come from users, proxied requests and schedulers: the
/// derivation never panics, filtering is a projection, and what it drops cannot change an id.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Strings that are, or are close to, URLs with queries and fragments.
    fn url_ish() -> impl Strategy<Value = String> {
        let scheme = prop_oneof![Just("https".to_owned()), Just("http".to_owned()), "[a-zA-Z][a-zA-Z0-9+.-]{0,8}"];
        let host = prop_oneof!["[a-z0-9.-]{0,20}", "\\[[0-9a-f:]{0,20}\\]", any::<String>()];
        let query = proptest::collection::vec(prop_oneof![pair(), any::<String>()], 0..6).prop_map(|p| p.join("&"));
        prop_oneof![
            any::<String>(),
            (scheme, host, "(/[^?#]{0,12}){0,3}", query, proptest::option::of(any::<String>())).prop_map(
                |(scheme, host, path, query, fragment)| {
                    let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
                    format!("{scheme}://{host}{path}?{query}{fragment}")
                }
            ),
        ]
    }

    /// One `name=value` pair, the name often a default filtered one in some letter case.
    fn pair() -> impl Strategy<Value = String> {
        let default = proptest::sample::select(DEFAULT_FILTERED_QUERY_PARAMS).prop_flat_map(|name| {
            proptest::collection::vec(any::<bool>(), name.len()).prop_map(move |upper| {
                name.chars()
                    .zip(upper)
                    .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                    .collect::<String>()
            })
        });
        (prop_oneof![default, "[^&#=]{0,10}"], proptest::option::of("[^&#]{0,16}"))
            .prop_map(|(name, value)| value.map_or(name.clone(), |v| format!("{name}={v}")))
    }

    fn filter_list() -> impl Strategy<Value = Vec<String>> {
        prop_oneof![Just(vec![]), proptest::collection::vec(prop_oneof![any::<String>(), "[a-zA-Z-]{1,12}"], 1..4)]
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn deriving_never_panics_and_every_id_parses(
            url in url_ish(),
            filtered in filter_list(),
            tag in any::<String>(),
            application in any::<String>(),
            piece_length in proptest::option::of(prop_oneof![any::<u64>(), 0..(2u64 << 30)]),
        ) {
            let spec = TaskSpec { url: &url, tag: &tag, application: &application, piece_length, filtered_query_params: &filtered, blob_digest: false };
            match task_id(&spec) {
                Ok(id) => {
                    prop_assert_eq!(TaskId::parse(&id.0), Ok(id.clone()));
                    prop_assert!(piece_length.is_none_or(|l| crate::piece::REQUESTABLE_PIECE_LENGTHS.contains(&l)));
                    prop_assert_eq!(task_id(&spec), Ok(id), "deterministic");
                }
                Err(TaskIdError::PieceLength(_)) => {
                    prop_assert!(piece_length.is_some_and(|l| !crate::piece::REQUESTABLE_PIECE_LENGTHS.contains(&l)));
                }
                Err(TaskIdError::InvalidUrl { .. }) => prop_assert!(filtered_url(&url, &filtered).is_err()),
            }
        }

        #[test]
        fn filtering_is_idempotent_and_leaves_no_filtered_name(url in url_ish(), filtered in filter_list()) {
            let Ok(once) = filtered_url(&url, &filtered) else { return Ok(()) };
            prop_assert_eq!(filtered_url(&once, &filtered), Ok(once.clone()), "from {:?}", url);
            let parsed = Url::parse(&once).unwrap();
            prop_assert!(parsed.fragment().is_none());
            for pair in parsed.query().map(|q| q.split('&')).into_iter().flatten() {
                prop_assert!(!pair.is_empty(), "an empty pair in {}", once);
                prop_assert!(!is_filtered(&param_name(pair), &filtered), "{:?} kept in {}", pair, once);
            }
        }

        /// Filtered parameters, wherever they stand and whatever they carry, make no difference.
        #[test]
        fn filtered_parameters_in_any_place_with_any_value_do_not_change_the_id(
            // A kept value does not end the URL in spaces, which the URL parser trims.
            kept in proptest::collection::vec(("k[a-z0-9]{0,6}", proptest::option::of("([^&#]{0,11}[a-z0-9])?")), 0..5),
            dropped in proptest::collection::vec((pair(), any::<prop::sample::Index>()), 1..6),
            custom in any::<bool>(),
            fragment in proptest::option::of("[^#]{0,12}"),
        ) {
            let custom_list = vec!["Token".to_owned(), "X-Amz-Date".to_owned()];
            let filtered: &[String] = if custom { &custom_list } else { &[] };
            let kept: Vec<String> =
                kept.into_iter().map(|(n, v)| v.map_or(n.clone(), |v| format!("{n}={v}"))).collect();
            let mut all = kept.clone();
            for (pair, at) in dropped {
                let name = param_name(&pair).into_owned();
                // Only pairs this filter drops; a custom list drops `token` in any case too.
                let pair = if is_filtered(&name, filtered) { pair } else if custom { format!("tOkEn={pair}") } else { format!("Expires={pair}") };
                all.insert(at.index(all.len() + 1), pair);
            }
            let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
            let plain = format!("https://o.example/p?{}", kept.join("&"));
            let noisy = format!("https://o.example/p?{}{fragment}", all.join("&"));
            let spec = |url| TaskSpec { url, filtered_query_params: filtered, ..TaskSpec::default() };
            prop_assert_eq!(task_id(&spec(&noisy)), task_id(&spec(&plain)), "{} vs {}", noisy, plain);
        }
    }
}
