//! Client assertions (RFC 7523 §2.2, RFC 7521 §4.2): a JWT a federated client presents at the
//! token endpoint instead of a secret, and the pure checks on it — no I/O, no clock of its own.
//!
//! - `parse` takes the compact serialization apart. Only what is not a JWS at all (not three
//!   base64url parts, a header or claims that are not JSON objects) is `Malformed`: the
//!   endpoint answers `invalid_request`. Everything else refused is `Invalid` (`invalid_client`,
//!   never saying which check failed; the reason goes to the log only).
//! - `KeySet::from_jwks` reads a JWKS (RFC 7517): RSA and EC (P-256, P-384) signing keys only.
//!   Symmetric (`oct`) keys are never loaded, so an HMAC "signed" with a public key cannot
//!   verify; each key allows only the algorithms of its type (and its `alg`, when it names one).
//! - `verify_signature` picks keys by `kid` (or tries every key allowing the header's `alg`)
//!   and checks the signature with `jsonwebtoken`'s crypto (aws-lc-rs). `alg: none`, HMAC and
//!   anything outside `ALGORITHMS` is refused before any key is looked at.
//! - `check_claims`: issuer, subject and audience exactly as configured, `exp` required, `nbf`
//!   and `iat` not in the future, each with `LEEWAY_SECS`.
//! - `SeenAssertions` remembers the `jti` of accepted assertions until they expire, so one
//!   cannot be replayed; its memory is bounded.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longer assertions are refused unread (Entra's are ~1.5 KiB).
pub const MAX_ASSERTION_LEN: usize = 6 * 1024;
/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 60;
/// The signature algorithms accepted: RSA PKCS#1 v1.5, RSA-PSS, ECDSA. Never `none`, never HMAC.
pub const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];
/// A JWKS document larger than this is refused (Microsoft's has a handful of keys, ~10 KiB).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Keys read from one JWKS at most.
const MAX_KEYS: usize = 64;
/// `jti`s remembered at most; past it, expired ones are forgotten, and if none has expired
/// a new assertion is refused for now (`Crowded`) rather than one remembered being forgotten.
pub const MAX_SEEN: usize = 10_000;

/// Why an assertion was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionError {
    /// Not a JWS compact serialization with JSON header and claims: `invalid_request`.
    Malformed(&'static str),
    /// Well-formed but not acceptable: `invalid_client`. The reason is for the log only.
    Invalid(&'static str),
    /// The header names a `kid` the key set does not have (the keys may have rotated).
    UnknownKey,
}

/// An assertion taken apart, its signature not yet checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    /// The header's `alg`, as sent.
    pub alg: String,
    pub kid: Option<String>,
    pub claims: AssertionClaims,
    signing_input: String,
    signature: String,
}

/// The registered claims an assertion is checked on (RFC 7523 §3). Others are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssertionClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    /// `aud`: one string or an array of them.
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
}

fn b64(part: &str) -> Result<Vec<u8>, AssertionError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AssertionError::Malformed("a part is not base64url"))
}

fn json_object(part: &str) -> Result<Map<String, Value>, AssertionError> {
    match serde_json::from_slice(&b64(part)?) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(AssertionError::Malformed("a part is not a JSON object")),
    }
}

/// Take a compact-serialized JWT apart (RFC 7515 §7.1).
pub fn parse(assertion: &str) -> Result<Unverified, AssertionError> {
    if assertion.is_empty() || assertion.len() > MAX_ASSERTION_LEN {
        return Err(AssertionError::Malformed("empty or too long"));
    }
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionError::Malformed("not three parts"));
    };
    let header = json_object(h)?;
    let claims = json_object(c)?;
    // The signature is checked as base64url here; an empty one (`alg: none`) is refused later.
    b64(s)?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.clone(),
        _ => return Err(AssertionError::Malformed("the header has no alg")),
    };
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(AssertionError::Malformed("kid is not a string")),
    };
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: extensions we do not understand must not be ignored.
        return Err(AssertionError::Invalid("crit header"));
    }
    Ok(Unverified {
        alg,
        kid,
        claims: AssertionClaims::from_json(&claims)?,
        signing_input: format!("{h}.{c}"),
        signature: s.to_string(),
    })
}

