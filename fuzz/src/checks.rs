//! What each fuzz target asserts about one input.
//!
//! Shared by the fuzz targets (`fuzz/fuzz_targets/`) and the node's test
//! suite (`node/tests/fuzz_regressions.rs` includes this file by path), so
//! an input the fuzzer once failed on is replayed with the same assertions
//! by `cargo test`. Depends on `ferrocache_node` and `std` only.
//!
//! Every check must hold for any bytes: decoders of untrusted input answer
//! with an error, never a panic, an endless loop or an allocation sized by a
//! corrupt length (the fuzz binaries cap single allocations; see
//! `CappedAllocator` in `fuzz/src/lib.rs`).

/// The RESP request parser (`protocol::request`), as a connection drives it.
///
/// Input layout: byte 0 holds options, byte 1 seeds the chunk sizes, the
/// rest is the byte stream a client sends. The stream is parsed twice: in
/// one buffer, and fed in chunks the way reads deliver it, with the
/// consumed prefix dropped between reads as the server does. Both must
/// yield the same commands and end with the same error (or none), every
/// completed command must advance the parser, and nothing may panic.
pub mod resp_parser {
    use ferrocache_node::protocol::request::INLINE_MAX_SIZE;
    use ferrocache_node::protocol::{ParseError, RequestParser};

    /// What parsing a stream produced.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Outcome {
        pub commands: Vec<Vec<Vec<u8>>>,
        pub error: Option<ParseError>,
    }

    /// The parser's settings an input selects.
    #[derive(Debug, Clone, Copy)]
    pub struct Options {
        pub max_bulk_len: usize,
        pub unauthenticated: bool,
        /// Largest chunk a read delivers (chunk sizes vary from 1 to this).
        pub max_chunk: usize,
        pub seed: u8,
    }

    impl Options {
        fn from_bytes(flags: u8, seed: u8) -> Self {
            let max_bulk_len = [512 << 20, 0, 5, 100][usize::from((flags >> 1) & 3)];
            let max_chunk = [4, 64, 1024, 1][usize::from((flags >> 3) & 3)];
            Options { max_bulk_len, unauthenticated: flags & 1 != 0, max_chunk, seed }
        }
    }

    pub fn check(data: &[u8]) {
        let (options, stream) = match data {
            [flags, seed, stream @ ..] => (Options::from_bytes(*flags, *seed), stream),
            _ => return,
        };
        // Header lines without a terminator are refused once a buffer holds
        // more than INLINE_MAX_SIZE bytes of them, so for longer streams the
        // verdict rightly depends on how reads split them (as in Redis).
        let stream = &stream[..stream.len().min(INLINE_MAX_SIZE)];
        let whole = parse(stream, &options, std::iter::repeat(stream.len().max(1)));
        let mut state = u32::from(options.seed).wrapping_mul(0x9e37_79b9) | 1;
        let chunks = std::iter::repeat_with(move || {
            // xorshift32: chunk sizes the input controls through its seed byte.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            1 + state as usize % options.max_chunk
        });
        let chunked = parse(stream, &options, chunks);
        assert_eq!(whole, chunked, "a stream parsed in one buffer and in chunks gave different commands");
    }

    /// Feeds `stream` in chunks of the sizes `chunks` yields, parsing after
    /// each as `server::Connection` does.
    pub fn parse(stream: &[u8], options: &Options, mut chunks: impl Iterator<Item = usize>) -> Outcome {
        let mut parser = RequestParser::new(options.max_bulk_len);
        parser.set_unauthenticated(options.unauthenticated);
        let mut buffer = Vec::new();
        let mut commands = Vec::new();
        let mut fed = 0;
        while fed < stream.len() {
            let chunk = chunks.next().unwrap_or(stream.len()).clamp(1, stream.len() - fed);
            buffer.extend_from_slice(&stream[fed..fed + chunk]);
            fed += chunk;
            let mut consumed = 0;
            loop {
                let before = parser.position();
                let command = match parser.next_command(&mut buffer) {
                    Ok(Some(ranges)) => ranges.to_vec(),
                    Ok(None) => break,
                    Err(error) => return Outcome { commands, error: Some(error) },
                };
                let after = parser.position();
                assert!(after > before, "a completed command did not advance the parser (at {before})");
                assert!(after <= buffer.len(), "the parser is past the end of its buffer");
                commands.push(command.into_iter().map(|range| buffer[range].to_vec()).collect());
                consumed = after;
            }
            assert!(parser.position() <= buffer.len(), "the parser is past the end of its buffer");
            let pending = parser.pending_bulk_bytes(buffer.len());
            assert!(pending <= options.max_bulk_len.saturating_add(2), "pending bulk beyond the bulk limit");
            if consumed > 0 {
                buffer.drain(..consumed);
                parser.discard_prefix(consumed);
            }
        }
        Outcome { commands, error: None }
    }
}

