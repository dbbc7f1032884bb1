//! Incremental request parser.
//!
//! Requests are parsed in place: a parsed command is a list of byte ranges into
//! the connection's read buffer, so the hot path allocates nothing. Multibulk
//! parsing is resumable: a command that arrives over many reads is not
//! re-scanned from its start each time. Inline commands are unescaped in place
//! (unescaping only ever shrinks text), so they share the same representation.

use std::ops::Range;

/// Longest inline command or multibulk/bulk header line, as Redis's
/// `PROTO_INLINE_MAX_SIZE`.
pub const INLINE_MAX_SIZE: usize = 64 * 1024;
/// Largest multibulk element count accepted.
pub const MAX_MULTIBULK_COUNT: i64 = i32::MAX as i64;
/// Limits for clients that have not authenticated yet (Redis's `authRequired`).
const UNAUTHENTICATED_MAX_COUNT: i64 = 10;
const UNAUTHENTICATED_MAX_BULK: usize = 16384;

/// A protocol violation; the connection answers with the message and closes,
/// as Redis does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
}

#[derive(Debug, Default)]
struct MultibulkProgress {
    /// Elements still to read.
    remaining: usize,
    /// Length of the bulk whose header was read, if any.
    bulk_len: Option<usize>,
}

/// Parses requests out of a growing buffer.
#[derive(Debug)]
pub struct RequestParser {
    /// Offset of the next unparsed byte.
    position: usize,
    /// Argument ranges of the command being parsed.
    args: Vec<Range<usize>>,
    multibulk: Option<MultibulkProgress>,
    max_bulk_len: usize,
    /// The client must still authenticate: small limits protect the server.
    unauthenticated: bool,
}

impl RequestParser {
    pub fn new(max_bulk_len: usize) -> Self {
        Self { position: 0, args: Vec::with_capacity(8), multibulk: None, max_bulk_len, unauthenticated: false }
    }

    /// Applies (or lifts) the small limits for clients that must authenticate first.
    pub fn set_unauthenticated(&mut self, unauthenticated: bool) {
        self.unauthenticated = unauthenticated;
    }

    pub fn set_max_bulk_len(&mut self, max_bulk_len: usize) {
        self.max_bulk_len = max_bulk_len;
    }

    /// Offset of the first byte not yet consumed by a completed command.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes still needed before the pending bulk string is complete, so the
    /// caller can reserve room for big values in one step.
    pub fn pending_bulk_bytes(&self, buffer_len: usize) -> usize {
        match &self.multibulk {
            Some(MultibulkProgress { bulk_len: Some(len), .. }) => (self.position + len + 2).saturating_sub(buffer_len),
            _ => 0,
        }
    }

    /// Tells the parser that the first `consumed` bytes of the buffer were
    /// dropped; pending offsets are rebased.
    pub fn discard_prefix(&mut self, consumed: usize) {
        self.position -= consumed;
        if self.multibulk.is_none() {
            // The ranges belong to a command already executed.
            self.args.clear();
            return;
        }
        for range in &mut self.args {
            range.start -= consumed;
            range.end -= consumed;
        }
    }

