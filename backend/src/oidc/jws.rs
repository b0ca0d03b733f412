//! Compact JWS verification for ID tokens, by hand with RustCrypto.
//!
//! Only RS256 (RSA ≥ 2048 bits, PKCS#1 v1.5, SHA-256) and ES256 (P-256, SHA-256) are
//! accepted; `none`, HMAC and anything else fail before a key is looked at, so a token
//! cannot pick a weaker check. A key is used only for the algorithm its type implies,
//! and only if its `use`/`alg` (when present) agree. Headers with `crit` are refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::OidcError;

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// The signature algorithms Orchard accepts for ID tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }
}

/// One usable verification key from the provider's JWKS.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub kid: Option<String>,
    key: KeyMaterial,
}

#[derive(Clone)]
enum KeyMaterial {
    Rsa(Box<rsa::RsaPublicKey>),
    P256(p256::ecdsa::VerifyingKey),
}

impl VerifyKey {
    fn alg(&self) -> Alg {
        match self.key {
            KeyMaterial::Rsa(_) => Alg::Rs256,
            KeyMaterial::P256(_) => Alg::Es256,
        }
    }
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<RawJwk>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Parses a JWKS document, keeping the keys Orchard can verify with and skipping the rest
/// (encryption keys, other curves, weak RSA keys).
pub(crate) fn parse_jwks(body: &[u8]) -> Result<Vec<VerifyKey>, String> {
    let raw: RawJwks =
        serde_json::from_slice(body).map_err(|e| format!("not a JWKS document: {e}"))?;
    Ok(raw.keys.into_iter().filter_map(usable_key).collect())
}

fn usable_key(jwk: RawJwk) -> Option<VerifyKey> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let b64 = |s: &Option<String>| s.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    let key = match (jwk.kty.as_str(), jwk.alg.as_deref()) {
        ("RSA", None | Some("RS256")) => {
            let n = rsa::BigUint::from_bytes_be(&b64(&jwk.n)?);
            let e = rsa::BigUint::from_bytes_be(&b64(&jwk.e)?);
            let key = rsa::RsaPublicKey::new(n, e).ok()?;
            if rsa::traits::PublicKeyParts::size(&key) * 8 < MIN_RSA_BITS {
                return None;
            }
            KeyMaterial::Rsa(Box::new(key))
        }
        ("EC", None | Some("ES256")) if jwk.crv.as_deref() == Some("P-256") => {
            let (x, y) = (b64(&jwk.x)?, b64(&jwk.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let point = p256::EncodedPoint::from_affine_coordinates(
                p256::FieldBytes::from_slice(&x),
                p256::FieldBytes::from_slice(&y),
                false,
            );
            KeyMaterial::P256(p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok()?)
        }
        _ => return None,
    };
    Some(VerifyKey { kid: jwk.kid, key })
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// A token split and decoded, its signature not yet checked.
pub(crate) struct Unverified {
    alg: Alg,
    pub kid: Option<String>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    payload: Vec<u8>,
}

/// Splits a compact JWS and reads its header; refuses unknown algorithms outright.
pub(crate) fn decode(token: &str) -> Result<Unverified, OidcError> {
    let malformed = |reason| OidcError::MalformedToken { reason };
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three dot-separated parts"));
    };
    let header = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| malformed("header is not base64url"))?;
    let header: Header =
        serde_json::from_slice(&header).map_err(|_| malformed("header is not a JWS header"))?;
    if header.crit.is_some() {
        return Err(malformed("header has critical extensions"));
    }
    let alg = Alg::parse(&header.alg).ok_or_else(|| OidcError::UnsupportedAlgorithm {
        alg: truncate(&header.alg),
    })?;
    Ok(Unverified {
        alg,
        kid: header.kid,
        signing_input: format!("{h}.{p}").into_bytes(),
        signature: URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| malformed("signature is not base64url"))?,
        payload: URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| malformed("payload is not base64url"))?,
    })
}

impl Unverified {
    /// The keys that could have signed this token: same algorithm, and the same `kid` when
    /// the token names one.
    pub(crate) fn candidates<'k>(&self, keys: &'k [VerifyKey]) -> Vec<&'k VerifyKey> {
        keys.iter()
            .filter(|k| k.alg() == self.alg)
            .filter(|k| match &self.kid {
                Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
                None => true,
            })
            .collect()
    }

    /// The payload, if one of `keys` verifies the signature.
    pub(crate) fn verify(self, keys: &[&VerifyKey]) -> Result<Vec<u8>, OidcError> {
        let ok = keys.iter().any(|key| match &key.key {
            KeyMaterial::Rsa(public) => {
                let digest = Sha256::digest(&self.signing_input);
                public
                    .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &self.signature)
                    .is_ok()
            }
            KeyMaterial::P256(public) => p256::ecdsa::Signature::from_slice(&self.signature)
                .is_ok_and(|sig| public.verify(&self.signing_input, &sig).is_ok()),
        });
        if ok {
            Ok(self.payload)
        } else {
            Err(OidcError::BadSignature)
        }
    }
}

/// Values echoed from a token into an error are cut short.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}
