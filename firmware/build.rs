//! Links one artifact into the firmware and lays out memory for the board.
//!
//! * `STURDY_ARTIFACT=path` picks the artifact (default: `default.sturdy`, a
//!   small bundled model). It is validated here with the runtime's own parser,
//!   so a bad artifact fails the build instead of the board.
//! * The arena is sized from the artifact's memory plan, and the build stops
//!   with a clear message when artifact or arena cannot fit the board.
//! * `memory.x` is written from the board table below, the one place that
//!   knows each board's memory map.
//! * A protected artifact (`sturdy protect`) needs the device key:
//!   `STURDY_KEY=path` names the key file (`sturdy keygen`), whose 256 bits
//!   are compiled into the image. The build loads the artifact with the
//!   runtime's `protect::load` (so a wrong key fails here), sizes the static
//!   RAM for the working copy of the stored image and the decoded inner
//!   artifact, and sizes the arena from the inner artifact's plan.
//!   A real product would not compile the key into flash: it would keep it
//!   in OTP or a secure element / TrustZone secure storage and read-protect
//!   the debug port. Here the key in flash stands for that storage.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One board's memory map.
struct MemoryMap {
    name: &'static str,
    flash_origin: u32,
    flash_len: u32,
    ram_origin: u32,
    ram_len: u32,
}

const QEMU: MemoryMap = MemoryMap {
    name: "QEMU mps2-an386 (ZBT SSRAM1 as flash, SSRAM2&3 as RAM; hw/arm/mps2.c)",
    flash_origin: 0x0000_0000,
    flash_len: 4 << 20,
    ram_origin: 0x2000_0000,
    ram_len: 4 << 20,
};

const NUCLEO_F401RE: MemoryMap = MemoryMap {
    name: "STM32F401RE (Nucleo-F401RE)",
    flash_origin: 0x0800_0000,
    flash_len: 512 << 10,
    ram_origin: 0x2000_0000,
    ram_len: 96 << 10,
};

/// Feature `flash-repair` (Nucleo): the protected artifact gets an erase
/// block of its own and a spare block for repairs (`src/flash_repair.rs`).
/// The F401's `NorFlash` erases in 128 KiB units from the start of flash,
/// so unit 0 (sectors 0–4) and unit 1 (sector 5) hold code, unit 2
/// (sector 6) the artifact, unit 3 (sector 7) the spare.
const REPAIR_UNIT: u32 = 128 << 10;
const REPAIR_MODEL_OFFSET: u32 = 2 * REPAIR_UNIT;
const REPAIR_SPARE_OFFSET: u32 = 3 * REPAIR_UNIT;

/// Stack the firmware keeps free below the static data, at least.
const MIN_STACK: u32 = 8 << 10;
/// Flash kept for code and everything but the artifact, at least.
const MIN_CODE: u32 = 64 << 10;

