//! SORT and SORT_RO, as Redis 7.0's `sort.c`.
//!
//! `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
//! [ALPHA] [STORE destination]` sorts the elements of a list, set or sorted
//! set, numerically (by `strtod`) or as strings, by the elements themselves
//! or by values found in other keys through a pattern, and replies with
//! them (or with values found through GET patterns), or stores them as a
//! list.
//!
//! Everything follows Redis, including what makes results observable:
//! options are parsed first (so a syntax or LIMIT error wins over a wrong
//! type), equal numeric scores fall back to comparing the elements, alpha
//! comparison is `strcoll` (byte order up to the first NUL in the C and
//! C.UTF-8 locales) or, with STORE, binary comparison, and the sort itself
//! is glibc's `qsort` (a stable merge sort) or, with BY and a LIMIT that
//! narrows the output, Redis's partial quicksort `pqsort`, ported here so
//! that elements comparing equal come out in the same order.

use std::cmp::Ordering;

use super::flags::*;
use super::{arg_i64, is, CmdError, CmdResult, Command, Ctx};
use crate::storage::list::List;
use crate::storage::{Store, Value, NO_EXPIRE};

pub static COMMANDS: &[Command] = &[
    Command::new("sort", -2, WRITE | DENYOOM, (1, 1, 1), sort),
    Command::new("sort_ro", -2, READONLY, (1, 1, 1), sort_ro),
];

/// Redis's reply when a score is not a number.
const NOT_A_DOUBLE: &str = "One or more scores can't be converted into double";

fn sort(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// The key arguments of a SORT call, for COMMAND GETKEYS: the sorted key
/// and the destination of the last STORE option, found as Redis's
/// `sortGetKeys` does (skipping the arguments of LIMIT, GET and BY, but not
/// STORE's, so `STORE STORE x` names `x`).
pub fn key_positions(args: &[&[u8]]) -> Vec<usize> {
    let mut store = None;
    let mut index = 2;
    while index < args.len() {
        let option = args[index];
        if is(option, "limit") {
            index += 2;
        } else if is(option, "get") || is(option, "by") {
            index += 1;
        } else if is(option, "store") && index + 1 < args.len() {
            store = Some(index + 1);
        }
        index += 1;
    }
    std::iter::once(1).chain(store).collect()
}

/// The options of one SORT call.
struct Options<'a> {
    /// The BY pattern, when it names other keys (holds a `*`).
    by: Option<&'a [u8]>,
    /// BY with a constant pattern: keep the native order.
    dont_sort: bool,
    limit_start: i64,
    limit_count: i64,
    gets: Vec<&'a [u8]>,
    descending: bool,
    alpha: bool,
    store: Option<&'a [u8]>,
}

/// Parses the options in Redis's order: the first bad one fails the
/// command, before the key is even looked up.
fn parse_options<'a>(args: &[&'a [u8]], read_only: bool) -> Result<Options<'a>, CmdError> {
    let mut options = Options {
        by: None,
        dont_sort: false,
        limit_start: 0,
        limit_count: -1,
        gets: Vec::new(),
        descending: false,
        alpha: false,
        store: None,
    };
    let mut index = 2;
    while index < args.len() {
        let option = args[index];
        let arguments_left = args.len() - index - 1;
        if is(option, "asc") {
            options.descending = false;
        } else if is(option, "desc") {
            options.descending = true;
        } else if is(option, "alpha") {
            options.alpha = true;
        } else if is(option, "limit") && arguments_left >= 2 {
            options.limit_start = arg_i64(args[index + 1])?;
            options.limit_count = arg_i64(args[index + 2])?;
            index += 2;
        } else if !read_only && is(option, "store") && arguments_left >= 1 {
            options.store = Some(args[index + 1]);
            index += 1;
        } else if is(option, "by") && arguments_left >= 1 {
            let pattern = args[index + 1];
            // Redis looks for the `*` with strchr (up to the first NUL),
            // and a constant pattern turns sorting off for good, even if a
            // later BY names keys.
            options.dont_sort |= !c_string(pattern).contains(&b'*');
            options.by = Some(pattern);
            index += 1;
        } else if is(option, "get") && arguments_left >= 1 {
            options.gets.push(args[index + 1]);
            index += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        index += 1;
    }
    if options.dont_sort {
        options.by = None;
    }
    Ok(options)
}

