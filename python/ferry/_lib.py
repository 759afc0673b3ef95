"""Loading libferry and declaring its C API for ctypes.

The structs below mirror include/ferry/*.h field for field (the library
reads only what ``struct_size`` covers, so a struct that is shorter than the
library's is still safe; a longer one is refused). tests/test_layout.py
compiles the headers and compares every size and offset.
"""

import ctypes
import ctypes.util
import os

c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_char_p = ctypes.c_char_p
c_size_t = ctypes.c_size_t
c_int32 = ctypes.c_int32
c_int64 = ctypes.c_int64
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_double = ctypes.c_double
c_float = ctypes.c_float
POINTER = ctypes.POINTER

MAX_DIMS = 8
NAME_MAX = 128
REASON_MAX = 256
BUS_ID_MAX = 16
SAMPLER_MAX_LAYERS = 8


class _Struct(ctypes.Structure):
    """A ferry options/info struct: struct_size first, set on creation."""

    def __init__(self, **kw):
        super().__init__()
        if self._fields_ and self._fields_[0][0] == "struct_size":
            self.struct_size = ctypes.sizeof(self)
        for k, v in kw.items():
            setattr(self, k, v)


class Tensor_t(ctypes.Structure):
    _fields_ = [
        ("buffer", c_void_p),
        ("host", c_void_p),
        ("byte_offset", c_uint64),
        ("dtype", c_int),
        ("ndim", c_int32),
        ("shape", c_int64 * MAX_DIMS),
        ("strides", c_int64 * MAX_DIMS),
    ]


class ErrorInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("status", c_int),
        ("op", c_char_p),
        ("sequence", c_uint64),
        ("message", c_char_p),
    ]


class DeviceInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("name", ctypes.c_char * NAME_MAX),
        ("pci_bus_id", ctypes.c_char * BUS_ID_MAX),
        ("pci_vendor_id", c_uint32),
        ("total_memory", c_uint64),
        ("capability_major", c_uint32),
        ("capability_minor", c_uint32),
        ("base_address_align", c_uint32),
        ("host_unified_memory", c_uint32),
        ("usable", c_uint32),
        ("reason", ctypes.c_char * REASON_MAX),
        ("max_alloc_bytes", c_uint64),
    ]


class BackendInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("name", ctypes.c_char * NAME_MAX),
        ("path", ctypes.c_char * 512),
        ("abi_major", c_uint32),
        ("abi_minor", c_uint32),
        ("available", c_int),
        ("device_count", c_int),
        ("reason", ctypes.c_char * REASON_MAX),
    ]


class ContextOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("backend", c_char_p),
        ("device_index", c_int),
        ("num_threads", c_int),
    ]


class ContextInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("backend", ctypes.c_char * NAME_MAX),
        ("device_index", c_int),
        ("device", DeviceInfo),
        ("num_threads", c_int),
        ("lost", c_int),
        ("numa_nodes", ctypes.c_char * 256),
        ("cpuset", ctypes.c_char * 256),
    ]


class BufferInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("space", c_int),
        ("size", c_uint64),
        ("backend", ctypes.c_char * NAME_MAX),
        ("device_index", c_int),
        ("host_pointer", c_void_p),
        ("device_pointer", c_void_p),
        ("native_handle", c_void_p),
        ("numa_bound", c_int),
        ("numa_nodes", ctypes.c_char * 256),
    ]


TABLE_PROGRESS_FN = ctypes.CFUNCTYPE(None, c_uint64, c_uint64, c_void_p)


class TableOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("placement", c_int),
        ("npy_u2_is_bf16", c_int),
        ("progress", TABLE_PROGRESS_FN),
        ("progress_user", c_void_p),
    ]


class TableInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("rows", c_uint64),
        ("cols", c_uint64),
        ("dtype", c_int),
        ("row_bytes", c_uint64),
        ("placement", c_int),
        ("path", c_int),
        ("wrapped", c_int),
        ("file_mapped", c_int),
        ("numa_bound", c_int),
        ("numa_nodes", ctypes.c_char * 256),
        ("pieces", c_uint32),
        ("host_pointer", c_void_p),
        ("host_threads", c_int),
    ]


class GatherOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("method", c_int),
        ("max_blocks", c_uint32),
    ]


class GraphOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("placement", c_int),
        ("id_dtype", c_int),
        ("symmetrize", c_int),
        ("remove_self_loops", c_int),
        ("remove_duplicates", c_int),
        ("wrap", c_int),
    ]


PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_double)


class RmatOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("scale", c_int),
        ("edge_factor", c_int),
        ("a", c_double),
        ("b", c_double),
        ("c", c_double),
        ("seed", c_uint64),
        ("progress", PROGRESS_FN),
        ("progress_user", c_void_p),
    ]


class GraphInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("num_nodes", c_int64),
        ("num_edges", c_int64),
        ("max_degree", c_int64),
        ("id_dtype", c_int),
        ("placement", c_int),
        ("offsets", Tensor_t),
        ("cols", Tensor_t),
    ]


class Linqs(ctypes.Structure):
    _fields_ = [
        ("graph", c_void_p),
        ("num_nodes", c_int64),
        ("num_features", c_int64),
        ("features", POINTER(c_float)),
        ("labels", POINTER(c_int32)),
        ("num_classes", c_int32),
        ("class_names", POINTER(c_char_p)),
        ("citation_lines", c_int64),
        ("unknown_dropped", c_int64),
        ("self_loops", c_int64),
        ("undirected_edges", c_int64),
        ("isolated_nodes", c_int64),
    ]


class SamplerOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("num_layers", c_int),
        ("fanouts", c_int64 * SAMPLER_MAX_LAYERS),
        ("replace", c_int),
        ("seed", c_uint64),
    ]


class SamplerInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("num_layers", c_int),
        ("fanouts", c_int64 * SAMPLER_MAX_LAYERS),
        ("replace", c_int),
        ("seed", c_uint64),
        ("graph", c_void_p),
        ("num_nodes", c_int64),
        ("num_edges", c_int64),
        ("id_dtype", c_int),
        ("lanes", c_int),
        ("cached_bytes", c_uint64),
    ]


class Block_t(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("num_dst", c_int64),
        ("num_src", c_int64),
        ("num_edges", c_int64),
        ("indptr", Tensor_t),
        ("indices", Tensor_t),
        ("src_nodes", Tensor_t),
    ]


class SelectorOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("num_batches", c_int64),
        ("epochs", c_int64),
        ("delta", c_double),
    ]


class SelectorInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("num_batches", c_int64),
        ("epochs", c_int64),
        ("delta", c_double),
        ("round_size", c_int64),
        ("total_steps", c_int64),
        ("steps", c_int64),
        ("done", c_int),
        ("round", c_int64),
        ("round_length", c_int64),
        ("round_handed", c_int64),
        ("round_reported", c_int64),
    ]


class LoaderOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("batch_size", c_int64),
        ("order", c_int),
        ("seed", c_uint64),
        ("selector", c_void_p),
        ("depth", c_int),
        ("drop_last", c_int),
        ("feature_dtype", c_int),
        ("gather", POINTER(GatherOptions)),
    ]


class LoaderInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("num_seeds", c_int64),
        ("batch_size", c_int64),
        ("num_batches", c_int64),
        ("depth", c_int),
        ("order", c_int),
        ("feature_dtype", c_int),
        ("feature_cols", c_uint64),
    ]


class BatchInfo(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("id", c_int64),
        ("step", c_int64),
        ("epoch", c_uint64),
        ("sample_id", c_uint32),
        ("seeds", POINTER(c_int64)),
        ("num_seeds", c_int64),
        ("minibatch", c_void_p),
        ("features", Tensor_t),
        ("num_input_nodes", c_int64),
    ]


class NormOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("kind", c_int),
        ("eps", c_float),
        ("flags", c_uint32),
    ]


class AdanOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("lr", c_double),
        ("beta1", c_double),
        ("beta2", c_double),
        ("beta3", c_double),
        ("eps", c_double),
        ("weight_decay", c_double),
        ("max_grad_norm", c_double),
        ("no_prox", c_int),
        ("check_finite", c_int),
        ("master_weights", c_int),
    ]