/// The snapshot loader (`snapshot::load::load_stream`, the node's own sink
/// building a store), fed any bytes as an RDB file of known length, and the
/// format layer's reader (`rdb::RdbReader`) fed them as a stream of unknown
/// length into the owned model.
///
/// A load either fails, leaving the store empty, or succeeds with the store
/// holding exactly the keys it reports; when the node accepts a file, the
/// model reader accepts it too and sees the same number of keys. A third
/// decode reads the bytes through a small buffer, delivered a few bytes per
/// read, so strings longer than the buffer take the reader's large-string
/// path: it must decode exactly what the large buffer decoded.
pub mod rdb_loader {
    use std::io::Read;
    use std::sync::OnceLock;

    use ferrocache_node::config::Config;
    use ferrocache_node::rdb::{RdbCollector, RdbReader};
    use ferrocache_node::snapshot::load::load_stream;
    use ferrocache_node::storage::{self, SharedStore, Store};

    /// One store for all inputs (16 databases of 1024 shards are costly to
    /// build each time), emptied after every load.
    fn store() -> &'static SharedStore {
        static STORE: OnceLock<SharedStore> = OnceLock::new();
        STORE.get_or_init(|| storage::shared(Store::new(Config::default())))
    }

    pub fn check(data: &[u8]) {
        let store = store();
        assert!(store.lock().dbs.iter().all(|db| db.is_empty()), "the store must start empty");
        let loaded = load_stream(store, data, Some(data.len() as u64), "fuzz input");
        let keys: usize = store.lock().dbs.iter().map(|db| db.len()).sum();
        if keys > 0 {
            store.lock().flush_all();
        }
        let mut collector = RdbCollector::new();
        let modelled = RdbReader::new(data).and_then(|reader| reader.load(&mut collector));
        match loaded {
            Ok(report) => {
                assert_eq!(keys as u64, report.keys_loaded, "the store holds other keys than the load reports");
                let summary = match &modelled {
                    Ok(summary) => summary,
                    Err(error) => panic!("the node loaded a file the format layer refuses: {error}"),
                };
                assert_eq!(
                    report.keys_loaded + report.keys_expired,
                    collector.keys.len() as u64,
                    "the node and the format layer count different keys"
                );
                assert_eq!(summary.bytes, report.bytes);
            }
            Err(_) => assert_eq!(keys, 0, "a failed load left keys in the store"),
        }
        let buffer_size = 16 + data.len() % 61;
        let mut small = RdbCollector::new();
        let trickle = Trickle { data, state: (data.len() as u32).wrapping_mul(0x9e37_79b9) | 1 };
        let through_small =
            RdbReader::with_buffer_size(trickle, buffer_size).and_then(|reader| reader.load(&mut small));
        match (&modelled, through_small) {
            (Ok(summary), Ok(small_summary)) => {
                assert_eq!(*summary, small_summary, "a small read buffer changed the load summary");
                assert_eq!(collector.keys, small.keys, "a small read buffer changed the keys decoded");
                assert_eq!(collector.aux, small.aux, "a small read buffer changed the aux fields");
                assert_eq!(collector.functions, small.functions, "a small read buffer changed the functions");
            }
            (Err(_), Err(_)) => {}
            (Ok(_), Err(error)) => panic!("only the small read buffer refuses the file: {error}"),
            (Err(error), Ok(_)) => panic!("only the large read buffer refuses the file: {error}"),
        }
    }

    /// Hands out its bytes 1 to 8 at a time, as a slow pipe would.
    struct Trickle<'a> {
        data: &'a [u8],
        state: u32,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 17;
            self.state ^= self.state << 5;
            let len = (1 + self.state as usize % 8).min(buffer.len()).min(self.data.len());
            buffer[..len].copy_from_slice(&self.data[..len]);
            self.data = &self.data[len..];
            Ok(len)
        }
    }
}