impl AssertionClaims {
    fn from_json(m: &Map<String, Value>) -> Result<AssertionClaims, AssertionError> {
        let text = |name: &'static str| match m.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(AssertionError::Malformed("a claim has the wrong type")),
        };
        // NumericDate (RFC 7519 §2): seconds, possibly with a fraction.
        let date = |name: &'static str| match m.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.is_finite())
                        .map(|f| f.floor() as i64)
                })
                .map(Some)
                .ok_or(AssertionError::Malformed("a time claim is not a number")),
            Some(_) => Err(AssertionError::Malformed("a time claim is not a number")),
        };
        let aud = match m.get("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or(AssertionError::Malformed("aud is not a string or strings"))?,
            Some(_) => return Err(AssertionError::Malformed("aud is not a string or strings")),
        };
        Ok(AssertionClaims {
            iss: text("iss")?,
            sub: text("sub")?,
            aud,
            exp: date("exp")?,
            nbf: date("nbf")?,
            iat: date("iat")?,
            jti: text("jti")?,
        })
    }
}

/// The header's `alg`, if it is one we accept.
fn accepted_algorithm(alg: &str) -> Option<Algorithm> {
    alg.parse::<Algorithm>()
        .ok()
        .filter(|a| ALGORITHMS.contains(a))
}

/// What the assertion must say, from the client's federation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audience: &'a str,
}

/// Issuer, subject, audience and time claims. `now` is unix seconds.
pub fn check_claims(
    claims: &AssertionClaims,
    expected: &Expected<'_>,
    now: i64,
) -> Result<(), AssertionError> {
    if claims.iss.as_deref() != Some(expected.issuer) {
        return Err(AssertionError::Invalid("issuer"));
    }
    if claims.sub.as_deref() != Some(expected.subject) {
        return Err(AssertionError::Invalid("subject"));
    }
    if !claims.aud.iter().any(|a| a == expected.audience) {
        return Err(AssertionError::Invalid("audience"));
    }
    match claims.exp {
        None => return Err(AssertionError::Invalid("no exp")),
        Some(exp) if exp.saturating_add(LEEWAY_SECS) <= now => {
            return Err(AssertionError::Invalid("expired"))
        }
        Some(_) => {}
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
    {
        return Err(AssertionError::Invalid("not yet valid"));
    }
    if claims
        .iat
        .is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECS))
    {
        return Err(AssertionError::Invalid("issued in the future"));
    }
    Ok(())
}

