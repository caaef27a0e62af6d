//! OAuth client secrets: made here, shown once by the CLI, stored only as argon2id hashes.
//!
//! A secret's text is `"{secret_id}.{random}"`: the secret's id (a UUID v4, `client_secrets.id`)
//! so the grant finds the one hash to check without trying each of the client's secrets, then
//! 32 random bytes (256 bits) as base64url without padding. The hash is an argon2id PHC string
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`): each hash records its own parameters, so `verify`
//! reads them from the string and `HASH_*` can be raised later without invalidating a secret.
//! No SQL and no I/O; the secret text is never logged or kept.

use anyhow::anyhow;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use base64::Engine;
use rand::RngCore;

use crate::domain::SecretId;

/// Random bytes in a secret after its id: 256 bits.
const RANDOM_LEN: usize = 32;
/// argon2id memory in KiB: OWASP's recommended set for 7 MiB (m=7168, t=5, p=1).
const HASH_M_KIB: u32 = 7168;
/// argon2id passes over that memory.
const HASH_T: u32 = 5;
/// argon2id lanes.
const HASH_P: u32 = 1;
/// Salt bytes per hash (the PHC string carries them base64-encoded).
const SALT_LEN: usize = 16;

/// A new secret: its id and the full text to show the administrator once.
pub fn generate() -> (SecretId, String) {
    let id = SecretId::new(uuid::Uuid::new_v4().to_string());
    let mut random = [0u8; RANDOM_LEN];
    rand::rng().fill_bytes(&mut random);
    let text = format!(
        "{id}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    (id, text)
}

/// The secret's id and the rest, or None when the text has no `.` or does not start with a
/// UUID. Says nothing about whether the secret is right.
pub fn split(text: &str) -> Option<(SecretId, &str)> {
    let (id, rest) = text.split_once('.')?;
    let uuid = uuid::Uuid::parse_str(id).ok()?;
    // Only the hyphenated form `generate` writes: one secret, one way to spell its id.
    if uuid.hyphenated().to_string() != id {
        return None;
    }
    Some((SecretId::new(id), rest))
}

fn hasher() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(HASH_M_KIB, HASH_T, HASH_P, None)
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The argon2id PHC string of `text`, with a fresh random salt.
pub fn hash(text: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    let phc = hasher()?
        .hash_password_with_salt(text.as_bytes(), &salt)
        .map_err(|e| anyhow!("hashing the secret: {e}"))?;
    Ok(phc.to_string())
}

/// Whether `text` is the secret `phc` was made from, with the parameters recorded in `phc`
/// (the comparison of the outputs is the argon2 crate's, constant-time). Anything but an
/// argon2id PHC string — malformed, or another algorithm — is false.
pub fn verify(text: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm.as_str() != "argon2id" {
        return false;
    }
    // The hasher's own parameters play no part: verification reads them from `phc`.
    Argon2::default()
        .verify_password(text.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_its_id_a_dot_and_256_random_bits() {
        let (id, text) = generate();
        let (split_id, random) = split(&text).unwrap();
        assert_eq!(split_id, id);
        assert_eq!(random.len(), 43, "32 bytes in base64url without padding");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(random)
            .unwrap();
        assert_eq!(bytes.len(), RANDOM_LEN);
        assert_ne!(generate().1, text);
    }

    #[test]
    fn split_needs_a_dot_after_a_uuid() {
        assert!(split("no-dot-here").is_none());
        assert!(split("not-a-uuid.abc").is_none());
        assert!(split(".abc").is_none());
        let id = "0b6c3a43-32a5-4d8e-9c1a-6a0c5a2f1e11";
        assert!(split(&format!("{}.x", id.replace('-', ""))).is_none());
        assert!(split(&format!("{}.x", id.to_uppercase())).is_none());
        let text = format!("{id}.r.e.s.t");
        let (got, rest) = split(&text).unwrap();
        assert_eq!((got.as_str(), rest), (id, "r.e.s.t"));
    }

    #[test]
    fn a_hash_verifies_its_secret_and_nothing_else() {
        let (_, text) = generate();
        let phc = hash(&text).unwrap();
        assert!(verify(&text, &phc));
        let (_, other) = generate();
        assert!(!verify(&other, &phc));
        assert!(!verify(&text[..text.len() - 1], &phc));
        assert!(!verify("", &phc));
    }

    #[test]
    fn the_hash_is_an_argon2id_phc_string_with_owasp_parameters_and_its_own_salt() {
        let (_, text) = generate();
        let phc = hash(&text).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{phc}");
        assert!(!phc.contains(&text) && !phc.contains(split(&text).unwrap().1));
        assert_ne!(hash(&text).unwrap(), phc, "a fresh salt each time");
    }

    #[test]
    fn verify_reads_the_parameters_from_the_phc_string() {
        // A hash made with other (cheaper) parameters still verifies: they can change later.
        let text = "0b6c3a43-32a5-4d8e-9c1a-6a0c5a2f1e11.secret";
        let params = Params::new(1024, 1, 1, None).unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(text.as_bytes(), &[7u8; SALT_LEN])
            .unwrap()
            .to_string();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
        assert!(verify(text, &phc));
        assert!(!verify("other", &phc));
    }

    #[test]
    fn a_malformed_or_foreign_phc_string_is_false() {
        let (_, text) = generate();
        for phc in [
            "",
            "not a hash",
            "$argon2id$v=19$m=7168,t=5,p=1$",
            "$argon2id$v=19$m=7168,t=5,p=1$c2FsdHNhbHQ$",
        ] {
            assert!(!verify(&text, phc), "{phc:?}");
        }
        // argon2i of the same text: a valid PHC string, but not the algorithm secrets use.
        let params = Params::new(1024, 1, 1, None).unwrap();
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password_with_salt(text.as_bytes(), &[7u8; SALT_LEN])
            .unwrap()
            .to_string();
        assert!(!verify(&text, &argon2i));
    }
}
