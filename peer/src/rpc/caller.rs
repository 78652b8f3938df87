//! Who asks on the download socket, and whether the output they name is theirs to write.
//!
//! The dfdaemon writes outputs as its own user (root on most hosts), so it must not write where
//! the caller could not: the socket is 0660, and the kernel's credentials of the connecting
//! process (`SO_PEERCRED`) decide. The caller needs search permission on every directory above
//! the output and write permission on the one that holds it; in a sticky directory (`/tmp`) it
//! may not replace another user's file. Supplementary groups are not consulted, so a directory
//! writable only through one is refused (stricter than the kernel, never looser). The check is
//! made before the download; a directory swapped for another between the check and the write
//! is not caught.
//!
//! The cache is shared by every user of the host, so changing it is the administrator's act:
//! only root and the dfdaemon's own user may delete a task ([`Caller::manages_cache`]). Anyone
//! on the socket may list tasks, but a URL can carry a secret of whoever fetched it (a signed
//! query, a password), so others see it without its query and credentials ([`Caller::shown_url`]).

use std::{os::unix::fs::MetadataExt, path::Path};

use tonic::transport::server::UdsConnectInfo;

use crate::Error;

/// The connecting process's user and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

const SEARCH: u32 = 0o1;
const WRITE: u32 = 0o2;
const STICKY: u32 = 0o1000;

impl Caller {
    /// The caller behind a request on the unix socket; none when the transport gave no
    /// credentials (the request is then refused).
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Self, Error> {
        let cred = request.extensions().get::<UdsConnectInfo>().and_then(|info| info.peer_cred);
        let cred = cred.ok_or_else(|| Error::Forbidden("the caller's credentials are unknown".into()))?;
        Ok(Self { uid: cred.uid(), gid: cred.gid() })
    }

    /// Whether this caller could create (or, with `overwrite`, replace) `output` itself.
    pub fn may_write(&self, output: &Path, overwrite: bool) -> Result<(), Error> {
        if self.uid == 0 {
            return Ok(());
        }
        let dir =
            output.parent().ok_or_else(|| Error::InvalidRequest(format!("{} has no directory", output.display())))?;
        let denied = |what: &Path, why: &str| Error::Forbidden(format!("uid {} {why} {}", self.uid, what.display()));
        let stat = |path: &Path| {
            std::fs::metadata(path)
                .map_err(|e| Error::InvalidRequest(format!("output directory {}: {e}", path.display())))
        };
        let meta = stat(dir)?;
        for ancestor in dir.ancestors().skip(1) {
            if !self.allowed(&stat(ancestor)?, SEARCH) {
                return Err(denied(ancestor, "may not enter"));
            }
        }
        if !self.allowed(&meta, SEARCH) {
            return Err(denied(dir, "may not enter"));
        }
        if !meta.is_dir() {
            return Err(Error::InvalidRequest(format!("{} is not a directory", dir.display())));
        }
        if !self.allowed(&meta, WRITE) {
            return Err(denied(dir, "may not write in"));
        }
        if overwrite
            && meta.mode() & STICKY != 0
            && let Ok(existing) = std::fs::symlink_metadata(output)
            && existing.uid() != self.uid
            && meta.uid() != self.uid
        {
            return Err(denied(output, "may not replace another user's"));
        }
        Ok(())
    }

    /// Whether this caller may change the cache: root, or the user the dfdaemon runs as
    /// (`daemon_uid`).
    pub fn manages_cache(&self, daemon_uid: u32) -> bool {
        self.uid == 0 || self.uid == daemon_uid
    }

    /// A task's URL as this caller may see it: whole for those who manage the cache, else
    /// without user, password, query and fragment.
    pub fn shown_url(&self, daemon_uid: u32, url: &str) -> String {
        if self.manages_cache(daemon_uid) {
            return url.to_owned();
        }
        match url::Url::parse(url) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                u.set_fragment(None);
                u.to_string()
            }
            Err(_) => String::new(),
        }
    }

    /// The permission bits that apply to this caller (owner, else group, else others) grant `bit`.
    fn allowed(&self, meta: &std::fs::Metadata, bit: u32) -> bool {
        let mode = meta.mode();
        let class = if meta.uid() == self.uid {
            mode >> 6
        } else if meta.gid() == self.gid {
            mode >> 3
        } else {
            mode
        };
        class & bit == bit
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_caller_writes_only_where_it_could_itself() {
        // Run as root (CI and this machine): the directories below belong to root.
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let user = Caller { uid: 4242, gid: 4242 };
        let root = Caller { uid: 0, gid: 0 };
        let out = dir.path().join("out.bin");

        let closed = dir.path().join("closed");
        std::fs::create_dir(&closed).unwrap();
        chmod(&closed, 0o755);
        assert!(matches!(user.may_write(&closed.join("f"), false), Err(Error::Forbidden(_))));
        assert!(root.may_write(&closed.join("f"), false).is_ok());

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        assert!(user.may_write(&open.join("f"), false).is_ok());

        // A directory it may write but not enter from above.
        let hidden = dir.path().join("hidden");
        std::fs::create_dir_all(hidden.join("inner")).unwrap();
        chmod(&hidden.join("inner"), 0o777);
        chmod(&hidden, 0o700);
        assert!(matches!(user.may_write(&hidden.join("inner").join("f"), false), Err(Error::Forbidden(_))));

        // A sticky directory: its own files yes, another user's no.
        let sticky = dir.path().join("sticky");
        std::fs::create_dir(&sticky).unwrap();
        chmod(&sticky, 0o1777);
        std::fs::write(sticky.join("roots"), b"x").unwrap();
        assert!(matches!(user.may_write(&sticky.join("roots"), true), Err(Error::Forbidden(_))));
        assert!(user.may_write(&sticky.join("new"), true).is_ok());

        // The owner class rules: an owner without u+w is refused even where others may write.
        let owned = dir.path().join("owned");
        std::fs::create_dir(&owned).unwrap();
        std::os::unix::fs::chown(&owned, Some(4242), None).unwrap();
        chmod(&owned, 0o577);
        assert!(matches!(user.may_write(&owned.join("f"), false), Err(Error::Forbidden(_))));
        assert!(matches!(user.may_write(&out.join("x").join("y"), false), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn only_root_and_the_daemons_user_manage_the_cache_and_see_whole_urls() {
        let daemon = 999;
        let (root, own, other) =
            (Caller { uid: 0, gid: 0 }, Caller { uid: daemon, gid: 5 }, Caller { uid: 4242, gid: daemon });
        assert!(root.manages_cache(daemon) && own.manages_cache(daemon));
        assert!(!other.manages_cache(daemon), "sharing the daemon's group is not enough");
        let signed = "https://u:secret@bucket.example/obj?X-Amz-Signature=abc#frag";
        assert_eq!(root.shown_url(daemon, signed), signed);
        assert_eq!(own.shown_url(daemon, signed), signed);
        assert_eq!(other.shown_url(daemon, signed), "https://bucket.example/obj");
        assert_eq!(other.shown_url(daemon, "not a url"), "");
    }
}
