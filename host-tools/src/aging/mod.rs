//! Aging of the stored model: how fast its bits decay over a mission, and which code and
//! scrub interval keep it decodable for the whole lifetime.
//!
//! Exists so `sturdy aging curve`, `sturdy aging plan` and `sturdy protect --profile` share
//! one documented model instead of a rate the user guesses:
//! - [`profile`] reads the mission profile (lifetime, temperatures, datasheet retention,
//!   soft-error rate, where the model lives, failure target);
//! - [`ber`] turns it into BER(t), the probability that one stored bit has flipped `t` hours
//!   after the last refresh or scrub (Arrhenius-accelerated flash retention plus Poisson
//!   soft errors in RAM);
//! - [`plan`] combines BER(t) with each code's measured FER to pick the code and scrub
//!   interval that meet the target with the least storage.
//!
//! - [`timing`] ages the logic instead: NBTI slows the paths until a fixed clock's margin runs
//!   out, giving the wrong-bit rate that `sturdy run --timing-faults` injects.
//!
//! Pure host-side math: no I/O except [`profile::MissionProfile::load`].

pub mod apply;
pub mod ber;
pub mod candidates;
pub mod plan;
pub mod profile;
pub mod simulate;
pub mod timing;
