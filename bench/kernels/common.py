"""Correctness checks run before any timing: tolerances per dtype, one clear message on failure."""

from __future__ import annotations

import torch

# (rtol, atol) of a kernel output against its reference, by the kernel's dtype. Outputs are O(1).
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-9, 1e-9),
    torch.float32: (1e-4, 1e-4),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (4e-2, 4e-2),
}


class KernelCheckError(AssertionError):
    """A kernel disagrees with its reference: the kernel is not timed."""


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, (5e-2, 5e-2))


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    """torch.allclose(actual, expected, rtol, atol) with the tolerance of `dtype`, compared in float64."""
    rtol, atol = tolerance(dtype)
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    if a.shape != e.shape:
        raise KernelCheckError(f"{what}: shape {tuple(a.shape)} != {tuple(e.shape)}")
    if not torch.allclose(a, e, rtol=rtol, atol=atol):
        err = (a - e).abs()
        raise KernelCheckError(
            f"{what}: max abs error {err.max().item():.3g} exceeds rtol={rtol:g}, atol={atol:g}"
            f" ({torch.isnan(a).sum().item()} NaN)"
        )


RANDOM_BLOCK_ELEMENTS = 1 << 22  # larger tensors repeat a random block of this many elements


def random_tensor(shape, device, dtype, std: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform values with standard deviation `std`, made on the device. Beyond RANDOM_BLOCK_ELEMENTS
    the first block is tiled (memory-speed copies instead of RNG speed; GiB-sized caches and expert
    weights fill in well under a second and timing does not depend on the values)."""
    half_width = std * 3.0**0.5
    t = torch.empty(shape, device=device, dtype=dtype)
    flat = t.view(-1)
    n = flat.numel()
    flat[: min(n, RANDOM_BLOCK_ELEMENTS)].uniform_(-half_width, half_width, generator=generator)
    done = min(n, RANDOM_BLOCK_ELEMENTS)
    while done < n:
        step = min(done, n - done)
        flat[done : done + step].copy_(flat[:step])
        done += step
    return t


def seeded(seed: int, device="cpu") -> torch.Generator | None:
    """A generator on `device` seeded with `seed`; where the device has none, seed torch globally
    and return None (random_tensor then draws from the global generator)."""
    try:
        return torch.Generator(device=device).manual_seed(seed)
    except (RuntimeError, TypeError):
        torch.manual_seed(seed)
        return None
