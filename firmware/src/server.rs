//! The protocol server: reads frames, answers each with exactly one frame,
//! and never stops serving. Every failure is a typed `Response::Error`; no
//! input the host sends can make this code panic.

use crate::adapt::Adaptive;
use crate::board::Target;
use crate::faults::{model_fault, protect_fault};
use crate::linked::{self, LinkedModel, ProtectRam, ARTIFACT_CRC, ARTIFACT_LEN, OP_COUNT};
use crate::memory;
use crate::scrub::ScrubState;
use sturdy_protocol::{
    decode, encode, Deframer, ErrorCode, Framed, GuardStats, Health, Info, ProtectFault,
    Protection, Request, Response, Stats, Version, MAX_CHUNK, MAX_FRAME, PROTOCOL_VERSION,
};
use sturdy_runtime::GuardReport;

/// The board side of a session.
pub struct Server<'a, T: Target> {
    target: T,
    session: Session<'a>,
}

/// Where the model comes from.
// One `Store` exists, built once at boot: the size difference costs a few
// hundred bytes of stack once, and boxing would need a heap.
#[allow(clippy::large_enum_variant)]
pub enum Store<'a> {
    /// A plain artifact, parsed in place in flash.
    Plain(Result<LinkedModel<'a>, sturdy_runtime::Error>),
    /// A protected artifact, decoded into RAM at load.
    Protected(Protected),
}

/// A protected artifact's RAM and the outcome of its last load.
pub struct Protected {
    ram: ProtectRam,
    health: Health,
    result: Result<(), ProtectFault>,
    scrub: ScrubState,
}

impl Protected {
    /// Copies the flashed artifact into the working copy and loads it.
    pub fn boot<T: Target>(ram: ProtectRam, target: &mut T) -> Self {
        let mut protected = Protected {
            ram,
            health: Health::default(),
            result: Err(ProtectFault::Other),
            scrub: ScrubState::unkeyed(),
        };
        protected.reload(true, false, target);
        // Keyed once the first load has copied the image into the working copy.
        protected.scrub = ScrubState::new(&protected.ram);
        protected
    }

    /// Runs the protected load on the working copy (after copying the
    /// flashed image back when `restore`), recording its health and cost.
    fn reload<T: Target>(&mut self, restore: bool, measure: bool, target: &mut T) {
        // A plain build never constructs `Protected`; this constant lets the
        // linker drop the loader, the decoder and BLAKE2s from it.
        if !linked::PROTECTED {
            return;
        }
        let working: &mut [u8] = bytemuck::cast_slice_mut(&mut *self.ram.working);
        if restore {
            let flash = linked::artifact();
            if let Some(dst) = working.get_mut(..flash.len()) {
                dst.copy_from_slice(flash);
            }
            self.health.injected_bits = 0;
        }
        let mut health = sturdy_runtime::protect::Health::default();
        let start = target.now();
        let result = if linked::IN_PLACE {
            // Check every codeword, patch the failing ones in the working
            // copy, verify the tags: the model then runs where it lies.
            let words = self
                .ram
                .working
                .get_mut(..ARTIFACT_LEN.div_ceil(4))
                .unwrap_or_default();
            sturdy_runtime::protect::verify_in_place(
                words,
                &linked::DEVICE_KEY,
                self.ram.scratch,
                &mut health,
            )
            .map(|_| ())
        } else {
            sturdy_runtime::protect::load(
                working.get(..ARTIFACT_LEN).unwrap_or_default(),
                &linked::DEVICE_KEY,
                self.ram.decoded,
                self.ram.scratch,
                &mut health,
            )
            .map(|_| ())
        };
        let cost = target.now().saturating_sub(start);
        self.health = Health {
            loads: self.health.loads.saturating_add(1),
            load_cost: cost,
            codewords_checked: health.codewords_checked,
            corrected_words: health.corrected_words,
            corrected_bits: health.corrected_bits,
            uncorrectable_words: health.uncorrectable_words,
            blocks_checked: health.blocks_checked,
            mac_failures: health.mac_failures,
            injected_bits: self.health.injected_bits,
            syndrome_check_cost: 0,
        };
        if measure {
            self.health.syndrome_check_cost = self.syndrome_check_cost(target);
        }
        self.result = result.map_err(|e| protect_fault(&e));
        match self.result {
            Ok(()) => defmt::info!(
                "protected load: {=u32} codewords, {=u32} corrected bits, {=u64} counted",
                health.codewords_checked,
                health.corrected_bits,
                cost
            ),
            Err(_) => defmt::error!(
                "protected load failed: {=u32} uncorrectable words, {=u32} tag failures",
                health.uncorrectable_words,
                health.mac_failures
            ),
        }
    }

