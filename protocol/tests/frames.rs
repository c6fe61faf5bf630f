//! Encode/decode round trips, size bounds and malformed input for the
//! hardware-in-loop protocol.

use proptest::prelude::*;
use sturdy_protocol::*;

fn roundtrip_request(request: &Request<'_>) -> usize {
    let mut buf = [0u8; MAX_FRAME];
    let frame = encode(request, &mut buf).expect("fits");
    let len = frame.len();
    assert_eq!(frame.last(), Some(&0), "frame ends with the delimiter");
    assert!(!frame[..len - 1].contains(&0), "no zero inside a frame");
    let back: Request<'_> = decode(frame).expect("decodes");
    assert_eq!(&back, request);
    len
}

fn roundtrip_response(response: &Response<'_>) -> usize {
    let mut buf = [0u8; MAX_FRAME];
    let frame = encode(response, &mut buf).expect("fits");
    let len = frame.len();
    let back: Response<'_> = decode(frame).expect("decodes");
    assert_eq!(&back, response);
    len
}

fn big_info() -> Info {
    let version = Version {
        major: u16::MAX,
        minor: u16::MAX,
        patch: u16::MAX,
    };
    Info {
        protocol: u16::MAX,
        firmware: version,
        board: Board::NucleoF401re,
        artifact_format: version,
        artifact_len: u32::MAX,
        artifact_crc: u32::MAX,
        model_fault: Some(ModelFault::Other),
        arena_needed: u32::MAX,
        arena_capacity: u32::MAX,
        input_len: u32::MAX,
        output_len: u32::MAX,
        op_count: u16::MAX,
        counter: CounterUnit::Cycles,
        counter_resolution: u32::MAX,
        memory: Memory {
            flash_total: u32::MAX,
            flash_used: u32::MAX,
            code: u32::MAX,
            artifact: u32::MAX,
            ram_total: u32::MAX,
            ram_static: u32::MAX,
            arena: u32::MAX,
            stack_reserved: u32::MAX,
        },
        protection: Some(Protection {
            stored_bits: u32::MAX,
            codewords: u32::MAX,
            n: u16::MAX,
            k: u16::MAX,
            blocks: u32::MAX,
            inner_len: u32::MAX,
            ram: u32::MAX,
            fault: Some(ProtectFault::Model(ModelFault::Other)),
        }),
    }
}

fn big_scrub() -> ScrubStats {
    ScrubStats {
        steps: u32::MAX,
        passes: u32::MAX,
        position: u32::MAX,
        checked: u32::MAX,
        corrected_words: u32::MAX,
        corrected_bits: u32::MAX,
        uncorrectable_words: u32::MAX,
        decoded_bits_repaired: u32::MAX,
        last_cost: u64::MAX,
        last_checked: u32::MAX,
        worst_cost: u64::MAX,
        worst_checked: u32::MAX,
        aging: AgingStats {
            passes: u32::MAX,
            last_bits: u32::MAX,
            trend_milli: i64::MIN,
            trend_lower_milli: i64::MIN,
            projected_bits: u32::MAX,
            limit_bits: u32::MAX,
            uncorrectable_seen: true,
            alarm: true,
            ram_bytes: u32::MAX,
        },
    }
}

fn big_health() -> Health {
    Health {
        loads: u32::MAX,
        load_cost: u64::MAX,
        codewords_checked: u32::MAX,
        corrected_words: u32::MAX,
        corrected_bits: u32::MAX,
        uncorrectable_words: u32::MAX,
        blocks_checked: u32::MAX,
        mac_failures: u32::MAX,
        injected_bits: u32::MAX,
        syndrome_check_cost: u64::MAX,
    }
}

#[test]
fn every_request_round_trips() {
    let chunk = [0xAAu8; MAX_CHUNK];
    for request in [
        Request::Info,
        Request::LoadInput {
            offset: u32::MAX,
            chunk: &chunk,
        },
        Request::LoadInput {
            offset: 0,
            chunk: &[],
        },
        Request::Infer { domain: None },
        Request::ReadOutput {
            offset: u32::MAX,
            len: u16::MAX,
        },
        Request::Stats,
        Request::OpStats { op: u16::MAX },
        Request::Shutdown { code: 255 },
        Request::InjectFaults { bits: &chunk },
        Request::Reload {
            restore: true,
            measure: true,
        },
        Request::Scrub {
            codewords: u32::MAX,
        },
        Request::ScrubEvery {
            period: u64::MAX,
            codewords: u32::MAX,
            passes_to_end_of_life: u32::MAX,
        },
        Request::Adapt { on: true },
        Request::Drift,
        Request::TimingFaults {
            rate_ppb: u32::MAX,
            seed: u32::MAX,
            policy: GuardMode::Strict,
        },
    ] {
        assert!(roundtrip_request(&request) <= MAX_FRAME);
    }
}

