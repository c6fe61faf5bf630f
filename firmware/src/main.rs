//! `sturdy-firmware`: the board half of sturdy's hardware-in-loop path.
//!
//! One artifact is linked into flash at build time (`STURDY_ARTIFACT=path`,
//! see `build.rs`), parsed in place by `sturdy-runtime`, and served over a
//! UART with the `sturdy-protocol` request/response frames: the host loads
//! inputs, runs inferences, reads outputs and counters, and compares every
//! output byte with its own run of the same artifact.
//!
//! Boards: QEMU `mps2-an386` (default feature `qemu`) and the Nucleo-F401RE
//! (`--no-default-features --features nucleo-f401re`).
#![no_std]
#![no_main]

#[cfg(all(feature = "qemu", feature = "nucleo-f401re"))]
compile_error!(
    "pick one board: the real board builds with --no-default-features --features nucleo-f401re"
);
#[cfg(not(any(feature = "qemu", feature = "nucleo-f401re")))]
compile_error!("pick a board feature: qemu (the default) or nucleo-f401re");

mod adapt;
mod board;
mod faults;
#[cfg(feature = "flash-repair")]
mod flash_repair;
mod linked;
mod memory;
mod panic;
mod scrub;
mod server;

use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    memory::paint_stack();
    let mut target = board::init();
    let store = match linked::take_protect_ram() {
        Some(ram) if linked::PROTECTED => {
            #[cfg(feature = "flash-repair")]
            flash_repair::at_boot(&mut target.flash(), ram.scratch);
            server::Store::Protected(server::Protected::boot(ram, &mut target))
        }
        _ => server::Store::Plain(linked::parse_model(linked::artifact())),
    };
    if let server::Store::Plain(model) = &store {
        log_model(model);
    }
    let arena = linked::take_arena().unwrap_or_default();
    server::Server::new(target, store, arena).run()
}

fn log_model(model: &Result<linked::LinkedModel<'_>, sturdy_runtime::Error>) {
    match model {
        Ok(m) => defmt::info!(
            "sturdy-firmware {}: artifact {} B, {} ops, arena {} B, input {} B, output {} B",
            env!("CARGO_PKG_VERSION"),
            linked::ARTIFACT_LEN,
            m.op_count(),
            m.arena_size(),
            m.input_len(),
            m.output_len()
        ),
        Err(e) => defmt::error!(
            "the linked artifact does not parse: {=str}",
            faults::name(&faults::model_fault(e))
        ),
    }
}
