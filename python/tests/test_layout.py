"""The ctypes structs match the C headers: every size and field offset,
checked by compiling a program against include/ferry."""

import ctypes
import os
import shutil
import subprocess

import pytest

from ferry import _lib

# ctypes struct -> C type name
STRUCTS = {
    _lib.Tensor_t: "ferry_tensor",
    _lib.ErrorInfo: "ferry_error_info",
    _lib.DeviceInfo: "ferry_device_info",
    _lib.BackendInfo: "ferry_backend_info",
    _lib.ContextOptions: "ferry_context_options",
    _lib.ContextInfo: "ferry_context_info",
    _lib.BufferInfo: "ferry_buffer_info",
    _lib.TableOptions: "ferry_table_options",
    _lib.TableInfo: "ferry_table_info",
    _lib.GatherOptions: "ferry_gather_options",
    _lib.GraphOptions: "ferry_graph_options",
    _lib.RmatOptions: "ferry_rmat_options",
    _lib.GraphInfo: "ferry_graph_info",
    _lib.Linqs: "ferry_linqs",
    _lib.SamplerOptions: "ferry_sampler_options",
    _lib.SamplerInfo: "ferry_sampler_info",
    _lib.Block_t: "ferry_block",
    _lib.SelectorOptions: "ferry_selector_options",
    _lib.SelectorInfo: "ferry_selector_info",
    _lib.LoaderOptions: "ferry_loader_options",
    _lib.LoaderInfo: "ferry_loader_info",
    _lib.BatchInfo: "ferry_batch_info",
    _lib.NormOptions: "ferry_norm_options",
    _lib.AdanOptions: "ferry_adan_options",
    _lib.AdanGroupOptions: "ferry_adan_group_options",
}


def include_dir():
    d = os.environ.get("FERRY_INCLUDE_DIR") or os.path.join(
        os.path.dirname(__file__), "..", "..", "include")
    return d if os.path.exists(os.path.join(d, "ferry", "ferry.h")) else None


def test_struct_layouts_match_the_headers(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    inc = include_dir()
    if cc is None or inc is None:
        pytest.skip("no C compiler or no ferry headers (FERRY_INCLUDE_DIR)")
    lines = ["#include <ferry/ferry.h>", "#include <stdio.h>",
             "#include <stddef.h>", "int main(void) {"]
    expect = []
    for cls, cname in STRUCTS.items():
        lines.append(f'printf("%zu\\n", sizeof({cname}));')
        expect.append((cname, "sizeof", ctypes.sizeof(cls)))
        for f in cls._fields_:
            name = f[0]
            lines.append(f'printf("%zu\\n", offsetof({cname}, {name}));')
            expect.append((cname, name, getattr(cls, name).offset))
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-I", inc, str(src), "-o", str(exe)],
                   check=True, capture_output=True)
    got = subprocess.run([str(exe)], check=True, capture_output=True,
                         text=True).stdout.split()
    assert len(got) == len(expect)
    bad = [(c, f, e, int(g)) for (c, f, e), g in zip(expect, got)
           if int(g) != e]
    assert not bad, f"(struct, field, ctypes, C) that differ: {bad}"