#[test]
fn every_response_round_trips_within_max_frame() {
    let zeros = [0u8; MAX_CHUNK];
    let errors = [
        ErrorCode::Malformed,
        ErrorCode::Oversized,
        ErrorCode::OutOfRange {
            offset: u32::MAX,
            len: u32::MAX,
            limit: u32::MAX,
        },
        ErrorCode::OutOfOrder {
            expected: u32::MAX,
            got: u32::MAX,
        },
        ErrorCode::InputIncomplete {
            loaded: u32::MAX,
            needed: u32::MAX,
        },
        ErrorCode::NoOutput,
        ErrorCode::NoSuchOp { op_count: u16::MAX },
        ErrorCode::Model(ModelFault::BadIoLength),
        ErrorCode::NotProtected,
        ErrorCode::BadInjection { len: u32::MAX },
        ErrorCode::BitOutOfRange {
            bit: u32::MAX,
            limit: u32::MAX,
        },
        ErrorCode::Protect(ProtectFault::Model(ModelFault::Other)),
        ErrorCode::Adapting,
        ErrorCode::NotAdapting,
        ErrorCode::Model(ModelFault::NoDriftMonitor),
        ErrorCode::Model(ModelFault::KernelNotLinked),
    ];
    let mut responses = vec![
        Response::Info(big_info()),
        Response::Ok,
        // All zeros is COBS's worst case: every byte becomes a group.
        Response::Output {
            offset: u32::MAX,
            data: &zeros,
        },
        Response::Stats(Stats {
            inferences: u32::MAX,
            unit: CounterUnit::Instructions,
            last: u64::MAX,
            stack_peak: u32::MAX,
            bad_frames: u32::MAX,
            health: Some(big_health()),
            guards: GuardStats {
                ops_checked: u32::MAX,
                values_clamped: u32::MAX,
                trips: u32::MAX,
                trips_after_rerun: u32::MAX,
            },
            guard_trips: u32::MAX,
            scrub: Some(big_scrub()),
            timing_flips: u32::MAX,
        }),
        Response::Drift(DriftStats {
            samples: u32::MAX,
            statistic: u32::MAX,
            cusum: u32::MAX,
            refits: u32::MAX,
            rollbacks: u32::MAX,
            first_alarm: Some(u32::MAX),
            refitted: true,
            rolled_back: true,
            values_observed: u32::MAX,
            input_cost: u64::MAX,
            output_cost: u64::MAX,
            refit_cost: u64::MAX,
            ram_bytes: u32::MAX,
        }),
        Response::Health(big_health()),
        Response::Scrubbed(big_scrub()),
        Response::OpStats {
            op: u16::MAX,
            kind: u16::MAX,
            count: u64::MAX,
        },
    ];
    responses.extend(errors.map(Response::Error));
    for response in responses {
        assert!(roundtrip_response(&response) <= MAX_FRAME);
    }
}

#[test]
fn a_chunk_larger_than_max_chunk_does_not_encode_past_max_frame() {
    let chunk = [1u8; MAX_FRAME];
    let request = Request::LoadInput {
        offset: 0,
        chunk: &chunk,
    };
    let mut buf = [0u8; 2 * MAX_FRAME];
    assert_eq!(encode(&request, &mut buf), Err(FrameError::BufferTooSmall));
}

#[test]
fn every_truncation_of_a_frame_is_malformed() {
    let chunk: Vec<u8> = (0..=255u8).collect();
    let request = Request::LoadInput {
        offset: 300,
        chunk: &chunk,
    };
    let mut buf = [0u8; MAX_FRAME];
    let frame = encode(&request, &mut buf).unwrap().to_vec();
    for cut in 0..frame.len() - 1 {
        let mut prefix = frame[..cut].to_vec();
        assert_eq!(
            decode::<Request<'_>>(&mut prefix),
            Err(FrameError::Malformed),
            "prefix of {cut} bytes"
        );
    }
}

