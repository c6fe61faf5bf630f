//! The protocol server: reads frames, answers each with exactly one frame,
//! and never stops serving. Every failure is a typed `Response::Error`; no
//! input the host sends can make this code panic.

use crate::board::Target;
use crate::faults::model_fault;
use crate::linked::{ARTIFACT_CRC, ARTIFACT_LEN, OP_COUNT};
use crate::memory;
use sturdy_protocol::{
    decode, encode, Deframer, ErrorCode, Framed, Info, Request, Response, Stats, Version,
    MAX_CHUNK, MAX_FRAME, PROTOCOL_VERSION,
};
use sturdy_runtime::Model;

/// The board side of a session.
pub struct Server<'a, T: Target> {
    target: T,
    session: Session<'a>,
}

/// Everything a request can read or change, apart from the link.
struct Session<'a> {
    model: Result<Model<'a>, sturdy_runtime::Error>,
    arena: &'a mut [u8],
    info: Info,
    /// Input bytes loaded contiguously from offset 0.
    loaded: u32,
    /// The arena holds the output of the current input.
    output_ready: bool,
    inferences: u32,
    last: u64,
    bad_frames: u32,
    op_costs: [u64; OP_COUNT],
}

impl<'a, T: Target> Server<'a, T> {
    /// A server for `model` (or the reason it failed to parse) over `arena`.
    pub fn new(
        target: T,
        model: Result<Model<'a>, sturdy_runtime::Error>,
        arena: &'a mut [u8],
    ) -> Self {
        let info = info::<T>(&model, arena.len());
        Self {
            target,
            session: Session {
                model,
                arena,
                info,
                loaded: 0,
                output_ready: false,
                inferences: 0,
                last: 0,
                bad_frames: 0,
                op_costs: [0; OP_COUNT],
            },
        }
    }

    /// Serves requests forever (an emulator exits on `Shutdown`).
    pub fn run(mut self) -> ! {
        let mut rx = Deframer::<MAX_FRAME>::new();
        let mut tx = [0u8; MAX_FRAME];
        loop {
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
            Request::Info => return Response::Info(self.info),
            Request::Stats => return Response::Stats(self.stats::<T>()),
            Request::Shutdown { .. } => return Response::Ok,
            Request::LoadInput { offset, chunk } => self.load_input(offset, chunk),
            Request::Infer => self.infer(target),
            Request::OpStats { op } => self.op_stats(op),
            Request::ReadOutput { offset, len } => return self.read_output(offset, len),
        };
        result.unwrap_or_else(Response::Error)
    }

    fn model(&self) -> Result<&Model<'_>, ErrorCode> {
        self.model
            .as_ref()
            .map_err(|e| ErrorCode::Model(model_fault(e)))
    }

    fn load_input(&mut self, offset: u32, chunk: &[u8]) -> Result<Response<'static>, ErrorCode> {
        let input_len = self.model()?.input_len() as u32;
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
        let model = self
            .model
            .as_ref()
            .map_err(|e| ErrorCode::Model(model_fault(e)))?;
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

    fn infer<T: Target>(&mut self, target: &mut T) -> Result<Response<'static>, ErrorCode> {
        let model = self
            .model
            .as_ref()
            .map_err(|e| ErrorCode::Model(model_fault(e)))?;
        let needed = model.input_len() as u32;
        if self.loaded != needed {
            return Err(ErrorCode::InputIncomplete {
                loaded: self.loaded,
                needed,
            });
        }
        // Inference reuses the input's memory: the next run needs a new input.
        self.loaded = 0;
        self.output_ready = false;
        let start = target.now();
        for op in 0..model.op_count() {
            let before = target.now();
            model
                .invoke_op(op, self.arena)
                .map_err(|e| ErrorCode::Model(model_fault(&e)))?;
            if let Some(cost) = self.op_costs.get_mut(op) {
                *cost = target.now().saturating_sub(before);
            }
        }
        self.last = target.now().saturating_sub(start);
        self.inferences = self.inferences.saturating_add(1);
        self.output_ready = true;
        Ok(Response::Ok)
    }

    fn read_output(&self, offset: u32, len: u16) -> Response<'_> {
        if !self.output_ready {
            return Response::Error(ErrorCode::NoOutput);
        }
        let model = match self.model() {
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
        let model = self.model()?;
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

fn info<T: Target>(
    model: &Result<Model<'_>, sturdy_runtime::Error>,
    arena_capacity: usize,
) -> Info {
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
        model_fault: model.as_ref().err().map(model_fault),
        arena_needed: model.as_ref().map_or(0, |m| m.arena_size() as u32),
        arena_capacity: arena_capacity as u32,
        input_len: model.as_ref().map_or(0, |m| m.input_len() as u32),
        output_len: model.as_ref().map_or(0, |m| m.output_len() as u32),
        op_count: model.as_ref().map_or(0, |m| m.op_count() as u16),
        counter: T::UNIT,
        counter_resolution: T::RESOLUTION,
        memory: memory::usage(),
    }
}
