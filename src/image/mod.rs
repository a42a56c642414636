//! Image references and registry access: parsing and normalisation, registry credentials,
//! tag-to-digest resolution. Nothing here knows about Kubernetes or the rest of the application:
//! its only outward hook is the [`observer::RegistryObserver`] trait (metrics implement it).
pub mod credentials;
pub mod observer;
pub mod reference;
pub mod registry;
