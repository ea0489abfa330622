//! An indexed binary heap of `(slot, handle)` pairs.
//!
//! Every handle knows its position, so any entry can be removed in O(log n)
//! the moment its socket dies or is displaced. The original module instead left
//! stale entries behind to be skipped later (defect D1); here the heap only
//! ever holds live entries, so its memory is bounded by the pool's size.

use crate::Handle;

const ABSENT: u32 = u32::MAX;

/// `MAX == false`: a min-heap (root = lowest slot); `MAX == true`: a max-heap.
/// Ties on the slot are broken by the handle so the order is total.
#[derive(Debug, Default)]
pub(crate) struct IndexedHeap<const MAX: bool> {
    items: Vec<(u64, Handle)>,
    /// `pos[handle]`: the handle's index in `items`, or `ABSENT`.
    pos: Vec<u32>,
}

impl<const MAX: bool> IndexedHeap<MAX> {
    pub(crate) fn new() -> Self {
        Self {
            items: Vec::new(),
            pos: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<(u64, Handle)> {
        self.items.first().copied()
    }

    #[inline]
    pub(crate) fn contains(&self, handle: Handle) -> bool {
        self.pos.get(handle as usize).is_some_and(|&p| p != ABSENT)
    }

    /// `a` should sit above `b`.
    #[inline(always)]
    fn above(a: (u64, Handle), b: (u64, Handle)) -> bool {
        if MAX {
            a > b
        } else {
            a < b
        }
    }

    pub(crate) fn push(&mut self, slot: u64, handle: Handle) {
        let h = handle as usize;
        if self.pos.len() <= h {
            self.pos.resize(h + 1, ABSENT);
        }
        debug_assert_eq!(self.pos[h], ABSENT, "handle {handle} pushed twice");
        let at = self.items.len();
        self.items.push((slot, handle));
        self.sift_up(at);
    }

    pub(crate) fn pop(&mut self) -> Option<(u64, Handle)> {
        let top = *self.items.first()?;
        self.remove_at(0);
        Some(top)
    }

    /// Removes `handle` if present; returns whether it was.
    pub(crate) fn remove(&mut self, handle: Handle) -> bool {
        match self.pos.get(handle as usize) {
            Some(&p) if p != ABSENT => {
                self.remove_at(p as usize);
                true
            }
            _ => false,
        }
    }

    /// Puts `(slot, handle)` where `old` was, in one sift instead of a removal
    /// and an insertion. Returns false (and changes nothing) if `old` is absent.
    pub(crate) fn replace(&mut self, old: Handle, slot: u64, handle: Handle) -> bool {
        let at = match self.pos.get(old as usize) {
            Some(&p) if p != ABSENT => p as usize,
            _ => return false,
        };
        let h = handle as usize;
        if self.pos.len() <= h {
            self.pos.resize(h + 1, ABSENT);
        }
        debug_assert_eq!(self.pos[h], ABSENT, "handle {handle} pushed twice");
        self.pos[old as usize] = ABSENT;
        let item = (slot, handle);
        self.items[at] = item;
        self.pos[h] = at as u32;
        if at > 0 && Self::above(item, self.items[(at - 1) / 2]) {
            self.sift_up(at);
        } else {
            self.sift_down(at);
        }
        true
    }

    /// Gives `handle` a new key, in one sift; false if it is absent. The
    /// adaptive mode uses it when a server's weight changes.
    pub(crate) fn rekey(&mut self, handle: Handle, slot: u64) -> bool {
        let at = match self.pos.get(handle as usize) {
            Some(&p) if p != ABSENT => p as usize,
            _ => return false,
        };
        let item = (slot, handle);
        self.items[at] = item;
        if at > 0 && Self::above(item, self.items[(at - 1) / 2]) {
            self.sift_up(at);
        } else {
            self.sift_down(at);
        }
        true
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, Handle)> + '_ {
        self.items.iter().copied()
    }

    /// Empties the heap, keeping its allocations.
    pub(crate) fn clear(&mut self) {
        for &(_, h) in &self.items {
            self.pos[h as usize] = ABSENT;
        }
        self.items.clear();
    }

    fn remove_at(&mut self, at: usize) {
        let removed = self.items[at].1;
        self.pos[removed as usize] = ABSENT;
        let last = self.items.pop().expect("remove_at on an empty heap");
        if at < self.items.len() {
            // Put the last item in the hole and restore order in whichever
            // direction it is out of place.
            self.items[at] = last;
            self.pos[last.1 as usize] = at as u32;
            if at > 0 && Self::above(last, self.items[(at - 1) / 2]) {
                self.sift_up(at);
            } else {
                self.sift_down(at);
            }
        }
    }

    fn sift_up(&mut self, mut at: usize) {
        let item = self.items[at];
        while at > 0 {
            let parent = (at - 1) / 2;
            let p = self.items[parent];
            if !Self::above(item, p) {
                break;
            }
            self.items[at] = p;
            self.pos[p.1 as usize] = at as u32;
            at = parent;
        }
        self.items[at] = item;
        self.pos[item.1 as usize] = at as u32;
    }

    fn sift_down(&mut self, mut at: usize) {
        let len = self.items.len();
        let item = self.items[at];
        loop {
            let left = 2 * at + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && Self::above(self.items[right], self.items[left]) {
                right
            } else {
                left
            };
            let c = self.items[child];
            if !Self::above(c, item) {
                break;
            }
            self.items[at] = c;
            self.pos[c.1 as usize] = at as u32;
            at = child;
        }
        self.items[at] = item;
        self.pos[item.1 as usize] = at as u32;
    }

    /// Checks the heap order and the position index (tests only).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        for (i, &item) in self.items.iter().enumerate() {
            assert_eq!(self.pos[item.1 as usize], i as u32, "position of {item:?}");
            if i > 0 {
                assert!(
                    !Self::above(item, self.items[(i - 1) / 2]),
                    "heap order at {i}"
                );
            }
        }
        let present = self.pos.iter().filter(|&&p| p != ABSENT).count();
        assert_eq!(present, self.items.len(), "stale positions");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_heap_pops_in_order_and_removes_anywhere() {
        let mut h = IndexedHeap::<false>::new();
        for (i, s) in [5u64, 3, 9, 1, 7, 3].into_iter().enumerate() {
            h.push(s, i as Handle);
            h.check();
        }
        assert!(h.remove(2)); // slot 9
        assert!(!h.remove(2));
        h.check();
        let order: Vec<_> = std::iter::from_fn(|| h.pop()).collect();
        assert_eq!(order, vec![(1, 3), (3, 1), (3, 5), (5, 0), (7, 4)]);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn replace_puts_the_new_entry_in_order() {
        let mut h = IndexedHeap::<true>::new();
        for (i, s) in [5u64, 30, 9, 12, 1].into_iter().enumerate() {
            h.push(s, i as Handle);
        }
        assert!(h.replace(1, 2, 7)); // the top, 30, becomes 2
        h.check();
        assert!(!h.contains(1) && h.contains(7));
        assert!(!h.replace(1, 3, 8));
        assert!(h.replace(4, 40, 9)); // a leaf becomes the highest
        h.check();
        let order: Vec<_> = std::iter::from_fn(|| h.pop()).collect();
        assert_eq!(order, vec![(40, 9), (12, 3), (9, 2), (5, 0), (2, 7)]);
    }

    #[test]
    fn rekey_moves_an_entry_either_way() {
        let mut h = IndexedHeap::<false>::new();
        for (i, s) in [5u64, 3, 9, 1, 7].into_iter().enumerate() {
            h.push(s, i as Handle);
        }
        assert!(h.rekey(3, 20)); // the top sinks
        h.check();
        assert!(h.rekey(2, 0)); // a leaf rises
        h.check();
        assert!(!h.rekey(42, 1));
        let order: Vec<_> = std::iter::from_fn(|| h.pop()).collect();
        assert_eq!(order, vec![(0, 2), (3, 1), (5, 0), (7, 4), (20, 3)]);
    }

    #[test]
    fn max_heap_peeks_highest() {
        let mut h = IndexedHeap::<true>::new();
        for (i, s) in [5u64, 30, 9].into_iter().enumerate() {
            h.push(s, i as Handle);
        }
        assert_eq!(h.peek(), Some((30, 1)));
        h.remove(1);
        assert_eq!(h.peek(), Some((9, 2)));
        h.check();
    }
}
