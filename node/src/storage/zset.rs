//! The zset type (placeholder: filled in by the zset commands work).

/// A Redis zset value.
#[derive(Debug, Clone, Default)]
pub struct SortedSet {
    len: usize,
}

impl SortedSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    pub fn heap_size(&self) -> usize {
        0
    }
}
