//! How a held, incomplete frame's buffer grows: to its final size in as
//! few steps as possible, so that the buffers it outgrows leave no holes in
//! the heap bigger than the frame itself (README, "Memory bounds").
//! `InBuf::feed` asks two questions here: how much of a read the held
//! frame can still use, and what capacity to give the buffer for it.

use crate::framing::Framing;

/// A partial frame's buffer doubles (from 64 bytes) up to this, then
/// jumps to the frame's final size in one step. The buffers it leaves
/// behind on the way (64 + 128 + … + 2,048) are under 4 KiB together, so a
/// trickled frame costs at most `--max-frame` plus 4 KiB, however its
/// bytes are cut: doubling all the way would leave holes as big as the
/// frame itself (a 65,000-byte line cost 72–84 KB a connection).
const SMALL_STEPS: usize = 2048;

/// The capacity for a buffer about to hold `needed` bytes of one frame
/// whose first bytes are `head`, under `limit` (`--max-frame` plus the
/// slack). Untouched capacity costs address space, not memory: pages are
/// resident only once the frame's bytes are written into them.
pub(super) fn capacity_for(framing: Framing, head: &[u8], needed: usize, limit: usize) -> usize {
    if needed > limit {
        return needed; // whole frames waiting on the budget: exactly them
    }
    // len32 tells the frame's size up front: one allocation, exactly it.
    // (A length over the limit is refused by the decoder, never buffered.)
    if let Some(size) = framing.frame_size(head).filter(|&n| n <= limit) {
        return size.max(needed);
    }
    if needed <= SMALL_STEPS {
        // Most partial frames are the short tail of a read: stay small.
        return needed.next_power_of_two().clamp(64, SMALL_STEPS);
    }
    // A line (or a len32 header) past the small steps: its end is unknown,
    // so room for the longest it may be, once.
    limit + 1
}

/// How many bytes of `data` the frame held in `held` can still use: up to
/// the end of a `len32` frame (or of its header), up to and including the
/// first `\n` for a line. The bytes after stay in `data` and are decoded
/// from there, so the held buffer never grows for the next frame's bytes.
pub(super) fn rest_of_frame(framing: Framing, held: &[u8], data: &[u8]) -> usize {
    match framing {
        Framing::Len32 => {
            let end = framing.frame_size(held).unwrap_or(4);
            end.saturating_sub(held.len()).clamp(1, data.len().max(1))
        }
        Framing::Line => data
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |nl| nl + 1),
        Framing::Raw => data.len(),
    }
    .min(data.len())
}

/// The first four bytes (or fewer, if that is all) of `held` followed by
/// `more`: enough for a len32 header, without allocating.
pub(super) fn head_of(held: &[u8], more: &[u8]) -> ([u8; 4], usize) {
    let mut head = [0u8; 4];
    let mut n = 0;
    for &b in held.iter().chain(more).take(4) {
        head[n] = b;
        n += 1;
    }
    (head, n)
}