class AdanGroupOptions(_Struct):
    _fields_ = [
        ("struct_size", c_size_t),
        ("lr", c_double),
        ("weight_decay", c_double),
    ]


# DLPack's ABI (v1.x), as ferry's core/dlpack_abi.h declares it.
class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", c_int32), ("device_id", c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint8),
        ("bits", ctypes.c_uint8),
        ("lanes", ctypes.c_uint16),
    ]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", c_void_p),
        ("device", DLDevice),
        ("ndim", c_int32),
        ("dtype", DLDataType),
        ("shape", POINTER(c_int64)),
        ("strides", POINTER(c_int64)),
        ("byte_offset", c_uint64),
    ]


class DLManagedTensor(ctypes.Structure):
    pass


DL_DELETER = ctypes.CFUNCTYPE(None, POINTER(DLManagedTensor))
DLManagedTensor._fields_ = [
    ("dl_tensor", DLTensor),
    ("manager_ctx", c_void_p),
    ("deleter", DL_DELETER),
]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", c_uint32), ("minor", c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    pass


DLV_DELETER = ctypes.CFUNCTYPE(None, POINTER(DLManagedTensorVersioned))
DLManagedTensorVersioned._fields_ = [
    ("version", DLPackVersion),
    ("manager_ctx", c_void_p),
    ("deleter", DLV_DELETER),
    ("flags", c_uint64),
    ("dl_tensor", DLTensor),
]

HOST_FN = ctypes.CFUNCTYPE(c_int, c_void_p)

