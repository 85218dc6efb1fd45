"""The MQ coder compiled from the shipped LLVM IR (``mq_generic.ll``) by llvmlite.

The same coder as :func:`mq.code_generic` (the IR is numba's compilation of it,
written by :mod:`mq_emit`), without numba's start-up: llvmlite's import and
compiling the IR for this machine take about 0.1 s, numba's import and cache
load about 0.7 s, once per process.  The call goes through ctypes, which
releases the GIL while the coder runs, like numba's ``nogil``.

The machine code is kept on disk (:func:`cache_dir`, one object file per IR, llvmlite and
CPU): compiling the IR cost every process that codes a 1-bit image ~0.1 s of CPU
(issue 18), loading the object ~3 ms.  A cache that cannot be read or written is skipped:
the IR is then compiled, as before.

:func:`load` returns None when llvmlite is missing or cannot read this IR
(an older LLVM); :mod:`jbig2` then uses numba.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np

from squeezer.engines.pdf.mq_emit import ENTRY, QE_ROWS

Coder = Callable[..., int]

_LOCK = threading.Lock()
_loaded: list[Coder | None] = []
#: llvmlite's execution engine owns the machine code: it must outlive every call.
_ENGINE: list[object] = []

_SIGNATURE = ctypes.CFUNCTYPE(
    ctypes.c_int64,
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
    ctypes.c_void_p, ctypes.c_void_p,
)


def load() -> Coder | None:
    """The compiled coder, with :func:`mq.code_generic`'s arguments, or None (compiled once)."""
    with _LOCK:
        if not _loaded:
            _loaded.append(_compile())
        return _loaded[0]


def _compile() -> Coder | None:
    try:
        import llvmlite.binding as llvm
    except ImportError:
        return None
    try:
        text = resources.files(__package__).joinpath("mq_generic.ll").read_text()
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_default_triple()
        cpu, features = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
        machine = target.create_target_machine(cpu=cpu, features=features, opt=3)
        cached = _cache_path(text, llvm.llvm_version_info, machine.triple, cpu, features)
        code = _read_object(cached) if cached is not None else None
        if code is None:
            module = llvm.parse_assembly(text)
            module.verify()
            module.triple = machine.triple
            module.data_layout = str(machine.target_data)
            code = machine.emit_object(module)
            if cached is not None:
                _write_object(cached, code)
        empty = llvm.parse_assembly("")
        empty.triple = machine.triple
        empty.data_layout = str(machine.target_data)
        engine = llvm.create_mcjit_compiler(empty, machine)
        engine.add_object_file(llvm.ObjectFileRef.from_data(code))
        engine.finalize_object()
        address = engine.get_function_address(ENTRY)
    except (OSError, RuntimeError, ValueError):
        return None  # an LLVM that does not read this IR: numba compiles the source instead
    if not address:
        return None
    _ENGINE.append(engine)
    function = _SIGNATURE(address)

    def code_generic(bits: np.ndarray, words: np.ndarray, width: int, qe: np.ndarray,
                     out: np.ndarray, z: np.ndarray, zw: np.ndarray) -> int:
        """:func:`mq.code_generic`, same arguments and result."""
        for array, dtype in ((bits, np.uint8), (words, np.uint64), (qe, np.int64),
                             (out, np.uint8), (z, np.uint8), (zw, np.uint64)):
            if array.dtype != dtype or not array.flags.c_contiguous:
                raise ValueError("the MQ coder wants C-contiguous arrays of its own dtypes")
        rows, stride = bits.shape
        if words.shape != (rows, stride // 8) or z.shape != (stride,) or stride % 8 \
                or zw.shape != (stride // 8,) or qe.shape != (QE_ROWS, 4):
            raise ValueError("the MQ coder's arrays do not match the bitmap")
        index = np.zeros(65536, np.int64)
        mps = np.zeros(65536, np.int64)
        length = function(bits.ctypes.data, words.ctypes.data, rows, stride, width,
                          qe.ctypes.data, out.ctypes.data, out.shape[0], z.ctypes.data,
                          zw.ctypes.data, index.ctypes.data, mps.ctypes.data)
        if length < 0:
            raise RuntimeError("the MQ coder failed")
        return int(length)

    return code_generic


def cache_dir() -> Path:
    """Where compiled coders are kept: ``~/.cache/squeezer`` (the user's own cache)."""
    return Path.home() / ".cache" / "squeezer"


def _cache_path(text: str, *machine: object) -> Path | None:
    """The object file for this IR on this LLVM and CPU (None without a home directory)."""
    try:
        base = cache_dir()
    except (OSError, RuntimeError, KeyError):
        return None
    key = hashlib.sha256(repr((text, *machine)).encode()).hexdigest()[:32]
    return base / f"mq-{key}.o"


def _read_object(path: Path) -> bytes | None:
    """The cached object, if it is whole: its first 32 bytes are the SHA-256 of the rest
    (a damaged file is never handed to the loader)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    digest, code = data[:32], data[32:]
    return code if code and hashlib.sha256(code).digest() == digest else None


def _write_object(path: Path, code: bytes) -> None:
    """Keep ``code`` at ``path`` (written aside, then renamed: concurrent processes see
    the whole file or none); a cache that cannot be written is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mq-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(hashlib.sha256(code).digest() + code)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass
