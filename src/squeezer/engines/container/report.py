"""What one container compression did, member by member.

The sibling of the PDF and image reports (same ``input_bytes``,
``output_bytes``, ``ratio``, ``original_kept``, ``settings``, ``warnings``…),
with a row per member for the web page's card and the CLI's ``--json``:
its name, what it is, its stored bytes before and after, and what was done.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from squeezer.engines.report import RunReport

#: member rows kept in a report; a container with more lists the largest ones
MAX_MEMBER_ROWS = 2_000


class MemberResult(BaseModel):
    """One member of a container."""

    name: str
    #: what its bytes are: jpeg, png, xml, font, pdf, docx, zip, html, other, directory …
    type: str
    bytes_before: int  #: stored (compressed) bytes in the input container
    bytes_after: int  #: stored bytes in the output (0 when dropped)
    size_before: int = 0  #: expanded bytes
    size_after: int = 0
    #: what was done: "recompressed", "image: jpeg q72 (SSIM 0.96)", "kept: signed",
    #: "dropped: unused", "renamed to media/image3.jpeg", "deduplicated into …"
    action: str = "kept"
    renamed_to: str | None = None
    #: a nested container's own report rows (a DOCX inside a ZIP)
    members: list[MemberResult] = Field(default_factory=list)


class TypeTotal(BaseModel):
    type: str
    count: int
    bytes_before: int
    bytes_after: int


class ContainerReport(RunReport):
    """The outcome of one container compression."""

    kind: Literal["archive"] = "archive"
    format_in: str = ""
    format_out: str = ""
    #: the rules followed: ooxml, odf, epub, website, zip, tar, single, 7z
    container: str = ""
    members: list[MemberResult] = Field(default_factory=list)
    members_total: int = 0  #: members in the container (rows beyond MAX_MEMBER_ROWS left out)
    by_type: list[TypeTotal] = Field(default_factory=list)
    signed: bool = False
    dropped: list[str] = Field(default_factory=list)
    renamed: dict[str, str] = Field(default_factory=dict)
    deduplicated: int = 0
    #: checks the output passed before it was returned ("zip: 44 members, CRC ok",
    #: "python-docx: 120 paragraphs, same text", "epub: manifest and spine resolve" …)
    verified: list[str] = Field(default_factory=list)
    nested_depth: int = 0

    def totals(self) -> None:
        """Fill :attr:`by_type` from the member rows."""
        table: dict[str, TypeTotal] = {}
        for m in self.members:
            t = table.setdefault(m.type, TypeTotal(type=m.type, count=0, bytes_before=0,
                                                   bytes_after=0))
            t.count += 1
            t.bytes_before += m.bytes_before
            t.bytes_after += m.bytes_after
        self.by_type = sorted(table.values(), key=lambda t: -t.bytes_before)