    /// Counted cost of one syndrome check of the first codeword (gathered
    /// through the interleaver first, untimed), averaged over repetitions so
    /// the counter's resolution and the reads of it drop out.
    fn syndrome_check_cost<T: Target>(&mut self, target: &mut T) -> u64 {
        use sturdy_runtime::protect::{ProtectedArtifact, Subkeys};
        const REPEAT: u64 = 64;
        if !linked::PROTECTED {
            return 0;
        }
        let bytes: &[u8] = bytemuck::cast_slice(&*self.ram.working);
        let Ok(protected) = ProtectedArtifact::parse(bytes.get(..ARTIFACT_LEN).unwrap_or_default())
        else {
            return 0;
        };
        let Some(code) = protected.code() else {
            return 0;
        };
        let header = protected.header();
        let interleaver = Subkeys::derive(&linked::DEVICE_KEY, &header.nonce)
            .interleaver(header.codewords as usize);
        let mut cw = [0u32; sturdy_runtime::ldpc::MAX_CODEWORD_WORDS];
        let Some(cw) = cw.get_mut(..code.words()) else {
            return 0;
        };
        let stored = protected.stored();
        for j in 0..code.n() {
            let p = interleaver.position(0, j);
            let bit = stored.get(p / 32).map_or(0, |w| (w >> (p % 32)) & 1);
            cw[j / 32] |= bit << (j % 32);
        }
        let start = target.now();
        let mut ok = true;
        for _ in 0..REPEAT {
            ok &= code.syndrome_ok(core::hint::black_box(&*cw));
        }
        let spent = target.now().saturating_sub(start);
        core::hint::black_box(ok);
        spent / REPEAT
    }

    /// Flips the stored-image bits listed in `bits` (all checked first).
    fn inject(&mut self, bits: &[u8]) -> Result<Response<'static>, ErrorCode> {
        if bits.len() % 4 != 0 || bits.len() > MAX_CHUNK {
            return Err(ErrorCode::BadInjection {
                len: bits.len() as u32,
            });
        }
        let index = |c: &[u8]| u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if let Some(bit) = bits
            .chunks_exact(4)
            .map(index)
            .find(|&b| b >= linked::STORED_BITS)
        {
            return Err(ErrorCode::BitOutOfRange {
                bit,
                limit: linked::STORED_BITS,
            });
        }
        let stored = self
            .ram
            .working
            .get_mut(linked::STORED_OFFSET / 4..)
            .unwrap_or_default();
        for bit in bits.chunks_exact(4).map(index) {
            if let Some(word) = stored.get_mut(bit as usize / 32) {
                *word ^= 1 << (bit % 32);
            }
        }
        self.health.injected_bits = self
            .health
            .injected_bits
            .saturating_add((bits.len() / 4) as u32);
        Ok(Response::Ok)
    }

    /// Runs `f` with the model over the decoded RAM and a re-verify hook
    /// that re-checks an op's constants against the working copy's
    /// codewords and tags ([`sturdy_runtime::protect::reverify_on_trip`]).
    fn with_reverifier<R>(
        &mut self,
        f: impl FnOnce(
            &LinkedModel<'_>,
            &mut dyn FnMut(usize) -> Result<(), sturdy_runtime::Error>,
        ) -> R,
    ) -> Result<R, ErrorCode> {
        self.result.map_err(ErrorCode::Protect)?;
        if linked::IN_PLACE {
            // The model borrows the working copy it would be checked
            // against: a tripped op is re-run, and the next Reload
            // re-verifies (and patches) the whole image.
            return Ok(f(&self.model()?, &mut |_| Ok(())));
        }
        let ProtectRam {
            working,
            decoded,
            scratch,
        } = &mut self.ram;
        let bytes: &[u8] = bytemuck::cast_slice(decoded);
        let model = linked::parse_model(bytes).map_err(|e| ErrorCode::Model(model_fault(&e)))?;
        let stored: &[u8] = bytemuck::cast_slice(working);
        let stored = stored.get(..ARTIFACT_LEN).unwrap_or_default();
        let mut hook =
            sturdy_runtime::protect::reverify_on_trip(stored, &linked::DEVICE_KEY, &model, scratch);
        Ok(f(&model, &mut hook))
    }

    /// The model over the decoded RAM (in place: over the working copy's
    /// inner artifact), if the last load succeeded.
    fn model(&self) -> Result<LinkedModel<'_>, ErrorCode> {
        self.result.map_err(ErrorCode::Protect)?;
        let bytes: &[u8] = if linked::IN_PLACE {
            let working: &[u8] = bytemuck::cast_slice(&*self.ram.working);
            let protected = sturdy_runtime::protect::ProtectedArtifact::parse(
                working.get(..ARTIFACT_LEN).unwrap_or_default(),
            )
            .map_err(|e| ErrorCode::Protect(protect_fault(&e)))?;
            let stored: &[u8] = bytemuck::cast_slice(protected.stored());
            stored.get(..protected.inner_len()).unwrap_or_default()
        } else {
            bytemuck::cast_slice(&*self.ram.decoded)
        };
        linked::parse_model(bytes).map_err(|e| ErrorCode::Model(model_fault(&e)))
    }

    fn protection(&self) -> Protection {
        let (codewords, n, k, blocks) = linked::CODE;
        Protection {
            stored_bits: linked::STORED_BITS,
            codewords,
            n,
            k,
            blocks,
            inner_len: (linked::INNER_WORDS * 4) as u32,
            ram: (core::mem::size_of_val(&*self.ram.working)
                + core::mem::size_of_val(&*self.ram.decoded)
                + core::mem::size_of_val(&*self.ram.scratch)) as u32,
            fault: self.result.err(),
        }
    }
}

