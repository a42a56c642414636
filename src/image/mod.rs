//! Image references and registry access: parsing and normalisation, registry credentials,
//! tag-to-digest resolution. Nothing here knows about Kubernetes.
pub mod credentials;
pub mod reference;
pub mod registry;
