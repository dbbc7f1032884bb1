//! Memory sizes as Kubernetes quantities (`1Gi`, `512M`) and as Redis writes
//! them (`768mb`, `1gb`, `1000000`).

/// Bytes of a Kubernetes quantity; `None` when it is not a memory size.
pub fn quantity_bytes(quantity: &str) -> Option<i64> {
    let quantity = quantity.trim();
    let split = quantity.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let multiplier: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0_f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    let bytes = (value * multiplier).round();
    (bytes.is_finite() && bytes >= 0.0 && bytes < i64::MAX as f64).then_some(bytes as i64)
}

/// Bytes of a Redis memory setting (`1gb` = 1024^3, `1g` = 10^9), read as the node reads it.
pub fn redis_memory_bytes(text: &str) -> Option<i64> {
    ferrocache_node::config::parse_memory(text).and_then(|bytes| i64::try_from(bytes).ok())
}

/// A byte count for people: `1.5 GiB`.
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_quantities_read_binary_and_decimal_suffixes() {
        assert_eq!(quantity_bytes("1Gi"), Some(1 << 30));
        assert_eq!(quantity_bytes("512Mi"), Some(512 << 20));
        assert_eq!(quantity_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(quantity_bytes("2G"), Some(2_000_000_000));
        assert_eq!(quantity_bytes("1000"), Some(1000));
        assert_eq!(quantity_bytes("100m"), None);
        assert_eq!(quantity_bytes("lots"), None);
    }

    #[test]
    fn redis_memory_units_follow_redis() {
        assert_eq!(redis_memory_bytes("768mb"), Some(768 << 20));
        assert_eq!(redis_memory_bytes("1GB"), Some(1 << 30));
        assert_eq!(redis_memory_bytes("1g"), Some(1_000_000_000));
        assert_eq!(redis_memory_bytes("123"), Some(123));
        assert_eq!(redis_memory_bytes("1tb"), None);
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }
}