/// The model of `store` (a free function, so it borrows only the store).
fn model_of<'s>(store: &'s Store<'_>) -> Result<LinkedModel<'s>, ErrorCode> {
    match store {
        Store::Plain(Ok(model)) => Ok(*model),
        Store::Plain(Err(e)) => Err(ErrorCode::Model(model_fault(e))),
        Store::Protected(p) => p.model(),
    }
}

impl Store<'_> {
    /// The protected store. A plain build never constructs one, and the
    /// `PROTECTED` constant tells the compiler so: the protected load,
    /// scrub and aging code leave a plain build's flash.
    fn protected(&self) -> Option<&Protected> {
        match self {
            Store::Protected(p) if linked::PROTECTED => Some(p),
            _ => None,
        }
    }

    /// [`Store::protected`], mutable; [`ErrorCode::NotProtected`] for a
    /// plain store.
    fn protected_mut(&mut self) -> Result<&mut Protected, ErrorCode> {
        match self {
            Store::Protected(p) if linked::PROTECTED => Ok(p),
            _ => Err(ErrorCode::NotProtected),
        }
    }
}

/// Everything a request can read or change, apart from the link.
struct Session<'a> {
    store: Store<'a>,
    arena: &'a mut [u8],
    /// Input bytes loaded contiguously from offset 0.
    loaded: u32,
    /// The arena holds the output of the current input.
    output_ready: bool,
    inferences: u32,
    last: u64,
    bad_frames: u32,
    op_costs: [u64; OP_COUNT],
    /// Guard counts of the last inference.
    guards: GuardStats,
    /// Guard trips since reset.
    guard_trips: u32,
    /// The drift monitor and the timing-fault emulation.
    adaptive: Adaptive,
    /// Output bits the timing-fault emulation flipped in the last inference.
    timing_flips: u32,
}

impl<'a, T: Target> Server<'a, T> {
    /// A server for `store` over `arena`.
    pub fn new(target: T, store: Store<'a>, arena: &'a mut [u8]) -> Self {
        Self {
            target,
            session: Session {
                store,
                arena,
                loaded: 0,
                output_ready: false,
                inferences: 0,
                last: 0,
                bad_frames: 0,
                op_costs: [0; OP_COUNT],
                guards: GuardStats::default(),
                guard_trips: 0,
                adaptive: Adaptive::new(),
                timing_flips: 0,
            },
        }
    }

