"""The MQ coder compiled from the shipped LLVM IR (``mq_generic.ll``) by llvmlite.

The same coder as :func:`mq.code_generic` (the IR is numba's compilation of it,
written by :mod:`mq_emit`), without numba's start-up: llvmlite's import and
compiling the IR for this machine take about 0.1 s, numba's import and cache
load about 0.7 s, once per process.  The call goes through ctypes, which
releases the GIL while the coder runs, like numba's ``nogil``.

:func:`load` returns None when llvmlite is missing or cannot read this IR
(an older LLVM); :mod:`jbig2` then uses numba.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from importlib import resources

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
        module = llvm.parse_assembly(text)
        module.verify()
        target = llvm.Target.from_default_triple()
        machine = target.create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3)
        module.triple = machine.triple
        module.data_layout = str(machine.target_data)
        engine = llvm.create_mcjit_compiler(module, machine)
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
