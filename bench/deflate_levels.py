"""Which Deflate encoder and level for the Flate streams Squeezer writes?  Bytes and seconds.

Every stream of the corpus (``../shared/corpus/pdf``) whose only filter is Flate
without a predictor (what :mod:`squeezer.engines.pdf.flate` re-deflates) is
decoded once, then deflated by each encoder on one thread.  The table gives the
total seconds, the total bytes, and the bytes a "keep the smaller" rule would
write (the stream's own bytes when they are smaller).  Picks the encoder of
:mod:`squeezer.engines.libdeflate`.

    .venv/bin/python bench/deflate_levels.py
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import deflate
import pikepdf
from pikepdf import Name, Stream

from squeezer.engines.pdf.flate import _only_flate_without_predictor

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdf"


def streams() -> list[tuple[int, bytes]]:
    """(raw length, decoded bytes) of every plain-Flate stream of the corpus."""
    out = []
    for path in sorted(CORPUS.glob("*.pdf")):
        try:
            with pikepdf.open(path) as pdf:
                for obj in pdf.objects:
                    if (isinstance(obj, Stream) and _only_flate_without_predictor(obj)
                            and obj.stream_dict.get("/Type") not in (Name.XRef, Name.ObjStm)):
                        try:
                            out.append((len(obj.read_raw_bytes()), obj.read_bytes()))
                        except pikepdf.PdfError:
                            pass
        except pikepdf.PdfError:
            pass  # a file qpdf cannot open at all has no streams to measure
    return out


def main() -> None:
    data = streams()
    print(f"{len(data)} streams, {sum(len(d) for _, d in data) / 1e6:.1f} MB decoded, "
          f"{sum(r for r, _ in data) / 1e6:.3f} MB as stored\n")
    encoders = [(f"zlib {level}", lambda d, level=level: zlib.compress(d, level)) for level in (6, 9)]
    encoders += [(f"libdeflate {level}", lambda d, level=level: deflate.zlib_compress(d, level))
                 for level in (6, 9, 10, 12)]
    print("| encoder | seconds | MB | MB keeping the smaller |")
    print("|---|---|---|---|")
    for name, encode in encoders:
        started, total, kept = time.perf_counter(), 0, 0
        for raw, decoded in data:
            size = len(encode(decoded))
            total, kept = total + size, kept + min(raw, size)
        print(f"| {name} | {time.perf_counter() - started:.2f} | {total / 1e6:.3f} | {kept / 1e6:.3f} |")


if __name__ == "__main__":
    main()
