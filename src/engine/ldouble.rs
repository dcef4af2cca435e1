//! Long double arithmetic for INCRBYFLOAT/HINCRBYFLOAT, through `c/ldouble.c`: Rust has no
//! 80-bit float, and Redis's replies depend on its precision ("10.5" + "0.1" is "10.6").

use std::os::raw::{c_char, c_int};

extern "C" {
    fn redsim_incrbyfloat(
        a: *const c_char,
        alen: usize,
        b: *const c_char,
        blen: usize,
        out: *mut c_char,
        outcap: usize,
        outlen: *mut usize,
    ) -> c_int;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdError {
    /// An operand is not a valid float.
    NotFloat,
    /// The sum is NaN or infinite.
    NanOrInfinity,
}

/// `cur + incr` in long double, formatted as Redis's `ld2string(LD_STR_HUMAN)`.
pub fn incr_by_float(cur: &[u8], incr: &[u8]) -> Result<Vec<u8>, LdError> {
    let mut out = vec![0u8; 6 * 1024];
    let mut len = 0usize;
    // SAFETY: pointers and lengths describe live buffers; the C side writes at most outcap
    // bytes into `out` and its length into `len`.
    let rc = unsafe {
        redsim_incrbyfloat(
            cur.as_ptr().cast(),
            cur.len(),
            incr.as_ptr().cast(),
            incr.len(),
            out.as_mut_ptr().cast(),
            out.len(),
            &mut len,
        )
    };
    match rc {
        0 => {
            out.truncate(len);
            Ok(out)
        }
        1 => Err(LdError::NotFloat),
        _ => Err(LdError::NanOrInfinity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_long_double_formatting() {
        assert_eq!(incr_by_float(b"10.5", b"0.1").unwrap(), b"10.6");
        assert_eq!(incr_by_float(b"0.1", b"0.2").unwrap(), b"0.3");
        assert_eq!(incr_by_float(b"5", b"-5").unwrap(), b"0");
        assert_eq!(incr_by_float(b"1", b"1.5e2").unwrap(), b"151");
        assert_eq!(incr_by_float(b"abc", b"1"), Err(LdError::NotFloat));
        assert_eq!(incr_by_float(b" 1", b"1"), Err(LdError::NotFloat));
        assert_eq!(incr_by_float(b"1", b"inf"), Err(LdError::NanOrInfinity));
    }
}
