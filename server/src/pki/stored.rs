//! The generated cluster CA, kept in the database (`manager_secrets`) so that every manager
//! replica of a deployment is the same CA: a scheduler or dfdaemon enrolled through one is
//! accepted by all, and join tokens pin one fingerprint whichever replica made them.
//!
//! The database is the source; `<data_dir>/ca` is a copy for operators' tools (`damselfly cert
//! --ca-dir`). A manager that already had a CA there and finds none in the database (one
//! machine upgraded, or the first replica) offers its own, so nothing changes for it. A
//! replica whose `<data_dir>/ca` holds a different CA than the database refuses to start:
//! choosing one silently would leave the components enrolled by the other refused.
//!
//! The CA key is then as secret as the database: whoever reads the database can issue cluster
//! certificates. Operators who keep the key elsewhere give `[tls] ca_cert`/`ca_key` files on
//! every replica instead, and this module is not used.

use std::path::Path;

use common::tls::CertificateAuthority;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use serde::{Deserialize, Serialize};

use crate::{Error, entity::manager_secrets};

/// The `manager_secrets` row holding the CA.
const ROW: &str = "cluster_ca";

/// A CA as kept: its certificate and key, PEM.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredCa {
    cert_pem: String,
    key_pem: String,
}

impl StoredCa {
    fn open(&self) -> Result<CertificateAuthority, Error> {
        CertificateAuthority::from_pem(&self.cert_pem, &self.key_pem).map_err(|e| Error::Config(format!("tls: {e}")))
    }
}

/// The deployment's CA: the database's, else the one in `dir`, else a new one; `dir` then
/// holds a copy.
pub(super) async fn shared_ca(db: &DatabaseConnection, dir: &Path) -> Result<CertificateAuthority, Error> {
    let local = read_local(dir)?;
    let stored = match find(db).await? {
        Some(stored) => stored,
        None => {
            let offered = match &local {
                Some(local) => local.clone(),
                None => generate()?,
            };
            insert_or_read_winner(db, offered).await?
        }
    };
    let ca = stored.open()?;
    match local {
        Some(local) if local.open()?.fingerprint() != ca.fingerprint() => {
            return Err(Error::Config(format!(
                "tls: {} holds CA {} but the database holds CA {}, which the other managers of this deployment \
                 use; move {0} aside to take the database's, or give every manager the same [tls] ca_cert and ca_key",
                dir.display(),
                local.open()?.fingerprint(),
                ca.fingerprint(),
            )));
        }
        Some(_) => {}
        None => CertificateAuthority::store_pem(dir, &stored.cert_pem, &stored.key_pem)
            .map_err(|e| Error::Config(format!("tls: {e}")))?,
    }
    Ok(ca)
}

fn read_local(dir: &Path) -> Result<Option<StoredCa>, Error> {
    let (cert, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    if !cert.exists() && !key.exists() {
        return Ok(None);
    }
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| Error::Config(format!("tls: {}: {e}", p.display())));
    Ok(Some(StoredCa { cert_pem: read(&cert)?, key_pem: read(&key)? }))
}

fn generate() -> Result<StoredCa, Error> {
    let (ca, key_pem) =
        CertificateAuthority::generate("Damselfly cluster CA").map_err(|e| Error::Config(format!("tls: {e}")))?;
    Ok(StoredCa { cert_pem: ca.cert_pem().to_owned(), key_pem })
}

async fn find(db: &DatabaseConnection) -> Result<Option<StoredCa>, Error> {
    let Some(row) = manager_secrets::Entity::find_by_id(ROW).one(db).await? else { return Ok(None) };
    serde_json::from_str(&row.value)
        .map(Some)
        .map_err(|e| Error::Internal(format!("the stored cluster CA is unreadable: {e}")))
}

/// Stores `offered`; when another replica stored one first, answers that one.
async fn insert_or_read_winner(db: &DatabaseConnection, offered: StoredCa) -> Result<StoredCa, Error> {
    let value = serde_json::to_string(&offered).map_err(|e| Error::Internal(e.to_string()))?;
    match (manager_secrets::ActiveModel { name: Set(ROW.into()), value: Set(value) }).insert(db).await {
        Ok(_) => {
            tracing::info!("the cluster CA is kept in the database, shared by every manager of this deployment");
            Ok(offered)
        }
        Err(e) => find(db).await?.ok_or_else(|| e.into()),
    }
}
