//! `sturdy analyze`: the analysis suite. Campaigns measure (one file per
//! report section: [`fit`], [`fidelity`], [`faults`], [`attacks`] with
//! [`bfa`] and [`damage`], [`cost`]), [`report`] holds what they measured,
//! [`render`] turns it into the self-contained HTML page, [`run`] runs the
//! sections a user asked for.

pub mod aging;
pub mod attacks;
pub mod backward;
pub mod batch;
pub mod bfa;
pub mod board;
pub mod cost;
pub mod damage;
pub mod faults;
pub mod fidelity;
pub mod fisher;
pub mod fit;
pub mod int4_choice;
pub mod knobs;
pub mod layers;
pub mod progress;
pub mod render;
pub mod report;
pub mod run;
pub mod spectra;
pub mod stats;
pub mod subject;
pub mod tape;
pub mod transfer;
pub mod verification;
