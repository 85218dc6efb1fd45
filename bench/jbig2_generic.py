"""A reference JBIG2 generic-region encoder (lossless), and its bytes against CCITT G4.

No JBIG2 encoder is installable from PyPI or Debian bookworm, so this file
answers "how much would lossless JBIG2 save over G4?" with a real number
(docs/jbig2.md).  It is the simplest correct encoder of ITU-T T.88:

- one immediate lossless generic region (segment type 39) covering the page,
  after the page information segment (type 48) that PDFium requires before
  any region (``m_bInPage``); no file header and no end-of-page or
  end-of-file segment, as PDF's /JBIG2Decode wants (ISO 32000 §7.4.7);
- arithmetic coding (MMR = 0) with the MQ coder of Annex E;
- template 0 with the nominal adaptive pixels (3,-1) (-3,-1) (2,-2) (-2,-2)
  and typical prediction (TPGDON = 1): a row equal to the one above costs one
  coded "same as above" decision (6.2.5.7).

The 16-bit contexts of all pixels come from array shifts (numpy); only the MQ
coder runs in Python, so it is slow (about a second a page) and is not what
ships: the engine's coder (``squeezer.engines.pdf.jbig2``) is the same loop
compiled by numba and gives the same coded bytes.  ``tests/test_jbig2_reference.py``
checks this one is lossless through PDFium's decoder.

    .venv/bin/python bench/jbig2_generic.py      # -> bench/results/jbig2.md
"""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path

import numpy as np

from squeezer.engines.pdf.jbig2 import QE_TABLE

# Annex E, Table E.1 (Qe, NMPS, NLPS, SWITCH for the 47 probability states): the standard's
# constants, shared with the engine's coder; the coding logic below is independent of it.
_TABLE = [tuple(int(v) for v in row) for row in QE_TABLE]
QE, NMPS, NLPS, SWITCH = (tuple(col) for col in zip(*_TABLE))

#: Template 0 (6.2.5.3, Figure 3): (dx, dy) of context bit 0, 1, ... 15, with the nominal
#: AT pixels A1 (bit 4), A2 (bit 10), A3 (bit 11), A4 (bit 15).  The bit order matters
#: only because the TPGD pseudo-pixel shares the statistics under the fixed context below.
TEMPLATE0 = [(-1, 0), (-2, 0), (-3, 0), (-4, 0), (3, -1),
             (2, -1), (1, -1), (0, -1), (-1, -1), (-2, -1), (-3, -1),
             (2, -2), (1, -2), (0, -2), (-1, -2), (-2, -2)]
AT_PIXELS = ((3, -1), (-3, -1), (2, -2), (-2, -2))
#: The context of the SLTP pseudo-pixel with template 0 (6.2.5.7, Figure 8: 0x9B25).
TPGD_CONTEXT = 0x9B25


def contexts(ink: np.ndarray) -> np.ndarray:
    """The template-0 context of every pixel of ``ink`` (H x W bool, True = 1 = black),
    with pixels outside the bitmap 0: one shifted view of a padded copy per template pixel."""
    h, w = ink.shape
    pad = np.zeros((h + 2, w + 7), dtype=np.uint16)
    pad[2:, 4 : 4 + w] = ink
    ctx = np.zeros((h, w), dtype=np.uint16)
    for bit, (dx, dy) in enumerate(TEMPLATE0):
        ctx |= pad[2 + dy : 2 + dy + h, 4 + dx : 4 + dx + w] << bit
    return ctx


class MQEncoder:
    """The MQ arithmetic encoder of T.88 Annex E.2 (INITENC, ENCODE, FLUSH)."""

    def __init__(self) -> None:
        self.a, self.c, self.ct = 0x8000, 0, 12
        self.out = bytearray(1)  # out[-1] is the byte B; out[0] is the dummy byte before BPST
        self.index = bytearray(65536)
        self.mps = bytearray(65536)

    def encode_run(self, cxs: list[int], bits: list[int]) -> None:
        """ENCODE each (CX, D) in turn; CODEMPS, CODELPS and RENORME inlined for speed."""
        a, c, ct, out = self.a, self.c, self.ct, self.out
        index, mps = self.index, self.mps
        for cx, d in zip(cxs, bits):
            state = index[cx]
            qe = QE[state]
            a -= qe
            if d == mps[cx]:
                if a & 0x8000:
                    c += qe
                    continue
                if a < qe:
                    a = qe
                else:
                    c += qe
                index[cx] = NMPS[state]
            else:
                if a < qe:
                    c += qe
                else:
                    a = qe
                if SWITCH[state]:
                    mps[cx] ^= 1
                index[cx] = NLPS[state]
            while True:
                a <<= 1
                c <<= 1
                ct -= 1
                if not ct:
                    c, ct = _byteout(c, out)
                if a & 0x8000:
                    break
        self.a, self.c, self.ct = a, c, ct

    def finish(self) -> bytes:
        """FLUSH (E.2.9: SETBITS, two BYTEOUTs), then the 0xFF 0xAC end marker."""
        c, out = self.c, self.out
        temp = c + self.a
        c |= 0xFFFF
        if c >= temp:
            c -= 0x8000
        c <<= self.ct
        c, ct = _byteout(c, out)
        c <<= ct
        _byteout(c, out)
        if out[-1] != 0xFF:
            out.append(0xFF)
        out.append(0xAC)
        return bytes(out[1:])


