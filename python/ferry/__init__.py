"""ferry: fast large-graph GNN training on any vendor's GPU (Python binding).

A thin ctypes binding over libferry's C API (see docs/python.md). libferry
is found through FERRY_LIBRARY, then a copy bundled in this package, then
the system loader; backend plugins through libferry's own rules
(FERRY_PLUGIN_PATH, or <libdir>/ferry/).
"""

from ._lib import path as library_path
from .errors import (FerryError, InvalidArgumentError, OutOfRangeError,
                     BadFormatError, UnsupportedError, FerryMemoryError,
                     FerryIOError, FerryRuntimeError, last_error,
                     status_string)
from .core import (Context, Stream, Event, Buffer, Tensor, as_tensor,
                   backends, device_info, get_api_version, DTYPES,
                   dtype_code, dtype_name)
from .dlpack import from_dlpack, to_dlpack, default_context, \
    set_default_context
from .table import Table, gather
from .graph import Graph, Linqs, Sampler, Minibatch, Block, Selector
from .loader import Loader, Batch
from .norm import layer_norm, rms_norm, norm_forward, norm_backward
from .adan import Adan

__version__ = "0.1.0"

__all__ = [
    "library_path", "FerryError", "InvalidArgumentError", "OutOfRangeError",
    "BadFormatError", "UnsupportedError", "FerryMemoryError", "FerryIOError",
    "FerryRuntimeError", "last_error", "status_string", "Context", "Stream",
    "Event", "Buffer", "Tensor", "as_tensor", "backends", "device_info",
    "get_api_version", "DTYPES", "dtype_code", "dtype_name", "from_dlpack",
    "to_dlpack", "default_context", "set_default_context", "Table", "gather",
    "Graph", "Linqs", "Sampler", "Minibatch", "Block", "Selector", "Loader",
    "Batch", "layer_norm", "rms_norm", "norm_forward", "norm_backward",
    "Adan",
]
