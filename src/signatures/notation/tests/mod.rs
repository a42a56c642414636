//! Test support: certificates made with rcgen (code-signing leaves, CA chains), JWS and COSE
//! envelopes built and signed with aws-lc-rs the way `notation` writes them, so each test states
//! only what it changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod envelopes;
mod policy;
mod verify;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature as sig;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use coset::cbor::value::Value as Cbor;
use coset::iana::EnumI64 as _;
use coset::{TaggedCborSerializable as _, iana};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;

/// The verifier's clock in every test.
pub(super) const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

/// Key types Notation allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Rsa2048,
    Rsa3072,
    P256,
    P384,
    P521,
}

/// A key pair usable by rcgen (certificates) and aws-lc-rs (envelope signatures).
pub(super) struct Key {
    pub kind: Kind,
    pub pair: KeyPair,
}

impl Key {
    pub fn new(kind: Kind) -> Self {
        let pair = match kind {
            Kind::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            Kind::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA384, rcgen::RsaKeySize::_3072)
            }
            Kind::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            Kind::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            Kind::P521 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512),
        }
        .unwrap();
        Key { kind, pair }
    }

    /// The algorithm Notation pairs with this key: (JWS name, COSE id).
    pub fn alg(&self) -> (&'static str, i64) {
        match self.kind {
            Kind::Rsa2048 => ("PS256", -37),
            Kind::Rsa3072 => ("PS384", -38),
            Kind::P256 => ("ES256", -7),
            Kind::P384 => ("ES384", -35),
            Kind::P521 => ("ES512", -36),
        }
    }

    /// Signs `msg` with the key's Notation algorithm.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let der = self.pair.serialize_der();
        let rng = SystemRandom::new();
        let ec = |alg: &'static sig::EcdsaSigningAlgorithm| {
            sig::EcdsaKeyPair::from_pkcs8(alg, &der)
                .unwrap()
                .sign(&rng, msg)
                .unwrap()
                .as_ref()
                .to_vec()
        };
        let rsa = |pad: &'static dyn sig::RsaEncoding| {
            let k = sig::RsaKeyPair::from_pkcs8(&der).unwrap();
            let mut out = vec![0; k.public_modulus_len()];
            k.sign(pad, &rng, msg, &mut out).unwrap();
            out
        };
        match self.kind {
            Kind::Rsa2048 => rsa(&sig::RSA_PSS_SHA256),
            Kind::Rsa3072 => rsa(&sig::RSA_PSS_SHA384),
            Kind::P256 => ec(&sig::ECDSA_P256_SHA256_FIXED_SIGNING),
            Kind::P384 => ec(&sig::ECDSA_P384_SHA384_FIXED_SIGNING),
            Kind::P521 => ec(&sig::ECDSA_P521_SHA512_FIXED_SIGNING),
        }
    }
}

/// A certificate with its key and parameters (to issue further certificates).
pub(super) struct Issued {
    pub der: Vec<u8>,
    pub pem: String,
    pub key: Key,
    pub params: CertificateParams,
}

impl Issued {
    pub fn spki(&self) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(&self.key.pair)
    }
}

/// Shop's release subject: C=US, ST=WA, L=Seattle, O=Shop, CN=<cn>.
pub(super) fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CountryName, "US");
    d.push(DnType::StateOrProvinceName, "WA");
    d.push(DnType::LocalityName, "Seattle");
    d.push(DnType::OrganizationName, "Shop");
    d.push(DnType::CommonName, cn);
    d
}

/// Parameters of a code-signing leaf valid from NOW-30d to NOW+365d.
pub(super) fn leaf_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.not_before = NOW - Duration::days(30);
    p.not_after = NOW + Duration::days(365);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    p
}

/// Parameters of a CA valid from NOW-60d to NOW+10y.
pub(super) fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.not_before = NOW - Duration::days(60);
    p.not_after = NOW + Duration::days(3650);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

/// Self-signs `params` with a new key.
pub(super) fn self_signed(params: CertificateParams, kind: Kind) -> Issued {
    let key = Key::new(kind);
    let cert = params.self_signed(&key.pair).unwrap();
    Issued {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key,
        params,
    }
}