def _byteout(c: int, out: bytearray) -> tuple[int, int]:
    """BYTEOUT (E.2.8) with bit stuffing after 0xFF and carry into the previous byte."""
    if out[-1] == 0xFF:
        out.append(c >> 20)
        return c & 0xFFFFF, 7
    if c >= 0x8000000:
        out[-1] += 1
        if out[-1] == 0xFF:
            c &= 0x7FFFFFF
            out.append(c >> 20)
            return c & 0xFFFFF, 7
    out.append((c >> 19) & 0xFF)
    return c & 0x7FFFF, 8


def generic_region(ink: np.ndarray) -> bytes:
    """The arithmetic-coded data of a generic region (6.2, template 0, TPGDON) of ``ink``."""
    ink = np.ascontiguousarray(ink, dtype=bool)
    ctx = contexts(ink)
    same = np.empty(ink.shape[0], dtype=bool)  # LTP of each row: equal to the row above
    same[0] = not ink[0].any()
    same[1:] = (ink[1:] == ink[:-1]).all(axis=1)
    coder = MQEncoder()
    ltp = False
    for y in range(ink.shape[0]):
        coder.encode_run([TPGD_CONTEXT], [int(same[y] != ltp)])  # SLTP
        ltp = bool(same[y])
        if not ltp:
            coder.encode_run(ctx[y].tolist(), ink[y].view(np.uint8).tolist())
    return coder.finish()


def _segment(number: int, kind: int, data: bytes) -> bytes:
    """A segment header (7.2): no referred-to segments, page 1 (1-byte association)."""
    return struct.pack(">IBBBI", number, kind, 0, 1, len(data)) + data


def jbig2_stream(ink: np.ndarray) -> bytes:
    """The data of a PDF /JBIG2Decode image of ``ink`` (True = black), no /JBIG2Globals."""
    h, w = ink.shape
    # page information (7.4.8): size, resolution unknown, flags: eventually lossless, default 0
    page = struct.pack(">IIIIBH", w, h, 0, 0, 0x01, 0)
    # region information (7.4.1) at (0, 0), OR; generic flags: MMR 0, template 0, TPGDON 1
    region = struct.pack(">IIIIB", w, h, 0, 0, 0) + bytes([0x08])
    region += struct.pack(">8b", *(v for xy in AT_PIXELS for v in xy))
    return _segment(0, 48, page) + _segment(1, 39, region + generic_region(ink))


def write_pdf(path: Path, ink: np.ndarray) -> Path:
    """A one-page PDF drawing ``ink`` as a JBIG2 image, one point per pixel (so a render at
    scale 1 puts one image pixel on one device pixel, with no resampling)."""
    import pikepdf
    from pikepdf import Array, Dictionary, Name

    h, w = ink.shape
    pdf = pikepdf.new()
    image = pdf.make_stream(jbig2_stream(ink))
    image.stream_dict = Dictionary(Type=Name.XObject, Subtype=Name.Image, Width=w, Height=h,
                                   ColorSpace=Name.DeviceGray, BitsPerComponent=1,
                                   Filter=Name.JBIG2Decode)
    page = Dictionary(Type=Name.Page, MediaBox=Array([0, 0, w, h]),
                      Resources=Dictionary(XObject=Dictionary(Im0=pdf.make_indirect(image))),
                      Contents=pdf.make_stream(f"q {w} 0 0 {h} 0 0 cm /Im0 Do Q".encode()))
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)
    pdf.close()
    return Path(path)


def pdfium_pixels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Page 1 of a :func:`write_pdf` file as PDFium renders it (scale 1) and as PDFium
    decodes its image object; both bool arrays, True = black."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(path)
    try:
        page = doc[0]
        rendered = page.render(scale=1, grayscale=True).to_numpy().copy()
        decoded = _pdfium_image(page)
    finally:
        doc.close()
    return (rendered if rendered.ndim == 2 else rendered[..., 0]) < 128, decoded < 128


# --- the measurement ---------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "pdf"
SOURCES = [("pdfcpu__HL1396.pdf", 3), ("pdfcpu__Wonderwall.pdf", 2), ("pymupdf__test_4224.pdf", 1)]


