//! Bit-sliced syndrome checks: up to 32 codewords checked at once, one
//! 32-bit word per codeword column, no per-bit gather.
//!
//! The keyed interleaver stores bit `j` of the codeword with row
//! `r = a·i mod C` at column `(r + b_j) mod C` of strip `j`. The codewords
//! of 32 consecutive *rows* `R .. R + 32` therefore keep their bit `j` in
//! 32 consecutive stored bits, `(R + b_j) mod C ..` (wrapping at `C`): one
//! unaligned word read gives bit `j` of all 32 at once ("a slice", bit `t`
//! for row `R + t`). A parity check is the XOR of the codeword bits it
//! covers, so XOR-ing slices gives that check for all 32 codewords in one
//! word operation. One pass over the `n` slices computes the whole
//! syndrome of 32 codewords; only those whose syndrome is not zero are
//! then gathered bit by bit and decoded ([`Rows`]: the one such walk the
//! loader, the in-place patch, the scrubber and the flash scan share).
//!
//! Cost per stored bit, for a group of 32: per slice an interleaver offset
//! (a keyed hash, or a table lookup when a load hashed them all once) and
//! one or two unaligned reads, and per column the 3.3–3.7 parity-check
//! XORs, each a load-XOR-store shared by 32 codewords. Measured on the
//! emulated Cortex-M4 (`tests/tests/hil_scrub.rs`): a clean 32-codeword
//! scrub step costs 3.2 instructions per stored bit, where gathering each
//! codeword bit by bit and checking it cost 40. A group of one or two
//! codewords costs a 32-row pass's column work all the same, so with an
//! offset table it is gathered per codeword instead ([`GATHERED_WIDTH`]).

use super::{check_gathered, gather, get_bits, put32, set_bits, Health, Interleaver, Layout};
use crate::ldpc::{Code, DecoderScratch, Length, MAX_CODEWORD_WORDS};
use core::num::NonZeroUsize;

/// Codewords a slice holds: the bits of a `u32`.
pub(crate) const GROUP: usize = 32;

/// Most parity checks of any code: n = 1944 at rate 1/2.
const MAX_CHECKS: usize = Length::N1944.bits() / 2;

/// Largest circulant size (n = 1944: Z = 81).
const MAX_Z: usize = Length::N1944.z();

/// The 32 stored bits from bit `bit` on (zeros past the end): one or two
/// word reads, the common case with one bounds check.
#[inline(always)]
fn read32(stored: &[u32], bit: usize) -> u32 {
    let (w, s) = (bit / 32, bit % 32);
    match stored.get(w..w.saturating_add(2)) {
        Some(&[lo, hi]) => lo >> s | (hi << 1) << (31 - s),
        _ => get_bits(stored, bit, 32),
    }
}

/// Reads the slices of one group: rows `first .. first + width` of
/// strips `c` codewords long.
#[derive(Clone, Copy)]
struct Slicer {
    c: usize,
    first: usize,
    width: usize,
    /// The low `width` bits.
    mask: u32,
}

impl Slicer {
    /// Rows `first .. first + width` (`width ≤ 32`, `first + width ≤ C`)
    /// of `il`'s strips.
    fn new(il: &Interleaver, first: u64, width: usize) -> Slicer {
        // Both fit `usize`: `C` codewords of `n` bits are stored in a slice.
        Slicer {
            c: il.codewords as usize,
            first: first as usize,
            width,
            mask: u32::MAX
                .checked_shr((GROUP - width.min(GROUP)) as u32)
                .unwrap_or(0),
        }
    }

    /// Bit `j` of the group's codewords as one word, bit `t` for row
    /// `first + t`; `offset` is column `j`'s interleaver offset (`< C`).
    #[cfg(test)]
    fn slice(&self, stored: &[u32], j: usize, offset: usize) -> u32 {
        let mut x = [0];
        self.slices(stored, j, [offset], &mut x);
        x[0]
    }

    /// The slices of columns `j0 ..` into `out`, one per offset.
    #[inline(always)]
    fn slices(
        &self,
        stored: &[u32],
        j0: usize,
        offsets: impl IntoIterator<Item = usize>,
        out: &mut [u32],
    ) {
        let c = self.c;
        // Each column's first row in its strip, `(first + offset) mod C`, in
        // a loop of its own: the read loop below then fits the registers.
        for (x, offset) in out.iter_mut().zip(offsets) {
            let s = self.first + offset;
            *x = (if s >= c { s - c } else { s }) as u32;
        }
        self.read_slices(stored, j0, out);
    }

