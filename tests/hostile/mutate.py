"""Seeded mutants of a file: the "dumb fuzzing" that found 9 unnamed failures in 300 PDFs.

Deterministic (one ``random.Random(seed)`` per mutant), so a failing mutant is
reproduced from its source file and seed alone; nothing is checked in.
"""

from __future__ import annotations

import random

#: what a mutant does to its source, chosen by the seed
STRATEGIES = ("flip", "bytes", "truncate", "splice", "numbers", "tokens")
#: PDF tokens worth swapping in: structure keys and operators parsers branch on
TOKENS = [b"/Kids", b"/Count", b"/Parent", b"/Length", b"/Filter", b"/FlateDecode",
          b"/DCTDecode", b"/JBIG2Decode", b"/CCITTFaxDecode", b"/DecodeParms", b"/Predictor",
          b"/Columns", b"/Width", b"/Height", b"/BitsPerComponent", b"/ColorSpace", b"/Indexed",
          b"/Type", b"/Pages", b"/Page", b"/Root", b"/Prev", b"/XRefStm", b"/ObjStm", b"/N",
          b"/First", b"/Encrypt", b"/Resources", b"/XObject", b"/Font", b"/Contents", b"R",
          b"obj", b"endobj", b"stream", b"endstream", b"xref", b"trailer", b"startxref",
          b"[", b"]", b"<<", b">>", b"0", b"-1", b"4294967296", b"99999999999", b"null"]


def mutant(data: bytes, seed: int) -> bytes:
    """A mutant of ``data``: a few bytes flipped, replaced, cut, repeated, or numbers and
    tokens swapped (the forms fuzzers of PDF readers report most)."""
    rng = random.Random(seed)
    out = bytearray(data)
    if not out:
        return bytes(out)
    strategy = STRATEGIES[seed % len(STRATEGIES)]
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        if strategy == "flip":
            out[at] ^= 1 << rng.randrange(8)
        elif strategy == "bytes":
            out[at:at + rng.randint(1, 16)] = bytes(rng.randrange(256)
                                                    for _ in range(rng.randint(1, 16)))
        elif strategy == "truncate":
            del out[max(1, at):]
            break
        elif strategy == "splice":
            start = rng.randrange(len(out))
            out[at:at] = out[start:start + rng.randint(1, 4096)]
        elif strategy == "numbers":
            digits = [i for i in range(max(0, at - 256), min(len(out), at + 256))
                      if 48 <= out[i] <= 57]
            if digits:
                i = rng.choice(digits)
                out[i:i + 1] = rng.choice([b"0", b"9", b"99999", b"-1", b"4294967295"])
        else:
            tokens = [i for i in range(max(0, at - 512), min(len(out), at + 512))
                      if out[i] == 0x2F]  # "/": a name starts here
            i = rng.choice(tokens) if tokens else at
            end = i + 1
            while end < len(out) and end - i < 32 and chr(out[end]).isalnum():
                end += 1
            out[i:end] = rng.choice(TOKENS)
    return bytes(out)
