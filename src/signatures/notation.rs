//! Notation (Notary Project) signatures: JWS and COSE envelopes verified as `notation`'s
//! `strict` level does. Built in the notation workstream.