    /// Replaces each first row in `out` (columns `j0 ..`) with its slice.
    /// Not inlined: on its own the loop keeps its values in registers.
    #[inline(never)]
    fn read_slices(&self, stored: &[u32], j0: usize, out: &mut [u32]) {
        if self.first == 0 && self.width == self.c {
            return self.rotate_strips(stored, j0, out);
        }
        let c = self.c;
        let mut strip = j0 * c;
        for x in out.iter_mut() {
            let s = *x as usize;
            let head = c - s;
            let run = read32(stored, strip + s);
            *x = if head >= self.width {
                run & self.mask
            } else {
                // The run wraps to the start of the strip (`1 ≤ head < 32`).
                (run & ((1 << head) - 1) | read32(stored, strip) << head) & self.mask
            };
            strip += c;
        }
    }

    /// [`Slicer::read_slices`] for a group of every row (`C ≤ 32`): a
    /// slice is its strip rotated down by the first row, one read instead
    /// of two.
    #[inline(never)]
    fn rotate_strips(&self, stored: &[u32], j0: usize, out: &mut [u32]) {
        let c = self.c;
        let mut strip = j0 * c;
        for x in out.iter_mut() {
            let s = *x as usize;
            let v = read32(stored, strip) & self.mask;
            // `v << (c - s)` as two shifts: `c - s` is 32 when s = 0.
            *x = (v >> s | (v << 1) << (c - s - 1)) & self.mask;
            strip += c;
        }
    }
}

/// Where [`check_group`] takes each column's interleaver offset from.
#[derive(Clone, Copy)]
pub(crate) enum Offsets<'t> {
    /// The keyed hash, per column and group ([`Interleaver::offset`]).
    Hashed,
    /// A table of them, hashed once per load in a tight loop: inside the
    /// check the hash costs three times as much (register pressure).
    Table(&'t [u16]),
}

impl Offsets<'_> {
    /// The table of `il`'s first `n` offsets in `buf`, when they fit 16
    /// bits and `buf` (else [`Offsets::Hashed`]).
    pub(crate) fn for_groups<'t>(il: &Interleaver, n: usize, buf: &'t mut [u16]) -> Offsets<'t> {
        let fits = il.codewords <= u64::from(u16::MAX) + 1;
        match buf.get_mut(..n) {
            Some(table) if fits => {
                for (j, o) in table.iter_mut().enumerate() {
                    *o = il.offset(j) as u16;
                }
                Offsets::Table(table)
            }
            _ => Offsets::Hashed,
        }
    }
}

/// Columns of the longest code: the size of an offset table.
pub(crate) const MAX_COLUMNS: usize = Length::N1944.bits();

/// What [`check_group`] found, one bit per row of the group (bit `t` for
/// row `first + t`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GroupCheck {
    /// Rows whose codewords fail a parity check.
    pub failing: u32,
    /// Rows whose message in the decoded copy differs from the stored one.
    pub stale: u32,
}

