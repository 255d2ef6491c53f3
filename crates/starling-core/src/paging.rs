//! Walking a listing page by page: the one loop behind every read of a
//! whole list (a user's edges, an inbox, an author's posts, the job queue).
//!
//! ```
//! use std::ops::ControlFlow;
//! use starling_core::paging::{PAGE, for_each_page};
//!
//! // A listing of 0..3000 read `limit` at a time after the last key seen.
//! let listing: Vec<u32> = (0..3000).collect();
//! let mut seen = 0;
//! for_each_page(
//!     PAGE,
//!     |after: Option<u32>, limit, out: &mut Vec<u32>| {
//!         let from = after.map_or(0, |a| a as usize + 1);
//!         out.extend(listing.iter().skip(from).take(limit));
//!         Ok(())
//!     },
//!     |&n| n,
//!     |page| {
//!         seen += page.len();
//!         Ok(ControlFlow::Continue(()))
//!     },
//! )?;
//! assert_eq!(seen, 3000);
//! # Ok::<(), starling_core::Error>(())
//! ```

use std::ops::ControlFlow;

use crate::Result;

/// Entries read per page by the loops that walk a whole listing.
pub const PAGE: usize = 1024;

/// Reads a listing in pages of `size` and hands each page to `visit`, until
/// a page comes back short (the listing is exhausted) or `visit` breaks.
///
/// `read(after, limit, out)` appends to `out` (cleared before each call) up
/// to `limit` entries that come after `after` in the listing's order
/// (`None`: from its start); `key` gives the position an entry leaves the
/// next read at. One buffer serves every page.
pub fn for_each_page<K, T>(
    size: usize,
    mut read: impl FnMut(Option<K>, usize, &mut Vec<T>) -> Result<()>,
    key: impl Fn(&T) -> K,
    mut visit: impl FnMut(&[T]) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let mut page = Vec::new();
    let mut after = None;
    loop {
        page.clear();
        read(after, size, &mut page)?;
        let full = page.len() >= size;
        let next = page.last().map(&key);
        if visit(&page)?.is_break() {
            return Ok(());
        }
        match next {
            Some(next) if full => after = Some(next),
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    /// Walks `0..len` in pages of `size`: the start of each read and every
    /// entry visited; the visitor breaks after `stop_after` pages.
    fn walk(len: u32, size: usize, stop_after: usize) -> (Vec<Option<u32>>, Vec<u32>) {
        let (mut starts, mut seen) = (Vec::new(), Vec::new());
        let mut pages = 0;
        for_each_page(
            size,
            |after, limit, out: &mut Vec<u32>| {
                assert!(out.is_empty(), "the buffer is cleared before each read");
                starts.push(after);
                let from = after.map_or(0, |a| a + 1);
                out.extend((from..len).take(limit));
                Ok(())
            },
            |&n| n,
            |page| {
                seen.extend_from_slice(page);
                pages += 1;
                Ok(if pages == stop_after {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )
        .expect("nothing fails here");
        (starts, seen)
    }

    #[test]
    fn reads_every_entry_once_continuing_after_the_last_key() {
        let (starts, seen) = walk(10, 4, usize::MAX);
        assert_eq!(starts, vec![None, Some(3), Some(7)]);
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_last_page_is_followed_by_one_empty_read() {
        let (starts, seen) = walk(8, 4, usize::MAX);
        assert_eq!(starts, vec![None, Some(3), Some(7)]);
        assert_eq!(seen.len(), 8);
        let (starts, seen) = walk(0, 4, usize::MAX);
        assert_eq!((starts, seen), (vec![None], vec![]));
    }

    #[test]
    fn a_visitor_stops_the_walk() {
        let (starts, seen) = walk(100, 4, 2);
        assert_eq!(starts, vec![None, Some(3)]);
        assert_eq!(seen, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn errors_end_the_walk() {
        let mut reads = 0;
        let failed = for_each_page(
            2,
            |_, _, out: &mut Vec<u8>| {
                reads += 1;
                out.extend([1, 2]);
                if reads == 2 {
                    return Err(Error::SelfFollow);
                }
                Ok(())
            },
            |&n| n,
            |_| Ok(ControlFlow::Continue(())),
        );
        assert!(matches!(failed, Err(Error::SelfFollow)));
        assert_eq!(reads, 2);
        let refused = for_each_page(
            2,
            |_, _, out: &mut Vec<u8>| {
                out.extend([1, 2]);
                Ok(())
            },
            |&n| n,
            |_| Err(Error::Poisoned),
        );
        assert!(matches!(refused, Err(Error::Poisoned)));
    }
}
