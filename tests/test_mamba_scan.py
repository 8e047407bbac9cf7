"""Mamba's C++ selective scan (lib/csrc/selective_scan.cpp) against its definition,
`selective_scan_reference`, and the fallback to the reference when the extension cannot be built."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lib import mamba
from lib.mamba import SelectiveScan, selective_scan, selective_scan_reference

ROOT = Path(__file__).resolve().parents[1]


def scan_inputs(batch=3, seq=17, d_inner=10, dtype=torch.float32, seed=0):
    """x, dt, A, B, C in Mamba's ranges: dt = softplus(normal) (about 0.05 to 3), and A = -exp(A_log)
    with A_log = log 1 .. log 16 as Mamba initialises it, moved a little per entry as training does."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, seq, d_inner, generator=g, dtype=dtype)
    dt = torch.nn.functional.softplus(torch.randn(batch, seq, d_inner, generator=g, dtype=dtype))
    A_log = torch.arange(1, 17, dtype=dtype).log() + 0.3 * torch.randn(d_inner, 16, generator=g, dtype=dtype)
    B, C = torch.randn(2, batch, seq, 16, generator=g, dtype=dtype)
    return [x, dt, -torch.exp(A_log), B, C]


def scan_with_grads(scan, inputs, grad_y):
    leaves = [v.detach().clone().requires_grad_() for v in inputs]
    y = scan(*leaves)
    y.backward(grad_y)
    return [y.detach()] + [v.grad for v in leaves]


def test_the_extension_builds_on_this_machine():
    assert mamba.scan_extension() is not None, "no C++ scan: see the warning (compiler, ninja)"


@pytest.mark.parametrize("d_inner", [10, 16, 37])  # under one block of 16 channels, one, and 2 + a part
def test_the_extension_equals_the_reference_with_all_five_gradients(d_inner):
    """Float32 values and gradients against the reference's exact ones (float64, from the same
    inputs), within a float32 tolerance that the reference run in float32 meets as well."""
    assert mamba.scan_extension() is not None
    inputs = scan_inputs(d_inner=d_inner)
    grad_y = torch.randn(inputs[0].shape, generator=torch.Generator().manual_seed(1))
    fast = scan_with_grads(SelectiveScan.apply, inputs, grad_y)
    reference = scan_with_grads(selective_scan_reference, inputs, grad_y)
    exact = scan_with_grads(selective_scan_reference, [v.double() for v in inputs], grad_y.double())
    for a, b, c, name in zip(fast, reference, exact, ("y", "x", "dt", "A", "B", "C")):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a.double(), c, rtol=1e-5, atol=1e-5, msg=name)
        torch.testing.assert_close(b.double(), c, rtol=1e-5, atol=1e-5, msg=name)
    assert all(v.abs().max() > 1 for v in exact)  # nothing trivially zero


def test_selective_scan_takes_non_contiguous_inputs_as_mamba_passes_them():
    """MambaBlock hands over x transposed back from the convolution and B, C as slices of one
    projection: selective_scan runs the extension on them, with the values and gradients it
    gives on contiguous copies, bit for bit."""
    x, dt, A, B, C = scan_inputs(batch=2, seq=9, d_inner=20)
    x = x.transpose(1, 2).contiguous().transpose(1, 2)
    B, C = torch.cat([B, C], -1).split(16, -1)
    assert not (x.is_contiguous() or B.is_contiguous() or C.is_contiguous())
    grad_y = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    given = scan_with_grads(selective_scan, [x, dt, A, B, C], grad_y)
    copied = scan_with_grads(SelectiveScan.apply, [v.contiguous() for v in (x, dt, A, B, C)], grad_y)
    for a, b, name in zip(given, copied, ("y", "x", "dt", "A", "B", "C")):
        assert torch.equal(a, b), name
    assert not torch.equal(given[0], selective_scan_reference(x, dt, A, B, C))  # the extension ran, not the reference


@pytest.mark.parametrize("d_inner", [3, 17])
def test_the_extension_passes_gradcheck_in_float64(d_inner):
    inputs = [v.requires_grad_() for v in scan_inputs(batch=2, seq=6, d_inner=d_inner, dtype=torch.float64)]
    assert torch.autograd.gradcheck(SelectiveScan.apply, inputs)


FALLBACK_SCRIPT = """
import json, warnings, torch
from lib import mamba
x, dt, A, B, C = (torch.randn(*s, generator=torch.Generator().manual_seed(0)) for s in
                  [(2, 7, 5), (2, 7, 5), (5, 16), (2, 7, 16), (2, 7, 16)])
dt, A = dt.abs(), -A.abs()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")  # every warning raised is recorded: warning once is the scan's own doing
    x.requires_grad_()
    ys = [mamba.selective_scan(x, dt, A, B, C) for _ in range(3)]
    ys[0].sum().backward()
reference = mamba.selective_scan_reference(x, dt, A, B, C)
print(json.dumps({"extension": mamba.scan_extension() is not None,
                  "warnings": [str(w.message) for w in caught if "selective scan" in str(w.message)],
                  "equal": all(torch.equal(y, reference) for y in ys),
                  "grad": bool(x.grad is not None and x.grad.abs().sum() > 0)}))
"""


def test_a_failed_build_warns_once_and_falls_back_to_the_reference(tmp_path):
    """A real fault: the compiler is /bin/false, in a fresh extension folder (nothing cached)."""
    env = {**os.environ, "CXX": "/bin/false", "TORCH_EXTENSIONS_DIR": str(tmp_path / "torch_extensions")}
    done = subprocess.run([sys.executable, "-c", FALLBACK_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["extension"] is False
    assert len(result["warnings"]) == 1 and "/bin/false" in result["warnings"][0], result["warnings"]
    assert "\n" not in result["warnings"][0]
    assert result["equal"] and result["grad"]
