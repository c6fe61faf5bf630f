//! Any bytes through `Model::parse`, and any model that parses through one
//! inference: the fuzzer looks for a panic or an out-of-bounds read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sturdy_runtime::Model;

fuzz_target!(|data: &[u8]| {
    // Copy into 4-byte-aligned storage, as flash placement would be.
    let mut words = vec![0u32; data.len().div_ceil(4)];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    bytes[..data.len()].copy_from_slice(data);
    let Ok(model) = Model::parse(&bytes[..data.len()]) else {
        return;
    };
    if model.arena_size() > 1 << 20 {
        return;
    }
    let mut arena = vec![0u8; model.arena_size()];
    let input = vec![1i8; model.input_len()];
    let mut output = vec![0i8; model.output_len()];
    let _ = model.infer(&mut arena, &input, &mut output);
});
