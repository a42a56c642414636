//! One check per test: every way a signature must be refused, for JWS and COSE alike, and the
//! accepted shapes (self-signed leaf in the store as `notation cert generate-test` makes, a
//! CA chain, every key type).

use super::*;

/// Both envelope formats of one description.
fn both(e: &Envelope<'_>) -> [Attached; 2] {
    [jws_artifact(e.jws()), cose_artifact(e.cose())]
}

fn verify_both(p: &NotationPolicy, e: &Envelope<'_>) -> [Result<Signer, NotationError>; 2] {
    both(e).map(|a| verify(p, &subject(), &a, NOW))
}

#[test]
fn self_signed_leaf_in_the_store_verifies_jws_and_cose() {
    let leaf = self_signed(leaf_params("release"), Kind::Rsa2048);
    let p = policy(&[&leaf], &["*"]);
    for r in verify_both(&p, &Envelope::new(&leaf, &[&leaf])) {
        let s = r.unwrap();
        assert_eq!(s.subject, "CN=release,O=Shop,L=Seattle,ST=WA,C=US");
        assert_eq!(s.thumbprint.len(), 64);
        assert_eq!(s.signing_time, NOW - Duration::hours(1));
    }
}

#[test]
fn chain_to_the_root_in_the_store_verifies_for_every_key_type() {
    for kind in [
        Kind::P256,
        Kind::P384,
        Kind::P521,
        Kind::Rsa2048,
        Kind::Rsa3072,
    ] {
        let k = pki(kind);
        let p = policy(
            &[&k.root],
            &["x509.subject: C=US, ST=WA, O=Shop, CN=release"],
        );
        for r in verify_both(&p, &Envelope::new(&k.leaf, &[&k.leaf, &k.inter, &k.root])) {
            assert!(r.is_ok(), "{kind:?}: {r:?}");
        }
    }
}

#[test]
fn an_intermediate_in_the_store_is_enough() {
    let k = pki(Kind::P256);
    let p = policy(&[&k.inter], &["*"]);
    for r in verify_both(&p, &Envelope::new(&k.leaf, &[&k.leaf, &k.inter, &k.root])) {
        r.unwrap();
    }
}

#[test]
fn signature_of_another_digest_size_or_media_type_is_refused() {
    let k = pki(Kind::P256);
    let p = policy(&[&k.root], &["*"]);
    let chain = [&k.leaf, &k.inter, &k.root];
    let changes: [fn(&mut Subject); 3] = [
        |s| s.digest = format!("sha256:{}", "ef".repeat(32)),
        |s| s.size += 1,
        |s| s.media_type = "application/vnd.docker.distribution.manifest.v2+json".into(),
    ];
    for change in changes {
        let mut e = Envelope::new(&k.leaf, &chain);
        change(&mut e.target);
        for r in verify_both(&p, &e) {
            assert!(
                matches!(r, Err(NotationError::OtherArtifact { .. })),
                "{r:?}"
            );
        }
    }
}

#[test]
fn certificate_outside_the_trust_store_is_refused() {
    let k = pki(Kind::P256);
    let other = pki(Kind::P256);
    let p = policy(&[&other.root], &["*"]);
    for r in verify_both(&p, &Envelope::new(&k.leaf, &[&k.leaf, &k.inter, &k.root])) {
        assert!(matches!(r, Err(NotationError::Untrusted { .. })), "{r:?}");
    }
}

