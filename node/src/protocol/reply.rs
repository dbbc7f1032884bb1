//! Reply encoding for RESP2 and RESP3.
//!
//! Commands write their replies straight into the connection's output buffer
//! through [`Reply`], which picks the RESP2 or RESP3 form of each type (maps,
//! sets, doubles and nulls differ between the two).

use crate::util;

/// Writes replies into an output buffer in the client's protocol version.
pub struct Reply<'a> {
    pub out: &'a mut Vec<u8>,
    pub resp3: bool,
}

impl<'a> Reply<'a> {
    pub fn new(out: &'a mut Vec<u8>, resp3: bool) -> Self {
        Self { out, resp3 }
    }

    fn header(&mut self, prefix: u8, len: i64) {
        self.out.push(prefix);
        util::push_int(self.out, len);
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    pub fn simple(&mut self, text: &str) {
        self.out.push(b'+');
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// An error reply; `message` carries its own code prefix (`ERR`, `WRONGTYPE`).
    pub fn error(&mut self, message: &str) {
        self.out.push(b'-');
        // Error lines must not contain newlines.
        for byte in message.bytes() {
            self.out.push(if byte == b'\r' || byte == b'\n' { b' ' } else { byte });
        }
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, value: i64) {
        self.header(b':', value);
    }

    pub fn bulk(&mut self, value: &[u8]) {
        self.header(b'$', value.len() as i64);
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of an integer.
    pub fn bulk_int(&mut self, value: i64) {
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(value);
        self.bulk(text.as_bytes());
    }

    /// The null bulk string (`$-1`, or `_` in RESP3).
    pub fn null(&mut self) {
        if self.resp3 {
            self.out.extend_from_slice(b"_\r\n");
        } else {
            self.out.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null array (`*-1`, or `_` in RESP3).
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.out.extend_from_slice(b"_\r\n");
        } else {
            self.out.extend_from_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, len: usize) {
        self.header(b'*', len as i64);
    }

    /// A map of `len` pairs: a flat array of 2*len in RESP2.
    pub fn map(&mut self, len: usize) {
        if self.resp3 {
            self.header(b'%', len as i64);
        } else {
            self.header(b'*', 2 * len as i64);
        }
    }

    /// A set of `len` members: an array in RESP2.
    pub fn set(&mut self, len: usize) {
        if self.resp3 {
            self.header(b'~', len as i64);
        } else {
            self.header(b'*', len as i64);
        }
    }

    /// A double: `%.17g` as a bulk string in RESP2, a `,` double in RESP3.
    pub fn double(&mut self, value: f64) {
        let mut text = Vec::with_capacity(24);
        util::format_g17(value, &mut text);
        if self.resp3 {
            self.out.push(b',');
            self.out.extend_from_slice(&text);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(&text);
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, the integer 1/0 in RESP2.
    pub fn boolean(&mut self, value: bool) {
        if self.resp3 {
            self.out.extend_from_slice(if value { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(i64::from(value));
        }
    }

    /// Free text (INFO, CLIENT LIST): a verbatim string in RESP3.
    pub fn verbatim(&mut self, text: &[u8]) {
        if self.resp3 {
            self.header(b'=', text.len() as i64 + 4);
            self.out.extend_from_slice(b"txt:");
            self.out.extend_from_slice(text);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// Raw, already-encoded protocol bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_and_nulls_differ_between_resp2_and_resp3() {
        let mut out = Vec::new();
        let mut reply = Reply::new(&mut out, false);
        reply.map(1);
        reply.null();
        reply.double(1.5);
        assert_eq!(out, b"*2\r\n$-1\r\n$3\r\n1.5\r\n");
        let mut out = Vec::new();
        let mut reply = Reply::new(&mut out, true);
        reply.map(1);
        reply.null();
        reply.double(1.5);
        assert_eq!(out, b"%1\r\n_\r\n,1.5\r\n");
    }

    #[test]
    fn error_text_never_breaks_the_line() {
        let mut out = Vec::new();
        Reply::new(&mut out, false).error("ERR bad\r\nthing");
        assert_eq!(out, b"-ERR bad  thing\r\n");
    }
}
