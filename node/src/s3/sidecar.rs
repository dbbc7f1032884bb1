//! The sidecar object `<key>.meta.json`: what the uploader recorded about a data object.

use serde::{Deserialize, Serialize};

/// The version of the sidecar layout written by this transport.
pub const SIDECAR_VERSION: u32 = 1;

/// The suffix appended to a data object's key to name its sidecar.
pub const SIDECAR_SUFFIX: &str = ".meta.json";

/// The key of the sidecar of the data object `key`.
pub fn sidecar_key(key: &str) -> String {
    format!("{key}{SIDECAR_SUFFIX}")
}

/// The content of a sidecar: the transport's facts about the object and the caller's metadata
/// (for a snapshot: its CRC64, key count, …), which is only known once the stream has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sidecar<M> {
    /// [`SIDECAR_VERSION`] when written.
    pub version: u32,
    /// The key of the data object the sidecar describes.
    pub object_key: String,
    /// The size of the data object in bytes.
    pub size: u64,
    /// The number of parts of the multipart upload (1 for a single PutObject).
    pub parts: u32,
    /// The caller's metadata.
    pub metadata: M,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_json_is_stable() {
        let sidecar = Sidecar {
            version: SIDECAR_VERSION,
            object_key: "node-0/dump.rdb".to_owned(),
            size: 42,
            parts: 1,
            metadata: serde_json::json!({"crc64": "00ff"}),
        };
        let json = serde_json::to_string(&sidecar).expect("serializable");
        assert_eq!(
            json,
            r#"{"version":1,"objectKey":"node-0/dump.rdb","size":42,"parts":1,"metadata":{"crc64":"00ff"}}"#
        );
        assert_eq!(serde_json::from_str::<Sidecar<serde_json::Value>>(&json).expect("parsable"), sidecar);
        assert_eq!(sidecar_key("node-0/dump.rdb"), "node-0/dump.rdb.meta.json");
    }
}