# name: (restype, argtypes). restype c_int is a ferry_status; None is void.
_S = c_int
_P = c_void_p
_PT = POINTER(Tensor_t)
_PROTOS = {
    "ferry_get_api_version": (ctypes.c_uint, []),
    "ferry_status_string": (c_char_p, [c_int]),
    "ferry_last_error": (c_char_p, []),
    "ferry_last_error_info": (_S, [POINTER(ErrorInfo)]),
    "ferry_backend_count": (_S, [POINTER(c_int)]),
    "ferry_backend_get_info": (_S, [c_int, POINTER(BackendInfo)]),
    "ferry_backend_get_device_info": (_S, [c_char_p, c_int, POINTER(DeviceInfo)]),
    "ferry_context_create": (_S, [POINTER(ContextOptions), POINTER(_P)]),
    "ferry_context_destroy": (None, [_P]),
    "ferry_context_get_info": (_S, [_P, POINTER(ContextInfo)]),
    "ferry_context_synchronize": (_S, [_P]),
    "ferry_buffer_create": (_S, [_P, c_int, c_uint64, POINTER(_P)]),
    "ferry_buffer_wrap_host": (_S, [_P, _P, c_uint64, POINTER(_P)]),
    "ferry_buffer_destroy": (None, [_P]),
    "ferry_buffer_get_info": (_S, [_P, POINTER(BufferInfo)]),
    "ferry_buffer_copy_async": (_S, [_P, _P, c_uint64, _P, c_uint64, c_uint64]),
    "ferry_buffer_write_async": (_S, [_P, _P, c_uint64, _P, c_uint64]),
    "ferry_buffer_read_async": (_S, [_P, _P, c_uint64, _P, c_uint64]),
    "ferry_buffer_fill_async": (_S, [_P, _P, c_uint64, c_int, c_uint64]),
    "ferry_dtype_size": (c_size_t, [c_int]),
    "ferry_dtype_name": (c_char_p, [c_int]),
    "ferry_tensor_make": (_S, [_P, c_uint64, c_int, c_int32, POINTER(c_int64), _PT]),
    "ferry_tensor_to_dlpack": (_S, [_P, _PT, POINTER(POINTER(DLManagedTensorVersioned))]),
    "ferry_buffer_from_dlpack": (_S, [_P, _P, POINTER(_P), _PT]),
    "ferry_buffer_from_dlpack_legacy": (_S, [_P, _P, POINTER(_P), _PT]),
    "ferry_stream_create": (_S, [_P, POINTER(_P)]),
    "ferry_stream_wrap_native": (_S, [_P, _P, POINTER(_P)]),
    "ferry_stream_destroy": (None, [_P]),
    "ferry_stream_synchronize": (_S, [_P]),
    "ferry_stream_query": (_S, [_P]),
    "ferry_stream_wait_event": (_S, [_P, _P]),
    "ferry_stream_enqueue_host_fn": (_S, [_P, HOST_FN, _P]),
    "ferry_stream_next_sequence": (_S, [_P, POINTER(c_uint64)]),
    "ferry_stream_native_handle": (_S, [_P, POINTER(_P)]),
    "ferry_event_create": (_S, [_P, POINTER(_P)]),
    "ferry_event_destroy": (None, [_P]),
    "ferry_event_record": (_S, [_P, _P]),
    "ferry_event_synchronize": (_S, [_P]),
    "ferry_event_query": (_S, [_P]),
    "ferry_event_elapsed_ms": (_S, [_P, _P, POINTER(c_double)]),
    # table.h
    "ferry_table_create": (_S, [_P, c_uint64, c_uint64, c_int, POINTER(TableOptions), POINTER(_P)]),
    "ferry_table_wrap_host": (_S, [_P, _P, c_uint64, c_uint64, c_int, POINTER(TableOptions), POINTER(_P)]),
    "ferry_table_from_npy": (_S, [_P, c_char_p, POINTER(TableOptions), POINTER(_P)]),
    "ferry_table_write": (_S, [_P, c_uint64, c_uint64, _P]),
    "ferry_table_read": (_S, [_P, c_uint64, c_uint64, _P]),
    "ferry_table_destroy": (None, [_P]),
    "ferry_table_get_info": (_S, [_P, POINTER(TableInfo)]),
    "ferry_gather": (_S, [_P, _PT, c_uint64, _PT, _P, POINTER(GatherOptions)]),
    # graph.h
    "ferry_graph_create_csr": (_S, [_P, POINTER(GraphOptions), c_int64, _P, _P, c_int, POINTER(_P)]),
    "ferry_graph_create_from_edges": (_S, [_P, POINTER(GraphOptions), c_int64, _P, _P, c_int64, POINTER(_P)]),
    "ferry_graph_load_edge_list": (_S, [_P, POINTER(GraphOptions), c_char_p, c_int64, POINTER(_P)]),
    "ferry_graph_create_rmat": (_S, [_P, POINTER(GraphOptions), POINTER(RmatOptions), POINTER(_P)]),
    "ferry_graph_destroy": (None, [_P]),
    "ferry_graph_get_info": (_S, [_P, POINTER(GraphInfo)]),
    "ferry_linqs_load": (_S, [_P, POINTER(GraphOptions), c_char_p, POINTER(POINTER(Linqs))]),
    "ferry_linqs_destroy": (None, [c_void_p]),
    "ferry_linqs_feature_table": (_S, [_P, POINTER(Linqs), POINTER(TableOptions), POINTER(_P)]),
    "ferry_sampler_create": (_S, [_P, POINTER(SamplerOptions), POINTER(_P)]),
    "ferry_sampler_destroy": (None, [_P]),
    "ferry_sampler_get_info": (_S, [_P, POINTER(SamplerInfo)]),
    "ferry_sample": (_S, [_P, _P, c_int64, c_uint64, POINTER(_P)]),
    "ferry_minibatch_destroy": (None, [_P]),
    "ferry_minibatch_num_blocks": (_S, [_P, POINTER(c_int)]),
    "ferry_minibatch_block": (_S, [_P, c_int, POINTER(Block_t)]),
    "ferry_minibatch_input_nodes": (_S, [_P, _PT]),
    "ferry_selector_create": (_S, [POINTER(SelectorOptions), POINTER(_P)]),
    "ferry_selector_destroy": (None, [_P]),
    "ferry_selector_next": (_S, [_P, POINTER(c_int64), POINTER(c_int)]),
    "ferry_selector_report": (_S, [_P, c_int64, c_double]),
    "ferry_selector_round_size": (_S, [_P, POINTER(c_int64)]),
    "ferry_selector_get_info": (_S, [_P, POINTER(SelectorInfo)]),
    # loader.h
    "ferry_loader_create": (_S, [_P, _P, _P, _P, c_int64, POINTER(LoaderOptions), POINTER(_P)]),
    "ferry_loader_destroy": (None, [_P]),
    "ferry_loader_start_epoch": (_S, [_P, c_uint64]),
    "ferry_loader_next": (_S, [_P, _P, POINTER(_P), POINTER(c_int)]),
    "ferry_loader_release": (_S, [_P, _P, _P]),
    "ferry_loader_get_info": (_S, [_P, POINTER(LoaderInfo)]),
    "ferry_batch_get_info": (_S, [_P, POINTER(BatchInfo)]),
    # norm.h
    "ferry_norm_forward": (_S, [_P, POINTER(NormOptions), _PT, _PT, _PT, _PT, _PT, _PT]),
    "ferry_norm_backward": (_S, [_P, POINTER(NormOptions), _PT, _PT, _PT, _PT, _PT, _PT, _PT, _PT]),
    # adan.h
    "ferry_adan_create": (_S, [_P, POINTER(AdanOptions), POINTER(_P)]),
    "ferry_adan_destroy": (None, [_P]),
    "ferry_adan_add_group": (_S, [_P, POINTER(AdanGroupOptions), _PT, c_size_t, POINTER(c_int)]),
    "ferry_adan_set_group": (_S, [_P, c_int, POINTER(AdanGroupOptions)]),
    "ferry_adan_step": (_S, [_P, _PT, _PT, c_size_t, _P]),
    "ferry_adan_get_step": (_S, [_P, c_int, POINTER(c_uint64)]),
    "ferry_adan_set_step": (_S, [_P, c_int, c_uint64]),
    "ferry_adan_last_step_skipped": (_S, [_P, POINTER(c_int)]),
    "ferry_adan_restart": (_S, [_P]),
    "ferry_adan_state_length": (_S, [_P, c_int, POINTER(c_uint64)]),
    "ferry_adan_read_state": (_S, [_P, c_int, c_int, POINTER(c_float), c_uint64]),
    "ferry_adan_write_state": (_S, [_P, c_int, c_int, POINTER(c_float), c_uint64]),
}


