"""The lossless coding of a 1-bit image: JBIG2 generic region, or CCITT Group 4.

G4 (:mod:`ccitt`) is read by every PDF reader and fast; JBIG2's arithmetic
coder (:mod:`jbig2`) is usually a third smaller on scanned text and much
smaller on halftones and dithering, where G4 can even grow.  Both are
lossless; JBIG2 is used when numba is there, and ``jbig2=False`` keeps G4 for
readers older than PDF 1.4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pikepdf import Dictionary, Name

from squeezer.engines.pdf import ccitt, jbig2

#: 1-bit images smaller than this stay CCITT G4: JBIG2 would save a few kilobytes at most,
#: and the first JBIG2 image in a process costs about half a second (numba's import and the
#: compiled coder's load), which a document whose only 1-bit images are small masks or
#: icons should not pay.
MIN_JBIG2_PIXELS = 1_000_000
#: ... unless the document's 1-bit images add up to that much (the coder's load then pays):
#: from this size on, a smaller one is coded both ways and the smaller kept.  Scans cut into
#: strips (a 36-page paper as 815 images of 1982 x 132) are 18 % smaller as JBIG2.
MIN_JBIG2_STRIP_PIXELS = 65_536


@dataclass
class Coded:
    data: bytes
    filter: Name
    decode_parms: Dictionary | None
    codec: str  #: "ccitt" or "jbig2"


def encode(ink: np.ndarray, use_jbig2: bool = True,
           min_pixels: int = MIN_JBIG2_PIXELS) -> Coded:
    """``ink`` (H x W bool, True = the sample 0) as JBIG2 when allowed, available and at
    least ``min_pixels`` (:data:`MIN_JBIG2_PIXELS`, or :data:`MIN_JBIG2_STRIP_PIXELS` for
    a document with many 1-bit pixels), else G4.

    From :data:`MIN_JBIG2_PIXELS` on, JBIG2 alone, without a G4 encoding to compare
    with: its context model codes everything G4's run lengths can, and on every scan
    measured it is 25-90 % smaller (``docs/jbig2.md``); the G4 pass would cost a third
    of the time.  Below it, both, and the smaller: on a strip of a few text lines the
    context model has less to learn from and its headers weigh more.
    """
    height, width = ink.shape
    g4 = lambda: Coded(ccitt.encode_g4(ink), Name.CCITTFaxDecode,
                       Dictionary(K=-1, Columns=width, Rows=height, BlackIs1=False), "ccitt")
    if use_jbig2 and ink.size >= min(min_pixels, MIN_JBIG2_PIXELS) and jbig2.available():
        coded = Coded(jbig2.encode_generic(ink), Name.JBIG2Decode, None, "jbig2")
        if ink.size >= MIN_JBIG2_PIXELS:
            return coded
        other = g4()
        return coded if len(coded.data) < len(other.data) else other
    return g4()
