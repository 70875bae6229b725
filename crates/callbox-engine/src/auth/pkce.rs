//! PKCE (RFC 7636, S256) and random `state` values.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use callbox_core::secret::Secret;
use sha2::{Digest as _, Sha256};

/// A random URL-safe string from `bytes` random bytes (base64url without padding).
pub(crate) fn random_urlsafe(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(&buf))
}

/// The S256 challenge of a verifier: `BASE64URL(SHA256(ASCII(verifier)))`.
pub(crate) fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A code verifier (secret until the token exchange) and its S256 challenge.
pub(crate) struct Pkce {
    pub(crate) verifier: Secret,
    pub(crate) challenge: String,
}

impl Pkce {
    /// A fresh verifier: 32 random bytes, 43 characters (RFC 7636 §4.1 allows 43–128).
    pub(crate) fn new() -> Result<Self, getrandom::Error> {
        let verifier = random_urlsafe(32)?;
        let challenge = s256_challenge(&verifier);
        Ok(Pkce {
            verifier: Secret::new(verifier),
            challenge,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_fresh_and_well_formed() {
        let a = Pkce::new().unwrap();
        let b = Pkce::new().unwrap();
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.verifier.expose().len(), 43);
        assert!(
            a.verifier
                .expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(a.challenge, s256_challenge(a.verifier.expose()));
    }
}
