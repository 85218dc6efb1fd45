"""Named engine errors.

Every way a compression can fail has its own exception class with a stable
machine-readable ``code`` and the HTTP status an answer about it carries
(:class:`squeezer.errors.SqueezerError`), so that the CLI prints one clear
line and the API and job JSON map it without parsing messages.
"""

from __future__ import annotations

import errno

from squeezer.errors import SqueezerError


class EngineError(SqueezerError):
    """Base class of every error an engine raises on purpose."""

    code = "engine_error"
    http_status = 422


class InputError(EngineError):
    """The input cannot be processed as given; retrying will not help."""

    code = "invalid_input"


class NotAPdfError(InputError):
    """The bytes are not a PDF (no header, and qpdf finds no PDF structure)."""

    code = "not_a_pdf"
    http_status = 415


class DamagedPdfError(InputError):
    """A PDF so damaged that qpdf's recovery could not rebuild it."""

    code = "pdf_invalid"


class PasswordRequiredError(InputError):
    """The PDF is encrypted and no password was supplied."""

    code = "password_required"


class InvalidPasswordError(InputError):
    """The PDF is encrypted and the supplied password does not open it."""

    code = "invalid_password"


class PageOutOfRangeError(InputError):
    """A page asked for (a preview's) is not in the document."""

    code = "page_out_of_range"


class RenderFailedError(InputError):
    """PDFium could not render a page for a preview (and said nothing more useful)."""

    code = "preview_failed"


class UnsupportedFormatError(InputError):
    """The bytes are no format any engine handles (EPS/PostScript is refused on purpose)."""

    code = "unsupported_format"
    http_status = 415


class DamagedImageError(InputError):
    """An image file whose data cannot be decoded (truncated, corrupt, or not what it claims)."""

    code = "image_invalid"


class DamagedMediaError(InputError):
    """A video or audio file ffmpeg cannot read to the end (truncated, corrupt, no index,
    a stream with no frames)."""

    code = "media_invalid"


class MediaRefusedError(InputError):
    """A media file that asks to open other files, formats or URLs (a playlist, concat list
    or manifest inside it): refused, never followed."""

    code = "media_refused"


class MediaToolMissingError(EngineError):
    """The ffmpeg program the media engines run is not installed (the imageio-ffmpeg wheel)."""

    code = "media_tool_missing"
    http_status = 500


class LimitExceededError(InputError):
    """A configured resource limit was hit; nothing was written."""

    code = "limit_exceeded"


class TooManyPagesError(LimitExceededError):
    code = "too_many_pages"


class TooManyFramesError(LimitExceededError):
    """An animation with more frames than ``Limits.max_frames``."""

    code = "too_many_frames"


class ImageTooLargeError(LimitExceededError):
    code = "image_too_large"


class DecompressionLimitError(LimitExceededError):
    code = "decompression_limit"


class TimeLimitError(LimitExceededError):
    code = "timeout"


class InputTooLargeError(LimitExceededError):
    code = "input_too_large"
    http_status = 413


class MediaTooLongError(LimitExceededError):
    """A video or audio longer than ``Limits.max_media_seconds``."""

    code = "media_too_long"


class VideoTooLargeError(LimitExceededError):
    """A video whose frames have more pixels than ``Limits.max_video_pixels``."""

    code = "video_too_large"


class TooManyStreamsError(LimitExceededError):
    """A media file with more streams (tracks) than ``Limits.max_media_streams``."""

    code = "too_many_streams"


class OutputTooLargeError(LimitExceededError):
    """A conversion whose output would pass ``Limits.max_output_bytes``."""

    code = "output_too_large"


class MemoryLimitError(LimitExceededError):
    """The run needed more memory than its cap (enforced around the engine, not inside it)."""

    code = "memory_limit"


class VerificationError(EngineError):
    """A media output failed its check (it did not decode cleanly, or lost a stream or
    frames); it was thrown away.  A fault of the engine or the encoder, not of the input."""

    code = "verification_failed"
    http_status = 500


class DamagedArchiveError(InputError):
    """A ZIP, tar, gzip or 7z container whose structure cannot be read (a broken central
    directory, a truncated member, a CRC mismatch, overlapping entries)."""

    code = "archive_invalid"


class UnsafeArchiveError(InputError):
    """A container member whose name escapes the archive (``../``, an absolute path or a drive
    letter) or that repeats another member's name: refused, since readers disagree on it."""

    code = "archive_unsafe"


class EncryptedMemberError(InputError):
    """A member that must be read to process the container is encrypted."""

    code = "archive_encrypted"


class TooManyMembersError(LimitExceededError):
    """A container with more members than ``Limits.max_archive_members``."""

    code = "too_many_members"


class ArchiveBombError(LimitExceededError):
    """A container that expands past ``Limits.max_archive_bytes`` in total or whose member
    expands more than ``Limits.max_archive_ratio`` times its stored size."""

    code = "archive_bomb"


class NestingTooDeepError(LimitExceededError):
    """Containers nested deeper than ``Limits.max_archive_depth``."""

    code = "nesting_too_deep"


class ProcessingCrashedError(EngineError):
    """The process running the engine died (a crash in native code); the input is suspect."""

    code = "processing_crashed"
    http_status = 500


class DiskFullError(EngineError):
    """No room for the run's temporary or output files (ENOSPC, EFBIG, EDQUOT).

    The machine's problem, not the file's: trying again later can help.  The
    run's temporary files are removed and no partial output is left.
    """

    code = "disk_full"
    http_status = 507
    retryable = True

    def __init__(self, message: str = "no space left on the disk for the output; "
                 "free some space and try again") -> None:
        super().__init__(message)


#: errno values that mean "the disk (or a file-size or quota limit) is full"
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
#: how the same failures read once a native library has turned them into text
DISK_FULL_TEXTS = ("No space left on device", "File too large", "Disk quota exceeded")