/// What a group check does with the message bits of a sequential layout's
/// decoded copy (codeword `i`'s message at bit `i·k`).
pub(crate) enum Messages<'a> {
    /// Nothing (the in-place layout).
    Ignore,
    /// Compares them with the stored messages (scrubbing), the copy being
    /// the given bits long: [`GroupCheck::stale`].
    Compare(&'a [u32], usize),
    /// Writes the stored messages into them (loading; failing rows are
    /// rewritten after their decode), bits past the copy's end dropped as
    /// [`Layout::put_message`] drops them.
    Write(&'a mut [u32]),
}

/// A group's message columns waiting to be transposed, and where each
/// row's message goes.
struct Group<'m, 'a> {
    width: usize,
    k: usize,
    messages: &'m mut Messages<'a>,
    /// Bit `k·i` of the decoded copy for each row's codeword `i`.
    message_at: [usize; GROUP],
    chunk: [u32; GROUP],
    stale: u32,
}

impl Group<'_, '_> {
    /// Takes the slices of message columns `j .. j + xs.len()` (`≤ k`);
    /// every 32 columns (and at `k`) transposes them into one word per row
    /// and compares or writes.
    fn message_columns(&mut self, mut j: usize, mut xs: &[u32]) {
        while let Some(take) = NonZeroUsize::new(
            (GROUP - j % GROUP)
                .min(xs.len())
                .min(self.k.saturating_sub(j)),
        ) {
            let (take, at) = (take.get(), j % GROUP);
            self.chunk[at..at + take].copy_from_slice(&xs[..take]);
            (j, xs) = (j + take, &xs[take..]);
            if at + take == GROUP || j == self.k {
                self.flush(j - (at + take), at + take);
            }
        }
    }

    /// Transposes the `len` columns from message bit `start` and compares
    /// or writes each row's `len` bits.
    fn flush(&mut self, start: usize, len: usize) {
        let m = &mut self.chunk;
        m[len..].fill(0);
        transpose(m);
        let rows = m[..self.width].iter().zip(&self.message_at[..self.width]);
        match self.messages {
            Messages::Ignore => {}
            Messages::Compare(decoded, bits) => {
                for (t, (&want, &at)) in rows.enumerate() {
                    let at = at + start;
                    let len = len.min(bits.saturating_sub(at));
                    if len > 0 && get_bits(decoded, at, len) != want & (u32::MAX >> (GROUP - len)) {
                        self.stale |= 1 << t;
                    }
                }
            }
            Messages::Write(ref mut decoded) => {
                let bits = decoded.len() * 32;
                for (&want, &at) in rows {
                    let at = at + start;
                    if len == GROUP && at + GROUP <= bits {
                        put32(decoded, at, want);
                    } else {
                        let len = len.min(bits.saturating_sub(at));
                        if len > 0 {
                            set_bits(decoded, at, len, want);
                        }
                    }
                }
            }
        }
    }
}

/// The widest group [`check_group`] checks codeword by codeword when it has
/// an offset table. On the emulated Cortex-M4 a sliced pass costs about as
/// much as gathering and checking 2.7 codewords one at a time (22
/// instructions per gathered bit), whatever the group's width, so the tail
/// of 34 codewords (32 + 2) is cheaper gathered, and one of 3 is not.
const GATHERED_WIDTH: usize = 2;

/// Checks the codewords with rows `first .. first + width` (`width ≤ 32`,
/// `first + width ≤ C`) against the parity checks of `code` (in one pass
/// over their slices, or one codeword at a time when they are few), doing
/// with their messages what `messages` says on the way.
pub(crate) fn check_group(
    code: &Code,
    stored: &[u32],
    (il, offsets): (&Interleaver, Offsets<'_>),
    (first, width): (u64, usize),
    messages: &mut Messages<'_>,
) -> GroupCheck {
    let width = width.min(GROUP);
    if let Offsets::Table(table) = offsets {
        if let Some(table) = table.get(..code.n()).filter(|_| width <= GATHERED_WIDTH) {
            return check_each(code, stored, (il, table), (first, width), messages);
        }
    }
    let k = code.k();
    let mut message_at = [0; GROUP];
    if !matches!(messages, Messages::Ignore) {
        // A division per row, once per group.
        for (t, at) in message_at[..width].iter_mut().enumerate() {
            *at = il.index_of_row(first + t as u64) * k;
        }
    }
    let mut group = Group {
        width,
        k,
        messages,
        message_at,
        chunk: [0; GROUP],
        stale: 0,
    };
    let rows = Slicer::new(il, first, width);
    // One copy of the pass per offset source keeps the choice out of the
    // per-column loop.
    let z = code.z();
    let failing = syndrome_pass(code, &mut group, |j0, out| match offsets {
        Offsets::Table(table) => match table.get(j0..j0 + z) {
            Some(offsets) => rows.slices(stored, j0, offsets.iter().map(|&o| usize::from(o)), out),
            None => rows.slices(stored, j0, (j0..).map(|j| il.offset(j) as usize), out),
        },
        Offsets::Hashed => {
            // Hashed first, in a loop of its own: fewer live registers.
            let mut hashed = [0u32; MAX_Z];
            for (o, j) in hashed.iter_mut().zip(j0..j0 + z) {
                *o = il.offset(j) as u32;
            }
            rows.slices(stored, j0, hashed.iter().map(|&o| o as usize), out)
        }
    });
    GroupCheck {
        failing,
        stale: group.stale,
    }
}

/// [`check_group`] one codeword at a time: gathers each row's codeword
/// with `table`'s offsets and checks its syndrome.
fn check_each(
    code: &Code,
    stored: &[u32],
    (il, table): (&Interleaver, &[u16]),
    (first, width): (u64, usize),
    messages: &mut Messages<'_>,
) -> GroupCheck {
    let k = code.k();
    let mut cw = [0u32; MAX_CODEWORD_WORDS];
    let cw = &mut cw[..code.words()];
    let mut found = GroupCheck::default();
    for t in 0..width {
        let row = first + t as u64;
        gather_by_table(stored, il, row, table, cw);
        if !code.syndrome_ok(cw) {
            found.failing |= 1 << t;
        }
        let i = il.index_of_row(row);
        let at = i * k;
        match messages {
            Messages::Ignore => {}
            Messages::Compare(decoded, bits) => {
                let len = k.min(bits.saturating_sub(at));
                let differs = (0..len).step_by(GROUP).any(|done| {
                    let chunk = (len - done).min(GROUP);
                    get_bits(cw, done, chunk) != get_bits(decoded, at + done, chunk)
                });
                if differs {
                    found.stale |= 1 << t;
                }
            }
            Messages::Write(decoded) => Layout::Sequential.put_message(il, i, k, cw, decoded),
        }
    }
    found
}

/// Reads codeword row `row` from `stored` into `cw`, column `j`'s
/// interleaver offset from `table[j]`: [`gather`] without a keyed hash per
/// bit. Not inlined: on its own the loop keeps its values in registers.
#[inline(never)]
fn gather_by_table(stored: &[u32], il: &Interleaver, row: u64, table: &[u16], cw: &mut [u32]) {
    let (c, row) = (il.codewords as usize, row as usize);
    let mut strip = 0;
    for (word, offsets) in cw.iter_mut().zip(table.chunks(GROUP)) {
        let mut x = 0u32;
        for &offset in offsets {
            let s = row + usize::from(offset);
            let p = strip + if s >= c { s - c } else { s };
            let bit = stored.get(p / 32).map_or(0, |w| w >> (p % 32));
            // Bits enter at the top and move down: after 32 the first is bit 0.
            x = x >> 1 | bit << 31;
            strip += c;
        }
        *word = x >> (GROUP - offsets.len());
    }
}

/// The pass of [`check_group`], `slices(j0, out)` filling `out` with the
/// slices of columns `j0 ..`: returns the failing rows.
fn syndrome_pass(
    code: &Code,
    group: &mut Group<'_, '_>,
    mut slices: impl FnMut(usize, &mut [u32]),
) -> u32 {
    let z = code.z();
    let k = code.k();
    let takes_messages = !matches!(group.messages, Messages::Ignore);
    let mut syndrome = [0u32; MAX_CHECKS];
    let mut column = [0u32; MAX_Z];
    let base = code.base_matrix();
    for block in 0..base.first().map_or(0, |row| row.len()) {
        let j0 = block * z;
        slices(j0, &mut column[..z]);
        if takes_messages && j0 < k {
            // Message columns are whole blocks: k is a multiple of Z.
            group.message_columns(j0, &column[..z.min(k - j0)]);
        }
        for (i, row) in base.iter().enumerate() {
            let Ok(s) = usize::try_from(row[block]) else {
                continue; // a zero block
            };
            // Check i·Z + r covers column block·Z + (r + s) mod Z.
            let checks = &mut syndrome[i * z..(i + 1) * z];
            let (wrapped, straight) = column[..z].split_at(s);
            for (c, &x) in checks.iter_mut().zip(straight) {
                *c ^= x;
            }
            for (c, &x) in checks[z - s..].iter_mut().zip(wrapped) {
                *c ^= x;
            }
        }
    }
    syndrome[..code.m()].iter().fold(0, |acc, &c| acc | c)
}

/// The groups of up to [`GROUP`] consecutive rows, as `(first, width)`,
/// that cover rows `0 .. codewords`.
pub(crate) fn groups(codewords: u64) -> impl Iterator<Item = (u64, usize)> {
    (0..codewords)
        .step_by(GROUP)
        .map(move |first| (first, ((codewords - first) as usize).min(GROUP)))
}

/// One row of a group that [`Rows::next_row`] gathered (and decoded, when it
/// failed its check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    /// The interleaver row (its codeword is `il.index_of_row(row)`).
    pub row: u64,
    /// The bits the decoder changed (0 for a row that was only stale), or
    /// `None` when uncorrectable: the codeword buffer then holds the
    /// codeword as stored.
    pub changed: Option<usize>,
}

/// A group of rows checked with [`check_group`] whose failing and stale
/// rows are then visited one at a time by [`Rows::next_row`], which gathers
/// each and decodes the failing ones: the shared path of the loader, the
/// in-place patch, the scrubber and the flash scan. Each caller only says
/// what it does with a visited row. A clean group costs the one sliced
/// check and nothing per codeword.
pub(crate) struct Rows {
    first: u64,
    failing: u32,
    /// Rows not visited yet (bit `t` for row `first + t`).
    left: u32,
}

impl Rows {
    /// Checks the rows `first .. first + width` ([`check_group`], doing
    /// with their messages what `messages` says) and counts the passing
    /// ones in `health.codewords_checked` ([`Rows::next_row`] counts the
    /// failing ones as it decodes them).
    pub(crate) fn check(
        code: &Code,
        stored: &[u32],
        il: (&Interleaver, Offsets<'_>),
        (first, width): (u64, usize),
        messages: &mut Messages<'_>,
        health: &mut Health,
    ) -> Rows {
        let found = check_group(code, stored, il, (first, width), messages);
        health.codewords_checked += width as u32 - found.failing.count_ones();
        Rows {
            first,
            failing: found.failing,
            left: found.failing | found.stale,
        }
    }

    /// Visits the next failing or stale row, in row order: gathers its
    /// codeword from `stored` into `cw` (`code.words()` words) and, when it
    /// failed the check, decodes it there ([`check_gathered`], counting in
    /// `health`). `None` when every such row was visited.
    pub(crate) fn next_row<const N: usize, const M: usize>(
        &mut self,
        code: &Code,
        stored: &[u32],
        il: &Interleaver,
        cw: &mut [u32],
        scratch: &mut DecoderScratch<N, M>,
        health: &mut Health,
    ) -> Option<Row> {
        if self.left == 0 {
            return None;
        }
        let t = self.left.trailing_zeros();
        self.left &= self.left - 1;
        let row = self.first + u64::from(t);
        gather(stored, il, row, code.n(), cw);
        let changed = if self.failing >> t & 1 == 1 {
            check_gathered(code, cw, scratch, health)
        } else {
            Some(0)
        };
        Some(Row { row, changed })
    }
}

/// Transposes a 32 × 32 bit matrix in place: afterwards bit `c` of word
/// `r` is what bit `r` of word `c` was (Hacker's Delight §7-3, block
/// swaps of halving size).
pub(crate) fn transpose(m: &mut [u32; GROUP]) {
    let mut width = 16;
    let mut mask: u32 = 0x0000_FFFF;
    while width != 0 {
        let mut k = 0;
        while k < GROUP {
            let t = (m[k] >> width ^ m[k + width]) & mask;
            m[k] ^= t << width;
            m[k + width] ^= t;
            k = (k + width + 1) & !width;
        }
        width >>= 1;
        mask ^= mask << width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ldpc::{Rate, MAX_CODEWORD_WORDS};
    use crate::protect::{encode_stored, get_bit, Layout};
    use proptest::prelude::*;

    proptest! {
        /// A transpose moves bit (r, c) to (c, r), checked bit by bit.
        #[test]
        fn transpose_swaps_rows_and_columns(words in proptest::array::uniform32(any::<u32>())) {
            let mut m = words;
            transpose(&mut m);
            for (r, &row) in m.iter().enumerate() {
                for (c, &column) in words.iter().enumerate() {
                    prop_assert_eq!(row >> c & 1, column >> r & 1);
                }
            }
        }

        /// A slice holds exactly the stored bits the interleaver assigns,
        /// wrap-around included.
        #[test]
        fn a_slice_is_bit_j_of_each_row(codewords in 1usize..90, s0: u64, s1: u64, j in 0usize..648, seed: u64) {
            let il = Interleaver::new(codewords, s0, s1);
            let mut state = seed;
            let stored: [u32; 2000] = core::array::from_fn(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 32) as u32
            });
            let stored = &stored[..(codewords * 648).div_ceil(32)];
            for first in (0..codewords).step_by(7) {
                let width = (codewords - first).min(GROUP);
                let x = Slicer::new(&il, first as u64, width).slice(stored, j, il.offset(j) as usize);
                for t in 0..width {
                    let row = first + t;
                    let i = il.index_of_row(row as u64);
                    prop_assert_eq!(x >> t & 1, get_bit(stored, il.position(i, j)));
                }
                if width < GROUP {
                    prop_assert_eq!(x >> width, 0, "rows past the group read as zero");
                }
            }
        }

        /// A load's offset table holds every column's hashed offset.
        #[test]
        fn the_offset_table_is_the_hash(codewords in 1usize..200, s0: u64, s1: u64) {
            let il = Interleaver::new(codewords, s0, s1);
            let mut buf = [0u16; MAX_COLUMNS];
            match Offsets::for_groups(&il, 648, &mut buf) {
                Offsets::Table(table) => {
                    prop_assert_eq!(table.len(), 648);
                    for (j, &o) in table.iter().enumerate() {
                        prop_assert_eq!(u64::from(o), il.offset(j));
                    }
                }
                Offsets::Hashed => prop_assert!(false, "a 16-bit table fits"),
            }
        }

        /// Both ways of checking a group (the sliced pass and, for a narrow
        /// group with an offset table, one codeword at a time) flag exactly
        /// the codewords whose own gathered syndrome check fails, write the
        /// messages a gather reads, and call a row stale exactly when its
        /// message in the decoded copy differs.
        #[test]
        fn failing_rows_are_the_damaged_codewords(codewords in 1usize..70, s0: u64, s1: u64, flips in proptest::collection::vec(any::<u32>(), 0..6), tabled: bool, stale_bit: usize) {
            let code = Code::new(Length::N648, Rate::R5_6);
            let (n, k) = (code.n(), code.k());
            let il = Interleaver::new(codewords, s0, s1);
            let inner: [u32; 1200] = core::array::from_fn(|w| (w as u32).wrapping_mul(0x9E37_79B9));
            let inner_bits = codewords * k;
            let mut stored = [0u32; 1500];
            let stored = &mut stored[..(codewords * n).div_ceil(32)];
            encode_stored(&code, &il, codewords, &inner[..inner_bits.div_ceil(32)], inner_bits, stored, Layout::Sequential).unwrap();
            for f in flips {
                let p = f as usize % (codewords * n);
                stored[p / 32] ^= 1 << (p % 32);
            }
            let mut table = [0u16; MAX_COLUMNS];
            let offsets = if tabled { Offsets::for_groups(&il, n, &mut table) } else { Offsets::Hashed };
            let mut decoded = [0u32; 1200];
            let decoded = &mut decoded[..inner_bits.div_ceil(32)];
            for (first, width) in groups(codewords as u64) {
                let found = check_group(&code, stored, (&il, offsets), (first, width), &mut Messages::Write(decoded));
                let mut cw = [0u32; MAX_CODEWORD_WORDS];
                let cw = &mut cw[..code.words()];
                for t in 0..width {
                    let row = first + t as u64;
                    let i = il.index_of_row(row);
                    crate::protect::gather(stored, &il, row, n, cw);
                    prop_assert_eq!(found.failing >> t & 1 == 1, !code.syndrome_ok(cw), "row {}", row);
                    for j in 0..k {
                        prop_assert_eq!(get_bit(decoded, i * k + j), get_bit(cw, j), "row {} bit {}", row, j);
                    }
                }
                // A decoded copy that matches is not stale; one flipped bit
                // makes its row stale.
                let compare = |decoded: &[u32]| check_group(&code, stored, (&il, offsets), (first, width), &mut Messages::Compare(decoded, inner_bits)).stale;
                prop_assert_eq!(compare(decoded), 0);
                let t = stale_bit % width;
                let p = il.index_of_row(first + t as u64) * k + stale_bit % k;
                decoded[p / 32] ^= 1 << (p % 32);
                prop_assert_eq!(compare(decoded), 1 << t);
                decoded[p / 32] ^= 1 << (p % 32);
            }
        }
    }
}
