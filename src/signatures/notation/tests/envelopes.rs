//! Envelope shapes: what [`describe`] reads without trusting, COSE variants (a single
//! certificate as one byte string, untagged or detached COSE_Sign1) and malformed JWS fields.

use super::*;

#[test]
fn describe_reads_jws_and_cose_without_verifying() {
    let k = pki(Kind::P256);
    let mut e = Envelope::new(&k.leaf, &[&k.leaf, &k.inter, &k.root]);
    e.expiry = Some(NOW + Duration::days(7));
    e.corrupt_signature = true;
    for (a, format) in [
        (jws_artifact(e.jws()), EnvelopeFormat::Jws),
        (cose_artifact(e.cose()), EnvelopeFormat::Cose),
    ] {
        let d = describe(&a).unwrap();
        assert_eq!(d.format, format);
        assert_eq!(d.algorithm, "ES256");
        assert_eq!(d.signing_scheme, "notary.x509");
        assert_eq!(d.signing_time, Some(NOW - Duration::hours(1)));
        assert_eq!(d.expiry, Some(NOW + Duration::days(7)));
        assert_eq!(d.target_digest, subject().digest);
        assert_eq!(d.target_size, subject().size);
        assert_eq!(d.target_media_type, subject().media_type);
        assert_eq!(d.subject, "CN=release,O=Shop,L=Seattle,ST=WA,C=US");
        assert_eq!(d.issuer, "CN=Shop Signing CA,O=Shop,L=Seattle,ST=WA,C=US");
        assert_eq!(d.key_type, "EC P-256");
        assert_eq!(d.thumbprints.len(), 3);
        assert_eq!(
            d.thumbprints[0],
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&k.leaf.der))
        );
    }
    assert!(describe(&jws_artifact(b"[]".to_vec())).is_err());
}

#[test]
fn cose_single_certificate_as_a_byte_string_verifies() {
    let leaf = self_signed(leaf_params("release"), Kind::P384);
    let p = policy(&[&leaf], &["*"]);
    let e = Envelope::new(&leaf, &[&leaf]);
    let mut s = coset::CoseSign1::from_tagged_slice(&e.cose()).unwrap();
    for (label, value) in s.unprotected.rest.iter_mut() {
        if *label == coset::Label::Int(33) {
            *value = Cbor::Bytes(leaf.der.clone());
        }
    }
    verify(
        &p,
        &subject(),
        &cose_artifact(s.to_tagged_vec().unwrap()),
        NOW,
    )
    .unwrap();
}

#[test]
fn cose_must_be_tagged_attached_and_carry_x5chain() {
    use coset::CborSerializable as _;
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    let e = Envelope::new(&leaf, &[&leaf]);
    let s = coset::CoseSign1::from_tagged_slice(&e.cose()).unwrap();
    let untagged = s.clone().to_vec().unwrap();
    let mut detached = s.clone();
    detached.payload = None;
    let mut no_chain = s.clone();
    no_chain.unprotected.rest.clear();
    for (blob, why) in [
        (untagged, "tagged"),
        (detached.to_tagged_vec().unwrap(), "detached"),
        (no_chain.to_tagged_vec().unwrap(), "x5chain"),
        (b"\xd2\x84".to_vec(), "tagged"),
    ] {
        let err = verify(&p, &subject(), &cose_artifact(blob), NOW).unwrap_err();
        assert!(
            matches!(err, NotationError::Malformed { format: "COSE", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[test]
fn malformed_jws_fields_are_reported() {
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    let good: Value = serde_json::from_slice(&Envelope::new(&leaf, &[&leaf]).jws()).unwrap();
    type Change = fn(&mut Value);
    let cases: [(Change, &str); 5] = [
        (|v| v["protected"] = json!("%%%"), "base64url"),
        (|v| v["header"]["x5c"] = json!(["%%%"]), "x5c[0]"),
        (|v| v["header"]["x5c"] = json!([]), "no certificate"),
        (
            |v| {
                v.as_object_mut().unwrap().remove("signature");
            },
            "signature",
        ),
        (
            |v| v["protected"] = json!(URL_SAFE_NO_PAD.encode(b"[1]")),
            "protected header",
        ),
    ];
    for (change, why) in cases {
        let mut v = good.clone();
        change(&mut v);
        let err = verify(
            &p,
            &subject(),
            &jws_artifact(serde_json::to_vec(&v).unwrap()),
            NOW,
        )
        .unwrap_err();
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
}

#[test]
fn deeply_nested_cbor_is_refused_without_exhausting_the_stack() {
    let leaf = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&leaf], &["*"]);
    // COSE_Sign1 tag, a 4-array whose first element nests 200,000 one-element arrays (within the
    // envelope size limit; the CBOR decoder's own recursion limit refuses it).
    let mut blob = vec![0xd2, 0x84];
    blob.extend(std::iter::repeat_n(0x81, 200_000));
    blob.push(0x00);
    assert!((blob.len() as u64) < LIMITS.signature_envelope_bytes);
    let err = verify(&p, &subject(), &cose_artifact(blob), NOW).unwrap_err();
    assert!(
        matches!(err, NotationError::Malformed { format: "COSE", .. }),
        "{err:?}"
    );
}