/// Issues `params` with a new key, signed by `issuer`.
pub(super) fn issue(params: CertificateParams, kind: Kind, issuer: &Issued) -> Issued {
    let key = Key::new(kind);
    let iss = Issuer::new(issuer.params.clone(), &issuer.key.pair);
    let cert = params.signed_by(&key.pair, &iss).unwrap();
    Issued {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key,
        params,
    }
}

/// The manifest every test signs.
pub(super) fn subject() -> Subject {
    Subject {
        repository: "registry.example/shop/app".into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 1234,
    }
}

/// What an envelope says; tests change fields before [`Envelope::jws`] / [`Envelope::cose`].
pub(super) struct Envelope<'a> {
    pub key: &'a Key,
    /// Overrides the key's algorithm: (JWS name, COSE id).
    pub alg: Option<(&'static str, i64)>,
    pub cty: Option<&'static str>,
    pub scheme: &'static str,
    pub signing_time: Option<OffsetDateTime>,
    pub expiry: Option<OffsetDateTime>,
    /// Names listed in `crit` (default: the signing scheme, and the expiry when set).
    pub crit: Option<Vec<&'static str>>,
    /// Extra protected headers (name, string value).
    pub extra: Vec<(&'static str, &'static str)>,
    pub target: Subject,
    pub chain: Vec<Vec<u8>>,
    /// Payload bytes to sign instead of the `targetArtifact` of `target`.
    pub signed_payload: Option<Vec<u8>>,
    /// Replaces the payload bytes (JSON) after signing.
    pub payload_override: Option<Vec<u8>>,
    pub corrupt_signature: bool,
}

impl<'a> Envelope<'a> {
    /// A valid notary.x509 envelope over [`subject`] signed at NOW-1h by `leaf`.
    pub fn new(leaf: &'a Issued, chain: &[&Issued]) -> Self {
        Envelope {
            key: &leaf.key,
            alg: None,
            cty: Some(envelope::PAYLOAD_CONTENT_TYPE),
            scheme: "notary.x509",
            signing_time: Some(NOW - Duration::hours(1)),
            expiry: None,
            crit: None,
            extra: Vec::new(),
            target: subject(),
            chain: chain.iter().map(|c| c.der.clone()).collect(),
            signed_payload: None,
            payload_override: None,
            corrupt_signature: false,
        }
    }

    fn payload(&self) -> Vec<u8> {
        if let Some(p) = &self.signed_payload {
            return p.clone();
        }
        serde_json::to_vec(&json!({"targetArtifact": {
            "mediaType": self.target.media_type,
            "digest": self.target.digest,
            "size": self.target.size,
        }}))
        .unwrap()
    }