    /// Serves requests forever (an emulator exits on `Shutdown`).
    pub fn run(mut self) -> ! {
        let mut rx = Deframer::<MAX_FRAME>::new();
        let mut tx = [0u8; MAX_FRAME];
        loop {
            if !matches!(self.target.read_ready(), Ok(true)) {
                // Only between frames: a frame in flight is answered
                // before a slice or nap delays it (its bytes would queue
                // meanwhile, not overrun).
                if rx.is_between_frames() {
                    self.session.idle(&mut self.target);
                }
                continue;
            }
            let mut byte = [0u8; 1];
            if !matches!(self.target.read(&mut byte), Ok(1)) {
                continue;
            }
            let request = match rx.push(byte[0]) {
                None => continue,
                Some(Framed::Oversized) => Err(ErrorCode::Oversized),
                Some(Framed::Frame(frame)) => {
                    decode::<Request<'_>>(frame).map_err(|_| ErrorCode::Malformed)
                }
            };
            let exit = match request {
                Ok(Request::Shutdown { code }) => Some(code),
                _ => None,
            };
            let response = match request {
                Ok(request) => self.session.handle(request, &mut self.target),
                Err(code) => {
                    self.session.bad_frames = self.session.bad_frames.saturating_add(1);
                    defmt::warn!("bad frame: {=str}", frame_error_name(&code));
                    Response::Error(code)
                }
            };
            send(&mut self.target, &mut tx, &response);
            if let Some(code) = exit {
                self.target.exit(code);
            }
        }
    }
}

/// Encodes and writes one response. A response too large for a frame cannot
/// be built from the requests accepted, but is answered rather than dropped.
fn send<T: Target>(target: &mut T, tx: &mut [u8; MAX_FRAME], response: &Response<'_>) {
    let frame = match encode(response, tx) {
        Ok(frame) => frame,
        Err(_) => match encode(&Response::Error(ErrorCode::Malformed), tx) {
            Ok(frame) => frame,
            Err(_) => return,
        },
    };
    let _ = target.write_all(frame);
    let _ = target.flush();
}