def corpus_bitmaps() -> list[tuple[str, np.ndarray, int]]:
    """(label, ink, bytes stored in the file) of each page's CCITT image.

    Decoded with ``ccitt.decode`` (libtiff) where it applies (Group 4 without
    /EncodedByteAlign), else with PDFium's own decoder of the image object.
    """
    import pikepdf
    import pypdfium2 as pdfium

    from squeezer.engines.pdf import ccitt

    out = []
    for name, count in SOURCES:
        with pikepdf.open(CORPUS / name) as pdf:
            doc = pdfium.PdfDocument(CORPUS / name)
            for i in range(min(count, len(pdf.pages))):
                xobjects = pdf.pages[i].Resources.get("/XObject", {})
                for image in xobjects.values():
                    if image.get("/Subtype") != pikepdf.Name.Image \
                            or "/CCITTFaxDecode" not in str(image.get("/Filter")):
                        continue
                    parms = image.get("/DecodeParms")
                    parms = parms[0] if isinstance(parms, pikepdf.Array) else parms
                    parms = parms if isinstance(parms, pikepdf.Dictionary) else {}
                    k = int(parms.get("/K", 0))
                    w, h = int(image.Width), int(image.Height)
                    if k < 0 and not parms.get("/EncodedByteAlign", False):
                        gray = np.asarray(ccitt.decode(image.read_raw_bytes(), w, h, k,
                                                       bool(parms.get("/BlackIs1", False))))
                        how = "ccitt.decode"
                    else:
                        gray = _pdfium_image(doc[i])
                        how = "pdfium"
                    # sample 0 is black (BlackIs1 false) or painted (an /ImageMask): ink
                    ink = gray < 128
                    out.append((f"{name} p{i + 1} ({w}x{h}, K={k}, {how})", ink,
                                len(image.read_raw_bytes())))
            doc.close()
    return out


def _pdfium_image(page) -> np.ndarray:
    import pypdfium2 as pdfium

    for obj in page.get_objects(filter=(pdfium.raw.FPDF_PAGEOBJ_IMAGE,)):
        arr = obj.get_bitmap(render=False).to_numpy().copy()
        return arr if arr.ndim == 2 else arr[..., :3].mean(axis=-1)
    raise ValueError("no image on the page")


def synthetic_bitmaps() -> list[tuple[str, np.ndarray, int]]:
    """Two bitonal text pages of ``tests/scanfixtures.py`` and, the hardest case for both
    coders, its full-page photograph dithered to 1 bit (Floyd-Steinberg, Pillow)."""
    sys.path.insert(0, str(REPO / "tests"))
    import scanfixtures

    def ink(image) -> np.ndarray:
        return np.asarray(image.convert("L")) < 128

    pages = [(f"synthetic bitonal text, seed {s} (2550x3300)",
              ink(scanfixtures.scan_image("bitonal", seed=s)), 0) for s in (0, 1)]
    dithered = scanfixtures.scan_image("photo").convert("L").convert("1")
    return pages + [("synthetic photo dithered to 1 bit (2550x3300)", ink(dithered), 0)]


def main() -> None:
    import tempfile

    from squeezer.engines.pdf import ccitt

    rows = []
    for label, ink, stored in corpus_bitmaps() + synthetic_bitmaps():
        g4 = len(ccitt.encode_g4(ink))
        start = time.process_time()  # CPU time: the machine may be shared
        data = jbig2_stream(ink)
        seconds = time.process_time() - start
        with tempfile.TemporaryDirectory() as tmp:
            rendered, decoded = pdfium_pixels(write_pdf(Path(tmp) / "j.pdf", ink))
        lossless = np.array_equal(rendered, ink) and np.array_equal(decoded, ink)
        rows.append((label, stored, g4, len(data), seconds, lossless))
        print(f"{label}: stored {stored}, G4 {g4}, JBIG2 {len(data)} "
              f"({len(data) / g4:.1%}), {seconds:.1f} s, lossless {lossless}", flush=True)
    lines = ["# JBIG2 generic region (reference encoder) vs CCITT G4", "",
             ("`bench/jbig2_generic.py`; G4 is `squeezer.engines.pdf.ccitt.encode_g4` (libtiff). "
              "Lossless = PDFium's decoding of the JBIG2 stream equals the bitmap."), "",
             "| page | stored in file | G4 bytes | JBIG2 bytes | JBIG2 / G4 | encode CPU s | lossless |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for label, stored, g4, jb, seconds, ok in rows:
        lines.append(f"| {label} | {stored or '-'} | {g4} | {jb} | {jb / g4:.1%} | "
                     f"{seconds:.1f} | {'yes' if ok else 'NO'} |")
    text = [r for r in rows if "dithered" not in r[0]]
    g4_text, jb_text = sum(r[2] for r in text), sum(r[3] for r in text)
    lines += ["", (f"Text pages: G4 {g4_text} B, JBIG2 {jb_text} B ({jb_text / g4_text:.1%}); "
                   f"encoder {sum(r[4] for r in text) / len(text):.1f} CPU s a page on average, "
                   f"{max(r[4] for r in rows):.1f} s at most.")]
    (REPO / "bench" / "results" / "jbig2.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
