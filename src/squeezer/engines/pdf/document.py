"""Opening (and repairing) untrusted PDFs with qpdf, mapping every failure to a named error.

qpdf's recovery rebuilds broken cross-reference tables and damaged object
streams the way PDF readers do, so anything a reader opens, we open.  What it
cannot open becomes one of :class:`NotAPdfError`, :class:`DamagedPdfError`,
:class:`PasswordRequiredError` or :class:`InvalidPasswordError`, never a raw
pikepdf exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pikepdf

from squeezer.engines.errors import (
    DamagedPdfError,
    DecompressionLimitError,
    InvalidPasswordError,
    NotAPdfError,
    PasswordRequiredError,
)
from squeezer.engines.limits import Limits

#: PDF readers accept the header anywhere in the first kilobyte.
HEADER_WINDOW = 1024


def looks_like_pdf(path: Path) -> bool:
    """True when ``%PDF-`` appears in the first kilobyte, as readers require."""
    with open(path, "rb") as f:
        return b"%PDF-" in f.read(HEADER_WINDOW)


def apply_qpdf_limits(limits: Limits) -> None:
    """Bound qpdf's own decoders, which are unbounded by default.

    The settings are process-wide; every engine call sets them from its limits
    before opening anything, so the latest caller's limits are in force.
    """
    per_stream = limits.max_stream_bytes or 0
    pikepdf.settings.set_qpdf_limits(
        flate_max_memory=per_stream,
        png_max_memory=per_stream,
        run_length_max_memory=per_stream,
        tiff_max_memory=per_stream,
        dct_max_memory=per_stream,
    )


def open_document(path: Path, password: str | None = None,
                  repairs: list[str] | None = None) -> pikepdf.Pdf:
    """Open ``path`` with recovery enabled, or raise a named error.

    ``repairs``, when given, receives a sentence for each repair the opening
    needed (a rebuilt cross-reference table, a page tree with a loop), so the
    report can say the input was damaged.
    """
    if not looks_like_pdf(path):
        raise NotAPdfError("the file is not a PDF (no %PDF- header in its first kilobyte)")
    notes = repairs if repairs is not None else []
    try:
        try:
            pdf = pikepdf.open(path, password=password or "", attempt_recovery=True)
            _note_recovery(pdf, notes)
            return pdf
        except pikepdf.PdfError as exc:
            if "loop detected in /pages" not in str(exc).lower():
                raise
        pdf = pikepdf.open(
            path, password=password or "", attempt_recovery=True, inherit_page_attributes=False
        )
        try:
            _note_recovery(pdf, notes)
            count = rebuild_page_tree(pdf)
        except BaseException:
            pdf.close()
            raise
        notes.append(f"the page tree had a loop; rebuilt flat with its {count} reachable page(s)")
        return pdf
    except pikepdf.PasswordError:
        if password:
            raise InvalidPasswordError("the password does not open this PDF") from None
        raise PasswordRequiredError("this PDF is encrypted: a password is required") from None
    except pikepdf.PdfError as exc:
        raise map_qpdf_error(exc) from None
    except (RuntimeError, ValueError) as exc:  # qpdf logic errors surface as these
        raise DamagedPdfError(f"the PDF is damaged beyond repair: {exc}") from None


def _note_recovery(pdf: pikepdf.Pdf, notes: list[str]) -> None:
    """Say so when qpdf had to rebuild the cross-reference table to open ``pdf``."""
    if any("reconstruct cross-reference table" in w for w in pdf.get_warnings()):
        notes.append("the cross-reference table was damaged; rebuilt from the objects in the file")


#: Attributes a page inherits from its ancestors in the page tree (ISO 32000 §7.7.3.4).
INHERITABLE = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")


def rebuild_page_tree(pdf: pikepdf.Pdf) -> int:
    """Replace a cyclic page tree by a flat one holding each reachable page once.

    Readers (PDFium, pdf.js) skip the repeated branch of a /Kids cycle; qpdf
    refuses the file.  Walking the tree with a visited set and pushing the
    inheritable attributes down to the leaves gives the pages readers show.
    Returns how many pages that is.
    """
    leaves: list[pikepdf.Dictionary] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[pikepdf.Object, dict[str, pikepdf.Object]]] = [(pdf.Root.Pages, {})]
    while stack:
        node, inherited = stack.pop()
        if not isinstance(node, pikepdf.Dictionary) or node.objgen in seen:
            continue
        seen.add(node.objgen)
        kids = node.get("/Kids")
        if node.get("/Type") == pikepdf.Name.Pages or isinstance(kids, pikepdf.Array):
            here = dict(inherited)
            here.update({k: node[k] for k in INHERITABLE if k in node})
            stack.extend((kid, here) for kid in reversed(list(kids or [])))
            continue
        for key, value in inherited.items():
            if key not in node:
                node[key] = value
        leaves.append(node)
    if not leaves:
        # a cycle of /Pages nodes only (pdf.js' Pages-tree-refs): nothing a reader could show,
        # and a zero-page rewrite no reader opens either; the input is not a usable document
        raise DamagedPdfError("the PDF is damaged beyond repair: its page tree is a cycle "
                              "with no page in it")
    root = pdf.make_indirect(
        pikepdf.Dictionary(Type=pikepdf.Name.Pages, Kids=pikepdf.Array(leaves), Count=len(leaves))
    )
    for leaf in leaves:
        leaf.Parent = root
    pdf.Root.Pages = root
    return len(leaves)


def map_qpdf_error(exc: Exception) -> Exception:
    """Turn a qpdf failure into the named error it stands for."""
    text = str(exc)
    if "memory limit" in text.lower() or "limit exceeded" in text.lower():
        return DecompressionLimitError(f"a stream exceeds the decompression limit: {text}")
    return DamagedPdfError(f"the PDF is damaged beyond repair: {text}")


@contextlib.contextmanager
def opened(path: Path, password: str | None = None,
           repairs: list[str] | None = None) -> Iterator[pikepdf.Pdf]:
    pdf = open_document(path, password, repairs)
    try:
        yield pdf
    finally:
        pdf.close()