impl Session<'_> {
    fn handle<T: Target>(&mut self, request: Request<'_>, target: &mut T) -> Response<'_> {
        let result = match request {
            Request::Info => return Response::Info(info::<T>(&self.store, self.arena.len())),
            Request::Stats => return Response::Stats(self.stats::<T>()),
            Request::Shutdown { .. } => return Response::Ok,
            #[cfg(feature = "kernel-check")]
            Request::CheckKernels { seed, cases } => return check_kernels(seed, cases),
            #[cfg(not(feature = "kernel-check"))]
            Request::CheckKernels { .. } => Err(ErrorCode::NotBuilt),
            Request::LoadInput { offset, chunk } => self.load_input(offset, chunk),
            Request::Infer { domain } => self.infer(target, domain),
            Request::OpStats { op } => self.op_stats(op),
            Request::ReadOutput { offset, len } => return self.read_output(offset, len),
            Request::InjectFaults { bits } => {
                self.store.protected_mut().and_then(|p| p.inject(bits))
            }
            Request::Reload { restore, measure } => self.reload(restore, measure, target),
            Request::Adapt { on } => model_of(&self.store)
                .and_then(|model| self.adaptive.adapt(&model, on))
                .map(|()| Response::Ok),
            Request::Drift => self.adaptive.drift().map(Response::Drift),
            #[cfg(feature = "timing-faults")]
            Request::TimingFaults {
                rate_ppb,
                seed,
                policy,
            } => {
                self.adaptive.set_timing_faults(rate_ppb, seed, policy);
                Ok(Response::Ok)
            }
            #[cfg(not(feature = "timing-faults"))]
            Request::TimingFaults { .. } => Err(ErrorCode::NotBuilt),
            Request::Scrub { codewords } => self.store.protected_mut().and_then(|p| {
                p.scrub
                    .step(&mut p.ram, codewords, target)
                    .map(Response::Scrubbed)
            }),
            Request::ScrubEvery {
                period,
                codewords,
                passes_to_end_of_life,
            } => match self.store.protected_mut() {
                Ok(p) if p.scrub.active() => {
                    p.scrub.schedule(period, codewords, passes_to_end_of_life);
                    Ok(Response::Ok)
                }
                _ => Err(ErrorCode::NotProtected),
            },
        };
        result.unwrap_or_else(Response::Error)
    }

    fn reload<T: Target>(
        &mut self,
        restore: bool,
        measure: bool,
        target: &mut T,
    ) -> Result<Response<'static>, ErrorCode> {
        let p = self.store.protected_mut()?;
        // The decoded model is rebuilt: any input and output are gone.
        self.loaded = 0;
        self.output_ready = false;
        p.reload(restore, measure, target);
        p.result.map_err(ErrorCode::Protect)?;
        Ok(Response::Health(p.health))
    }

    fn load_input(&mut self, offset: u32, chunk: &[u8]) -> Result<Response<'static>, ErrorCode> {
        let model = model_of(&self.store)?;
        let input_len = model.input_len() as u32;
        let len = chunk.len() as u32;
        let end = offset.checked_add(len).filter(|&end| end <= input_len);
        let end = match end {
            Some(end) if chunk.len() <= MAX_CHUNK => end,
            _ => {
                return Err(ErrorCode::OutOfRange {
                    offset,
                    len,
                    limit: input_len,
                })
            }
        };
        if offset != 0 && offset != self.loaded {
            return Err(ErrorCode::OutOfOrder {
                expected: self.loaded,
                got: offset,
            });
        }
        // Loading may overwrite the previous output (the arena plan reuses
        // memory), so the output is gone from the first chunk on.
        self.output_ready = false;
        let input = model
            .input_mut(self.arena)
            .map_err(|e| ErrorCode::Model(model_fault(&e)))?;
        let slot = input
            .get_mut(offset as usize..end as usize)
            .ok_or(ErrorCode::OutOfRange {
                offset,
                len,
                limit: input_len,
            })?;
        slot.copy_from_slice(bytemuck::cast_slice(chunk));
        self.loaded = end;
        Ok(Response::Ok)
    }

    fn infer<T: Target>(
        &mut self,
        target: &mut T,
        domain: Option<u32>,
    ) -> Result<Response<'static>, ErrorCode> {
        let mut report = GuardReport::default();
        let mut spent = 0;
        let (arena, op_costs) = (&mut *self.arena, &mut self.op_costs);
        let (loaded, output_ready) = (&mut self.loaded, &mut self.output_ready);
        let adaptive = &mut self.adaptive;
        let flips_before = adaptive.flipped();
        let fault = |e: sturdy_runtime::Error| ErrorCode::Model(model_fault(&e));
        // The model is looked up once (a protected one is parsed from RAM);
        // the counter covers the ops, guards and re-runs included.
        let mut run =
            |model: &LinkedModel<'_>,
             reverify: &mut dyn FnMut(usize) -> Result<(), sturdy_runtime::Error>| {
                let needed = model.input_len() as u32;
                if *loaded != needed {
                    return Err(ErrorCode::InputIncomplete {
                        loaded: *loaded,
                        needed,
                    });
                }
                if domain.is_some() && adaptive.adapting() {
                    return Err(ErrorCode::Adapting);
                }
                // Inference reuses the input's memory: the next run needs a new input.
                *loaded = 0;
                *output_ready = false;
                if let Some(domain) = domain {
                    model.align_input(arena, domain).map_err(fault)?;
                }
                adaptive.before(model, arena, target)?;
                let start = target.now();
                for op in 0..model.op_count() {
                    let before = target.now();
                    adaptive
                        .invoke_op(model, op, arena, &mut *reverify, &mut report)
                        .map_err(fault)?;
                    if let Some(cost) = op_costs.get_mut(op) {
                        *cost = target.now().saturating_sub(before);
                    }
                }
                spent = target.now().saturating_sub(start);
                adaptive.after(model, arena, target)
            };
        let outcome = match self.store.protected_mut() {
            Ok(p) => p.with_reverifier(|m, hook| run(m, hook))?,
            Err(_) => run(&model_of(&self.store)?, &mut |_| Ok(())),
        };
        if let Err(e @ (ErrorCode::InputIncomplete { .. } | ErrorCode::Adapting)) = outcome {
            return Err(e); // nothing ran: the last inference's counts stand
        }
        self.timing_flips = self.adaptive.flipped().wrapping_sub(flips_before);
        self.guards = GuardStats {
            ops_checked: report.ops_checked,
            values_clamped: report.values_clamped,
            trips: report.trips,
            trips_after_rerun: report.trips_after_rerun,
        };
        self.guard_trips = self.guard_trips.saturating_add(report.trips);
        outcome?;
        self.last = spent;
        self.inferences = self.inferences.saturating_add(1);
        self.output_ready = true;
        Ok(Response::Ok)
    }

    fn read_output(&self, offset: u32, len: u16) -> Response<'_> {
        if !self.output_ready {
            return Response::Error(ErrorCode::NoOutput);
        }
        let model = match model_of(&self.store) {
            Ok(model) => model,
            Err(code) => return Response::Error(code),
        };
        let output = match model.output(self.arena) {
            Ok(output) => output,
            Err(e) => return Response::Error(ErrorCode::Model(model_fault(&e))),
        };
        let limit = output.len() as u32;
        let range = (offset as usize)..(offset as usize).saturating_add(len as usize);
        match output.get(range) {
            Some(data) if data.len() <= MAX_CHUNK => Response::Output {
                offset,
                data: bytemuck::cast_slice(data),
            },
            _ => Response::Error(ErrorCode::OutOfRange {
                offset,
                len: u32::from(len),
                limit,
            }),
        }
    }

    fn op_stats(&self, op: u16) -> Result<Response<'static>, ErrorCode> {
        let model = model_of(&self.store)?;
        let op_count = model.op_count().min(usize::from(u16::MAX)) as u16;
        if op >= op_count {
            return Err(ErrorCode::NoSuchOp { op_count });
        }
        if self.inferences == 0 {
            return Err(ErrorCode::NoOutput);
        }
        let kind = model
            .artifact()
            .ops()
            .get(usize::from(op))
            .map_or(0, |record| record.kind);
        let count = self.op_costs.get(usize::from(op)).copied().unwrap_or(0);
        Ok(Response::OpStats { op, kind, count })
    }

    fn stats<T: Target>(&self) -> Stats {
        Stats {
            inferences: self.inferences,
            unit: T::UNIT,
            last: self.last,
            stack_peak: memory::stack_peak(),
            bad_frames: self.bad_frames,
            health: self.store.protected().map(|p| p.health),
            guards: self.guards,
            guard_trips: self.guard_trips,
            scrub: self
                .store
                .protected()
                .filter(|p| p.scrub.active())
                .map(|p| p.scrub.stats()),
            timing_flips: self.timing_flips,
        }
    }

    /// Idle time: a scheduled scrub slice, if one is due.
    fn idle<T: Target>(&mut self, target: &mut T) {
        if let Ok(p) = self.store.protected_mut() {
            p.scrub.idle(&mut p.ram, target);
        }
    }
}