/// One verification key of a JWKS.
struct Key {
    kid: Option<String>,
    /// The algorithms this key may verify: those of its type, or the one its `alg` names.
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// The usable signing keys of a JWKS. Not `Debug`: nothing to log.
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    /// Read a JWKS document. Keys this server cannot or must not use (symmetric, encryption,
    /// unknown types or curves, malformed) are skipped; a set with no usable key is an error,
    /// so a bad document never replaces good keys.
    pub fn from_jwks(bytes: &[u8]) -> Result<KeySet, String> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
        }
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let Some(Value::Array(list)) = doc.get("keys") else {
            return Err("no \"keys\" array".into());
        };
        let keys: Vec<Key> = list.iter().take(MAX_KEYS).filter_map(key_of).collect();
        if keys.is_empty() {
            return Err("no usable RSA or EC signing key".into());
        }
        Ok(KeySet { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

fn key_of(v: &Value) -> Option<Key> {
    let field = |name: &str| v.get(name).and_then(Value::as_str);
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let (family, key): (&[Algorithm], DecodingKey) = match field("kty")? {
        "RSA" => (
            &ALGORITHMS[..6],
            DecodingKey::from_rsa_components(field("n")?, field("e")?).ok()?,
        ),
        "EC" => {
            let family: &[Algorithm] = match field("crv")? {
                "P-256" => &[Algorithm::ES256],
                "P-384" => &[Algorithm::ES384],
                _ => return None,
            };
            let key = DecodingKey::from_ec_components(field("x")?, field("y")?).ok()?;
            (family, key)
        }
        // `oct` (HMAC) above all: a public document's key must never verify an HMAC.
        _ => return None,
    };
    let algorithms = match field("alg") {
        None => family.to_vec(),
        Some(alg) => vec![accepted_algorithm(alg).filter(|a| family.contains(a))?],
    };
    Some(Key {
        kid: field("kid").map(str::to_string),
        algorithms,
        key,
    })
}

/// Check the signature against `keys`: the key named by `kid`, or without a `kid` every key
/// allowing the header's algorithm.
pub fn verify_signature(token: &Unverified, keys: &KeySet) -> Result<(), AssertionError> {
    let alg = accepted_algorithm(&token.alg).ok_or(AssertionError::Invalid("algorithm"))?;
    if token.signature.is_empty() {
        return Err(AssertionError::Invalid("no signature"));
    }
    let mut candidates = keys
        .keys
        .iter()
        .filter(|k| token.kid.is_none() || k.kid == token.kid)
        .peekable();
    if token.kid.is_some() && candidates.peek().is_none() {
        return Err(AssertionError::UnknownKey);
    }
    for k in candidates.filter(|k| k.algorithms.contains(&alg)) {
        let ok = jsonwebtoken::crypto::verify(
            &token.signature,
            token.signing_input.as_bytes(),
            &k.key,
            alg,
        );
        if matches!(ok, Ok(true)) {
            return Ok(());
        }
    }
    Err(AssertionError::Invalid("signature"))
}

/// The `jti`s of accepted assertions, until their `exp` (plus leeway), keyed by a SHA-256 of
/// issuer and `jti`: 40 bytes an entry whatever was sent.
#[derive(Default)]
pub struct SeenAssertions {
    seen: Mutex<HashMap<[u8; 32], i64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// This issuer's `jti` was accepted before and has not expired.
    Replayed,
    /// `MAX_SEEN` live assertions are remembered: refuse for now rather than forget one.
    Crowded,
}

impl SeenAssertions {
    /// Remember `jti` of `issuer` until `exp`; Err if it is remembered already.
    pub fn first_use(&self, issuer: &str, jti: &str, exp: i64, now: i64) -> Result<(), Replay> {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(issuer.as_bytes());
        ctx.update(&[0]);
        ctx.update(jti.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        let Ok(mut seen) = self.seen.lock() else {
            return Err(Replay::Crowded);
        };
        let live = |until: i64| until.saturating_add(LEEWAY_SECS) > now;
        if seen.get(&key).is_some_and(|until| live(*until)) {
            return Err(Replay::Replayed);
        }
        if seen.len() >= MAX_SEEN {
            seen.retain(|_, until| live(*until));
            if seen.len() >= MAX_SEEN {
                return Err(Replay::Crowded);
            }
        }
        seen.insert(key, exp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    struct Signer {
        key: EncodingKey,
        alg: Algorithm,
        jwk: Value,
    }

    /// An EC P-256 key pair (rcgen, as the server's self-signed certificate) and its JWK.
    fn ec_signer(kid: &str) -> Signer {
        let pair = rcgen::KeyPair::generate().unwrap();
        let key = EncodingKey::from_ec_der(&pair.serialize_der());
        let mut jwk = serde_json::to_value(
            jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap(),
        )
        .unwrap();
        jwk["kid"] = json!(kid);
        Signer {
            key,
            alg: Algorithm::ES256,
            jwk,
        }
    }

    fn sign(s: &Signer, kid: Option<&str>, claims: &Value) -> String {
        let mut h = Header::new(s.alg);
        h.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&h, claims, &s.key).unwrap()
    }

    fn jwks(signers: &[&Signer]) -> KeySet {
        let doc = json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()});
        KeySet::from_jwks(doc.to_string().as_bytes()).unwrap()
    }

    fn good_claims() -> Value {
        json!({
            "iss": "https://login.example/tenant/v2.0",
            "sub": "workload-1",
            "aud": "https://scim.example/oauth2/token",
            "exp": NOW + 600,
            "nbf": NOW - 10,
            "iat": NOW - 10,
            "jti": "j-1",
        })
    }

    const EXPECTED: Expected<'static> = Expected {
        issuer: "https://login.example/tenant/v2.0",
        subject: "workload-1",
        audience: "https://scim.example/oauth2/token",
    };

    fn check(token: &str, keys: &KeySet) -> Result<(), AssertionError> {
        let u = parse(token)?;
        verify_signature(&u, keys)?;
        check_claims(&u.claims, &EXPECTED, NOW)
    }

    #[test]
    fn a_good_assertion_verifies_by_kid_or_without_one() {
        let a = ec_signer("a");
        let b = ec_signer("b");
        let keys = jwks(&[&a, &b]);
        assert_eq!(keys.len(), 2);
        assert!(keys.has_kid("b") && !keys.has_kid("c"));
        assert_eq!(check(&sign(&b, Some("b"), &good_claims()), &keys), Ok(()));
        assert_eq!(check(&sign(&b, None, &good_claims()), &keys), Ok(()));
        let u = parse(&sign(&a, Some("a"), &good_claims())).unwrap();
        assert_eq!(u.claims.jti.as_deref(), Some("j-1"));
        assert_eq!(u.claims.aud, vec!["https://scim.example/oauth2/token"]);
    }

    #[test]
    fn a_wrong_key_or_an_unknown_kid_is_refused() {
        let a = ec_signer("a");
        let stranger = ec_signer("a");
        let keys = jwks(&[&a]);
        assert_eq!(
            check(&sign(&stranger, Some("a"), &good_claims()), &keys),
            Err(AssertionError::Invalid("signature"))
        );
        assert_eq!(
            check(&sign(&stranger, None, &good_claims()), &keys),
            Err(AssertionError::Invalid("signature"))
        );
        assert_eq!(
            check(&sign(&a, Some("z"), &good_claims()), &keys),
            Err(AssertionError::UnknownKey)
        );
        // A key whose `alg` says ES384 does not verify ES256.
        let mut pinned = ec_signer("p");
        pinned.jwk["alg"] = json!("ES384");
        assert!(KeySet::from_jwks(json!({"keys": [pinned.jwk]}).to_string().as_bytes()).is_err());
    }

    #[test]
    fn each_claim_is_checked_with_a_small_leeway() {
        let a = ec_signer("a");
        let keys = jwks(&[&a]);
        let with = |k: &str, v: Value| {
            let mut c = good_claims();
            c[k] = v;
            check(&sign(&a, Some("a"), &c), &keys)
        };
        let without = |k: &str| {
            let mut c = good_claims();
            c.as_object_mut().unwrap().remove(k);
            check(&sign(&a, Some("a"), &c), &keys)
        };
        let invalid = |why| Err(AssertionError::Invalid(why));
        assert_eq!(with("iss", json!("https://evil")), invalid("issuer"));
        assert_eq!(without("iss"), invalid("issuer"));
        assert_eq!(with("sub", json!("workload-2")), invalid("subject"));
        assert_eq!(
            with("aud", json!("https://other/oauth2/token")),
            invalid("audience")
        );
        assert_eq!(without("aud"), invalid("audience"));
        assert_eq!(
            with("aud", json!(["x", "https://scim.example/oauth2/token"])),
            Ok(())
        );
        assert_eq!(without("exp"), invalid("no exp"));
        assert_eq!(with("exp", json!(NOW - LEEWAY_SECS)), invalid("expired"));
        assert_eq!(with("exp", json!(NOW - LEEWAY_SECS + 1)), Ok(()), "leeway");
        assert_eq!(with("exp", json!(NOW as f64 + 0.5)), Ok(()), "fractional");
        assert_eq!(
            with("nbf", json!(NOW + LEEWAY_SECS + 1)),
            invalid("not yet valid")
        );
        assert_eq!(with("nbf", json!(NOW + LEEWAY_SECS)), Ok(()));
        assert_eq!(
            with("iat", json!(NOW + 3600)),
            invalid("issued in the future")
        );
        assert_eq!(without("jti"), Ok(()), "jti is optional");
    }

    #[test]
    fn alg_none_hmac_and_unknown_algorithms_are_refused_before_any_key() {
        let a = ec_signer("a");
        let keys = jwks(&[&a]);
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = b64(&good_claims());
        for alg in ["none", "None", "HS256", "EdDSA", "ES512", ""] {
            let header = b64(&json!({"alg": alg, "kid": "a"}));
            for sig in ["", "c2ln"] {
                let token = format!("{header}.{claims}.{sig}");
                assert_eq!(
                    check(&token, &keys),
                    Err(AssertionError::Invalid("algorithm")),
                    "{alg} {sig:?}"
                );
            }
        }
        // HMAC with the public key's bytes as the secret: refused, whatever the bytes.
        let x = a.jwk["x"].as_str().unwrap();
        let hmac = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &good_claims(),
            &EncodingKey::from_secret(x.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            check(&hmac, &keys),
            Err(AssertionError::Invalid("algorithm"))
        );
        // A signature moved to another algorithm's header: refused.
        let good = sign(&a, Some("a"), &good_claims());
        let sig = good.rsplit('.').next().unwrap();
        let es384 = format!(
            "{}.{claims}.{sig}",
            b64(&json!({"alg": "ES384", "kid": "a"}))
        );
        assert_eq!(
            check(&es384, &keys),
            Err(AssertionError::Invalid("signature"))
        );
        let crit = format!(
            "{}.{claims}.{sig}",
            b64(&json!({"alg": "ES256", "crit": ["exp"]}))
        );
        assert_eq!(
            check(&crit, &keys),
            Err(AssertionError::Invalid("crit header"))
        );
    }

    #[test]
    fn what_is_not_a_jws_is_malformed() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let h = b64(r#"{"alg":"ES256"}"#);
        let c = b64(r#"{"iss":"x"}"#);
        for bad in [
            String::new(),
            "abc".into(),
            "a.b".into(),
            format!("{h}.{c}.x.y"),
            format!("{h}.{c}.!!"),
            format!("{}.{c}.", b64("[1]")),
            format!("{}.{c}.", b64("{\"typ\":\"JWT\"}")),
            format!("{h}.{}.", b64("not json")),
            format!("{h}.{}.", b64(r#"{"exp":"soon"}"#)),
            format!("{h}.{}.", b64(r#"{"aud":[1]}"#)),
            format!("{h}.{}.", b64(r#"{"sub":1}"#)),
            "x".repeat(MAX_ASSERTION_LEN + 1),
        ] {
            assert!(
                matches!(parse(&bad), Err(AssertionError::Malformed(_))),
                "{bad:.60}"
            );
        }
    }

    #[test]
    fn a_jwks_keeps_only_rsa_and_ec_signing_keys() {
        let a = ec_signer("a");
        let doc = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": "not base64!", "e": "AQAB"},
            {"kty": "EC", "use": "enc", "crv": "P-256", "x": a.jwk["x"], "y": a.jwk["y"]},
            a.jwk,
        ]});
        let keys = KeySet::from_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(!keys.has_kid("h"));
        for bad in [
            "[]".to_string(),
            "{}".into(),
            r#"{"keys": []}"#.into(),
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#.into(),
            "not json".into(),
            format!(r#"{{"keys": [], "pad": "{}"}}"#, "x".repeat(MAX_JWKS_BYTES)),
        ] {
            assert!(KeySet::from_jwks(bad.as_bytes()).is_err(), "{bad:.40}");
        }
    }

    #[test]
    fn a_jti_is_accepted_once_until_it_expires_and_memory_is_bounded() {
        let seen = SeenAssertions::default();
        assert_eq!(seen.first_use("iss", "j", NOW + 100, NOW), Ok(()));
        assert_eq!(
            seen.first_use("iss", "j", NOW + 100, NOW + 50),
            Err(Replay::Replayed)
        );
        assert_eq!(seen.first_use("other", "j", NOW + 100, NOW), Ok(()));
        // Past its exp (and the leeway) the jti is forgotten: the assertion itself is expired.
        assert_eq!(
            seen.first_use("iss", "j", NOW + 500, NOW + 100 + LEEWAY_SECS),
            Ok(())
        );
        let full = SeenAssertions::default();
        for i in 0..MAX_SEEN {
            full.first_use("iss", &i.to_string(), NOW + 10, NOW)
                .unwrap();
        }
        assert_eq!(
            full.first_use("iss", "new", NOW + 10, NOW),
            Err(Replay::Crowded)
        );
        // Once they expire, room is made.
        assert_eq!(
            full.first_use("iss", "new", NOW + 1000, NOW + 10 + LEEWAY_SECS),
            Ok(())
        );
        assert_eq!(full.seen.lock().unwrap().len(), 1);
    }
}