    /// Parses the next complete command. Returns `Ok(Some(args))` with ranges
    /// into `buffer`, `Ok(None)` when more bytes are needed. An empty command
    /// (blank inline line, `*0`) yields an empty slice, which callers skip.
    pub fn next_command(&mut self, buffer: &mut [u8]) -> Result<Option<&[Range<usize>]>, ParseError> {
        if self.multibulk.is_none() {
            self.args.clear();
            if self.position >= buffer.len() {
                return Ok(None);
            }
            if buffer[self.position] != b'*' {
                return self.parse_inline(buffer);
            }
            let Some(line_end) = find_crlf(buffer, self.position) else {
                if buffer.len() - self.position > INLINE_MAX_SIZE {
                    return Err(ParseError::MultibulkCountTooBig);
                }
                return Ok(None);
            };
            let count = parse_length(&buffer[self.position + 1..line_end])
                .filter(|count| *count <= MAX_MULTIBULK_COUNT)
                .ok_or(ParseError::InvalidMultibulkLength)?;
            if self.unauthenticated && count > UNAUTHENTICATED_MAX_COUNT {
                return Err(ParseError::UnauthenticatedMultibulkLength);
            }
            self.position = line_end + 2;
            if count <= 0 {
                return Ok(Some(&self.args[..0]));
            }
            let count = count as usize;
            self.args.reserve(count.min(1024));
            self.multibulk = Some(MultibulkProgress { remaining: count, bulk_len: None });
        }
        loop {
            let Some(progress) = self.multibulk.as_mut() else {
                return Ok(None);
            };
            if progress.remaining == 0 {
                self.multibulk = None;
                return Ok(Some(&self.args));
            }
            match progress.bulk_len {
                None => {
                    if self.position >= buffer.len() {
                        return Ok(None);
                    }
                    if buffer[self.position] != b'$' {
                        return Err(ParseError::ExpectedBulk(buffer[self.position] as char));
                    }
                    let Some(line_end) = find_crlf(buffer, self.position) else {
                        if buffer.len() - self.position > INLINE_MAX_SIZE {
                            return Err(ParseError::BulkCountTooBig);
                        }
                        return Ok(None);
                    };
                    let len = parse_length(&buffer[self.position + 1..line_end])
                        .filter(|len| *len >= 0 && (*len as u64) <= self.max_bulk_len as u64)
                        .ok_or(ParseError::InvalidBulkLength)?;
                    if self.unauthenticated && len as usize > UNAUTHENTICATED_MAX_BULK {
                        return Err(ParseError::UnauthenticatedBulkLength);
                    }
                    self.position = line_end + 2;
                    progress.bulk_len = Some(len as usize);
                }
                Some(len) => {
                    if buffer.len() < self.position + len + 2 {
                        return Ok(None);
                    }
                    self.args.push(self.position..self.position + len);
                    self.position += len + 2;
                    progress.bulk_len = None;
                    progress.remaining -= 1;
                }
            }
        }
    }

    fn parse_inline(&mut self, buffer: &mut [u8]) -> Result<Option<&[Range<usize>]>, ParseError> {
        let start = self.position;
        let Some(newline) = memchr::memchr(b'\n', &buffer[start..]).map(|offset| start + offset) else {
            if buffer.len() - start > INLINE_MAX_SIZE {
                return Err(ParseError::InlineTooBig);
            }
            return Ok(None);
        };
        let mut end = newline;
        if end > start && buffer[end - 1] == b'\r' {
            end -= 1;
        }
        self.position = newline + 1;
        split_inline_args(buffer, start, end, &mut self.args)?;
        Ok(Some(&self.args))
    }
}

/// Calls `each` with the first two arguments (after the name) of each
/// complete multibulk command in `buffer[from..]` that has one, up to
/// `limit` commands, and returns the offset where the last of them ends
/// (`from` if none): the keys (and members) a batch is about to touch, for
/// the store to warm. Stops early at a command that is inline, incomplete
/// or malformed; the parser proper judges those.
pub fn peek_first_args<'a>(
    buffer: &'a [u8],
    from: usize,
    limit: usize,
    mut each: impl FnMut(&'a [u8], Option<&'a [u8]>),
) -> usize {
    let mut end = from;
    for _ in 0..limit {
        match peek_command(buffer, end) {
            Some((first, second, next)) => {
                if let Some(first) = first {
                    each(&buffer[first], second.map(|second| &buffer[second]));
                }
                end = next;
            }
            None => break,
        }
    }
    end
}

/// The ranges of the first two arguments of the complete multibulk command
/// at `position`, where it has them, and where the command ends.
type PeekedCommand = (Option<Range<usize>>, Option<Range<usize>>, usize);

fn peek_command(buffer: &[u8], mut position: usize) -> Option<PeekedCommand> {
    if buffer.get(position) != Some(&b'*') {
        return None;
    }
    let line_end = find_crlf(buffer, position)?;
    let count = parse_length(&buffer[position + 1..line_end])?;
    position = line_end + 2;
    let (mut first, mut second) = (None, None);
    for index in 0..count.max(0) {
        if buffer.get(position) != Some(&b'$') {
            return None;
        }
        let line_end = find_crlf(buffer, position)?;
        let len = usize::try_from(parse_length(&buffer[position + 1..line_end])?).ok()?;
        let start = line_end + 2;
        let end = start.checked_add(len).filter(|end| end + 2 <= buffer.len())?;
        match index {
            1 => first = Some(start..end),
            2 => second = Some(start..end),
            _ => {}
        }
        position = end + 2;
    }
    Some((first, second, position))
}