def _candidates():
    """Where libferry may be, in the order the binding tries them."""
    env = os.environ.get("FERRY_LIBRARY")
    if env:
        # An explicit choice is strict: no silent fallback to another copy.
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    for name in ("libferry.so.0", "libferry.so", "libferry.dylib"):
        p = os.path.join(here, "lib", name)
        if os.path.exists(p):
            out.append(p)
    found = ctypes.util.find_library("ferry")
    if found:
        out.append(found)
    out.append("libferry.so.0")
    return out, False


def _load():
    paths, strict = _candidates()
    errors = []
    for p in paths:
        try:
            # RTLD_GLOBAL is not needed: plugins never resolve core symbols.
            lib = ctypes.CDLL(p)
        except OSError as e:
            errors.append(f"{p}: {e}")
            if strict:
                break
            continue
        if not hasattr(lib, "ferry_context_create"):
            errors.append(f"{p}: not libferry (no ferry_context_create)")
            if strict:
                break
            continue
        # Bind what this libferry has; an op area it lacks stays unbound and
        # its Python calls raise ferry.UnsupportedError (see call()).
        for name, (res, args) in _PROTOS.items():
            f = getattr(lib, name, None)
            if f is None:
                continue
            f.restype = res
            f.argtypes = args
        lib._ferry_path = p
        return lib
    raise ImportError(
        "ferry: cannot load libferry (set FERRY_LIBRARY to its path); tried: "
        + "; ".join(errors))


lib = _load()


def path():
    """The file libferry was loaded from (as it was named to the loader)."""
    return lib._ferry_path


def cstr(b):
    return b.decode("utf-8", "replace") if b is not None else ""
