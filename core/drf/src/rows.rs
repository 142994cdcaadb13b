//! Where the allocator keeps its amounts: rows of one flat vector, not a `Vec` per agent,
//! framework, role or holding.
//!
//! A round visits agents in shuffled order, so each visit is a cache miss whatever the
//! layout; what the layout decides is how many more follow. With one allocation per row,
//! rows lie wherever the heap put them, which depends on what was allocated in between
//! (a module builds its state from decoded messages, whose temporaries sit between its
//! rows; the built-in allocator does not), and the same code ran measurably slower in a
//! module than in the host. Rows of one vector lie in index order in every process, and
//! a round allocates nothing per agent.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Rows of `width` amounts each, indexed by the allocator's interned resource names.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    width: usize,
    /// Counted, not derived from `values`: rows exist before any name does (width 0).
    rows: usize,
    values: Vec<f64>,
}

impl Rows {
    /// The row `index`.
    pub(crate) fn row(&self, index: usize) -> &[f64] {
        &self.values[index * self.width..(index + 1) * self.width]
    }

    /// The row `index`, to change.
    pub(crate) fn row_mut(&mut self, index: usize) -> &mut [f64] {
        &mut self.values[index * self.width..(index + 1) * self.width]
    }

    /// Appends a row of zeros and returns its index.
    pub(crate) fn push_zeros(&mut self) -> usize {
        self.values.resize(self.values.len() + self.width, 0.0);
        self.rows += 1;
        self.rows - 1
    }

    /// Appends `amounts` (as wide as a row) as a row and returns its index.
    pub(crate) fn push(&mut self, amounts: &[f64]) -> usize {
        debug_assert_eq!(amounts.len(), self.width);
        self.values.extend_from_slice(amounts);
        self.rows += 1;
        self.rows - 1
    }

    /// Adds a column of zeros to every row (a resource name seen for the first time).
    pub(crate) fn widen(&mut self) {
        let mut values = Vec::with_capacity(self.rows * (self.width + 1));
        for row in 0..self.rows {
            values.extend_from_slice(self.row(row));
            values.push(0.0);
        }
        self.values = values;
        self.width += 1;
    }
}

/// What each framework holds on each agent, for giving it back when one of them goes.
/// Rows of holdings that drop to nothing are reused, so a round that offers every agent
/// and a give-back of every offer allocate nothing once the first round has run.
#[derive(Debug, Default)]
pub(crate) struct Holdings {
    rows: Rows,
    /// (agent, framework) to its row.
    index: HashMap<(usize, usize), usize, BuildHasherDefault<IndexHasher>>,
    spare: Vec<usize>,
}

impl Holdings {
    /// What `framework` holds on `agent`, if anything.
    pub(crate) fn get(&self, agent: usize, framework: usize) -> Option<&[f64]> {
        self.index.get(&(agent, framework)).map(|&row| self.rows.row(row))
    }

    /// Changes what `framework` holds on `agent` with `change`, and forgets the holding
    /// when nothing is left of it.
    pub(crate) fn update(&mut self, agent: usize, framework: usize, change: impl FnOnce(&mut [f64])) {
        let row = match self.index.get(&(agent, framework)) {
            Some(&row) => row,
            None => {
                let row = self.spare.pop().unwrap_or_else(|| self.rows.push_zeros());
                self.index.insert((agent, framework), row);
                row
            }
        };
        let amounts = self.rows.row_mut(row);
        change(amounts);
        if amounts.iter().all(|amount| *amount <= 0.0) {
            amounts.fill(0.0);
            self.index.remove(&(agent, framework));
            self.spare.push(row);
        }
    }

    /// Every holding `held` selects, as (agent, framework, amounts), ordered by agent then
    /// framework so that giving them back happens in the same order on every run.
    pub(crate) fn select(&self, held: impl Fn(usize, usize) -> bool) -> Vec<(usize, usize, Vec<f64>)> {
        let mut selected: Vec<_> = self
            .index
            .iter()
            .filter(|((agent, framework), _)| held(*agent, *framework))
            .map(|(&(agent, framework), &row)| (agent, framework, self.rows.row(row).to_vec()))
            .collect();
        selected.sort_by_key(|(agent, framework, _)| (*agent, *framework));
        selected
    }

    /// Adds a column of zeros to every holding.
    pub(crate) fn widen(&mut self) {
        self.rows.widen();
    }
}

/// A hasher for pairs of the allocator's own indices, which no one outside chooses (so
/// SipHash's defence against chosen keys buys nothing): a multiply and a rotate per word.
#[derive(Debug, Default)]
pub(crate) struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        // An odd constant near 2^64 / golden ratio spreads the bits upward, where the
        // table takes its control bits from.
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_counted_before_any_column_exists() {
        let mut rows = Rows::default();
        assert_eq!((rows.push_zeros(), rows.push_zeros()), (0, 1));
        rows.widen();
        assert_eq!((rows.row(0), rows.row(1)), (&[0.0][..], &[0.0][..]));
    }

    #[test]
    fn widening_keeps_every_row_and_adds_a_zero_column() {
        let mut rows = Rows { width: 2, ..Rows::default() };
        rows.push(&[1.0, 2.0]);
        rows.push(&[3.0, 4.0]);
        rows.widen();
        assert_eq!(rows.row(0), [1.0, 2.0, 0.0]);
        assert_eq!(rows.row(1), [3.0, 4.0, 0.0]);
        assert_eq!(rows.push_zeros(), 2);
        assert_eq!(rows.row(2), [0.0; 3]);
    }

    #[test]
    fn a_holding_that_drops_to_nothing_is_forgotten_and_its_row_reused() {
        let mut holdings = Holdings::default();
        holdings.widen();
        holdings.update(3, 7, |row| row[0] += 2.0);
        assert_eq!(holdings.get(3, 7), Some(&[2.0][..]));
        holdings.update(3, 7, |row| row[0] -= 2.0);
        assert_eq!(holdings.get(3, 7), None);
        holdings.update(4, 1, |row| row[0] += 1.0);
        assert_eq!(holdings.rows.rows, 1, "the freed row was reused");
        assert_eq!(holdings.select(|agent, _| agent == 4), vec![(4, 1, vec![1.0])]);
    }
}
