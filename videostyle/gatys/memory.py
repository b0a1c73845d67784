"""How much memory a render may use, and what a frame's optimisation costs (for ``--tile auto``).

The budget is the device's: on CUDA the free memory, on the CPU ``--memory`` GB (half the RAM by
default) less what the process already holds. A frame's cost is measured, not guessed: forward
passes of the extractor at two small sizes, with autograd's saved tensors counted
(``pass_cost``), give what a pass holds per pixel it sees; the optimiser's image-sized vectors
(``image_bytes``) scale with the frame.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

GB = 2**30


def total_ram() -> int:
    """Physical memory of this machine in bytes (0 when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0


def resident() -> int:
    """This process's resident memory now, in bytes (its peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def budget(device: torch.device, memory_gb: float) -> int:
    """Bytes a frame's optimisation may still allocate on ``device``.

    CUDA: the device's free memory plus what torch's allocator holds unused (``memory_gb``, when
    set, caps the total). CPU: ``memory_gb`` (0 = half the RAM) less this process's resident
    memory (the libraries, the network, the clip's buffers)."""
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        if memory_gb:
            free = min(free, int(memory_gb * GB) - torch.cuda.memory_allocated(device))
        return max(0, int(free))
    cap = int(memory_gb * GB) if memory_gb else total_ram() // 2
    return max(0, cap - resident())


_libc: ctypes.CDLL | None | bool = False


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is False:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name) if name else None
            _libc = lib if lib is not None and hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else None
        except OSError:  # pragma: no cover
            _libc = None
    return _libc or None  # type: ignore[return-value]


def release() -> None:
    """Hand the heap's freed pages back to the operating system (glibc's ``malloc_trim``).

    torch's CPU tensors come from malloc; glibc keeps freed blocks of the sizes a tile's
    activations have, so the process's resident memory grows by fragmentation from tile to tile
    (hundreds of MB above what the tensors need at 2048 px in tiles). The tiled path calls
    this after each tile; elsewhere it is a no-op."""
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def map_large_blocks(threshold: int = 1 << 20) -> None:
    """Serve blocks of ``threshold`` bytes and more from their own mappings, handed back to the
    system when freed, instead of from the heap (glibc's ``mallopt(M_MMAP_THRESHOLD)``).

    glibc raises its threshold to the size of each mapped block freed, up to 32 MB: after the
    first tile, a tile's activations come from the heap, where the tiles' different shapes leave
    holes that ``malloc_trim`` cannot return while smaller blocks sit between them. Fixing the
    threshold keeps them out of the heap, for a lower peak at some more time per iteration (page
    faults; the tiles benchmark with heap=glibc, docs/benchmarks.md). Set for tiled frames only,
    on the CPU; it holds for the rest of the process."""
    lib = _glibc()
    if lib is not None:
        lib.mallopt(M_MMAP_THRESHOLD, threshold)


@dataclass(frozen=True)
class PassCost:
    """Bytes one forward and backward pass of the extractor holds at its peak: ``fixed`` (the
    weights cast for autocast, saved once per pass) plus ``per_pixel`` per input pixel."""

    fixed: float
    per_pixel: float

    def __call__(self, pixels: int) -> float:
        return self.fixed + self.per_pixel * pixels


# The backward pass frees the saved tensors layer by layer while it makes gradients of the same
# sizes: its peak stays a little above the saved tensors (docs/benchmarks.md, design figures);
# 1.25 leaves room for the allocator.
BACKWARD_PEAK = 1.25


def pass_cost(features: Callable[[Tensor, Sequence[str]], dict[str, Tensor]], layers: Sequence[str],
              device: torch.device, sides: tuple[int, int] = (96, 192)) -> PassCost:
    """Measure a pass's cost: count the tensors autograd saves (in the precision they are kept
    in) and the feature maps, in forward passes at two small sizes, and fit fixed + per pixel."""
    held = []
    for side in sides:
        saved: dict[int, int] = {}

        kept: list[Tensor] = []  # (held to the end of the pass, so that no storage is reused and counted twice)

        def pack(t: Tensor) -> None:
            st = t.untyped_storage()
            saved[st.data_ptr()] = max(saved.get(st.data_ptr(), 0), st.nbytes())
            kept.append(t)
            # The graph keeps nothing: these passes never go backward. (Returning ``t`` itself
            # would keep a layer's output alive from its own grad_fn, a cycle in autograd's C++
            # graph that Python's collector cannot see: every render leaked these tensors.)
            return None

        def unpack(_: None) -> Tensor:
            raise RuntimeError("the memory measurement's passes have no backward")

        x = torch.rand(1, 3, side, side, device=device, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            feats = features(x, layers)
        held.append(sum(saved.values()) + sum(f.numel() * f.element_size() for f in feats.values()))
        del feats, x
        kept.clear()
    (a, b), (pa, pb) = held, (sides[0] ** 2, sides[1] ** 2)
    per_pixel = max(0.0, (b - a) / (pb - pa))
    return PassCost(BACKWARD_PEAK * max(0.0, a - per_pixel * pa), BACKWARD_PEAK * per_pixel)


def image_bytes(pixels: int, vectors: int) -> int:
    """``vectors`` fp32 RGB images of ``pixels`` pixels (the optimiser's state, the gradient...)."""
    return 12 * pixels * vectors