/// The RESTORE payload decoder (`snapshot::load::decode_restore_payload`,
/// what RESTORE runs) and the format layer's `rdb::decode_payload`.
///
/// The input is tried as sent (footer checks), then with its CRC64 footer
/// recomputed so the value decoder behind the check is reached. Both
/// decoders must agree on accepting a payload, and a value RESTORE accepted
/// must DUMP to a payload that decodes to the same content.
pub mod dump_payload {
    use ferrocache_node::config::Config;
    use ferrocache_node::rdb::{crc64, decode_payload, RdbValue};
    use ferrocache_node::snapshot::encode::{dump_payload, encode_options};
    use ferrocache_node::snapshot::load::decode_restore_payload;

    pub fn check(data: &[u8]) {
        let config = Config::default();
        let as_sent = decode_restore_payload(&config, b"key", data).is_ok();
        let fixed = with_valid_checksum(data);
        if as_sent {
            assert_eq!(fixed.as_deref(), Some(data), "a payload with a wrong checksum was restored");
        }
        let Some(payload) = fixed else { return };
        let restored = decode_restore_payload(&config, b"key", &payload);
        let modelled = decode_payload(&payload);
        let (value, model) = match (restored, modelled) {
            (Ok(value), Ok(model)) => (value, model),
            (Err(_), Err(_)) => return,
            (Ok(_), Err(error)) => panic!("RESTORE accepted a payload the format layer refuses: {error}"),
            (Err(error), Ok(_)) => panic!("RESTORE refused a payload the format layer accepts: {error}"),
        };
        let dumped = dump_payload(&value, encode_options(&config)).expect("DUMP of a restored value");
        let reloaded = match decode_payload(&dumped) {
            Ok(reloaded) => reloaded,
            Err(error) => panic!("the payload DUMP wrote for a restored value does not decode: {error}"),
        };
        assert_eq!(normalized(reloaded), normalized(model), "RESTORE then DUMP changed the value");
    }

    /// `data` with its last 8 bytes replaced by the CRC64 of the rest, as a
    /// DUMP payload's footer; `None` when too short to hold a footer.
    pub fn with_valid_checksum(data: &[u8]) -> Option<Vec<u8>> {
        if data.len() < 10 {
            return None;
        }
        let mut payload = data.to_vec();
        let body = payload.len() - 8;
        let checksum = crc64(&payload[..body]);
        payload[body..].copy_from_slice(&checksum.to_le_bytes());
        Some(payload)
    }

    /// Content with the order the encodings do not keep (set members, hash
    /// fields, sorted set members) sorted away.
    fn normalized(value: RdbValue) -> RdbValue {
        match value {
            RdbValue::Set(mut members) => {
                members.sort();
                RdbValue::Set(members)
            }
            RdbValue::Hash(mut pairs) => {
                pairs.sort();
                RdbValue::Hash(pairs)
            }
            RdbValue::SortedSet(mut entries) => {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                RdbValue::SortedSet(entries)
            }
            other => other,
        }
    }
}
