"""The smallest Flate encoding of 8-bit samples: plain, or behind a PNG predictor.

Flate with a PNG predictor (``/DecodeParms << /Predictor 15 … >>``: a filter
byte before each row says how the row was predicted, ISO 32000-1 §7.4.4.4) is
smaller than plain Flate on most images (26 % on the corpus' lossless images),
but not on all: on an uncompressed photo of the wide corpus it was 25.8 KB
where qpdf's plain Flate gave 19.9 KB.  No one predictor wins everywhere, so
this module tries plain Flate, the per-row choice of filter (the one whose
residuals have the smallest sum of absolute values, as libpng does) and the
best single filter, and keeps the smallest.

A small image is tried whole, at libdeflate's best level (its plain rows also
by zlib, which wins on some), and the winner kept as it is; a large one is tried on bands of rows spread over it (the filters
predict from the row above, so each band is filtered with its real neighbour)
at a fast level, and only the winner is deflated whole at the best level.  Rows are filtered a block at a time, so
the extra memory is a few copies of one block, never of the image.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from squeezer.engines import libdeflate

#: PNG filter types (0 = None is plain rows behind a tag byte; plain Flate has no tags).
SUB, UP, AVERAGE, PAETH = 1, 2, 3, 4
#: Per-row choice among all five, by the smallest sum of absolute (signed) residuals.
ADAPTIVE = 5
PLAIN = -1
#: Images with at most this many bytes are tried whole; larger ones on sampled bands.
WHOLE_TRIAL_BYTES = 256 << 10
#: Bytes of rows a large image is tried on, in this many bands.
SAMPLE_BYTES = 128 << 10
BANDS = 8
#: Deflate level of the sampled trials (the winner is deflated at :data:`libdeflate.BEST`).
TRIAL_LEVEL = 6
#: Rows filtered at a time, no more than :data:`BLOCK_BYTES` of them: each filter's
#: residuals and Paeth's 16-bit predictions are a few copies of a block (~15 of them), so
#: a wide image's blocks are fewer rows (a 7200-pixel RGB row is 21 KB: 256 rows were
#: 80 MB of temporaries).  Rows are filtered from the row above whatever the block, so
#: the size changes nothing in the output.
BLOCK_ROWS = 256
BLOCK_BYTES = 2 << 20


def _block_rows(row_bytes: int) -> int:
    return max(1, min(BLOCK_ROWS, BLOCK_BYTES // max(1, row_bytes)))


@dataclass
class Encoded:
    data: bytes
    predictor: bool  #: True: /Predictor 15 with these /Colors and /Columns


def smallest_flate(samples: np.ndarray) -> Encoded:
    """The smallest of plain and PNG-predicted Flate for an (h, w, components) uint8 array.

    Three encodings are tried: plain rows, the per-row choice, and the one
    filter whose residuals are smallest over the rows (a good guess of the
    best single filter; deflating all four costs twice the time for a few bytes).
    """
    height, width, components = samples.shape
    rows = np.ascontiguousarray(samples).reshape(height, width * components)
    if rows.nbytes <= WHOLE_TRIAL_BYTES:
        whole = [(libdeflate.compress(data), m != PLAIN)
                 for m, data in _trial_encodings(rows, components, [(0, height)]).items()]
        # zlib's lazy matching beats libdeflate on some small streams: plain rows get both,
        # so an image never ends larger than qpdf's plain Flate of it
        whole.append((zlib.compress(rows.tobytes(), 9), False))
        return Encoded(*min(whole, key=lambda t: len(t[0])))
    band = max(2, SAMPLE_BYTES // BANDS // rows.shape[1])
    starts = np.linspace(0, height - min(band, height), BANDS).astype(int)
    ranges = [(int(start), min(int(start) + band, height)) for start in sorted(set(starts))]
    trials = _trial_encodings(rows, components, ranges)
    best = min(trials, key=lambda m: len(libdeflate.compress(trials[m], TRIAL_LEVEL)))
    return Encoded(libdeflate.compress(_encode(rows, components, best)), best != PLAIN)


def _encode(rows: np.ndarray, bpp: int, method: int) -> memoryview:
    """All rows as the bytes Flate gets: plain (the rows themselves, not a copy), or tagged
    and filtered, written block by block into one buffer (a list of blocks joined took
    twice the image)."""
    if method == PLAIN:
        return rows.data.cast("B")
    height, row_bytes = rows.shape
    out = np.empty((height, 1 + row_bytes), np.uint8)
    for top, (x, above) in zip(range(0, height, _block_rows(row_bytes)),
                               _blocks(rows, 0, height)):
        tagged = out[top:top + x.shape[0]]
        if method == ADAPTIVE:
            residuals = _residuals(x, above, bpp)
            scores = np.stack([_ABS[r].sum(axis=1, dtype=np.uint32) for r in residuals])
            choice = scores.argmin(axis=0).astype(np.uint8)
            tagged[:, 0] = choice
            tagged[:, 1:] = np.stack(residuals)[choice, np.arange(x.shape[0])]
        else:
            tagged[:, 0] = method
            tagged[:, 1:] = _residuals(x, above, bpp, only=method)[method]
    return out.data.cast("B")


#: |x| of each byte read as a signed residual (libpng's heuristic for the per-row choice).
_ABS = np.abs(np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int16)).astype(np.uint8)


def _blocks(rows: np.ndarray, start: int, stop: int):
    step = _block_rows(rows.shape[1])
    for block in range(start, stop, step):
        end = min(block + step, stop)
        above = rows[block - 1] if block > 0 else np.zeros(rows.shape[1], np.uint8)
        yield rows[block:end], above


def _tagged(tags: np.ndarray, filtered: np.ndarray) -> bytes:
    return np.concatenate([tags[:, None], filtered], axis=1).tobytes()


def _trial_encodings(rows: np.ndarray, bpp: int, ranges: list[tuple[int, int]]
                     ) -> dict[int, bytes]:
    """Plain, per-row and best-single-filter encodings of the rows in ``ranges``."""
    plain: list[bytes] = []
    adaptive: list[bytes] = []
    single: dict[int, list[bytes]] = {k: [] for k in (SUB, UP, AVERAGE, PAETH)}
    totals = np.zeros(5, np.uint64)
    for start, stop in ranges:
        for x, above in _blocks(rows, start, stop):
            residuals = _residuals(x, above, bpp)
            scores = np.stack([_ABS[r].sum(axis=1, dtype=np.uint32) for r in residuals])
            totals += scores.sum(axis=1, dtype=np.uint64)
            choice = scores.argmin(axis=0).astype(np.uint8)
            adaptive.append(_tagged(choice, np.stack(residuals)[choice, np.arange(x.shape[0])]))
            plain.append(x.tobytes())
            for kind, parts in single.items():
                parts.append(_tagged(np.full(x.shape[0], kind, np.uint8), residuals[kind]))
    best_single = 1 + int(np.argmin(totals[1:]))
    return {PLAIN: b"".join(plain), ADAPTIVE: b"".join(adaptive),
            best_single: b"".join(single[best_single])}


def _residuals(x: np.ndarray, above: np.ndarray, bpp: int,
               only: int | None = None) -> list[np.ndarray]:
    """The residuals of each PNG filter (index = filter type; None, Sub, Up, Average, Paeth)
    for the rows ``x`` whose preceding row is ``above`` (``only``: just that filter's,
    the others left empty).

    The encoder predicts from the raw neighbours (the decoder has rebuilt them
    by then), so every filter is a whole-array operation; uint8 arithmetic wraps
    modulo 256 as PNG's does.
    """
    up = np.vstack([above[None, :], x[:-1]])
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    empty = np.empty((0,), np.uint8)
    out = [x, empty, empty, empty, empty]
    if only in (None, SUB):
        out[SUB] = x - left
    if only in (None, UP):
        out[UP] = x - up
    if only in (None, AVERAGE):
        out[AVERAGE] = x - ((left.astype(np.uint16) + up) >> 1).astype(np.uint8)
    if only in (None, PAETH):
        upleft = np.zeros_like(x)
        upleft[:, bpp:] = up[:, :-bpp]
        a, b, c = left.astype(np.int16), up.astype(np.int16), upleft.astype(np.int16)
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        predicted = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        out[PAETH] = x - predicted.astype(np.uint8)
    return out
