//! PARDEF-style protection on the host: device keys, protecting an artifact,
//! loading a protected one, fault injection.

pub mod key;