    fn crit(&self) -> Vec<&'static str> {
        self.crit.clone().unwrap_or_else(|| {
            let mut c = vec![envelope::SIGNING_SCHEME];
            if self.expiry.is_some() {
                c.push(envelope::EXPIRY);
            }
            c
        })
    }

    fn alg(&self) -> (&'static str, i64) {
        self.alg.unwrap_or_else(|| self.key.alg())
    }

    /// The flattened JWS JSON envelope.
    pub fn jws(&self) -> Vec<u8> {
        let rfc = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let mut h = serde_json::Map::new();
        h.insert("alg".into(), json!(self.alg().0));
        h.insert("crit".into(), json!(self.crit()));
        if let Some(c) = self.cty {
            h.insert("cty".into(), json!(c));
        }
        h.insert(envelope::SIGNING_SCHEME.into(), json!(self.scheme));
        let time_name = if self.scheme == "notary.x509" {
            envelope::SIGNING_TIME
        } else {
            envelope::AUTHENTIC_SIGNING_TIME
        };
        if let Some(t) = self.signing_time {
            h.insert(time_name.into(), json!(rfc(t)));
        }
        if let Some(t) = self.expiry {
            h.insert(envelope::EXPIRY.into(), json!(rfc(t)));
        }
        for (k, v) in &self.extra {
            h.insert((*k).into(), json!(v));
        }
        let protected = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Value::Object(h)).unwrap());
        let payload = URL_SAFE_NO_PAD.encode(self.payload());
        let mut signature = self.key.sign(format!("{protected}.{payload}").as_bytes());
        if self.corrupt_signature {
            signature[5] ^= 1;
        }
        let payload = match &self.payload_override {
            Some(p) => URL_SAFE_NO_PAD.encode(p),
            None => payload,
        };
        serde_json::to_vec(&json!({
            "payload": payload,
            "protected": protected,
            "header": {
                "x5c": self.chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>(),
                "io.cncf.notary.signingAgent": "trustgate-tests",
            },
            "signature": URL_SAFE_NO_PAD.encode(signature),
        }))
        .unwrap()
    }

    /// The tagged COSE_Sign1 envelope.
    pub fn cose(&self) -> Vec<u8> {
        let epoch =
            |t: OffsetDateTime| Cbor::Tag(1, Box::new(Cbor::Integer(t.unix_timestamp().into())));
        let mut h =
            coset::HeaderBuilder::new().algorithm(iana::Algorithm::from_i64(self.alg().1).unwrap());
        for c in self.crit() {
            h = h.add_critical_label(coset::RegisteredLabelWithPrivate::Text(c.into()));
        }
        if let Some(c) = self.cty {
            h = h.content_type(c.into());
        }
        h = h.text_value(
            envelope::SIGNING_SCHEME.into(),
            Cbor::Text(self.scheme.into()),
        );
        let time_name = if self.scheme == "notary.x509" {
            envelope::SIGNING_TIME
        } else {
            envelope::AUTHENTIC_SIGNING_TIME
        };
        if let Some(t) = self.signing_time {
            h = h.text_value(time_name.into(), epoch(t));
        }
        if let Some(t) = self.expiry {
            h = h.text_value(envelope::EXPIRY.into(), epoch(t));
        }
        for (k, v) in &self.extra {
            h = h.text_value((*k).into(), Cbor::Text((*v).into()));
        }
        let unprotected = coset::HeaderBuilder::new()
            .value(
                33,
                Cbor::Array(self.chain.iter().map(|c| Cbor::Bytes(c.clone())).collect()),
            )
            .text_value(
                "io.cncf.notary.signingAgent".into(),
                Cbor::Text("trustgate-tests".into()),
            )
            .build();
        let mut s = coset::CoseSign1Builder::new()
            .protected(h.build())
            .unprotected(unprotected)
            .payload(self.payload())
            .create_signature(b"", |tbs| self.key.sign(tbs))
            .build();
        if self.corrupt_signature {
            s.signature[5] ^= 1;
        }
        if let Some(p) = &self.payload_override {
            s.payload = Some(p.clone());
        }
        s.to_tagged_vec().unwrap()
    }
}

/// An attached JWS signature artifact.
pub(super) fn jws_artifact(blob: Vec<u8>) -> Attached {
    artifact(MEDIA_TYPE_JWS, blob)
}

/// An attached COSE signature artifact.
pub(super) fn cose_artifact(blob: Vec<u8>) -> Attached {
    artifact(MEDIA_TYPE_COSE, blob)
}

fn artifact(media_type: &str, blob: Vec<u8>) -> Attached {
    Attached {
        manifest_digest: format!("sha256:{}", "cd".repeat(32)),
        artifact_type: ARTIFACT_TYPE.into(),
        media_type: media_type.into(),
        annotations: Default::default(),
        blob,
    }
}

/// A policy trusting `store` (PEM) for `identities`, nothing revoked.
pub(super) fn policy(store: &[&Issued], identities: &[&str]) -> NotationPolicy {
    policy_revoking(store, identities, Revoked::default())
}

/// A policy with revoked keys.
pub(super) fn policy_revoking(
    store: &[&Issued],
    identities: &[&str],
    revoked: Revoked,
) -> NotationPolicy {
    NotationPolicy::new(
        &store.iter().map(|c| c.pem.clone()).collect::<Vec<_>>(),
        &identities.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        revoked,
    )
    .unwrap()
}

/// A root CA, an intermediate and a code-signing leaf (all P-256 unless said).
pub(super) struct Pki {
    pub root: Issued,
    pub inter: Issued,
    pub leaf: Issued,
}

pub(super) fn pki(leaf_kind: Kind) -> Pki {
    let root = self_signed(ca_params("Shop Root"), Kind::P384);
    let mut ip = ca_params("Shop Signing CA");
    ip.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let inter = issue(ip, Kind::P256, &root);
    let leaf = issue(leaf_params("release"), leaf_kind, &inter);
    Pki { root, inter, leaf }
}