/// The bytes C's string functions see: up to the first NUL.
fn c_string(bytes: &[u8]) -> &[u8] {
    bytes.iter().position(|byte| *byte == 0).map_or(bytes, |end| &bytes[..end])
}

/// The value to sort, copied out of the store (BY and GET look other keys
/// up while it is in use).
enum Source {
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    /// Members in ascending rank order.
    SortedSet(Vec<Vec<u8>>),
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::List(elements) | Source::Set(elements) | Source::SortedSet(elements) => elements.len(),
        }
    }

    fn into_elements(self) -> Vec<Vec<u8>> {
        match self {
            Source::List(elements) | Source::Set(elements) | Source::SortedSet(elements) => elements,
        }
    }
}

/// Reads the key to sort; a missing key is an empty list, as in Redis.
fn read_source(store: &mut Store, db: usize, key: &[u8]) -> Result<Source, CmdError> {
    let Some(entry) = store.lookup(db, key) else {
        return Ok(Source::List(Vec::new()));
    };
    if matches!(&entry.value, Value::SortedSet(zset) if zset.is_packed()) {
        convert_to_skiplist(store, db, key);
    }
    let Some(entry) = store.dbs[db].get(key) else {
        return Ok(Source::List(Vec::new()));
    };
    match &entry.value {
        Value::List(list) => Ok(Source::List(list.iter().map(<[u8]>::to_vec).collect())),
        Value::Set(set) => Ok(Source::Set(set.iter().map(|member| member.to_vec()).collect())),
        Value::SortedSet(zset) => Ok(Source::SortedSet(zset.iter().map(|(member, _)| member.to_vec()).collect())),
        _ => Err(CmdError::WrongType),
    }
}

/// Redis converts a sorted set it sorts to its skiplist encoding for good
/// (even for SORT_RO), which OBJECT ENCODING shows afterwards.
fn convert_to_skiplist(store: &mut Store, db: usize, key: &[u8]) {
    if let Some(entry) = store.lookup_write(db, key) {
        if let Value::SortedSet(zset) = &mut entry.value {
            zset.convert_to_indexed();
        }
    }
}

/// The inclusive window `start..=end` of the output, with Redis's clamping
/// (an empty window is `end == start - 1`).
fn output_window(limit_start: i64, limit_count: i64, len: usize) -> (i64, i64) {
    let len = len as i64;
    let mut start = limit_start.max(0).min(len);
    let count = limit_count.max(-1).min(len);
    let mut end = if count < 0 { len - 1 } else { start + count - 1 };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    end = end.min(len - 1);
    (start, end)
}

/// The elements of a list or sorted set in native order (reversed for
/// DESC) within the window, as Redis loads them when not sorting.
fn native_window(elements: Vec<Vec<u8>>, start: i64, end: i64, descending: bool) -> Vec<Vec<u8>> {
    if end < start {
        return Vec::new();
    }
    let count = (end - start + 1) as usize;
    let skip = start as usize;
    if descending {
        elements.into_iter().rev().skip(skip).take(count).collect()
    } else {
        elements.into_iter().skip(skip).take(count).collect()
    }
}

/// One element with what it is compared by.
struct SortItem {
    element: Vec<u8>,
    /// Numeric sorting: the element's (or its BY value's) number; 0 when
    /// the BY key is missing.
    score: f64,
    /// Alpha sorting by a pattern: the BY value, `None` when missing.
    compare_by: Option<Vec<u8>>,
}

