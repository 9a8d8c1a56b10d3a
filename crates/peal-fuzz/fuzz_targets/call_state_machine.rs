#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peal_fuzz::proto::call_state_machine(data));
