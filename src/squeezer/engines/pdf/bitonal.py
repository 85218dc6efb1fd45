"""The smallest lossless coding of a 1-bit image: CCITT Group 4 or JBIG2 generic region.

G4 (:mod:`ccitt`) is read by every PDF reader and fast; JBIG2's arithmetic
coder (:mod:`jbig2`) is usually a third smaller on scanned text and much
smaller on halftones and dithering, where G4 can even grow.  Both are
lossless, so the smaller one is taken; ``jbig2=False`` keeps G4 for readers
older than PDF 1.4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pikepdf import Dictionary, Name

from squeezer.engines.pdf import ccitt, jbig2


@dataclass
class Coded:
    data: bytes
    filter: Name
    decode_parms: Dictionary | None
    codec: str  #: "ccitt" or "jbig2"


def encode(ink: np.ndarray, use_jbig2: bool = True) -> Coded:
    """``ink`` (H x W bool, True = the sample 0) in the smaller of G4 and JBIG2."""
    height, width = ink.shape
    g4 = Coded(ccitt.encode_g4(ink), Name.CCITTFaxDecode,
               Dictionary(K=-1, Columns=width, Rows=height, BlackIs1=False), "ccitt")
    if not (use_jbig2 and jbig2.available()):
        return g4
    coded = Coded(jbig2.encode_generic(ink), Name.JBIG2Decode, None, "jbig2")
    return coded if len(coded.data) < len(g4.data) else g4
