//! The value stored under a key, one variant per Redis type and encoding family.

use super::{hash::Hash, list::List, set::Set, zset::SortedSet};

/// A key's value. Strings holding a canonical integer are kept as `Int`
/// (Redis's "int" encoding) so INCR never reparses text.
#[derive(Debug, Clone)]
pub enum Value {
    Int(i64),
    Str(Box<[u8]>),
    List(Box<List>),
    Hash(Box<Hash>),
    Set(Box<Set>),
    SortedSet(Box<SortedSet>),
}

/// The five Redis data types, as TYPE and SCAN TYPE name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    List,
    Hash,
    Set,
    SortedSet,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::SortedSet => "zset",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Self> {
        match name.to_ascii_lowercase().as_slice() {
            b"string" => Some(ValueType::String),
            b"list" => Some(ValueType::List),
            b"hash" => Some(ValueType::Hash),
            b"set" => Some(ValueType::Set),
            b"zset" => Some(ValueType::SortedSet),
            _ => None,
        }
    }
}

impl Value {
    /// Builds a string value, choosing the integer encoding when the text is a
    /// canonical integer (as Redis's `tryObjectEncoding`).
    pub fn string(bytes: &[u8]) -> Value {
        if bytes.len() <= 20 {
            if let Some(number) = crate::util::parse_i64(bytes) {
                return Value::Int(number);
            }
        }
        Value::Str(bytes.into())
    }

    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Int(_) | Value::Str(_) => ValueType::String,
            Value::List(_) => ValueType::List,
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::SortedSet(_) => ValueType::SortedSet,
        }
    }

    /// The encoding OBJECT ENCODING reports, matching what Redis would use for
    /// the same content.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(bytes) if bytes.len() <= 44 => "embstr",
            Value::Str(_) => "raw",
            Value::List(list) => list.encoding(),
            Value::Hash(hash) => hash.encoding(),
            Value::Set(set) => set.encoding(),
            Value::SortedSet(zset) => zset.encoding(),
        }
    }

    /// Writes the string form of a string value into `scratch` (for integers)
    /// and returns it; `None` for other types.
    pub fn as_bytes<'a>(&'a self, scratch: &'a mut itoa::Buffer) -> Option<&'a [u8]> {
        match self {
            Value::Int(number) => Some(scratch.format(*number).as_bytes()),
            Value::Str(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Owned string form of a string value.
    pub fn to_string_bytes(&self) -> Option<Vec<u8>> {
        let mut scratch = itoa::Buffer::new();
        self.as_bytes(&mut scratch).map(<[u8]>::to_vec)
    }

    /// Whether a collection has become empty (and its key must be deleted).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Int(_) | Value::Str(_) => false,
            Value::List(list) => list.is_empty(),
            Value::Hash(hash) => hash.is_empty(),
            Value::Set(set) => set.is_empty(),
            Value::SortedSet(zset) => zset.is_empty(),
        }
    }

    /// How many allocations freeing the value frees, counted as Redis's
    /// `lazyfreeGetFreeEffort` counts them: a list's nodes, a hash table's
    /// or a skiplist's elements, and 1 for anything packed in one buffer.
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Int(_) | Value::Str(_) => 1,
            Value::List(list) => list.node_count(),
            Value::Hash(hash) if hash.encoding() == "hashtable" => hash.len(),
            Value::Set(set) if set.encoding() == "hashtable" => set.len(),
            Value::SortedSet(zset) if zset.encoding() == "skiplist" => zset.len(),
            Value::Hash(_) | Value::Set(_) | Value::SortedSet(_) => 1,
        }
    }

    /// Approximate heap bytes owned by the value, used for eviction estimates
    /// and the snapshot method's copy-on-write estimate.
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Int(_) => 0,
            Value::Str(bytes) => bytes.len(),
            Value::List(list) => list.heap_size(),
            Value::Hash(hash) => hash.heap_size(),
            Value::Set(set) => set.heap_size(),
            Value::SortedSet(zset) => zset.heap_size(),
        }
    }
}
