pub mod framing;
pub mod service;
