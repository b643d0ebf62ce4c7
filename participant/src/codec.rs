//! A small, explicit binary encoding for the records a group logs and the
//! snapshots it takes: little-endian integers, length-prefixed byte strings.
//! Every read is bounds-checked; nothing here panics on bad input.

use bytes::{BufMut, Bytes, BytesMut};
use meridian_truetime::Timestamp;

use crate::types::TxnId;

/// Why a record or snapshot could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated {what}: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes missing.
        needed: usize,
        /// Where the field started.
        offset: usize,
    },
    /// The first byte names a format this build does not know.
    #[error("unknown format version {0}")]
    Version(u8),
    /// A tag byte names no known variant.
    #[error("unknown {what} tag {tag}")]
    Tag {
        /// What the tag selects.
        what: &'static str,
        /// The tag read.
        tag: u8,
    },
    /// The fields decode but break a rule of the format.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// Bytes were left over after a complete record.
    #[error("{0} trailing bytes after the record")]
    Trailing(usize),
}

/// Appends fields to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: BytesMut,
}

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Writer {
        Writer {
            buf: BytesMut::with_capacity(n),
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.put_u32_le(v);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.put_u64_le(v);
    }

    pub(crate) fn ts(&mut self, t: Timestamp) {
        self.u64(t.as_nanos());
    }

    pub(crate) fn txn(&mut self, t: TxnId) {
        self.u64(t.origin);
        self.u64(t.seq);
    }

    /// A length-prefixed byte string. Lengths above `u32::MAX` cannot occur:
    /// keys and values are bounded far below that at the API.
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        let len = u32::try_from(b.len()).expect("byte strings are bounded far below 4 GiB");
        self.u32(len);
        self.buf.put_slice(b);
    }

    /// An optional byte string: a presence byte, then the string.
    pub(crate) fn opt_bytes(&mut self, b: Option<&Bytes>) {
        match b {
            None => self.u8(0),
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
        }
    }

    /// A count of items that follow.
    pub(crate) fn len(&mut self, n: usize) {
        let n = u32::try_from(n).expect("item counts are bounded far below 4 billion");
        self.u32(n);
    }

    pub(crate) fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}

/// Reads fields from a buffer; byte strings are zero-copy slices of it.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    src: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(src: &'a Bytes) -> Reader<'a> {
        Reader { src, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let rest = self.src.len() - self.pos;
        if rest < n {
            return Err(DecodeError::Truncated {
                what,
                needed: n - rest,
                offset: self.pos,
            });
        }
        let s = &self.src[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn ts(&mut self, what: &'static str) -> Result<Timestamp, DecodeError> {
        self.u64(what).map(Timestamp::from_nanos)
    }

    pub(crate) fn txn(&mut self) -> Result<TxnId, DecodeError> {
        Ok(TxnId::new(self.u64("txn origin")?, self.u64("txn seq")?))
    }

    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u32(what)? as usize;
        let start = self.pos;
        self.take(len, what)?;
        Ok(self.src.slice(start..start + len))
    }

    pub(crate) fn opt_bytes(&mut self, what: &'static str) -> Result<Option<Bytes>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => self.bytes(what).map(Some),
            tag => Err(DecodeError::Tag { what, tag }),
        }
    }

    /// A count of items, checked against the bytes left (each item takes at
    /// least `min_item` bytes), so a corrupt count cannot make the caller
    /// allocate without bound.
    pub(crate) fn len(
        &mut self,
        what: &'static str,
        min_item: usize,
    ) -> Result<usize, DecodeError> {
        let n = self.u32(what)? as usize;
        let rest = self.src.len() - self.pos;
        let need = n.saturating_mul(min_item.max(1));
        if need > rest {
            return Err(DecodeError::Truncated {
                what,
                needed: need - rest,
                offset: self.pos,
            });
        }
        Ok(n)
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.src.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}
