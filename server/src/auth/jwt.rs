//! HS256 signing and checking of sign-in tokens, with a key shared through the database.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{Error, entity::manager_secrets};

const KEY_NAME: &str = "jwt_hs256_key";

/// What a sign-in token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    /// The session this token belongs to.
    pub sid: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

/// The signing key.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// Reads the key from `manager_secrets`, creating it on the very first start. When two
    /// replicas race to create it, the loser reads the winner's.
    pub async fn load_or_create(db: &DatabaseConnection) -> Result<Self, Error> {
        if let Some(row) = manager_secrets::Entity::find_by_id(KEY_NAME).one(db).await? {
            return Self::from_hex(&row.value);
        }
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let inserted = manager_secrets::ActiveModel { name: Set(KEY_NAME.into()), value: Set(hex::encode(secret)) }
            .insert(db)
            .await;
        match inserted {
            Ok(row) => Self::from_hex(&row.value),
            Err(e) => match manager_secrets::Entity::find_by_id(KEY_NAME).one(db).await? {
                Some(row) => Self::from_hex(&row.value),
                None => Err(e.into()),
            },
        }
    }

    fn from_hex(value: &str) -> Result<Self, Error> {
        let secret = hex::decode(value).map_err(|_| Error::Internal("the stored JWT key is not hex".into()))?;
        Ok(Self { encoding: EncodingKey::from_secret(&secret), decoding: DecodingKey::from_secret(&secret) })
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))
    }

    /// Signs other short-lived claims (an OAuth sign-in in flight, say). They must carry an
    /// `aud` of their own, which session checks refuse, so they never pass for a sign-in token.
    pub(crate) fn sign_other<T: Serialize>(&self, claims: &T) -> Result<String, Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing claims: {e}")))
    }

    /// Checks what [`Keys::sign_other`] signed for `audience`: signature, expiry and audience.
    pub(crate) fn verify_other<T: DeserializeOwned>(&self, token: &str, audience: &str) -> Option<T> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        jsonwebtoken::decode::<T>(token, &self.decoding, &validation).ok().map(|d| d.claims)
    }

    /// Checks the signature and expiry; any failure is `Unauthorized`.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map(|d| d.claims).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Error::Unauthorized("the sign-in token has expired; sign in again".into())
                }
                _ => Error::Unauthorized("the sign-in token is not valid".into()),
            }
        })
    }
}
