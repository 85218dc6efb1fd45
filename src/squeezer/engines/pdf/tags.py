"""The logical structure (tags) keeps only the elements that mark something.

A structure element marks content through its /K: marked-content ids (MCIDs)
of a page or form XObject, marked-content references, and object references
(annotations, XObjects).  Tools that cut pages out of a tagged document often
leave the whole tree behind: on one unseen 1-page file 39,365 of its 40,062
objects hung off /StructTreeRoot, marking content on pages that were gone.
Screen readers have nothing to read in such elements, so they go (ISO 32000-1
§14.7): each /K entry whose content is not on a page of the document (or whose
MCID no content stream of that page or form has) is dropped, then every
element left marking nothing, and the parent tree and ID tree stop naming the
dropped elements.  The tree root and every element that marks something stay,
with their attributes, roles and alternate texts.

Finding the MCIDs means reading every content stream, so this runs only when
the tree has many more elements than the pages can plausibly hold
(:data:`ELEMENTS_PER_PAGE`); any content stream that cannot be read leaves the
structure as it is.
"""

from __future__ import annotations

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

from squeezer.engines.budget import Budget
from squeezer.engines.pdf.contentstream import PARSE_ERRORS

#: Trees with more elements per page than this are checked (real tagged pages hold a few
#: hundred: the corpus' densest had 640 per page).
ELEMENTS_PER_PAGE = 1000
_MAX_DEPTH = 256


class _Unreadable(Exception):
    pass


def prune(pdf: pikepdf.Pdf, budget: Budget) -> int:
    """Drop structure elements that mark nothing; return how many went."""
    root = pdf.Root.get("/StructTreeRoot")
    if not isinstance(root, Dictionary):
        return 0
    elements = _elements(root)
    if len(elements) <= ELEMENTS_PER_PAGE * max(1, len(pdf.pages)):
        return 0
    try:
        present = _marked_content(pdf, budget)
    except _Unreadable:
        return 0
    live_pages = {page.obj.objgen for page in pdf.pages}
    live_annots = {a.objgen for page in pdf.pages for a in page.obj.get("/Annots", None) or []
                   if isinstance(a, Dictionary) and a.is_indirect}
    dropped: set[tuple[int, int]] = set()

    def marks(item: object, page: object, depth: int) -> bool:
        """Does ``item`` (a /K entry) mark content that exists?  Prunes as it goes."""
        if isinstance(item, int):
            if not isinstance(page, Dictionary):
                return True  # (no page to look on: malformed, kept as it is)
            return page.is_indirect and (page.objgen, item) in present
        if not isinstance(item, Dictionary):
            return False
        kind = item.get("/Type")
        if kind == Name.MCR:
            holder = item.get("/Stm") or item.get("/Pg") or page
            mcid = item.get("/MCID")
            if not isinstance(holder, Dictionary) or not isinstance(mcid, int):
                return True  # (malformed: kept as it is)
            return holder.is_indirect and (holder.objgen, mcid) in present
        if kind == Name.OBJR:
            target = item.get("/Obj")
            if isinstance(target, Dictionary) and target.get("/Type") == Name.Annot:
                return target.is_indirect and target.objgen in live_annots
            where = item.get("/Pg") or page
            return not isinstance(where, Dictionary) or where.objgen in live_pages
        if item.is_indirect and item.objgen in dropped:
            return False
        if depth > _MAX_DEPTH:
            return True  # (a tree this deep is kept as it is below here)
        here = item.get("/Pg") or page
        kids = item.get("/K")
        entries = list(kids) if isinstance(kids, Array) else [] if kids is None else [kids]
        kept = [k for k in entries if marks(k, here, depth + 1)]
        if len(kept) != len(entries):
            if not kept:
                if item.is_indirect:
                    dropped.add(item.objgen)
                return False
            item.K = Array(kept) if isinstance(kids, Array) or len(kept) > 1 else kept[0]
        return bool(kept)

    top = root.get("/K")
    entries = list(top) if isinstance(top, Array) else [] if top is None else [top]
    kept = [k for k in entries if marks(k, None, 0)]
    if len(kept) != len(entries):
        root.K = Array(kept)
    if dropped:
        _forget(root, dropped)
    return len(dropped)


def _elements(root: Dictionary) -> list[Dictionary]:
    """Every structure element under ``root`` (each once; cycles end)."""
    out: list[Dictionary] = []
    seen: set[tuple[int, int]] = set()
    stack = [root.get("/K")]
    while stack:
        item = stack.pop()
        if isinstance(item, Array):
            stack.extend(item)
            continue
        if not isinstance(item, Dictionary) or item.get("/Type") in (Name.MCR, Name.OBJR):
            continue
        if item.is_indirect:
            if item.objgen in seen:
                continue
            seen.add(item.objgen)
        out.append(item)
        stack.append(item.get("/K"))
    return out


def _marked_content(pdf: pikepdf.Pdf, budget: Budget) -> set[tuple[tuple[int, int], int]]:
    """(page or form XObject, MCID) of every marked-content sequence of the document."""
    present: set[tuple[tuple[int, int], int]] = set()
    holders: list[pikepdf.Object] = [page.obj for page in pdf.pages]
    holders += [obj for obj in pdf.objects
                if isinstance(obj, Stream) and obj.stream_dict.get("/Subtype") == Name.Form]
    for holder in holders:
        budget.check_time()
        resources = holder.get("/Resources")
        properties = resources.get("/Properties") if isinstance(resources, Dictionary) else None
        try:
            instructions = pikepdf.parse_content_stream(holder, "BDC")
        except PARSE_ERRORS:
            raise _Unreadable from None
        for instruction in instructions:
            operands = getattr(instruction, "operands", [])
            if len(operands) < 2:
                continue
            props = operands[1]
            if isinstance(props, Name) and isinstance(properties, Dictionary):
                props = properties.get(str(props))
            mcid = props.get("/MCID") if isinstance(props, Dictionary) else None
            if isinstance(mcid, int):
                present.add((holder.objgen, mcid))
    return present


def _forget(root: Dictionary, dropped: set[tuple[int, int]]) -> None:
    """Stop the parent tree and the ID tree naming dropped elements."""

    def gone(value: object) -> bool:
        return isinstance(value, Dictionary) and value.is_indirect and value.objgen in dropped

    def walk(node: object, key: str, depth: int = 0) -> None:
        if not isinstance(node, Dictionary) or depth > 64:
            return
        pairs = node.get(key)
        if isinstance(pairs, Array):
            kept = []
            for i in range(0, len(pairs) - 1, 2):
                value = pairs[i + 1]
                if isinstance(value, Array):
                    value = Array([None if gone(v) else v for v in value])
                    if all(v is None for v in value):
                        continue
                elif gone(value):
                    continue
                kept += [pairs[i], value]
            node[key] = Array(kept)
        for kid in node.get("/Kids", None) or []:
            walk(kid, key, depth + 1)

    walk(root.get("/ParentTree"), "/Nums")
    walk(root.get("/IDTree"), "/Names")