#[test]
fn identity_not_trusted_is_refused_and_a_subset_matches() {
    let k = pki(Kind::P256);
    let e = Envelope::new(&k.leaf, &[&k.leaf, &k.inter, &k.root]);
    let p = policy(
        &[&k.root],
        &["x509.subject: C=US, ST=WA, O=Shop, CN=someone-else"],
    );
    for r in verify_both(&p, &e) {
        let err = r.unwrap_err();
        assert!(
            matches!(err, NotationError::IdentityNotTrusted { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("CN=release"), "{err}");
    }
    let p = policy(
        &[&k.root],
        &[
            "x509.subject: O=Other, ST=WA, C=US",
            "x509.subject: S=WA, O=Shop, C=US",
        ],
    );
    for r in verify_both(&p, &e) {
        r.unwrap();
    }
}

#[test]
fn expired_signing_certificate_is_refused() {
    let root = self_signed(ca_params("Shop Root"), Kind::P256);
    let mut lp = leaf_params("release");
    lp.not_before = NOW - Duration::days(20);
    lp.not_after = NOW - Duration::days(1);
    let leaf = issue(lp, Kind::P256, &root);
    let p = policy(&[&root], &["*"]);
    // Signed while valid: no timestamp extends it, so it is refused now.
    let mut e = Envelope::new(&leaf, &[&leaf, &root]);
    e.signing_time = Some(NOW - Duration::days(2));
    for r in verify_both(&p, &e) {
        let err = r.unwrap_err();
        assert!(
            matches!(err, NotationError::CertificateNotValidNow { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("RFC 3161"), "{err}");
    }
    // Signed after it expired.
    e.signing_time = Some(NOW - Duration::hours(1));
    for r in verify_both(&p, &e) {
        assert!(
            matches!(r, Err(NotationError::NotValidAtSigningTime { .. })),
            "{r:?}"
        );
    }
}

#[test]
fn expired_signature_is_refused_and_a_future_expiry_passes() {
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    let mut e = Envelope::new(&leaf, &[&leaf]);
    e.expiry = Some(NOW);
    for r in verify_both(&p, &e) {
        assert!(
            matches!(r, Err(NotationError::SignatureExpired(_))),
            "{r:?}"
        );
    }
    e.expiry = Some(NOW + Duration::seconds(1));
    for r in verify_both(&p, &e) {
        r.unwrap();
    }
}

#[test]
fn unknown_critical_header_is_refused_and_a_non_critical_one_ignored() {
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    let mut e = Envelope::new(&leaf, &[&leaf]);
    e.extra = vec![("com.example.policy", "strict")];
    for r in verify_both(&p, &e) {
        r.unwrap();
    }
    e.crit = Some(vec![envelope::SIGNING_SCHEME, "com.example.policy"]);
    for r in verify_both(&p, &e) {
        assert_eq!(
            r,
            Err(NotationError::UnknownCritical("com.example.policy".into()))
        );
    }
}

#[test]
fn crit_must_name_present_headers_and_list_the_required_ones() {
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    let mut e = Envelope::new(&leaf, &[&leaf]);
    e.crit = Some(vec![envelope::SIGNING_SCHEME, envelope::EXPIRY]);
    for r in verify_both(&p, &e) {
        assert!(
            matches!(r, Err(NotationError::Attributes(ref m)) if m.contains("not present")),
            "{r:?}"
        );
    }
    e.crit = Some(vec![]);
    for r in verify_both(&p, &e) {
        assert!(matches!(r, Err(NotationError::Attributes(_))), "{r:?}");
    }
    // An expiry that is not critical.
    e.crit = None;
    e.expiry = Some(NOW + Duration::days(1));
    e.crit = Some(vec![envelope::SIGNING_SCHEME]);
    for r in verify_both(&p, &e) {
        assert!(
            matches!(r, Err(NotationError::Attributes(ref m)) if m.contains("critical")),
            "{r:?}"
        );
    }
}

#[test]
fn verification_plugin_content_type_and_scheme_are_checked() {
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    let mut e = Envelope::new(&leaf, &[&leaf]);
    e.extra = vec![(envelope::VERIFICATION_PLUGIN, "com.example.plugin")];
    e.crit = Some(vec![
        envelope::SIGNING_SCHEME,
        envelope::VERIFICATION_PLUGIN,
    ]);
    for r in verify_both(&p, &e) {
        assert!(matches!(r, Err(NotationError::PluginRequired(_))), "{r:?}");
    }
    let mut e = Envelope::new(&leaf, &[&leaf]);
    e.cty = Some("application/json");
    for r in verify_both(&p, &e) {
        assert!(matches!(r, Err(NotationError::Attributes(_))), "{r:?}");
    }
    e.cty = None;
    for r in verify_both(&p, &e) {
        assert!(matches!(r, Err(NotationError::Attributes(_))), "{r:?}");
    }
    let mut e = Envelope::new(&leaf, &[&leaf]);
    e.scheme = "notary.x509.signingAuthority";
    e.crit = Some(vec![
        envelope::SIGNING_SCHEME,
        envelope::AUTHENTIC_SIGNING_TIME,
    ]);
    for r in verify_both(&p, &e) {
        assert_eq!(r, Err(NotationError::SigningAuthority));
    }
    e.scheme = "notary.other";
    for r in verify_both(&p, &e) {
        assert!(matches!(r, Err(NotationError::Attributes(_))), "{r:?}");
    }
    let mut e = Envelope::new(&leaf, &[&leaf]);
    e.signing_time = None;
    for r in verify_both(&p, &e) {
        assert!(
            matches!(r, Err(NotationError::Attributes(ref m)) if m.contains("signingTime")),
            "{r:?}"
        );
    }
}

#[test]
fn bad_signature_and_tampered_payload_are_refused() {
    let leaf = self_signed(leaf_params("release"), Kind::Rsa2048);
    let p = policy(&[&leaf], &["*"]);
    let mut e = Envelope::new(&leaf, &[&leaf]);
    e.corrupt_signature = true;
    for r in verify_both(&p, &e) {
        assert_eq!(r, Err(NotationError::BadSignature));
    }
    let mut e = Envelope::new(&leaf, &[&leaf]);
    let mut other = subject();
    other.digest = format!("sha256:{}", "ef".repeat(32));
    e.payload_override = Some(
        serde_json::to_vec(&json!({"targetArtifact": {
            "mediaType": other.media_type, "digest": other.digest, "size": other.size}}))
        .unwrap(),
    );
    for a in both(&e) {
        assert_eq!(
            verify(&p, &other, &a, NOW),
            Err(NotationError::BadSignature)
        );
    }
}

#[test]
fn algorithm_must_be_the_one_of_the_key() {
    let ec = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&ec], &["*"]);
    let mut e = Envelope::new(&ec, &[&ec]);
    e.alg = Some(("ES384", -35));
    for r in verify_both(&p, &e) {
        let err = r.unwrap_err();
        assert!(
            matches!(err, NotationError::AlgorithmMismatch { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("EC P-256 requires ES256"), "{err}");
    }
    e.alg = Some(("PS256", -37));
    for r in verify_both(&p, &e) {
        assert!(
            matches!(r, Err(NotationError::AlgorithmMismatch { .. })),
            "{r:?}"
        );
    }
    let rsa = self_signed(leaf_params("release"), Kind::Rsa2048);
    let p = policy(&[&rsa], &["*"]);
    let mut e = Envelope::new(&rsa, &[&rsa]);
    e.alg = Some(("PS512", -39));
    for r in verify_both(&p, &e) {
        assert!(
            matches!(r, Err(NotationError::AlgorithmMismatch { .. })),
            "{r:?}"
        );
    }
    e.alg = Some(("RS256", -257));
    for r in verify_both(&p, &e) {
        assert!(matches!(r, Err(NotationError::Attributes(_))), "{r:?}");
    }
}

#[test]
fn revoked_leaf_or_root_key_never_counts() {
    let k = pki(Kind::P256);
    let chain = [&k.leaf, &k.inter, &k.root];
    for revoked in [k.leaf.spki(), k.root.spki()] {
        let p = policy_revoking(&[&k.root], &["*"], Revoked::from_spki(vec![revoked]));
        for r in verify_both(&p, &Envelope::new(&k.leaf, &chain)) {
            assert!(matches!(r, Err(NotationError::Revoked { .. })), "{r:?}");
        }
    }
}

#[test]
fn signing_certificate_without_code_signing_eku_is_refused() {
    let cases: [fn(&mut CertificateParams); 4] = [
        |p| p.extended_key_usages = vec![],
        |p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth],
        |p| {
            p.extended_key_usages
                .push(ExtendedKeyUsagePurpose::TimeStamping)
        },
        |p| {
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyCertSign,
            ]
        },
    ];
    for change in cases {
        let mut lp = leaf_params("release");
        change(&mut lp);
        let leaf = self_signed(lp, Kind::P256);
        let p = policy(&[&leaf], &["*"]);
        for r in verify_both(&p, &Envelope::new(&leaf, &[&leaf])) {
            assert!(matches!(r, Err(NotationError::Chain(_))), "{r:?}");
        }
    }
}

#[test]
fn chain_rules_of_the_notary_project_are_applied() {
    let k = pki(Kind::P256);
    let p = policy(&[&k.root], &["*"]);
    // Out of order, missing its root, unrelated certificate, leaf that is a CA.
    let other = pki(Kind::P256);
    for chain in [
        vec![&k.leaf, &k.root, &k.inter],
        vec![&k.leaf, &k.inter],
        vec![&k.leaf, &other.inter, &k.root],
    ] {
        for r in verify_both(&p, &Envelope::new(&k.leaf, &chain)) {
            assert!(matches!(r, Err(NotationError::Chain(_))), "{r:?}");
        }
    }
    let mut lp = leaf_params("release");
    lp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_leaf = issue(lp, Kind::P256, &k.inter);
    for r in verify_both(&p, &Envelope::new(&ca_leaf, &[&ca_leaf, &k.inter, &k.root])) {
        assert!(
            matches!(r, Err(NotationError::Chain(ref m)) if m.contains("CA")),
            "{r:?}"
        );
    }
    // Path length: the intermediate allows no CA below it.
    let mut sub = ca_params("Sub CA");
    sub.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let sub = issue(sub, Kind::P256, &k.inter);
    let leaf = issue(leaf_params("release"), Kind::P256, &sub);
    for r in verify_both(&p, &Envelope::new(&leaf, &[&leaf, &sub, &k.inter, &k.root])) {
        assert!(
            matches!(r, Err(NotationError::Chain(ref m)) if m.contains("path length")),
            "{r:?}"
        );
    }
}

#[test]
fn chain_one_past_the_limit_is_refused_before_parsing() {
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    let limit = LIMITS.certificate_chain_len;
    let mut e = Envelope::new(&leaf, &[&leaf]);
    e.chain = vec![leaf.der.clone(); limit + 1];
    for r in verify_both(&p, &e) {
        assert!(
            matches!(
                r,
                Err(NotationError::TooLarge {
                    what: "certificate chain length",
                    ..
                })
            ),
            "{r:?}"
        );
    }
    e.chain = vec![leaf.der.clone(); limit];
    for r in verify_both(&p, &e) {
        assert!(
            matches!(r, Err(NotationError::Chain(_))),
            "at the limit: {r:?}"
        );
    }
}

#[test]
fn envelope_one_past_the_size_limit_is_refused() {
    let limit = LIMITS.signature_envelope_bytes as usize;
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    let mut a = jws_artifact(vec![b' '; limit + 1]);
    assert!(matches!(
        verify(&p, &subject(), &a, NOW),
        Err(NotationError::TooLarge { .. })
    ));
    a.blob.pop();
    assert!(matches!(
        verify(&p, &subject(), &a, NOW),
        Err(NotationError::Malformed { .. })
    ));
    // A valid envelope padded with JSON whitespace up to the limit still verifies.
    let mut blob = Envelope::new(&leaf, &[&leaf]).jws();
    blob.resize(limit, b' ');
    verify(&p, &subject(), &jws_artifact(blob), NOW).unwrap();
}

#[test]
fn json_one_past_the_depth_limit_is_refused() {
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    let depth = LIMITS.json_depth;
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    // The envelope itself: one object level plus the nested array.
    let blob = format!("{{\"x\":{}}}", nested(depth)).into_bytes();
    assert!(matches!(
        verify(&p, &subject(), &jws_artifact(blob), NOW),
        Err(NotationError::TooLarge {
            what: "JSON nesting depth",
            ..
        })
    ));
    let blob = format!("{{\"x\":{}}}", nested(depth - 1)).into_bytes();
    assert!(matches!(
        verify(&p, &subject(), &jws_artifact(blob), NOW),
        Err(NotationError::Malformed { .. })
    ));
    // The signed payload.
    let mut e = Envelope::new(&leaf, &[&leaf]);
    e.signed_payload = Some(format!("{{\"targetArtifact\":{}}}", nested(depth)).into_bytes());
    for r in verify_both(&p, &e) {
        assert!(
            matches!(
                r,
                Err(NotationError::TooLarge {
                    what: "JSON nesting depth",
                    ..
                })
            ),
            "{r:?}"
        );
    }
    e.signed_payload = Some(format!("{{\"targetArtifact\":{}}}", nested(depth - 1)).into_bytes());
    for r in verify_both(&p, &e) {
        assert!(matches!(r, Err(NotationError::Malformed { .. })), "{r:?}");
    }
}

#[test]
fn artifact_and_envelope_types_are_checked() {
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    let mut a = jws_artifact(Envelope::new(&leaf, &[&leaf]).jws());
    a.artifact_type = "application/vnd.dev.sigstore.bundle.v0.3+json".into();
    assert!(matches!(
        verify(&p, &subject(), &a, NOW),
        Err(NotationError::NotASignature(_))
    ));
    let mut a = jws_artifact(Envelope::new(&leaf, &[&leaf]).jws());
    a.media_type = "application/octet-stream".into();
    assert!(matches!(
        verify(&p, &subject(), &a, NOW),
        Err(NotationError::UnsupportedEnvelope(_))
    ));
    // A JWS blob labelled COSE and the reverse.
    let e = Envelope::new(&leaf, &[&leaf]);
    for a in [cose_artifact(e.jws()), jws_artifact(e.cose())] {
        assert!(matches!(
            verify(&p, &subject(), &a, NOW),
            Err(NotationError::Malformed { .. })
        ));
    }
}
