//! cosign (Sigstore) signatures verified with public keys: legacy simple-signing payloads and
//! Sigstore bundles. Built in the cosign workstream.