/// How two items compare, as Redis's `sortCompare`.
#[derive(Clone, Copy)]
struct Comparison {
    alpha: bool,
    by_pattern: bool,
    /// With STORE, Redis compares binary strings instead of collating them.
    store: bool,
    descending: bool,
}

impl Comparison {
    fn compare(&self, first: &SortItem, second: &SortItem) -> Ordering {
        let ordering = if !self.alpha {
            match first.score.partial_cmp(&second.score) {
                Some(Ordering::Equal) | None => first.element.cmp(&second.element),
                Some(ordering) => ordering,
            }
        } else if self.by_pattern {
            match (&first.compare_by, &second.compare_by) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(first), Some(second)) => self.compare_strings(first, second),
            }
        } else {
            self.compare_strings(&first.element, &second.element)
        };
        if self.descending {
            ordering.reverse()
        } else {
            ordering
        }
    }

    /// `compareStringObjects` (binary) with STORE, `strcoll` otherwise:
    /// in the C and C.UTF-8 locales that is `strcmp`, which stops at a NUL.
    fn compare_strings(&self, first: &[u8], second: &[u8]) -> Ordering {
        if self.store {
            first.cmp(second)
        } else {
            c_string(first).cmp(c_string(second))
        }
    }
}

fn sort_generic(ctx: &mut Ctx, args: &[&[u8]], read_only: bool) -> CmdResult {
    let mut options = parse_options(args, read_only)?;
    let db = ctx.client.db;
    let source = read_source(ctx.store, db, args[1])?;
    // A set has no native order: with STORE its elements are sorted as
    // strings, so the stored list is the same on every replica.
    if options.dont_sort && matches!(source, Source::Set(_)) && options.store.is_some() {
        options.dont_sort = false;
        options.alpha = true;
        options.by = None;
    }
    let len = source.len();
    let (mut start, mut end) = output_window(options.limit_start, options.limit_count, len);
    let elements = match source {
        Source::List(elements) | Source::SortedSet(elements) if options.dont_sort => {
            let window = native_window(elements, start, end, options.descending);
            if end >= start {
                end -= start;
                start = 0;
            }
            window
        }
        source => source.into_elements(),
    };
    let mut items: Vec<SortItem> =
        elements.into_iter().map(|element| SortItem { element, score: 0.0, compare_by: None }).collect();
    if !options.dont_sort {
        if !load_sort_keys(ctx.store, db, &options, &mut items) {
            return Err(CmdError::err(NOT_A_DOUBLE));
        }
        sort_items(&mut items, &options, start, end);
    }
    let selected = if end >= start { &items[start as usize..=end as usize] } else { &[] };
    match options.store {
        None => reply_sorted(ctx, db, &options.gets, selected),
        Some(destination) => store_sorted(ctx, db, &options.gets, selected, destination),
    }
    Ok(())
}

/// Fills each item's score or BY value; false when a score is not a
/// number (Redis still looks every key up, then fails).
fn load_sort_keys(store: &mut Store, db: usize, options: &Options, items: &mut [SortItem]) -> bool {
    let mut all_numbers = true;
    for item in items.iter_mut() {
        let by_value = match options.by {
            Some(pattern) => match lookup_by_pattern(store, db, pattern, &item.element) {
                Some(value) => value,
                None => continue,
            },
            None => {
                if !options.alpha {
                    all_numbers &= set_score(item, None);
                }
                continue;
            }
        };
        if options.alpha {
            item.compare_by = Some(by_value);
        } else {
            all_numbers &= set_score(item, Some(&by_value));
        }
    }
    all_numbers
}

/// Sets the item's score from `text` (its own element when `None`);
/// false when that is not a number.
fn set_score(item: &mut SortItem, text: Option<&[u8]>) -> bool {
    match strtod(text.unwrap_or(&item.element)) {
        Some(score) => {
            item.score = score;
            true
        }
        None => false,
    }
}