#[test]
fn unknown_variant_and_trailing_bytes_are_malformed() {
    // COBS of [0x7F] (no such Request variant).
    assert_eq!(
        decode::<Request<'_>>(&mut [0x02, 0x7F, 0x00]),
        Err(FrameError::Malformed)
    );
    // COBS of [Info, 0x05]: a valid request followed by a stray byte.
    assert_eq!(
        decode::<Request<'_>>(&mut [0x01, 0x02, 0x05]),
        Err(FrameError::Malformed)
    );
    // A zero inside the frame.
    assert_eq!(
        decode::<Request<'_>>(&mut [0x03, 0x02, 0x00, 0x01]),
        Err(FrameError::Malformed)
    );
    assert_eq!(decode::<Request<'_>>(&mut []), Err(FrameError::Malformed));
}

#[test]
fn deframer_splits_a_stream_and_survives_an_oversized_frame() {
    let mut stream = vec![0u8, 0]; // leading delimiters are ignored
    stream.extend(std::iter::repeat_n(7u8, MAX_FRAME + 10));
    stream.push(0);
    let mut buf = [0u8; MAX_FRAME];
    stream.extend_from_slice(encode(&Request::Infer { domain: Some(3) }, &mut buf).unwrap());
    stream.extend_from_slice(encode(&Request::Stats, &mut buf).unwrap());

    let mut deframer = Deframer::<MAX_FRAME>::new();
    let mut seen = Vec::new();
    for byte in stream {
        match deframer.push(byte) {
            None => {}
            Some(Framed::Oversized) => seen.push("oversized".to_string()),
            Some(Framed::Frame(frame)) => {
                seen.push(format!("{:?}", decode::<Request<'_>>(frame).unwrap()))
            }
        }
    }
    assert_eq!(seen, ["oversized", "Infer { domain: Some(3) }", "Stats"]);
    assert_eq!(deframer.pending(), 0);
}

fn arb_request() -> impl Strategy<Value = (u8, u32, Vec<u8>, u16)> {
    (
        0u8..7,
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..=MAX_CHUNK),
        any::<u16>(),
    )
}

fn build(kind: u8, offset: u32, chunk: &[u8], small: u16) -> Request<'_> {
    match kind {
        0 => Request::Info,
        1 => Request::LoadInput { offset, chunk },
        2 => Request::Infer {
            domain: (small % 2 == 0).then_some(offset),
        },
        3 => Request::ReadOutput { offset, len: small },
        4 => Request::Stats,
        5 => Request::OpStats { op: small },
        _ => Request::Shutdown { code: small as u8 },
    }
}

proptest! {
    #[test]
    fn requests_round_trip_through_the_deframer(
        messages in proptest::collection::vec(arb_request(), 1..8)
    ) {
        let mut stream = Vec::new();
        let mut buf = [0u8; MAX_FRAME];
        for (kind, offset, chunk, small) in &messages {
            stream.extend_from_slice(encode(&build(*kind, *offset, chunk, *small), &mut buf).unwrap());
        }
        let mut deframer = Deframer::<MAX_FRAME>::new();
        let mut expected = messages.iter();
        for byte in stream {
            if let Some(Framed::Frame(frame)) = deframer.push(byte) {
                let (kind, offset, chunk, small) = expected.next().unwrap();
                let got: Request<'_> = decode(frame).unwrap();
                prop_assert_eq!(got, build(*kind, *offset, chunk, *small));
            }
        }
        prop_assert!(expected.next().is_none());
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode::<Request<'_>>(&mut bytes.clone());
        let _ = decode::<Response<'_>>(&mut bytes);
        let mut deframer = Deframer::<64>::new();
        for byte in bytes {
            if let Some(Framed::Frame(frame)) = deframer.push(byte) {
                prop_assert!(frame.len() <= 64 && !frame.contains(&0));
            }
        }
    }

    #[test]
    fn a_flipped_byte_never_panics(
        chunk in proptest::collection::vec(any::<u8>(), 1..=MAX_CHUNK),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let request = Request::LoadInput { offset: 0, chunk: &chunk };
        let mut buf = [0u8; MAX_FRAME];
        let frame = encode(&request, &mut buf).unwrap();
        let body = frame.len() - 1;
        let i = at.index(body);
        frame[i] ^= flip;
        // Either an error or some request: never a panic. (COBS has no
        // checksum; the board guards semantics with offsets and lengths.)
        let _ = decode::<Request<'_>>(&mut frame[..body]);
    }
}
