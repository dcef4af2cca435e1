//! Compact byte strings for keys and short values. Redis packs an `embstr` object and its
//! bytes into one allocation; here strings of up to 22 bytes live inline in the 24-byte value
//! itself, so a typical key or small value costs no allocation at all.

use std::fmt;

/// Longest string kept inline.
pub const INLINE_CAP: usize = 22;

#[derive(Clone, PartialEq, Eq)]
pub enum SmallBytes {
    Inline { len: u8, buf: [u8; INLINE_CAP] },
    Heap(Box<[u8]>),
}

impl SmallBytes {
    pub fn new(b: &[u8]) -> Self {
        if b.len() <= INLINE_CAP {
            let mut buf = [0u8; INLINE_CAP];
            buf[..b.len()].copy_from_slice(b);
            SmallBytes::Inline { len: b.len() as u8, buf }
        } else {
            SmallBytes::Heap(b.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, buf } => &buf[..*len as usize],
            SmallBytes::Heap(b) => b,
        }
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated outside the value itself (for MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        heap_bytes_for(self.len())
    }
}

/// Heap bytes a `SmallBytes` of `len` bytes allocates.
pub fn heap_bytes_for(len: usize) -> usize {
    if len <= INLINE_CAP {
        0
    } else {
        crate::env::alloc::size_class(len)
    }
}

impl std::ops::Deref for SmallBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(b: &[u8]) -> Self {
        SmallBytes::new(b)
    }
}

impl From<&Box<[u8]>> for SmallBytes {
    fn from(b: &Box<[u8]>) -> Self {
        SmallBytes::new(b)
    }
}

impl From<Box<[u8]>> for SmallBytes {
    fn from(b: Box<[u8]>) -> Self {
        if b.len() <= INLINE_CAP {
            SmallBytes::new(&b)
        } else {
            SmallBytes::Heap(b)
        }
    }
}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl AsRef<[u8]> for SmallBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_up_to_22_bytes() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        let s = SmallBytes::new(b"key:0000000001");
        assert!(matches!(s, SmallBytes::Inline { .. }));
        assert_eq!(&*s, b"key:0000000001");
        let long = SmallBytes::new(&[7u8; 23]);
        assert!(matches!(long, SmallBytes::Heap(_)));
        assert_eq!(long.len(), 23);
    }
}