fn fail(message: String) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-env-changed=STURDY_ARTIFACT");
    println!("cargo:rerun-if-env-changed=STURDY_KEY");
    println!("cargo:rerun-if-changed=build.rs");

    let board = if std::env::var_os("CARGO_FEATURE_NUCLEO_F401RE").is_some() {
        NUCLEO_F401RE
    } else {
        QEMU
    };
    let flash_repair = std::env::var_os("CARGO_FEATURE_FLASH_REPAIR").is_some();

    let (path, hint) = match std::env::var_os("STURDY_ARTIFACT") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), ""),
        _ => (
            manifest.join("default.sturdy"),
            "; regenerate the default with `sturdy quantize models/digits_dscnn.onnx \
             --calib models/digits_calib_x.npy -o firmware/default.sturdy`",
        ),
    };
    let path = std::fs::canonicalize(&path)
        .unwrap_or_else(|e| fail(format!("STURDY_ARTIFACT={}: {e}", path.display())));
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| fail(format!("reading {}: {e}", path.display())));

    // The runtime parses in place and needs 4-byte alignment.
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
    let aligned = &bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()];
    let key = read_key();
    let mut inner = Vec::new();
    let protection = if sturdy_runtime::protect::is_protected(aligned) {
        let Some(key) = &key else {
            fail(format!(
                "{} is a protected artifact: give the device key with STURDY_KEY=path \
                 (`sturdy flash ARTIFACT --key KEY`)",
                path.display()
            ))
        };
        Some(protected_layout(aligned, key, &path, &mut inner))
    } else {
        None
    };
    let model_bytes = if protection.is_some() {
        bytemuck::cast_slice::<u32, u8>(&inner)
    } else {
        aligned
    };
    let model = sturdy_runtime::Model::parse(model_bytes).unwrap_or_else(|e| {
        fail(format!(
            "{} is not a valid sturdy artifact: {e}{hint}",
            path.display()
        ))
    });
    let arena = model.arena_size() as u32;
    let ops = model.op_count();
    let artifact_len = bytes.len() as u32;
    let crc = sturdy_runtime::crc32(&bytes);
    let layout = protection.unwrap_or_default();
    let decoded_words = if layout.in_place {
        0
    } else {
        layout.inner_words
    };
    let protect_ram = 4 * (layout.working_words + decoded_words) + layout.scratch_bytes;

    if u64::from(arena) + protect_ram as u64 + u64::from(MIN_STACK) > u64::from(board.ram_len) {
        fail(format!(
            "{}: the model's arena needs {arena} bytes and the protected image \
             {protect_ram} (working copy, decoded model, decoder scratch); {} has {} bytes \
             of RAM (and the firmware keeps {MIN_STACK} for the stack)",
            path.display(),
            board.name,
            board.ram_len
        ));
    }
    if u64::from(artifact_len) + u64::from(MIN_CODE) > u64::from(board.flash_len) {
        fail(format!(
            "{}: the artifact is {artifact_len} bytes, {} has {} bytes of flash \
             (and the firmware needs about {MIN_CODE} for code)",
            path.display(),
            board.name,
            board.flash_len
        ));
    }

    if flash_repair {
        check_repair_layout(
            &path,
            artifact_len,
            key.is_some() && layout.working_words > 0,
        );
    }
    let memory_x = memory_x(&board, flash_repair);
    std::fs::write(out.join("memory.x"), memory_x).expect("writing memory.x");
    println!("cargo:rustc-link-search={}", out.display());

    let mut linked = String::new();
    let _ = writeln!(linked, "// Generated by build.rs from {}.", path.display());
    let _ = writeln!(linked, "/// Bytes of the linked artifact.");
    let _ = writeln!(linked, "pub const ARTIFACT_LEN: usize = {artifact_len};");
    let _ = writeln!(linked, "/// CRC-32 of the linked artifact.");
    let _ = writeln!(linked, "pub const ARTIFACT_CRC: u32 = {crc:#010x};");
    let _ = writeln!(linked, "/// Arena bytes the artifact's memory plan needs.");
    let _ = writeln!(linked, "pub const ARENA_SIZE: usize = {arena};");
    let _ = writeln!(
        linked,
        "/// Drift monitors the session keeps: 1 when the artifact has a DRIFT section \
         (`sturdy quantize --drift-monitor`), else 0 (no RAM, and the linker drops the code)."
    );
    let _ = writeln!(
        linked,
        "pub const DRIFT_SLOTS: usize = {};",
        usize::from(model.artifact().drift().is_some())
    );
    let kernels = sturdy_runtime::kernel_set::required(&model)
        .unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
    let _ = writeln!(
        linked,
        "/// The kernels the artifact runs (`sturdy_runtime::kernel_set`): the only ones linked."
    );
    let _ = writeln!(linked, "pub const KERNELS: u32 = {kernels:#x};");
    let _ = writeln!(linked, "/// Ops in the model.");
    let _ = writeln!(linked, "pub const OP_COUNT: usize = {ops};");
    let _ = writeln!(linked, "/// Start of flash in the memory map.");
    let _ = writeln!(
        linked,
        "pub const FLASH_ORIGIN: u32 = {:#010x};",
        board.flash_origin
    );
    let _ = writeln!(linked, "/// Bytes of flash in the memory map.");
    let _ = writeln!(linked, "pub const FLASH_LEN: u32 = {};", board.flash_len);
    let _ = writeln!(linked, "/// Start of RAM in the memory map.");
    let _ = writeln!(
        linked,
        "pub const RAM_ORIGIN: u32 = {:#010x};",
        board.ram_origin
    );
    let _ = writeln!(linked, "/// Bytes of RAM in the memory map.");
    let _ = writeln!(linked, "pub const RAM_LEN: u32 = {};", board.ram_len);
    let _ = writeln!(linked, "/// The artifact is protected (`sturdy protect`).");
    let _ = writeln!(
        linked,
        "pub const PROTECTED: bool = {};",
        key.is_some() && layout.working_words > 0
    );
    let _ = writeln!(
        linked,
        "/// Words of the RAM working copy of the protected artifact (0: plain)."
    );
    let _ = writeln!(
        linked,
        "pub const WORKING_WORDS: usize = {};",
        layout.working_words
    );
    let _ = writeln!(
        linked,
        "/// The protected artifact uses the in-place layout: `protect::verify_in_place` \
         patches the working copy and the model runs there (no decoded copy)."
    );
    let _ = writeln!(linked, "pub const IN_PLACE: bool = {};", layout.in_place);
    let _ = writeln!(
        linked,
        "/// Words of RAM the decoded copy of the inner artifact takes (0: plain or in place)."
    );
    let _ = writeln!(linked, "pub const DECODED_WORDS: usize = {decoded_words};");
    let _ = writeln!(linked, "/// Words of the inner artifact (0: plain).");
    let _ = writeln!(
        linked,
        "pub const INNER_WORDS: usize = {};",
        layout.inner_words
    );
    let _ = writeln!(
        linked,
        "/// Byte offset of the stored (coded) image in the artifact."
    );
    let _ = writeln!(
        linked,
        "pub const STORED_OFFSET: usize = {};",
        layout.stored_offset
    );
    let _ = writeln!(
        linked,
        "/// Bits of the stored image the decoder reads (fault-injection range)."
    );
    let _ = writeln!(
        linked,
        "pub static STORED_BITS: u32 = {};",
        layout.stored_bits
    );
    let _ = writeln!(
        linked,
        "/// Codewords, codeword length n, message bits k, tagged blocks."
    );
    let _ = writeln!(
        linked,
        "pub const CODE: (u32, u16, u16, u32) = ({}, {}, {}, {});",
        layout.codewords, layout.n, layout.k, layout.blocks
    );
    let _ = writeln!(linked, "/// Decoder scratch sized for the artifact's code.");
    let _ = writeln!(
        linked,
        "pub type Scratch = sturdy_runtime::ldpc::DecoderScratch<{}, {}>;",
        layout.n.max(1),
        (layout.n - layout.k).max(1)
    );
    let _ = writeln!(
        linked,
        "/// The device key (a real product keeps it in OTP / secure storage)."
    );
    let _ = writeln!(
        linked,
        "pub static DEVICE_KEY: [u8; 32] = {:?};",
        key.filter(|_| layout.working_words > 0).unwrap_or([0; 32])
    );
    let _ = writeln!(
        linked,
        "/// The artifact, in flash, 16-byte aligned for in-place reads."
    );
    if flash_repair {
        let _ = writeln!(
            linked,
            "/// Flash offsets of the artifact's erase block and the spare block."
        );
        let _ = writeln!(
            linked,
            "pub const REPAIR_BLOCKS: (u32, u32) = ({REPAIR_MODEL_OFFSET:#x}, {REPAIR_SPARE_OFFSET:#x});"
        );
        let _ = writeln!(linked, "#[link_section = \".model\"]");
    }
    let _ = writeln!(
        linked,
        "pub static ARTIFACT: Aligned<[u8; ARTIFACT_LEN]> = Aligned(*include_bytes!({:?}));",
        path.display().to_string()
    );
    std::fs::write(out.join("linked.rs"), linked).expect("writing linked.rs");
}

