//! Where phone confirmation codes come from (a leaf: the engine's state
//! holds a source, the phone module draws from it).

use starling_core::{Error, Result};

/// Where confirmation codes come from: each call gives a code below
/// 1,000,000, unpredictable to anyone who does not hold the source.
/// [`OsCodes`] (the operating system's CSPRNG) is the engine's default;
/// tests hand the engine their own with
/// `Engine::with_backend_and_codes`.
pub trait CodeSource: Send + Sync + 'static {
    /// The next code, below 1,000,000.
    fn next_code(&self) -> Result<u32>;
}

/// Codes from the operating system's CSPRNG, uniform over 000000..=999999.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsCodes;

impl CodeSource for OsCodes {
    fn next_code(&self) -> Result<u32> {
        // The largest multiple of 10^6 that fits in a u32: draws at or above
        // it are thrown away, so every code is equally likely.
        const ZONE: u32 = 4_294_000_000;
        loop {
            let draw = getrandom::u32()
                .map_err(|e| Error::Internal(format!("no randomness for a code: {e}")))?;
            if draw < ZONE {
                return Ok(draw % 1_000_000);
            }
        }
    }
}
