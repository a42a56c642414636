//! Test fixtures shared by the policy tests: a P-256 public key, a self-signed certificate over
//! the same key (usable as root certificate and as CA bundle), and the policy reference's full example
//! policy with those keys filled in.

use super::crd::{NotarySpec, TrustPolicySpec, TrustRoot};

pub const PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAElPExtEttWN3wlq4p5oo7VIhtR5ln
mDyoSmkDeoh6SDoLlG6hse22wLXY0rNerRKe5ejA5+1nGrPavi4CAfAAWQ==
-----END PUBLIC KEY-----
";

pub const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBqDCCAU2gAwIBAgIUXQihl+j+U7JhpaOUURBV6UnYmIswCgYIKoZIzj0EAwIw
KDEmMCQGA1UEAwwdcmVnaXN0cnkuZXhhbXBsZS5jb20vc2hvcC9hcHAwIBcNMjYx
MTI1MTUwMzM4WhgPMjEyNjExMDExNTAzMzhaMCgxJjAkBgNVBAMMHXJlZ2lzdHJ5
LmV4YW1wbGUuY29tL3Nob3AvYXBwMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
lPExtEttWN3wlq4p5oo7VIhtR5lnmDyoSmkDeoh6SDoLlG6hse22wLXY0rNerRKe
5ejA5+1nGrPavi4CAfAAWaNTMFEwHQYDVR0OBBYEFMRQx/jOUnIOBUKbturmNA3D
nf55MB8GA1UdIwQYMBaAFMRQx/jOUnIOBUKbturmNA3Dnf55MA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAJImUFP/Wn+mGU+JHGo1gbH3iCeD+5zE
Dt3e6OuPf27BAiEAnIbJnJUWBHq+nR8wfzRLCN58PDdTkI2yBwCvk0VoaVY=
-----END CERTIFICATE-----
";

pub const KEY_ID: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

/// Indents every line of `text` by `n` spaces (for YAML block scalars).
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// The policy reference example, keys filled in.
pub fn reference_example_yaml() -> String {
    format!(
        r#"apiVersion: trustgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: shop-images, namespace: shop}}
spec:
  images: ["registry.example.com:5000/shop/**", "docker.io/library/nginx:1.*"]
  action: Verify
  mode: Enforce
  notary:
    url: https://notary.example.com:4443
    caBundle: |
{ca}    credentialsSecret: {{name: notary-creds}}
    gun: "registry.example.com:5000/shop/app"
  registry:
    caBundle: |
{ca}    plainHTTP: false
    credentialsSecret: {{name: pull-creds}}
  trustRoots:
  - publicKey: |
{key}  - keyID: "{KEY_ID}"
  trustRootThreshold: 1
  signers:
  - name: alice
    publicKey: |
{signer_key}    required: true
  - name: bob
  signerThreshold: 2
  revokedKeys: ["{KEY_ID}"]
status:
  observedGeneration: 3
  conditions: [{{type: Ready, status: "True", reason: Valid, message: policy is in use}}]
"#,
        ca = indent(CERT_PEM, 6),
        key = indent(PUBLIC_KEY_PEM, 6),
        signer_key = indent(PUBLIC_KEY_PEM, 6),
    )
}

/// A minimal valid Verify spec for `images`.
pub fn verify_spec(images: &[&str]) -> TrustPolicySpec {
    TrustPolicySpec {
        images: images.iter().map(|s| (*s).to_owned()).collect(),
        notary: Some(NotarySpec {
            url: Some("https://notary.example.com".into()),
            ..NotarySpec::default()
        }),
        trust_roots: vec![TrustRoot {
            key_id: Some(KEY_ID.into()),
            public_key: None,
        }],
        ..TrustPolicySpec::default()
    }
}