fn find_crlf(buffer: &[u8], from: usize) -> Option<usize> {
    let mut search = from;
    loop {
        let at = search + find_cr(&buffer[search..])?;
        if at + 1 >= buffer.len() {
            return None;
        }
        if buffer[at + 1] == b'\n' {
            return Some(at);
        }
        search = at + 1;
    }
}

/// The first `\r` in `bytes`. Header lines (`*3`, `$12`) are a few bytes
/// long: a plain scan finds their end before `memchr` has set up.
fn find_cr(bytes: &[u8]) -> Option<usize> {
    const SHORT: usize = 16;
    match bytes.iter().take(SHORT).position(|&byte| byte == b'\r') {
        Some(offset) => Some(offset),
        None if bytes.len() <= SHORT => None,
        None => memchr::memchr(b'\r', &bytes[SHORT..]).map(|offset| offset + SHORT),
    }
}

/// A length as Redis's `string2ll` reads it: an optional minus sign, then
/// `0` alone or digits without a leading zero, within `i64`. Anything else,
/// an overflowing count included, is not a length.
fn parse_length(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(digit - b'0');
        value = value.checked_mul(10)?;
        value = if negative { value.checked_sub(digit)? } else { value.checked_add(digit)? };
    }
    Some(value)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// `isspace` in the C locale, which `sdssplitargs` uses to skip blanks
