//! The board's protocol server under abuse: truncated, oversized, corrupted
//! and out-of-order frames each get a typed error reply, and the board keeps
//! serving — a real inference afterwards is still bit-exact with the host.
//!
//! QEMU is required: without it these tests fail with the install command.

use std::path::PathBuf;
use std::time::Duration;
use sturdy_protocol::{encode, ErrorCode, Request, MAX_CHUNK, MAX_FRAME};
use sturdy_tests::hil::{artifact_file, plain_firmware, qemu_options, qemu_or_fail};
use sturdy_tools::hil::session::open_board;
use sturdy_tools::hil::{Client, QemuBoard, Reply};
use sturdy_tools::host_model::HostModel;
use sturdy_tools::npy;

/// A booted board with the digits CNN, and the host's view of the same model.
struct Rig {
    client: Client,
    qemu: Option<QemuBoard>,
    host: HostModel,
    sample: Vec<f32>,
    artifact: PathBuf,
}

impl Rig {
    fn boot() -> Self {
        qemu_or_fail();
        let artifact = artifact_file("digits_dscnn");
        let opts = qemu_options("digits_dscnn", artifact.clone());
        let host = HostModel::load(&artifact).unwrap();
        let set = npy::read_samples(&opts.input, &host.meta.input.onnx_shape).unwrap();
        let (client, qemu, _) = open_board(&opts).unwrap();
        Rig {
            client,
            qemu,
            host,
            sample: set.samples[0].clone(),
            artifact,
        }
    }

    fn error(&mut self, request: &Request<'_>) -> ErrorCode {
        match self.client.request(request).unwrap() {
            Reply::Error(code) => code,
            other => panic!("{request:?} answered {other:?}, expected an error"),
        }
    }

    fn raw_error(&mut self, bytes: &[u8]) -> ErrorCode {
        match self.client.exchange_raw(bytes).unwrap() {
            Reply::Error(code) => code,
            other => panic!("raw bytes answered {other:?}, expected an error"),
        }
    }

    /// A full inference still matches the host bit for bit, then the board
    /// shuts down cleanly (a panic would have made QEMU exit with failure).
    fn still_serves(mut self, bad_frames: u32) {
        let input = self.host.quantize_input(&self.sample);
        let expected = self.host.infer_quantized(&input).unwrap();
        self.client.load_input(&input).unwrap();
        self.client.infer(None).unwrap();
        let got = self.client.read_output(expected.len()).unwrap();
        assert_eq!(got, expected, "inference after the bad frames");
        assert_eq!(self.client.stats().unwrap().bad_frames, bad_frames);
        self.client.shutdown(0).unwrap();
        let qemu = self.qemu.take().unwrap();
        let (status, _) = qemu.finish(Duration::from_secs(10)).unwrap();
        assert!(status.success(), "QEMU exited with {status}");
        let _ = std::fs::remove_file(&self.artifact);
    }
}

fn frame(request: &Request<'_>) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    encode(request, &mut buf).unwrap().to_vec()
}

#[test]
fn truncated_frames_are_refused() {
    let mut rig = Rig::boot();
    let chunk = [3u8; 64];
    let whole = frame(&Request::LoadInput {
        offset: 0,
        chunk: &chunk,
    });
    for cut in [1, 2, whole.len() / 2, whole.len() - 2] {
        let mut truncated = whole[..cut].to_vec();
        truncated.push(0);
        assert_eq!(rig.raw_error(&truncated), ErrorCode::Malformed, "cut {cut}");
    }
    rig.still_serves(4);
}

#[test]
fn oversized_frames_are_refused() {
    let mut rig = Rig::boot();
    let mut long = vec![0x55u8; 3 * MAX_FRAME];
    long.push(0);
    assert_eq!(rig.raw_error(&long), ErrorCode::Oversized);
    // A chunk larger than MAX_CHUNK inside a frame that still fits.
    let big = vec![1u8; MAX_CHUNK + 1];
    let request = Request::LoadInput {
        offset: 0,
        chunk: &big,
    };
    let mut buf = vec![0u8; 2 * MAX_FRAME];
    let bytes = postcard::to_slice_cobs(&request, &mut buf)
        .unwrap()
        .to_vec();
    assert!(bytes.len() <= MAX_FRAME);
    assert!(matches!(
        rig.raw_error(&bytes),
        ErrorCode::OutOfRange { len, .. } if len as usize == MAX_CHUNK + 1
    ));
    rig.still_serves(1);
}