/// `memory.x` for `board`; with `flash_repair`, code keeps the first two
/// erase units and the artifact's `.model` section gets the third.
fn memory_x(board: &MemoryMap, flash_repair: bool) -> String {
    let code_len = if flash_repair {
        REPAIR_MODEL_OFFSET
    } else {
        board.flash_len
    };
    let mut x = format!(
        "/* Generated by build.rs for {name}. */\nMEMORY\n{{\n  FLASH : ORIGIN = {fo:#010x}, LENGTH = {code_len}\n  RAM   : ORIGIN = {ro:#010x}, LENGTH = {rl}\n",
        name = board.name,
        fo = board.flash_origin,
        ro = board.ram_origin,
        rl = board.ram_len,
    );
    if flash_repair {
        let _ = writeln!(
            x,
            "  MODEL : ORIGIN = {:#010x}, LENGTH = {REPAIR_UNIT}",
            board.flash_origin + REPAIR_MODEL_OFFSET
        );
        x.push_str("}\n/* The spare erase unit after MODEL stays unlinked. */\n");
        x.push_str("SECTIONS\n{\n  .model : ALIGN(16)\n  {\n    KEEP(*(.model .model.*));\n  } > MODEL\n}\nINSERT AFTER .rodata;\n");
    } else {
        x.push_str("}\n");
    }
    x
}

