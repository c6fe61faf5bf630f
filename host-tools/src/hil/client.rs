//! The host side of the protocol: one request out, one reply back.

use super::error::BoardError;
use super::link::Link;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use sturdy_protocol::{
    decode, encode, Deframer, DriftStats, ErrorCode, Framed, GuardMode, Health, Info, KernelCheck,
    Request, Response, ScrubStats, Stats, MAX_CHUNK, MAX_FRAME,
};

/// A reply from the board, owning its data (a [`Response`] borrows the
/// receive buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// See [`Response::Info`].
    Info(Info),
    /// See [`Response::Ok`].
    Ok,
    /// See [`Response::Output`].
    Output {
        /// Byte offset in the output tensor.
        offset: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// See [`Response::Stats`].
    Stats(Stats),
    /// See [`Response::OpStats`].
    OpStats {
        /// Op index.
        op: u16,
        /// Op kind tag.
        kind: u16,
        /// Instructions or cycles.
        count: u64,
    },
    /// See [`Response::Health`].
    Health(Health),
    /// See [`Response::Scrubbed`].
    Scrubbed(ScrubStats),
    /// See [`Response::Error`].
    Error(ErrorCode),
    /// See [`Response::KernelCheck`].
    KernelCheck(KernelCheck),
    /// See [`Response::Drift`].
    Drift(DriftStats),
}

impl From<Response<'_>> for Reply {
    fn from(r: Response<'_>) -> Self {
        match r {
            Response::Info(info) => Reply::Info(info),
            Response::Ok => Reply::Ok,
            Response::Output { offset, data } => Reply::Output {
                offset,
                data: data.to_vec(),
            },
            Response::Stats(stats) => Reply::Stats(stats),
            Response::OpStats { op, kind, count } => Reply::OpStats { op, kind, count },
            Response::Health(health) => Reply::Health(health),
            Response::Scrubbed(stats) => Reply::Scrubbed(stats),
            Response::Error(code) => Reply::Error(code),
            Response::KernelCheck(check) => Reply::KernelCheck(check),
            Response::Drift(stats) => Reply::Drift(stats),
        }
    }
}

/// A protocol session over one link.
pub struct Client {
    link: Box<dyn Link>,
    rx: Box<Deframer<MAX_FRAME>>,
    /// Bytes read from the link but not yet fed to the deframer.
    unread: VecDeque<u8>,
    timeout: Duration,
}

impl Client {
    /// A client over `link`, waiting at most `timeout` for each reply.
    pub fn new(link: Box<dyn Link>, timeout: Duration) -> Self {
        Self {
            link,
            rx: Box::new(Deframer::new()),
            unread: VecDeque::new(),
            timeout,
        }
    }