/// Names the two frame-level errors for the log (without `core::fmt`).
fn frame_error_name(code: &ErrorCode) -> &'static str {
    match code {
        ErrorCode::Oversized => "oversized",
        _ => "malformed",
    }
}

fn version(text: &str) -> Version {
    let mut parts = text.split('.').map(|p| p.parse::<u16>().unwrap_or(0));
    Version {
        major: parts.next().unwrap_or(0),
        minor: parts.next().unwrap_or(0),
        patch: parts.next().unwrap_or(0),
    }
}

fn info<T: Target>(store: &Store<'_>, arena_capacity: usize) -> Info {
    let model = model_of(store);
    // Format version from the header (bytes 8..12), even if parsing failed.
    let bytes = crate::linked::artifact();
    let field = |at: usize| {
        bytes
            .get(at..at + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
    };
    Info {
        protocol: PROTOCOL_VERSION,
        firmware: version(env!("CARGO_PKG_VERSION")),
        board: T::BOARD,
        artifact_format: Version {
            major: field(8),
            minor: field(10),
            patch: 0,
        },
        artifact_len: ARTIFACT_LEN as u32,
        artifact_crc: ARTIFACT_CRC,
        model_fault: match model {
            Err(ErrorCode::Model(fault)) => Some(fault),
            Err(ErrorCode::Protect(ProtectFault::Model(fault))) => Some(fault),
            _ => None,
        },
        arena_needed: model.as_ref().map_or(0, |m| m.arena_size() as u32),
        arena_capacity: arena_capacity as u32,
        input_len: model.as_ref().map_or(0, |m| m.input_len() as u32),
        output_len: model.as_ref().map_or(0, |m| m.output_len() as u32),
        op_count: model.as_ref().map_or(0, |m| m.op_count() as u16),
        counter: T::UNIT,
        counter_resolution: T::RESOLUTION,
        memory: memory::usage(),
        protection: store.protected().map(Protected::protection),
    }
}

/// Answers [`Request::CheckKernels`]: the runtime's multiply-accumulate
/// path on this target against the portable reference. A test harness
/// (about 8 KiB of code), so only in builds with `kernel-check`.
#[cfg(feature = "kernel-check")]
fn check_kernels(seed: u64, cases: u32) -> Response<'static> {
    let r = sturdy_runtime::kernels::mac::check::run(seed, cases);
    Response::KernelCheck(sturdy_protocol::KernelCheck {
        dsp: sturdy_runtime::kernels::mac::DSP,
        cases: r.cases,
        mismatches: r.mismatches,
        first_mismatch: r.first_mismatch,
    })
}
