//! DUMP/RESTORE payloads: `<type byte> <value encoding> <RDB version: u16
//! LE> <CRC64 of everything before it: u64 LE>` (`createDumpPayload` and
//! `verifyDumpPayload` in Redis's cluster.c). Encoding lives in
//! [`ValueEncoder`]'s `dump_*` methods.

use super::crc::crc64;
use super::error::{PayloadError, RdbError};
use super::input::Input;
use super::reader::{read_value, KeyRef, RdbCollector, RdbSink};
use super::value::{EncodeOptions, KeyMeta, RdbValue, ValueEncoder};
use super::RDB_VERSION;

const FOOTER_SIZE: usize = 10;

/// Checks a payload's footer as RESTORE does: at least 10 bytes, an RDB
/// version no newer than 10, and a matching CRC64. Returns the version.
pub fn verify_payload(payload: &[u8]) -> Result<u16, PayloadError> {
    if payload.len() < FOOTER_SIZE {
        return Err(PayloadError::VersionOrChecksum);
    }
    let footer = &payload[payload.len() - FOOTER_SIZE..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return Err(PayloadError::VersionOrChecksum);
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&footer[2..]);
    if crc64(&payload[..payload.len() - 8]) != u64::from_le_bytes(stored) {
        return Err(PayloadError::VersionOrChecksum);
    }
    Ok(version)
}

/// Verifies a payload and decodes its value into `sink` as a key named
/// `key` in database 0 (the name only serves the sink and error messages).
pub fn decode_payload_into<S: RdbSink>(payload: &[u8], key: &[u8], sink: &mut S) -> Result<(), PayloadError> {
    verify_payload(payload)?;
    let body = &payload[..payload.len() - FOOTER_SIZE];
    let mut input =
        Input::with_buffer_size(body, body.len().saturating_add(16).min(Input::<&[u8]>::DEFAULT_BUFFER_SIZE));
    input.set_input_len(body.len() as u64);
    let type_code = input.read_u8().map_err(PayloadError::BadData)?;
    let key_ref = KeyRef { db: 0, name: key, meta: KeyMeta::default() };
    let mut field = Vec::new();
    let delivered = read_value(&mut input, &mut field, type_code, &key_ref, sink)
        .map_err(|error| PayloadError::BadData(error.with_key(key)))?;
    if !delivered {
        // RESTORE of an empty collection fails in Redis too.
        return Err(PayloadError::BadData(RdbError::corrupt(0, "payload holds an empty collection").with_key(key)));
    }
    Ok(())
}

/// The DUMP payload of an owned value. For many values, or the node's own
/// types, keep a [`ValueEncoder`] and use its `dump_*` methods instead.
pub fn encode_payload(value: &RdbValue, options: &EncodeOptions) -> Result<Vec<u8>, RdbError> {
    ValueEncoder::new(options.clone()).dump_value(value)
}

/// Verifies a payload and decodes its value into the owned model.
pub fn decode_payload(payload: &[u8]) -> Result<RdbValue, PayloadError> {
    let mut collector = RdbCollector::new();
    decode_payload_into(payload, b"", &mut collector)?;
    match collector.keys.pop() {
        Some(loaded) => Ok(loaded.value),
        None => Err(PayloadError::BadData(RdbError::corrupt(0, "payload holds no value"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::{EncodeOptions, ValueEncoder};

    #[test]
    fn decodes_a_redis_dump_payload() {
        // Redis 7.0.15: RPUSH l 1 a 300 ; DUMP l.
        let payload = b"\x12\x01\x02\x0f\x0f\x00\x00\x00\x03\x00\x01\x01\x81a\x02\xc1,\x02\xff\x0a\x00\xa7\x9d\xb3\xc4\x40\xa8\x04\x0d";
        assert_eq!(
            decode_payload(payload).expect("decodes"),
            RdbValue::List(vec![b"1".to_vec(), b"a".to_vec(), b"300".to_vec()])
        );
    }

    #[test]
    fn encoded_payloads_decode_to_the_same_value() {
        let value = RdbValue::Hash(vec![(b"f".to_vec(), b"1".to_vec()), (b"g".to_vec(), vec![7; 100])]);
        let payload = encode_payload(&value, &EncodeOptions::default()).expect("encodes");
        assert_eq!(decode_payload(&payload).expect("decodes"), value);
    }

    #[test]
    fn footer_problems_are_version_or_checksum_errors() {
        let mut encoder = ValueEncoder::new(EncodeOptions::default());
        let payload = encoder.dump_string(b"hello").expect("encodes");
        assert_eq!(verify_payload(&payload).expect("valid"), 10);
        assert!(matches!(decode_payload(&payload[..9]), Err(PayloadError::VersionOrChecksum)));
        let mut flipped = payload.clone();
        flipped[2] ^= 1;
        assert!(matches!(decode_payload(&flipped), Err(PayloadError::VersionOrChecksum)));
        let mut newer = payload[..payload.len() - 10].to_vec();
        newer.extend_from_slice(&11u16.to_le_bytes());
        let checksum = crc64(&newer);
        newer.extend_from_slice(&checksum.to_le_bytes());
        assert!(matches!(decode_payload(&newer), Err(PayloadError::VersionOrChecksum)));
    }

    #[test]
    fn a_valid_footer_around_a_bad_value_is_bad_data() {
        let mut body = b"\x10\x05abcde".to_vec(); // hash listpack that is not a listpack
        body.extend_from_slice(&10u16.to_le_bytes());
        let checksum = crc64(&body);
        body.extend_from_slice(&checksum.to_le_bytes());
        let error = decode_payload(&body).expect_err("bad");
        assert_eq!(error.redis_reply(), "ERR Bad data format");
    }

    #[test]
    fn older_payload_versions_are_accepted() {
        // Redis 6.2 writes version 9 payloads with ziplists; the footer only
        // requires version <= 10.
        let mut encoder = ValueEncoder::new(EncodeOptions::default());
        let mut payload = encoder.dump_string(b"v").expect("encodes");
        payload.truncate(payload.len() - 10);
        payload.extend_from_slice(&9u16.to_le_bytes());
        let checksum = crc64(&payload);
        payload.extend_from_slice(&checksum.to_le_bytes());
        assert_eq!(decode_payload(&payload).expect("decodes"), RdbValue::String(b"v".to_vec()));
    }
}
