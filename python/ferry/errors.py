"""ferry's status codes as Python exceptions.

Every ferry call that returns a status other than FERRY_OK raises a subclass
of FerryError carrying the status, its name and ferry's own message (the
thread's ferry_last_error()), plus the failing op and its sequence number for
deferred (asynchronous) errors. The subclasses also derive from the nearest
built-in exception, so ``except ValueError`` catches a bad argument.
"""

import ctypes

from . import _lib

OK = 0
ERR_INVALID_ARGUMENT = 100
ERR_NULL_POINTER = 101
ERR_STRUCT_SIZE = 102
ERR_OUT_OF_RANGE = 103
ERR_MISMATCH = 104
ERR_BAD_FORMAT = 105
ERR_UNSUPPORTED = 200
ERR_NO_BACKEND = 201
ERR_NO_DEVICE = 202
ERR_PLUGIN_REJECTED = 203
ERR_DEVICE_TOO_OLD = 204
ERR_OUT_OF_MEMORY = 300
ERR_OUT_OF_DEVICE_MEMORY = 301
ERR_IO = 302
ERR_NOT_READY = 400
ERR_CONTEXT_LOST = 401
ERR_FORKED = 402
ERR_BACKEND = 403
ERR_BUSY = 404
ERR_INTERNAL = 499


class FerryError(Exception):
    """A ferry call failed. status: the ferry_status number; status_name:
    "FERRY_ERR_..."; message: ferry's message; op/sequence: the enqueued op
    a deferred error comes from ("" and 0 otherwise)."""

    def __init__(self, status, message, op="", sequence=0, status_name=None):
        self.status = int(status)
        self.status_name = status_name or status_string(status)
        self.message = message
        self.op = op
        self.sequence = sequence
        where = f" (op '{op}', sequence {sequence})" \
            if op and "sequence" not in message else ""
        super().__init__(f"{self.status_name}: {message}{where}")

    def __str__(self):
        return self.args[0] if self.args else ""


class InvalidArgumentError(FerryError, ValueError):
    """1xx: the caller passed something wrong."""


class OutOfRangeError(InvalidArgumentError, IndexError):
    """FERRY_ERR_OUT_OF_RANGE (also raised asynchronously by gathers)."""


class BadFormatError(InvalidArgumentError):
    """FERRY_ERR_BAD_FORMAT: a malformed file or string."""


class UnsupportedError(FerryError, NotImplementedError):
    """2xx: the backend lacks the op, or no such backend/device here."""


class FerryMemoryError(FerryError, MemoryError):
    """FERRY_ERR_OUT_OF_MEMORY / OUT_OF_DEVICE_MEMORY."""


class FerryIOError(FerryError, OSError):
    """FERRY_ERR_IO: a file could not be read or written."""

    def __str__(self):  # OSError formats its own args otherwise
        return self.args[0] if self.args else ""


class FerryRuntimeError(FerryError, RuntimeError):
    """4xx: state and runtime (not ready, context lost, forked, busy, ...)."""


def _class_for(status):
    if status == ERR_OUT_OF_RANGE:
        return OutOfRangeError
    if status == ERR_BAD_FORMAT:
        return BadFormatError
    if status == ERR_IO:
        return FerryIOError
    group = status // 100
    return {1: InvalidArgumentError, 2: UnsupportedError,
            3: FerryMemoryError, 4: FerryRuntimeError}.get(group, FerryError)


def status_string(status):
    return _lib.cstr(_lib.lib.ferry_status_string(int(status)))


def last_error():
    """The calling thread's message for its last failing ferry call."""
    return _lib.cstr(_lib.lib.ferry_last_error())


def error_from_status(status):
    """The exception for `status`, read from this thread's ferry error."""
    info = _lib.ErrorInfo()
    msg = last_error()
    op, seq = "", 0
    # ferry_last_error_info is itself a ferry call and would clear the
    # thread's error: read the message first, then the details.
    if _lib.lib.ferry_last_error_info(ctypes.byref(info)) == OK:
        op = _lib.cstr(info.op)
        seq = int(info.sequence)
        if info.message:
            msg = _lib.cstr(info.message) or msg
    return _class_for(status)(status, msg, op, seq)


def check(status):
    """Raise the FerryError for `status` unless it is FERRY_OK."""
    if status != OK:
        raise error_from_status(status)


def call(name, *args):
    """Call ferry function `name`, raising on a failing status."""
    f = getattr(_lib.lib, name, None)
    if f is None:
        raise UnsupportedError(ERR_UNSUPPORTED,
                               f"{name} is not in this libferry "
                               f"({_lib.path()})", status_name="FERRY_ERR_UNSUPPORTED")
    check(f(*args))
