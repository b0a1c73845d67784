"""The optimisation's plan as pure functions: pyramid levels and sizes, the automatic tile."""

from __future__ import annotations

import subprocess
import sys

from videostyle.gatys import plan


def test_large_images_go_coarse_to_fine_from_the_stroke_side():
    common = {"pyramid_levels": 1, "scale": 2.0, "stroke_side": 512}
    assert plan.levels((1080, 1920), pyramid=True, **common) == 3  # 480, 960, 1920
    assert plan.levels((288, 512), pyramid=True, **common) == 1
    assert plan.levels((1080, 1920), pyramid=False, **common) == 1  # warm-started frames: flat
    assert plan.levels((100, 100), pyramid=True, pyramid_levels=3, scale=2.0, stroke_side=0) == 3


def test_level_sizes_end_at_the_frame_and_drop_what_is_too_small():
    sizes, steps = plan.sizes_and_steps((540, 960), 3, 2.0, 50)
    assert sizes == [(135, 240), (270, 480), (540, 960)] and steps == [50, 50, 50]
    sizes, _ = plan.sizes_and_steps((64, 96), 3, 2.0, 10)  # 16x24 is below MIN_SIDE
    assert sizes == [(32, 48), (64, 96)]
    assert plan.sizes_and_steps((64, 96), 1, 2.0, 10, coarse=4) == ([(32, 48), (64, 96)], [4, 10])
    assert plan.sizes_and_steps((48, 64), 1, 2.0, 10, coarse=4) == ([(48, 64)], [10])  # no room for half


def test_auto_tile_is_whole_when_it_fits_else_the_largest_aligned_tile_that_does():
    mb = 2**20
    fixed, per_px = 50 * mb, 2000.0
    px = 2048 * 2048
    assert plan.auto_tile(px, 64e9, fixed, per_px, 100 * mb, 80 * mb, 80) == 0
    avail = 2.0e9
    tile = plan.auto_tile(px, avail, fixed, per_px, 1e9, 300 * mb, 80)
    assert tile > 0 and tile % plan.ALIGN == 0
    assert fixed + per_px * tile**2 + 300 * mb + 32 * px <= avail  # the tile's pass fits
    bigger = tile + plan.ALIGN
    assert fixed + per_px * bigger**2 + 300 * mb + 32 * px > avail  # and is the largest that does
    assert plan.auto_tile(px, 0.3e9, fixed, per_px, 1e9, 300 * mb, 80) == -1


def test_the_plan_needs_no_torch():
    code = "import sys; import videostyle.gatys.plan; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