/// Sorts as Redis does: a partial quicksort when sorting BY a pattern with
/// a window narrower than everything, glibc's stable sort otherwise.
fn sort_items(items: &mut [SortItem], options: &Options, start: i64, end: i64) {
    let comparison = Comparison {
        alpha: options.alpha,
        by_pattern: options.by.is_some(),
        store: options.store.is_some(),
        descending: options.descending,
    };
    let compare = |first: &SortItem, second: &SortItem| comparison.compare(first, second);
    if options.by.is_some() && (start != 0 || end != items.len() as i64 - 1) {
        partial_quicksort(items, start, end, &compare);
    } else {
        items.sort_by(compare);
    }
}

/// Replies with the selected elements, or with the GET values of each.
fn reply_sorted(ctx: &mut Ctx, db: usize, gets: &[&[u8]], selected: &[SortItem]) {
    ctx.reply.array(selected.len() * gets.len().max(1));
    for item in selected {
        if gets.is_empty() {
            ctx.reply.bulk(&item.element);
        }
        for pattern in gets {
            match lookup_by_pattern(ctx.store, db, pattern, &item.element) {
                Some(value) => ctx.reply.bulk(&value),
                None => ctx.reply.null(),
            }
        }
    }
}

/// STORE: writes the output as a list (missing GET values as empty
/// strings), or deletes the destination when the output is empty; replies
/// with the output's length.
fn store_sorted(ctx: &mut Ctx, db: usize, gets: &[&[u8]], selected: &[SortItem], destination: &[u8]) {
    let mut output: Vec<Vec<u8>> = Vec::with_capacity(selected.len() * gets.len().max(1));
    for item in selected {
        if gets.is_empty() {
            output.push(item.element.clone());
        }
        for pattern in gets {
            output.push(lookup_by_pattern(ctx.store, db, pattern, &item.element).unwrap_or_default());
        }
    }
    let count = output.len();
    if count > 0 {
        let fill = ctx.store.config.list_max_listpack_size;
        let list = List::from_elements(output, fill);
        let created = ctx.store.insert(db, destination, Value::List(Box::new(list)), NO_EXPIRE).is_none();
        ctx.store.touch_key(db, destination);
        // Redis counts one change per stored element.
        ctx.store.dirty += count as u64 - 1;
        // As Redis's dbAdd: a new key wakes the clients blocked on it.
        if created {
            ctx.store.signal_ready(db, destination);
        }
    } else if ctx.store.remove(db, destination).is_some() {
        ctx.store.touch_key(db, destination);
    }
    ctx.reply.int(count as i64);
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the
/// first `*` of the pattern is replaced by the element, and the key named
/// so must hold a string or, when the pattern ends in `->field` after the
/// `*`, a hash with that field. `None` when there is no such value (or no
/// `*`).
fn lookup_by_pattern(store: &mut Store, db: usize, pattern: &[u8], element: &[u8]) -> Option<Vec<u8>> {
    let searched = c_string(pattern);
    if searched == b"#" {
        return Some(element.to_vec());
    }
    let star = searched.iter().position(|byte| *byte == b'*')?;
    let arrow = searched[star + 1..]
        .windows(2)
        .position(|window| window == b"->")
        .map(|offset| star + 1 + offset)
        .filter(|arrow| arrow + 2 < searched.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(pattern.len() + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let entry = store.lookup(db, &key)?;
    match (arrow, &entry.value) {
        (Some(arrow), Value::Hash(hash)) => hash.get(&pattern[arrow + 2..]).map(|value| value.to_vec()),
        (None, value) => value.to_string_bytes(),
        _ => None,
    }
}

/// C's `strtod` as Redis uses it for SORT scores: the whole text (up to a
/// NUL) must be consumed, and a result that overflows, underflows (ERANGE)
/// or is NaN is refused. An empty text is 0, as strtod reads nothing and
/// stops at the terminating NUL.
fn strtod(text: &[u8]) -> Option<f64> {
    let text = c_string(text);
    if text.is_empty() {
        return Some(0.0);
    }
    let (value, consumed, range_error) = parse_c_double(text)?;
    (consumed == text.len() && !range_error && !value.is_nan()).then_some(value)
}

/// Parses the longest prefix strtod accepts: leading white space, a sign,
/// then `inf`/`infinity`, `nan`, a hexadecimal or a decimal number.
/// Returns the value, the bytes consumed and whether ERANGE would be set;
/// `None` when nothing could be converted.
fn parse_c_double(text: &[u8]) -> Option<(f64, usize, bool)> {
    let mut position =
        text.iter().take_while(|byte| matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')).count();
    let negative = text.get(position) == Some(&b'-');
    if matches!(text.get(position), Some(b'-' | b'+')) {
        position += 1;
    }
    let rest = &text[position..];
    let (magnitude, consumed, range_error) = if starts_with_ignoring_case(rest, b"infinity") {
        (f64::INFINITY, 8, false)
    } else if starts_with_ignoring_case(rest, b"inf") {
        (f64::INFINITY, 3, false)
    } else if starts_with_ignoring_case(rest, b"nan") {
        (f64::NAN, 3, false)
    } else if let Some(parsed) = parse_hexadecimal(rest) {
        parsed
    } else {
        parse_decimal(rest)?
    };
    let value = if negative { -magnitude } else { magnitude };
    Some((value, position + consumed, range_error))
}

fn starts_with_ignoring_case(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Counts the leading bytes of `text` that satisfy `accept`.
fn count_leading(text: &[u8], accept: impl Fn(u8) -> bool) -> usize {
    text.iter().take_while(|byte| accept(**byte)).count()
}

/// A decimal number: digits, an optional fraction, an optional exponent
/// (taken only when digits follow its sign). ERANGE on overflow, and on a
/// non-zero number that comes out zero or subnormal (glibc's rule for an
/// inexact tiny result).
fn parse_decimal(text: &[u8]) -> Option<(f64, usize, bool)> {
    let integer_digits = count_leading(text, |byte| byte.is_ascii_digit());
    let mut end = integer_digits;
    let mut fraction_digits = 0;
    if text.get(end) == Some(&b'.') {
        fraction_digits = count_leading(&text[end + 1..], |byte| byte.is_ascii_digit());
        if integer_digits + fraction_digits > 0 {
            end += 1 + fraction_digits;
        }
    }
    if integer_digits + fraction_digits == 0 {
        return None;
    }
    end += exponent_length(&text[end..], b'e');
    let literal = std::str::from_utf8(&text[..end]).ok()?;
    let value: f64 = literal.parse().ok()?;
    let nonzero = text[..end].iter().take(integer_digits + 1 + fraction_digits).any(|byte| matches!(byte, b'1'..=b'9'));
    let range_error = value.is_infinite() || (nonzero && value.abs() < f64::MIN_POSITIVE);
    Some((value, end, range_error))
}

/// Length of an exponent part (`e-12`, `p+3`) at the start of `text`, 0
/// when there is none or it has no digits.
fn exponent_length(text: &[u8], marker: u8) -> usize {
    if !text.first().is_some_and(|byte| byte.eq_ignore_ascii_case(&marker)) {
        return 0;
    }
    let sign = usize::from(matches!(text.get(1), Some(b'-' | b'+')));
    let digits = count_leading(&text[1 + sign..], |byte| byte.is_ascii_digit());
    if digits == 0 {
        0
    } else {
        1 + sign + digits
    }
}

/// A hexadecimal float (`0x1.8p3`, `0x10`); `None` when `text` is not
/// `0x` followed by a hexadecimal digit (then strtod reads just the `0`).
fn parse_hexadecimal(text: &[u8]) -> Option<(f64, usize, bool)> {
    if text.len() < 3 || text[0] != b'0' || !text[1].eq_ignore_ascii_case(&b'x') {
        return None;
    }
    let digits = &text[2..];
    let integer_digits = count_leading(digits, |byte| byte.is_ascii_hexdigit());
    let mut end = integer_digits;
    let mut fraction_digits = 0;
    if digits.get(end) == Some(&b'.') {
        fraction_digits = count_leading(&digits[end + 1..], |byte| byte.is_ascii_hexdigit());
        end += 1 + fraction_digits;
    }
    if integer_digits + fraction_digits == 0 {
        return None;
    }
    let mut mantissa = 0.0f64;
    for byte in digits[..end].iter().filter(|byte| **byte != b'.') {
        mantissa = mantissa * 16.0 + f64::from((*byte as char).to_digit(16).unwrap_or(0));
    }
    let exponent_end = end + exponent_length(&digits[end..], b'p');
    let exponent: i64 = if exponent_end > end {
        std::str::from_utf8(&digits[end + 1..exponent_end]).ok()?.parse().unwrap_or(i64::MAX)
    } else {
        0
    };
    let scale = exponent.saturating_sub(4 * fraction_digits as i64).clamp(-4000, 4000) as i32;
    let value = mantissa * 2f64.powi(scale);
    let range_error = value.is_infinite() || (mantissa != 0.0 && value == 0.0);
    Some((value, 2 + exponent_end, range_error))
}

/// Redis's `pqsort` (Bentley and McIlroy's quicksort, recursing only into
/// parts that overlap `first..=last`): only positions `first..=last` end
/// up sorted, and equal elements are ordered exactly as Redis orders them.
fn partial_quicksort<T>(items: &mut [T], first: i64, last: i64, compare: &impl Fn(&T, &T) -> Ordering) {
    let range = Range { first, last };
    quicksort_part(items, 0, items.len(), range, compare);
}

/// The positions a partial sort must get right.
#[derive(Clone, Copy)]
struct Range {
    first: i64,
    last: i64,
}

impl Range {
    /// Whether `base..base + len` holds no position of the range, as
    /// `pqsort` decides before sorting a part.
    fn misses(&self, base: usize, len: usize) -> bool {
        let (low, high) = (base as i64, (base + len) as i64 - 1);
        (self.first < low && self.last < low) || (self.first > high && self.last > high)
    }
}

fn quicksort_part<T>(
    items: &mut [T],
    mut base: usize,
    mut len: usize,
    range: Range,
    compare: &impl Fn(&T, &T) -> Ordering,
) {
    loop {
        if len < 7 {
            insertion_sort(items, base, len, compare);
            return;
        }
        let pivot = choose_pivot(items, base, len, compare);
        items.swap(base, pivot);
        let (mut pa, mut pb) = (base + 1, base + 1);
        let (mut pc, mut pd) = (base + len - 1, base + len - 1);
        loop {
            while pb <= pc {
                let ordering = compare(&items[pb], &items[base]);
                if ordering == Ordering::Greater {
                    break;
                }
                if ordering == Ordering::Equal {
                    items.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let ordering = compare(&items[pc], &items[base]);
                if ordering == Ordering::Less {
                    break;
                }
                if ordering == Ordering::Equal {
                    items.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            items.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let end = base + len;
        let moved = (pa - base).min(pb - pa);
        swap_runs(items, base, pb - moved, moved);
        let moved = (pd - pc).min(end - pd - 1);
        swap_runs(items, pb, end - moved, moved);
        let smaller = pb - pa;
        if smaller > 1 && !range.misses(base, smaller) {
            quicksort_part(items, base, smaller, range, compare);
        }
        let larger = pd - pc;
        if larger <= 1 || range.misses(end - larger, larger) {
            return;
        }
        base = end - larger;
        len = larger;
    }
}

fn insertion_sort<T>(items: &mut [T], base: usize, len: usize, compare: &impl Fn(&T, &T) -> Ordering) {
    for current in base + 1..base + len {
        let mut position = current;
        while position > base && compare(&items[position - 1], &items[position]) == Ordering::Greater {
            items.swap(position, position - 1);
            position -= 1;
        }
    }
}

/// The pivot position: median of three, or of three medians above 40.
fn choose_pivot<T>(items: &[T], base: usize, len: usize, compare: &impl Fn(&T, &T) -> Ordering) -> usize {
    let mut middle = base + len / 2;
    if len > 7 {
        let mut low = base;
        let mut high = base + len - 1;
        if len > 40 {
            let step = len / 8;
            low = median_of_three(items, low, low + step, low + 2 * step, compare);
            middle = median_of_three(items, middle - step, middle, middle + step, compare);
            high = median_of_three(items, high - 2 * step, high - step, high, compare);
        }
        middle = median_of_three(items, low, middle, high, compare);
    }
    middle
}

fn median_of_three<T>(items: &[T], a: usize, b: usize, c: usize, compare: &impl Fn(&T, &T) -> Ordering) -> usize {
    let less = |x: usize, y: usize| compare(&items[x], &items[y]) == Ordering::Less;
    let greater = |x: usize, y: usize| compare(&items[x], &items[y]) == Ordering::Greater;
    if less(a, b) {
        if less(b, c) {
            b
        } else if less(a, c) {
            c
        } else {
            a
        }
    } else if greater(b, c) {
        b
    } else if less(a, c) {
        a
    } else {
        c
    }
}

/// Swaps `count` elements from `first` with `count` from `second`, pair by
/// pair (pqsort's `vecswap`).
fn swap_runs<T>(items: &mut [T], first: usize, second: usize, count: usize) {
    for offset in 0..count {
        items.swap(first + offset, second + offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_follows_c() {
        assert_eq!(strtod(b""), Some(0.0));
        assert_eq!(strtod(b"  1.5"), Some(1.5));
        assert_eq!(strtod(b"1 "), None);
        assert_eq!(strtod(b" "), None);
        assert_eq!(strtod(b"0x10"), Some(16.0));
        assert_eq!(strtod(b"0x"), None);
        assert_eq!(strtod(b"1e"), None);
        assert_eq!(strtod(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(strtod(b"nan"), None);
        assert_eq!(strtod(b"1e309"), None);
        assert_eq!(strtod(b"1e-310"), None);
        assert_eq!(strtod(b"0e-999999"), Some(0.0));
        assert_eq!(strtod(b"12\0junk"), Some(12.0));
        assert_eq!(strtod(b".5"), Some(0.5));
        assert_eq!(strtod(b"5."), Some(5.0));
        assert_eq!(strtod(b"."), None);
    }

    #[test]
    fn partial_quicksort_sorts_the_window() {
        let mut values: Vec<i64> = (0..200).map(|index| (index * 7919) % 211).collect();
        let mut expected = values.clone();
        expected.sort();
        partial_quicksort(&mut values, 50, 59, &|a: &i64, b: &i64| a.cmp(b));
        assert_eq!(&values[50..60], &expected[50..60]);
    }

    #[test]
    fn output_window_clamps_like_redis() {
        assert_eq!(output_window(0, -1, 5), (0, 4));
        assert_eq!(output_window(10, 2, 5), (4, 3));
        assert_eq!(output_window(-10, 100, 5), (0, 4));
        assert_eq!(output_window(0, 0, 5), (0, -1));
        assert_eq!(output_window(0, -1, 0), (-1, -2));
    }

    #[test]
    fn key_positions_take_the_last_store() {
        let args: Vec<&[u8]> = vec![b"sort", b"abc", b"store", b"invalid", b"store", b"stillbad", b"store", b"def"];
        assert_eq!(key_positions(&args), vec![1, 7]);
    }
}