/// (unlike `u8::is_ascii_whitespace`, it includes the vertical tab).
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits an inline command line like `sdssplitargs`, unescaping in place.
///
/// As there, where the line is a C string, a NUL byte ends it: the
/// arguments before it are the command, and a NUL inside quotes leaves them
/// unbalanced. Every pass of the outer loop consumes at least one byte.
fn split_inline_args(
    buffer: &mut [u8],
    start: usize,
    end: usize,
    args: &mut Vec<Range<usize>>,
) -> Result<(), ParseError> {
    let mut read = start;
    let mut write = start;
    loop {
        while read < end && is_space(buffer[read]) {
            read += 1;
        }
        if read >= end || buffer[read] == 0 {
            return Ok(());
        }
        let arg_start = write;
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                if read >= end || buffer[read] == 0 {
                    return Err(ParseError::UnbalancedQuotes);
                }
                let byte = buffer[read];
                if byte == b'\\' && read + 3 < end && buffer[read + 1] == b'x' {
                    if let (Some(high), Some(low)) = (hex_value(buffer[read + 2]), hex_value(buffer[read + 3])) {
                        buffer[write] = high * 16 + low;
                        write += 1;
                        read += 4;
                        continue;
                    }
                }
                if byte == b'\\' && read + 1 < end && buffer[read + 1] != 0 {
                    let escaped = match buffer[read + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    };
                    buffer[write] = escaped;
                    write += 1;
                    read += 2;
                } else if byte == b'"' {
                    read += 1;
                    // A closing quote must be followed by a space or the end.
                    if read < end && buffer[read] != 0 && !is_space(buffer[read]) {
                        return Err(ParseError::UnbalancedQuotes);
                    }
                    break;
                } else {
                    buffer[write] = byte;
                    write += 1;
                    read += 1;
                }
            } else if in_single {
                if read >= end || buffer[read] == 0 {
                    return Err(ParseError::UnbalancedQuotes);
                }
                let byte = buffer[read];
                if byte == b'\\' && read + 1 < end && buffer[read + 1] == b'\'' {
                    buffer[write] = b'\'';
                    write += 1;
                    read += 2;
                } else if byte == b'\'' {
                    read += 1;
                    if read < end && buffer[read] != 0 && !is_space(buffer[read]) {
                        return Err(ParseError::UnbalancedQuotes);
                    }
                    break;
                } else {
                    buffer[write] = byte;
                    write += 1;
                    read += 1;
                }
            } else {
                if read >= end {
                    break;
                }
                match buffer[read] {
                    // Where `sdssplitargs` ends an argument; the outer loop
                    // then skips the blank or stops at the NUL.
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => {
                        in_double = true;
                        read += 1;
                    }
                    b'\'' => {
                        in_single = true;
                        read += 1;
                    }
                    byte => {
                        buffer[write] = byte;
                        write += 1;
                        read += 1;
                    }
                }
            }
        }
        args.push(arg_start..write);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ParseError> {
        let mut buffer = input.to_vec();
        let mut parser = RequestParser::new(512 * 1024 * 1024);
        let mut commands = Vec::new();
        while let Some(ranges) = parser.next_command(&mut buffer)? {
            let ranges = ranges.to_vec();
            commands.push(ranges.into_iter().map(|range| buffer[range].to_vec()).collect());
        }
        Ok(commands)
    }

    fn peek(input: &[u8], limit: usize) -> (Vec<Vec<u8>>, usize) {
        let mut first_args = Vec::new();
        let end = peek_first_args(input, 0, limit, |arg, _| first_args.push(arg.to_vec()));
        (first_args, end)
    }

    #[test]
    fn peeking_also_finds_the_second_argument_where_there_is_one() {
        let input = b"*3\r\n$4\r\nSADD\r\n$1\r\ns\r\n$1\r\nm\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let mut seen = Vec::new();
        peek_first_args(input, 0, 16, |first, second| seen.push((first.to_vec(), second.map(<[u8]>::to_vec))));
        assert_eq!(seen, vec![(b"s".to_vec(), Some(b"m".to_vec())), (b"k".to_vec(), None)]);
    }

    #[test]
    fn peeking_finds_the_first_argument_of_each_complete_command_and_where_they_end() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$2\r\nbb\r\n$1\r\nv\r\n";
        assert_eq!(peek(input, 16), (vec![b"a".to_vec(), b"bb".to_vec()], input.len()));
    }

    #[test]
    fn peeking_stops_at_the_limit() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n";
        assert_eq!(peek(input, 1), (vec![b"a".to_vec()], 20));
    }

    #[test]
    fn peeking_stops_before_an_incomplete_inline_or_malformed_command() {
        let get_a = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n";
        for rest in
            [&b"*2\r\n$3\r\nGET\r\n$5\r\nab"[..], b"GET b\r\n", b"*2\r\n$x\r\n", b"*2\r\n:3\r\n", b"*2\r\n$-1\r\n"]
        {
            let input = [&get_a[..], rest].concat();
            assert_eq!(peek(&input, 16), (vec![b"a".to_vec()], get_a.len()), "{:?}", String::from_utf8_lossy(rest));
        }
    }

    #[test]
    fn peeking_leaves_a_command_with_no_argument_out() {
        assert_eq!(peek(b"*0\r\n*1\r\n$4\r\nPING\r\n", 16), (vec![], 18));
    }

    #[test]
    fn a_header_line_is_found_past_the_short_scan() {
        let long = format!("*1\r\n${}\r\n", "9".repeat(30));
        assert_eq!(find_crlf(long.as_bytes(), 4), Some(long.len() - 2));
        assert_eq!(find_crlf(b"$3\rx\r\n", 0), Some(4), "a lone \\r is not a line end");
        assert_eq!(find_crlf(b"$3\r", 0), None);
    }

    #[test]
    fn multibulk_commands_parse_into_arguments() {
        let commands = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(commands, vec![vec![b"GET".to_vec(), b"k".to_vec()], vec![b"PING".to_vec()]]);
    }

    #[test]
    fn a_command_split_across_reads_resumes_where_it_stopped() {
        let whole = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        let mut parser = RequestParser::new(1024);
        let mut buffer = Vec::new();
        for (index, byte) in whole.iter().enumerate() {
            buffer.push(*byte);
            let result = parser.next_command(&mut buffer).unwrap().map(|ranges| ranges.to_vec());
            if index + 1 < whole.len() {
                assert!(result.is_none(), "complete too early at byte {index}");
            } else {
                let ranges = result.unwrap();
                assert_eq!(&buffer[ranges[2].clone()], b"value");
            }
        }
    }

    #[test]
    fn inline_commands_split_on_spaces_and_unescape_quotes() {
        let commands = parse_all(b"set \"a b\" 'c\\'d' \"\\x41\\n\"\r\nPING\n").unwrap();
        assert_eq!(
            commands,
            vec![vec![b"set".to_vec(), b"a b".to_vec(), b"c'd".to_vec(), b"A\n".to_vec()], vec![b"PING".to_vec()]]
        );
    }

    #[test]
    fn malformed_requests_get_redis_protocol_errors() {
        assert_eq!(parse_all(b"*x\r\n"), Err(ParseError::InvalidMultibulkLength));
        assert_eq!(parse_all(b"*1\r\n+foo\r\n"), Err(ParseError::ExpectedBulk('+')));
        assert_eq!(parse_all(b"*1\r\n$-5\r\n"), Err(ParseError::InvalidBulkLength));
        assert_eq!(parse_all(b"set \"unterminated\r\n"), Err(ParseError::UnbalancedQuotes));
    }

    #[test]
    fn bulk_longer_than_the_limit_is_refused() {
        let mut parser = RequestParser::new(10);
        let mut buffer = b"*1\r\n$11\r\n".to_vec();
        assert_eq!(parser.next_command(&mut buffer).unwrap_err(), ParseError::InvalidBulkLength);
    }

    #[test]
    fn header_lines_without_terminator_are_bounded() {
        let mut buffer = vec![b'*'];
        buffer.extend(std::iter::repeat_n(b'1', INLINE_MAX_SIZE + 10));
        let mut parser = RequestParser::new(10);
        assert_eq!(parser.next_command(&mut buffer).unwrap_err(), ParseError::MultibulkCountTooBig);
        let mut inline = vec![b'a'; INLINE_MAX_SIZE + 10];
        let mut parser = RequestParser::new(10);
        assert_eq!(parser.next_command(&mut inline).unwrap_err(), ParseError::InlineTooBig);
    }

    #[test]
    fn an_inline_request_ends_at_a_nul_byte() {
        // Found by fuzzing: the blank-skipping loop did not consume a NUL, the
        // argument loop stopped at it, and the parser pushed empty arguments
        // forever (under the store lock, memory growing without bound).
        let commands = parse_all(b"SET k v\0ignored\r\n\0\r\nPING\r\n").unwrap();
        assert_eq!(
            commands,
            vec![vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()], Vec::new(), vec![b"PING".to_vec()]]
        );
        let commands = parse_all(b"\"quoted\"\0x\r\n").unwrap();
        assert_eq!(commands, vec![vec![b"quoted".to_vec()]]);
    }

    #[test]
    fn a_nul_byte_inside_quotes_leaves_them_unbalanced() {
        assert_eq!(parse_all(b"SET \"a\0b\" v\r\n"), Err(ParseError::UnbalancedQuotes));
        assert_eq!(parse_all(b"SET 'a\0b' v\r\n"), Err(ParseError::UnbalancedQuotes));
        assert_eq!(parse_all(b"SET \"a\\\0\" v\r\n"), Err(ParseError::UnbalancedQuotes));
        // Written as an escape, a NUL is an ordinary byte.
        assert_eq!(parse_all(b"SET \"a\\x00b\"\r\n").unwrap(), vec![vec![b"SET".to_vec(), b"a\0b".to_vec()]]);
    }

    #[test]
    fn inline_blanks_are_those_of_c_isspace() {
        let commands = parse_all(b"\x0bPING\x0c \x0b x\x0by\r\n").unwrap();
        assert_eq!(commands, vec![vec![b"PING\x0c".to_vec(), b"x\x0by".to_vec()]]);
    }

    #[test]
    fn lengths_are_read_as_redis_string2ll_reads_them() {
        // Found writing the fuzz target: 19 digits overflowed i64 (a panic in debug builds,
        // a wrapped, possibly negative, count in release builds).
        assert_eq!(parse_all(b"*9999999999999999999\r\n"), Err(ParseError::InvalidMultibulkLength));
        assert_eq!(parse_all(b"*1\r\n$9999999999999999999\r\n"), Err(ParseError::InvalidBulkLength));
        assert_eq!(parse_all(b"*01\r\n"), Err(ParseError::InvalidMultibulkLength));
        assert_eq!(parse_all(b"*1\r\n$01\r\nx\r\n"), Err(ParseError::InvalidBulkLength));
        assert_eq!(parse_all(b"*-0\r\n"), Err(ParseError::InvalidMultibulkLength));
        assert_eq!(parse_all(b"*-9223372036854775808\r\n").unwrap(), vec![Vec::<Vec<u8>>::new()]);
        assert_eq!(parse_length(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_length(b"9223372036854775808"), None);
        assert_eq!(parse_length(b"-9223372036854775809"), None);
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"-"), None);
        assert_eq!(parse_length(b""), None);
    }

    #[test]
    fn empty_lines_and_zero_counts_yield_empty_commands() {
        let commands = parse_all(b"\r\n*0\r\n").unwrap();
        assert_eq!(commands, vec![Vec::<Vec<u8>>::new(), Vec::new()]);
    }
}