/// Refuses a `flash-repair` build that could not repair: another board, a
/// plain artifact (nothing coded to repair) or one larger than its block.
fn check_repair_layout(path: &std::path::Path, artifact_len: u32, protected: bool) {
    if std::env::var_os("CARGO_FEATURE_NUCLEO_F401RE").is_none() {
        fail("feature flash-repair is for the real board: add --features nucleo-f401re".into());
    }
    if !protected {
        fail(format!(
            "{}: flash-repair needs a protected artifact (`sturdy protect`) and STURDY_KEY",
            path.display()
        ));
    }
    if artifact_len > REPAIR_UNIT {
        fail(format!(
            "{}: the artifact is {artifact_len} bytes; with flash-repair it must fit one \
             {REPAIR_UNIT}-byte erase block (sector 6 of the F401)",
            path.display()
        ));
    }
}

/// Where the protected image lives and what RAM its load needs.
#[derive(Default)]
struct ProtectedLayout {
    working_words: usize,
    inner_words: usize,
    /// The in-place layout: the model runs in the working copy, no decoded copy.
    in_place: bool,
    stored_offset: usize,
    stored_bits: u32,
    codewords: u32,
    n: u16,
    k: u16,
    blocks: u32,
    scratch_bytes: usize,
}

/// The device key from `STURDY_KEY` (a `sturdy keygen` file: 64 hex digits,
/// or 32 raw bytes), if set.
fn read_key() -> Option<[u8; 32]> {
    let path = std::env::var_os("STURDY_KEY").filter(|p| !p.is_empty())?;
    let path = PathBuf::from(path);
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| fail(format!("STURDY_KEY={}: {e}", path.display())));
    let mut key = [0u8; 32];
    let text = std::str::from_utf8(&bytes).map(str::trim).unwrap_or("");
    if text.len() == 64 && text.bytes().all(|c| c.is_ascii_hexdigit()) {
        for (i, slot) in key.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
    } else if bytes.len() == 32 {
        key.copy_from_slice(&bytes);
    } else {
        fail(format!(
            "STURDY_KEY={}: a key file holds 64 hex digits (256 bits), as `sturdy keygen` writes",
            path.display()
        ));
    }
    Some(key)
}

/// Loads the protected artifact with the runtime's own loader (the board
/// runs the same code) into `inner`, and lays out its RAM.
fn protected_layout(
    aligned: &[u8],
    key: &[u8; 32],
    path: &std::path::Path,
    inner: &mut Vec<u32>,
) -> ProtectedLayout {
    use sturdy_runtime::protect::{load, Health, ProtectedArtifact};
    let protected = ProtectedArtifact::parse(aligned)
        .unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
    let inner_words = protected.inner_len() / 4;
    inner.resize(inner_words, 0);
    let mut scratch: Box<sturdy_runtime::ldpc::DecoderScratch> = Box::default();
    let mut health = Health::default();
    if let Err(e) = load(aligned, key, inner, &mut scratch, &mut health) {
        fail(format!(
            "{}: the protected artifact does not load with STURDY_KEY: {e}",
            path.display()
        ));
    }
    let stored = protected.stored();
    let stored_offset = stored.as_ptr() as usize - aligned.as_ptr() as usize;
    let header = protected.header();
    let (n, k, stored_bits) = match protected.code() {
        Some(code) => (
            code.n() as u16,
            code.k() as u16,
            (header.codewords as usize * code.n()) as u32,
        ),
        None => (0, 0, (stored.len() * 32) as u32),
    };
    let scratch_bytes = if n > 0 {
        2 * n as usize + 8 * (n - k) as usize
    } else {
        0
    };
    ProtectedLayout {
        working_words: aligned.len().div_ceil(4),
        inner_words,
        in_place: protected.runs_in_place(),
        stored_offset,
        stored_bits,
        codewords: header.codewords,
        n,
        k,
        blocks: header.block_count,
        scratch_bytes,
    }
}
