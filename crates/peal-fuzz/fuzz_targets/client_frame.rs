#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peal_fuzz::proto::client_frame(data));
