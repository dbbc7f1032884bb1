//! The list type (placeholder: filled in by the list commands work).

/// A Redis list value.
#[derive(Debug, Clone, Default)]
pub struct List {
    len: usize,
}

impl List {
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
