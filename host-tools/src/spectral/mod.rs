//! Spectral layer advice: each Conv/FC weight matrix's eigenvalue
//! spectrum against a fitted Marchenko–Pastur bulk ([`mp`]), the rank its
//! spikes say to keep, and the factorization that tests the advice
//! ([`factor`]).

pub mod eigen;
pub mod factor;
pub mod mp;