    /// Writes raw bytes, framed or not (robustness tests send broken frames).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), BoardError> {
        self.link.write_all(bytes)?;
        self.link.flush()?;
        Ok(())
    }

    /// Waits for the next complete frame from the board and decodes it.
    pub fn recv(&mut self) -> Result<Reply, BoardError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            while let Some(byte) = self.unread.pop_front() {
                match self.rx.push(byte) {
                    None => {}
                    Some(Framed::Oversized) => {
                        return Err(BoardError::Frame(sturdy_protocol::FrameError::Oversized))
                    }
                    Some(Framed::Frame(frame)) => {
                        return decode::<Response<'_>>(frame)
                            .map(Reply::from)
                            .map_err(BoardError::Frame);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(BoardError::Timeout {
                    seconds: self.timeout.as_secs(),
                });
            }
            let mut buf = [0u8; 512];
            match self.link.read(&mut buf) {
                Ok(0) => {
                    return Err(BoardError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the board closed the link",
                    )))
                }
                Ok(n) => self.unread.extend(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(BoardError::Io(e)),
            }
        }
    }

    /// Sends raw bytes and waits for the one reply they should provoke.
    pub fn exchange_raw(&mut self, bytes: &[u8]) -> Result<Reply, BoardError> {
        self.send_raw(bytes)?;
        self.recv()
    }

    /// Sends `request` and returns the board's reply, errors included.
    pub fn request(&mut self, request: &Request<'_>) -> Result<Reply, BoardError> {
        let mut buf = [0u8; MAX_FRAME];
        let frame = encode(request, &mut buf).map_err(BoardError::Frame)?;
        self.exchange_raw(frame)
    }

    /// Like [`Client::request`], but a protocol error becomes `Err`.
    fn expect(&mut self, request: &Request<'_>) -> Result<Reply, BoardError> {
        match self.request(request)? {
            Reply::Error(code) => Err(BoardError::Refused(code)),
            reply => Ok(reply),
        }
    }

    fn unexpected(request: &'static str, reply: Reply) -> BoardError {
        BoardError::UnexpectedReply {
            request,
            reply: format!("{reply:?}"),
        }
    }

    /// The board's description of itself and its model.
    pub fn info(&mut self) -> Result<Info, BoardError> {
        match self.expect(&Request::Info)? {
            Reply::Info(info) => Ok(info),
            other => Err(Self::unexpected("Info", other)),
        }
    }

    /// Loads a whole int8 input, in [`MAX_CHUNK`] pieces.
    pub fn load_input(&mut self, input: &[i8]) -> Result<(), BoardError> {
        let bytes: &[u8] = bytemuck::cast_slice(input);
        let mut offset = 0usize;
        // An empty input still needs its (empty) first chunk.
        loop {
            let end = (offset + MAX_CHUNK).min(bytes.len());
            let request = Request::LoadInput {
                offset: offset as u32,
                chunk: &bytes[offset..end],
            };
            match self.expect(&request)? {
                Reply::Ok => {}
                other => return Err(Self::unexpected("LoadInput", other)),
            }
            offset = end;
            if offset >= bytes.len() {
                return Ok(());
            }
        }
    }

    /// Runs the loaded input, mapped through `domain`'s alignment table
    /// first when given.
    pub fn infer(&mut self, domain: Option<u32>) -> Result<(), BoardError> {
        match self.expect(&Request::Infer { domain })? {
            Reply::Ok => Ok(()),
            other => Err(Self::unexpected("Infer", other)),
        }
    }

    /// Reads the whole int8 output of `len` bytes.
    pub fn read_output(&mut self, len: usize) -> Result<Vec<i8>, BoardError> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let want = (len - out.len()).min(MAX_CHUNK);
            let request = Request::ReadOutput {
                offset: out.len() as u32,
                len: want as u16,
            };
            match self.expect(&request)? {
                Reply::Output { offset, data }
                    if offset as usize == out.len() && data.len() == want =>
                {
                    out.extend(data.iter().map(|&b| b as i8));
                }
                other => return Err(Self::unexpected("ReadOutput", other)),
            }
        }
        Ok(out)
    }

    /// Counters of the last inference.
    pub fn stats(&mut self) -> Result<Stats, BoardError> {
        match self.expect(&Request::Stats)? {
            Reply::Stats(stats) => Ok(stats),
            other => Err(Self::unexpected("Stats", other)),
        }
    }

    /// `(kind, count)` of op `op` in the last inference.
    pub fn op_stats(&mut self, op: u16) -> Result<(u16, u64), BoardError> {
        match self.expect(&Request::OpStats { op })? {
            Reply::OpStats { kind, count, .. } => Ok((kind, count)),
            other => Err(Self::unexpected("OpStats", other)),
        }
    }

    /// Flips the stored-image bits `bits` of a protected artifact's working
    /// copy, [`MAX_CHUNK`]` / 4` per frame (they take effect at the next
    /// [`Client::reload`]).
    pub fn inject(&mut self, bits: &[u32]) -> Result<(), BoardError> {
        for chunk in bits.chunks(MAX_CHUNK / 4) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|b| b.to_le_bytes()).collect();
            match self.expect(&Request::InjectFaults { bits: &bytes })? {
                Reply::Ok => {}
                other => return Err(Self::unexpected("InjectFaults", other)),
            }
        }
        Ok(())
    }

    /// Re-runs the protected load (from the flashed image when `restore`;
    /// measuring the syndrome check's cost when `measure`) and returns its
    /// health record.
    pub fn reload(&mut self, restore: bool, measure: bool) -> Result<Health, BoardError> {
        match self.expect(&Request::Reload { restore, measure })? {
            Reply::Health(health) => Ok(health),
            other => Err(Self::unexpected("Reload", other)),
        }
    }

    /// One bounded scrub step over the next `codewords` codewords; the
    /// scrubber's counters after it.
    pub fn scrub(&mut self, codewords: u32) -> Result<ScrubStats, BoardError> {
        match self.expect(&Request::Scrub { codewords })? {
            Reply::Scrubbed(stats) => Ok(stats),
            other => Err(Self::unexpected("Scrub", other)),
        }
    }

    /// Scrubs `codewords` per slice every `period` counter units of the
    /// board's idle time (0: off), with `passes_to_end_of_life` passes left.
    pub fn scrub_every(
        &mut self,
        period: u64,
        codewords: u32,
        passes_to_end_of_life: u32,
    ) -> Result<(), BoardError> {
        let request = Request::ScrubEvery {
            period,
            codewords,
            passes_to_end_of_life,
        };
        match self.expect(&request)? {
            Reply::Ok => Ok(()),
            other => Err(Self::unexpected("ScrubEvery", other)),
        }
    }

    /// Runs the board's kernel check: its multiply-accumulate path against
    /// the portable reference on `cases` random cases from `seed`.
    pub fn check_kernels(&mut self, seed: u64, cases: u32) -> Result<KernelCheck, BoardError> {
        match self.expect(&Request::CheckKernels { seed, cases })? {
            Reply::KernelCheck(check) => Ok(check),
            other => Err(Self::unexpected("CheckKernels", other)),
        }
    }

    /// Starts the board's drift monitor afresh (`on`) or stops it.
    pub fn adapt(&mut self, on: bool) -> Result<(), BoardError> {
        match self.expect(&Request::Adapt { on })? {
            Reply::Ok => Ok(()),
            other => Err(Self::unexpected("Adapt", other)),
        }
    }

    /// The drift monitor's counters and costs after the last inference.
    pub fn drift(&mut self) -> Result<DriftStats, BoardError> {
        match self.expect(&Request::Drift)? {
            Reply::Drift(stats) => Ok(stats),
            other => Err(Self::unexpected("Drift", other)),
        }
    }

    /// Timing faults at `rate_ppb` wrong output bits per 10⁹ from `seed`,
    /// answered by the guards as `policy` says, from the next inference on.
    pub fn timing_faults(
        &mut self,
        rate_ppb: u32,
        seed: u32,
        policy: GuardMode,
    ) -> Result<(), BoardError> {
        let request = Request::TimingFaults {
            rate_ppb,
            seed,
            policy,
        };
        match self.expect(&request)? {
            Reply::Ok => Ok(()),
            other => Err(Self::unexpected("TimingFaults", other)),
        }
    }

    /// Ends the session (an emulator exits with `code` after answering).
    pub fn shutdown(&mut self, code: u8) -> Result<(), BoardError> {
        match self.expect(&Request::Shutdown { code })? {
            Reply::Ok => Ok(()),
            other => Err(Self::unexpected("Shutdown", other)),
        }
    }
}
