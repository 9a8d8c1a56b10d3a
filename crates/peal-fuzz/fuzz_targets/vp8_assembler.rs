#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peal_fuzz::media::vp8_assembler(data));