#[test]
fn corrupted_frames_are_refused() {
    let mut rig = Rig::boot();
    // An unknown request variant.
    assert_eq!(rig.raw_error(&[0x02, 0x7F, 0x00]), ErrorCode::Malformed);
    // A COBS code byte pointing past the end of the frame.
    assert_eq!(rig.raw_error(&[0x09, 0x01, 0x00]), ErrorCode::Malformed);
    // A valid request followed by stray bytes.
    let mut info = frame(&Request::Info);
    info.pop();
    info.extend([0x01, 0x01, 0x00]);
    assert_eq!(rig.raw_error(&info), ErrorCode::Malformed);
    // Line noise glued in front of a valid frame spoils that frame only.
    let mut noisy = vec![0x13, 0x37];
    noisy.extend(frame(&Request::Stats));
    assert_eq!(rig.raw_error(&noisy), ErrorCode::Malformed);
    // A burst of bad frames in one write: one error each, in order.
    let burst: Vec<u8> = (0..8).flat_map(|_| [0x02, 0x7F, 0x00]).collect();
    rig.client.send_raw(&burst).unwrap();
    for _ in 0..8 {
        assert_eq!(
            rig.client.recv().unwrap(),
            Reply::Error(ErrorCode::Malformed)
        );
    }
    rig.still_serves(12);
}

#[test]
fn out_of_order_requests_are_refused() {
    let mut rig = Rig::boot();
    let info = rig.client.info().unwrap();
    let (input_len, output_len) = (info.input_len, info.output_len);
    assert_eq!(
        rig.error(&Request::ReadOutput { offset: 0, len: 4 }),
        ErrorCode::NoOutput
    );
    assert_eq!(rig.error(&Request::OpStats { op: 0 }), ErrorCode::NoOutput);
    assert_eq!(
        rig.error(&Request::Infer { domain: None }),
        ErrorCode::InputIncomplete {
            loaded: 0,
            needed: input_len
        }
    );
    let chunk = [0u8; 8];
    assert_eq!(
        rig.error(&Request::LoadInput {
            offset: 8,
            chunk: &chunk
        }),
        ErrorCode::OutOfOrder {
            expected: 0,
            got: 8
        }
    );
    assert_eq!(
        rig.error(&Request::LoadInput {
            offset: input_len - 4,
            chunk: &chunk
        }),
        ErrorCode::OutOfRange {
            offset: input_len - 4,
            len: 8,
            limit: input_len
        }
    );
    // Half an input is not enough to run.
    assert_eq!(
        rig.client
            .request(&Request::LoadInput {
                offset: 0,
                chunk: &chunk
            })
            .unwrap(),
        Reply::Ok
    );
    assert_eq!(
        rig.error(&Request::Infer { domain: None }),
        ErrorCode::InputIncomplete {
            loaded: 8,
            needed: input_len
        }
    );
    // A finished inference consumes its input and bounds its output.
    let input = rig.host.quantize_input(&rig.sample);
    rig.client.load_input(&input).unwrap();
    rig.client.infer(None).unwrap();
    assert!(matches!(
        rig.error(&Request::Infer { domain: None }),
        ErrorCode::InputIncomplete { loaded: 0, .. }
    ));
    assert_eq!(
        rig.error(&Request::ReadOutput {
            offset: output_len,
            len: 1
        }),
        ErrorCode::OutOfRange {
            offset: output_len,
            len: 1,
            limit: output_len
        }
    );
    assert!(matches!(
        rig.error(&Request::OpStats { op: 999 }),
        ErrorCode::NoSuchOp { .. }
    ));
    // None of these were bad frames: they were well-formed, wrong requests.
    rig.still_serves(0);
}

#[test]
fn a_silent_board_times_out_instead_of_hanging_the_host() {
    let elf = plain_firmware("digits_dscnn");
    // `-S`: the emulated CPU never starts, so nothing ever answers.
    let (qemu, link) = QemuBoard::launch_with(&elf, &["-S".to_string()]).unwrap();
    let mut client = Client::new(Box::new(link), Duration::from_secs(1));
    let started = std::time::Instant::now();
    let err = client.info().unwrap_err();
    assert!(
        matches!(err, sturdy_tools::hil::BoardError::Timeout { .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(qemu);
}
