pub mod synthetic;
pub mod vpx;
