"""K chains optimised as one batch (``--chains``): the batched loss and L-BFGS against their
single-image twins, a batch of requests against each request alone, and a chained render
against the single-chain render of each of its segments.

Tolerances. A batch of K images changes the order of the convolutions' sums: the features
differ from a batch of one by about 1e-6 relative (~10 fp32 epsilons) with AVX2 kernels, more
with others. Inside one optimisation that stays small (under one grey level after a warm-started frame's
iterations; a fresh frame's losses within 1%). Across
a chain of frames it does not: a frame is rounded to 8 bits before the next starts from it, and
a difference of 1e-6 can flip one rounding. The next frame then starts one grey level away
at that pixel, and L-BFGS's first curvature pair (a step of about 1/numel per pixel,
``runners.FIRST_STEP``) carries that into a visibly different frame, as any other float order
(another CPU's kernels) does to the single-chain render too. So a chain's frames are compared by
what stays: the same frames start fresh, each frame's loss is within 5% and its picture within 8
grey levels on average (seen with oneDNN held to SSE4.1: 2.4% and 4.2).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from videostyle.config import Config, apply
from videostyle.engine import TemporalTerm
from videostyle.engines import new_stylizer, render_spec
from videostyle.errors import ConfigError, RenderInterrupted
from videostyle.gatys import chains as C
from videostyle.gatys.chain_lbfgs import ChainLBFGS
from videostyle.gatys.chain_loss import ChainLoss, ChainTargets
from videostyle.gatys.lbfgs import LBFGS
from videostyle.gatys.losses import PerceptualLoss, gram_matrix
from videostyle.gatys.specs import DEFAULT_LOSS
from videostyle.gatys.stylizer import Stylizer
from videostyle.gatys.throughput import choose, measured
from videostyle.io.images import write_image
from videostyle.io.workdir import WorkDir
from videostyle.render import lockstep as render_lockstep
from videostyle.render.chains import Chains
from videostyle.render.pipeline import stylize_segment
from videostyle.report import Reporter

from .clips import make_clip
from .conftest import pattern, stripes, tiny_config, tiny_extractor

FP32 = float(torch.finfo(torch.float32).eps)


def test_chain_loss_is_each_images_perceptual_loss():
    """Each image's terms are PerceptualLoss's for it alone: its own Gram targets, style weight,
    temporal terms (a chain with fewer is padded with weight 0) and content."""
    torch.manual_seed(0)
    net = tiny_extractor()
    spec = dataclasses.replace(DEFAULT_LOSS, tv_weight=3.0)
    layers = spec.layers
    x = torch.rand(3, 3, 32, 40)
    feats = net(x, layers)
    content = {k: v.detach() for k, v in net(torch.rand(3, 3, 32, 40), spec.content_layers).items()}
    styles = net(torch.rand(3, 3, 24, 24), spec.style_layers)
    grams = {n: gram_matrix(styles[n]) for n in spec.style_layers}
    weights = [1.0, 2.5, 0.3]
    tgt = torch.rand(3, 3, 32, 40)
    mask = torch.rand(3, 1, 32, 40)
    mask[2] = 0  # (the third image has no temporal term: padded)
    tw = torch.tensor([4.0, 2.0, 0.0])
    got = ChainLoss(spec)(x, feats, ChainTargets(content, grams, torch.tensor(weights), [(tgt, mask, tw)]))
    for k in range(3):
        single = PerceptualLoss(dataclasses.replace(spec, style_weight=weights[k]))
        temporal = [(tgt[k:k + 1], mask[k:k + 1], float(tw[k]))] if k < 2 else []
        want = single(x[k:k + 1], {n: f[k:k + 1] for n, f in feats.items()},
                      {n: f[k:k + 1] for n, f in content.items()}, {n: g[k:k + 1] for n, g in grams.items()}, temporal)
        for name, value in want.items():
            # (a sum of n values in another order differs by up to n epsilons, relative; the
            # largest sum here is relu1_1's 8 x 32 x 40 values)
            assert float(got[name][k]) == pytest.approx(float(value), rel=8 * 32 * 40 * FP32), (k, name)
        if k == 2:
            assert float(got["temporal"][k]) == 0.0


def _rosen(x: torch.Tensor, a: float) -> torch.Tensor:
    return (a * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def test_chain_lbfgs_takes_each_images_own_steps():
    """Each image's iterates are LBFGS's on it alone (float order apart): steps taken back where
    its loss rose, pairs past the history dropped, a zero gradient's pairs rejected, and an
    image masked out after its own budget stays where it stopped."""
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 6, generator=gen) * 2 - 1
    a = [100.0, 30.0, 5.0, 0.0]
    budget = [12, 12, 5, 12]
    x = x0.clone().requires_grad_(True)
    opt = ChainLBFGS(x, history_size=3, backtrack=8)

    def f(v: torch.Tensor, k: int) -> torch.Tensor:
        return _rosen(v, a[k]) if a[k] else v.sum() * 0 + 1.0  # (the fourth: flat, a zero gradient)

    def closure() -> torch.Tensor:
        x.grad = None
        loss = torch.stack([f(x[k], k) for k in range(4)])
        loss.sum().backward()
        return loss.detach()

    trail = []
    for i in range(12):
        opt.step(closure, np.array([i < b for b in budget]))
        trail.append(x.detach().clone())
    singles = 0
    for k in range(4):
        v = x0[k].clone().requires_grad_(True)
        one = LBFGS([v], history_size=3, backtrack=8)

        def c() -> torch.Tensor:
            one.zero_grad()
            loss = f(v, k)
            loss.backward()
            return loss

        for i in range(budget[k]):
            one.step(c)
            # (Rosenbrock's valley amplifies float order by ~10x an iteration: compared early)
            if i < 6:
                assert torch.allclose(trail[i][k], v.detach(), rtol=1e-4, atol=1e-5), (k, i)
        singles += one.backtracks
        if budget[k] < 12:
            assert torch.equal(trail[-1][k], trail[budget[k] - 1][k])  # (masked: it did not move)
    assert opt.backtracks == singles > 0
    assert torch.equal(x[3].detach(), x0[3])


def _members(n: int, cfg: Config | None = None) -> list[Stylizer]:
    base = new_stylizer(cfg or tiny_config(), extractor=tiny_extractor())
    out = [base.sibling(Stylizer) for _ in range(n)]
    for m, s in zip(out, (stripes(64, 64), pattern(64, 64, seed=3), stripes(40, 56))):
        m.set_styles([s])
    return out


def test_a_batch_of_later_frames_equals_each_frame_alone():
    """Warm-started frames with their own styles, strength, temporal terms, budgets and stop
    losses, optimised as one batch: each ends where it would alone."""
    m = _members(3)
    m[1].set_strength(2.0)
    c = [pattern(48, 64, shift=5 * i, seed=i) for i in range(3)]
    t = TemporalTerm(pattern(48, 64, shift=2).astype(np.float32) / 255, np.full((48, 64), 0.7, np.float32), 5.0)
    alone0 = C.Request(m[0], c[0], c[1], 15, pyramid=False).alone()
    reqs = [C.Request(m[0], c[0], c[1], 15, [t], pyramid=False),
            C.Request(m[1], c[1], c[2], 10, pyramid=False),
            # (a stop loss it reaches: it stops early, on the image it had then)
            C.Request(m[2], c[2], c[0], 15, [t, t], pyramid=False, stop_loss=alone0.loss * 1.5)]
    got = C.stylize_together(reqs)
    iterations = set()
    for r, g in zip(reqs, got):
        a = r.alone()
        assert not isinstance(g, BaseException)
        assert g.iterations == a.iterations and sorted(g.losses) == sorted(a.losses)
        assert g.loss == pytest.approx(a.loss, rel=1e-4)
        assert np.abs(g.image - a.image).max() < 1 / 255  # (under one grey level)
        iterations.add(g.iterations)
    assert len(iterations) == 3  # (three budgets: one stopped early)


def test_fresh_frames_batch_their_levels_and_a_lone_request_runs_alone():
    """First frames (coarse-to-fine levels) batch level by level; a request of other levels
    runs apart; each one's losses follow its run alone."""
    cfg = tiny_config(**{"optim.pyramid_levels": 2})
    m = _members(3, cfg)
    seen: list[list[float]] = [[], [], []]
    reqs = [C.Request(m[0], pattern(96, 128, seed=1), "content", 6, callback=lambda s: seen[0].append(s.loss)),
            C.Request(m[1], pattern(96, 128, seed=2), "content", 6, callback=lambda s: seen[1].append(s.loss)),
            C.Request(m[2], pattern(40, 40, seed=2), "content", 6, callback=lambda s: seen[2].append(s.loss))]
    got = C.stylize_together(reqs)
    for k, (r, g) in enumerate(zip(reqs, got)):
        lone: list[float] = []
        a = dataclasses.replace(r, callback=lambda s: lone.append(s.loss)).alone()
        assert not isinstance(g, BaseException) and g.iterations == a.iterations == (12 if k < 2 else 6)
        assert seen[k][:1] == pytest.approx(lone[:1], rel=1e-4)  # (the first evaluation: one pass's float order)
        assert seen[k] == pytest.approx(lone, rel=1e-2)  # (then L-BFGS carries it on: within 1%)


def _chained(tmp_path: Path, k: int, cfg: Config, src: Path,
             tiny: bool = True) -> tuple[Chains, dict[int, list[tuple[int, float]]]]:
    """A chained render's Chains (on the tiny network, else the spec's), and each member's
    results in order (iterations, loss)."""
    log: dict[int, list[tuple[int, float]]] = {}
    real = C.Member.stylize

    def stylize(self: C.Member, *a: object, **kw: object) -> object:
        r = real(self, *a, **kw)  # type: ignore[arg-type]
        log.setdefault(id(self), []).append((r.iterations, r.loss))
        return r

    C.Member.stylize = stylize  # type: ignore[method-assign]
    try:
        ch = Chains(src, tmp_path / f"k{k}.mp4", render_spec(cfg), k, Reporter(), restart=True, overwrite=True,
                    stylizer=new_stylizer(cfg, extractor=tiny_extractor()) if tiny else None)
        ch.run()
    finally:
        C.Member.stylize = real  # type: ignore[method-assign]
    return ch, log


def _alone(tmp_path: Path, cfg: Config, src: Path, first: int, end: int, total: int,
           name: str) -> tuple[WorkDir, list[tuple[int, float]]]:
    log: list[tuple[int, float]] = []
    st = new_stylizer(cfg, extractor=tiny_extractor())
    real = st.stylize

    def stylize(*a: object, **kw: object) -> object:
        r = real(*a, **kw)  # type: ignore[arg-type]
        log.append((r.iterations, r.loss))
        return r

    st.stylize = stylize  # type: ignore[method-assign]
    w = WorkDir(tmp_path / f"{name}.mp4", {})
    w.open(restart=True)
    stylize_segment(src, render_spec(cfg), w, first, end, Reporter(), st, total=total)
    return w, log


def assert_same_chain(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """The same frames as far as float order lets a chain be (module docstring): the same
    picture, within a few grey levels on average."""
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert float(np.abs(a.astype(int) - b.astype(int)).mean()) <= 8.0


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Config]:
    tmp = tmp_path_factory.mktemp("chains")
    src = make_clip(tmp / "c.mp4", frames=19, shift_per_frame=1, cut_at=11, audio=())
    style = tmp / "s.png"
    write_image(style, stripes(48, 48))
    cfg = tiny_config(**{"style.images": [str(style)], "render.overlap": 3, "optim.stop_loss_ratio": 1.05,
                         "encode.crf": 0, "encode.preset": "ultrafast"})
    return src, cfg


@pytest.mark.parametrize("k", [1, 2, 3])
def test_each_chain_is_the_single_chain_render_of_its_segment(tmp_path, cut_clip, k):
    """K chains of unequal lengths (one across a scene cut, later frames stopping early at
    different iterations) in one batch: each chain's frames, iterations and losses are those of
    its segment rendered alone."""
    src, cfg = cut_clip
    ch, log = _chained(tmp_path, k, cfg, src)
    segs = ch.pr.segs
    assert len(segs) == k and len({s.end - s.first for s in segs}) == k  # (unequal lengths)
    assert ch.lockstep is not None and max(ch.lockstep.sizes) == k
    for s in segs:
        w, want = _alone(tmp_path, cfg, src, s.first, s.end, ch.pr.span_frames, f"alone{s.index}")
        got = log[id(ch.members[s.index])]
        assert len(got) == len(want)
        fresh = [j for j, (i, _) in enumerate(want) if i == 8]  # (the first frame and the cut start fresh)
        assert fresh == [j for j, (i, _) in enumerate(got) if i == 8]
        assert [x for _, x in got] == pytest.approx([x for _, x in want], rel=5e-2)
        store = ch.pr.work.segment(s.index)
        assert_same_chain([store.load(i) for i in range(s.first, s.end)], [w.load(i) for i in range(s.first, s.end)])
    everything = [i for v in log.values() for i, _ in v]
    assert 8 in everything[1:] and 1 in everything and 3 in everything  # (a cut, early stops, full budgets)
    ch.pr.mux()
    assert (tmp_path / f"k{k}.mp4").exists()


def test_an_interrupted_chained_render_resumes_each_chain_where_it_stopped(tmp_path, cut_clip, monkeypatch):
    """Ctrl-C in the middle of a batch: each chain's finished frames are kept, and the render
    run again goes on from each chain's own last frame."""
    src, cfg = cut_clip
    spec = render_spec(cfg)
    out = tmp_path / "o.mp4"
    real = C.stylize_together
    batches = []

    def together(*a: object, **kw: object) -> object:
        batches.append(1)
        if len(batches) == 6:
            os.kill(os.getpid(), signal.SIGINT)  # (Ctrl-C, during the sixth batch)
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(C, "stylize_together", together)
    ch = Chains(src, out, spec, 2, Reporter(), restart=True, overwrite=True,
                stylizer=new_stylizer(cfg, extractor=tiny_extractor()))
    with pytest.raises(RenderInterrupted, match="run the same command again to resume"):
        ch.run()
    # (each chain's finished frames from its first on: what a resume keeps)
    kept = {(s.index, i): ch.pr.work.segment(s.index).load(i)
            for s in ch.pr.segs for i in range(s.first, s.first + ch.pr.work.segment(s.index).count(s.first))}
    assert 0 < len(kept) < sum(s.end - s.first for s in ch.pr.segs)
    monkeypatch.setattr(C, "stylize_together", real)
    again = Chains(src, out, spec, 2, Reporter(), restart=False, overwrite=True,
                   stylizer=new_stylizer(cfg, extractor=tiny_extractor()))
    assert again.pr.kept == len(kept)
    again.run()
    whole, _ = _chained(tmp_path, 2, cfg, src)
    for s in again.pr.segs:
        store = again.pr.work.segment(s.index)
        for i in range(s.first, s.end):
            if (s.index, i) in kept:
                assert np.array_equal(store.load(i), kept[s.index, i])  # (not rendered again)
        assert_same_chain([store.load(i) for i in range(s.first, s.end)],
                          [whole.pr.work.segment(s.index).load(i) for i in range(s.first, s.end)])
    again.pr.mux()
    assert out.exists()


@pytest.mark.parametrize("values, words", [
    ({"render.chains": "0"}, "from 1 to 64"),
    ({"render.chains": "many"}, "from 1 to 64"),
    ({"render.chains": "2", "temporal.loop": 8}, "loop"),
])
def test_chains_refuse_what_they_cannot_do(values, words):
    with pytest.raises(ConfigError, match=words):
        apply(Config(), values)


def test_a_ray_task_renders_its_segments_as_chains(tmp_path, cut_clip):
    """--workers 2 --chains 2: four segments, each task's two in lockstep (the task's body, run
    here without Ray): each segment's frames are its chain's in a --chains 4 render."""
    from videostyle.render.parallel import ParallelRender, _segment_task

    src, cfg = cut_clip
    both = apply(cfg, {"render.workers": 2, "render.chains": "2"})
    pr = ParallelRender(src, tmp_path / "o.mp4", render_spec(both))
    assert len(pr.segs) == 4 and pr.per_task == 2
    for group in (pr.segs[:2], pr.segs[2:]):
        _segment_task(str(src), pr.spec, str(pr.work.path), [(s.index, s.start, s.end, s.warmup) for s in group],
                      0, pr.span_frames)
    ch, _ = _chained(tmp_path, 4, cfg, src, tiny=False)  # (the task builds the spec's network)
    assert ch.pr.segs == pr.segs
    for s in pr.segs:
        assert_same_chain([pr.work.segment(s.index).load(i) for i in range(s.first, s.end)],
                          [ch.pr.work.segment(s.index).load(i) for i in range(s.first, s.end)])
    pr.mux()
    assert (tmp_path / "o.mp4").exists()


def test_chains_need_an_engine_that_optimises(tmp_path):
    from videostyle.factory import chains_for

    spec = render_spec(apply(Config(), {"render.chains": "3", "fast.method": "fast"}))
    with pytest.raises(ConfigError, match="needs an engine that optimises"):
        chains_for(spec, tmp_path / "clip.mp4")
    assert chains_for(render_spec(apply(Config(), {"render.device": "cpu"})), tmp_path / "clip.mp4")[0] == 1


def test_auto_chains_weigh_the_batch_against_the_frames_it_adds():
    """A CPU (a batch costs what its images cost alone) keeps one chain; a GPU that a frame
    leaves idle takes the largest batch that pays for its fresh starts and seams, within memory."""
    cpu = {1: 0.10, 2: 0.099, 4: 0.10, 8: 0.101}
    gpu = {1: 0.010, 2: 0.0052, 4: 0.0027, 8: 0.0024}
    assert choose(cpu, 400, 300, 20, 12) == 1
    assert choose(gpu, 400, 300, 20, 12) == 4  # (8: little cheaper per image, more fresh starts)
    assert choose(gpu, 400, 300, 20, 12, fits=lambda k: k <= 2) == 2
    assert choose(gpu, 3, 300, 20, 12) == 1  # (a few frames: the seams cost more than the batch saves)


def test_the_measure_is_taken_once_and_kept(tmp_path, monkeypatch):
    st = new_stylizer(tiny_config(), extractor=tiny_extractor())
    calls = []
    import videostyle.gatys.throughput as T

    real = T.per_image
    monkeypatch.setattr(T, "per_image", lambda s, hw, k, seconds=0.5: calls.append(k) or real(s, hw, k, 0.01))
    first = measured(st, (32, 48), tmp_path / "chains.json")
    assert sorted(first) == [1, 2, 4, 8] and all(v > 0 for v in first.values())
    assert measured(st, (32, 48), tmp_path / "chains.json") == first and calls == [1, 2, 4, 8]


def test_the_measure_runs_on_the_renders_threads_and_is_kept_per_thread_count(tmp_path, monkeypatch):
    """A batch's gain on a CPU depends on how many threads share it: the measure runs the network
    on the threads the render has (torch.utils.benchmark's Timer alone would run it on one), and
    a process with other threads measures again."""
    import videostyle.gatys.throughput as T

    st = new_stylizer(tiny_config(), extractor=tiny_extractor())
    seen: list[int] = []
    features = st._features
    monkeypatch.setattr(st, "_features", lambda x, layers: seen.append(torch.get_num_threads()) or features(x, layers))
    monkeypatch.setattr(T, "SIZES", (1, 2))
    kept = torch.get_num_threads()
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            seen.clear()
            got = T.measured(st, (32, 48), tmp_path / "chains.json")
            assert sorted(got) == [1, 2] and set(seen) == {threads}, seen
    finally:
        torch.set_num_threads(kept)
    assert len(json.loads((tmp_path / "chains.json").read_text())) == 2


def test_a_batch_files_videos_with_the_same_settings_share_one_batch(tmp_path, monkeypatch):
    """Two clips with the same settings and --chains 2: one chain each, both in every batch; a
    third job whose input is broken fails alone; each output is its clip rendered on its own
    (on the tiny network, as the other chains here: see the module's docstring)."""
    import av

    import videostyle as vs

    make_clip(tmp_path / "a.mp4", frames=9, shift_per_frame=1, audio=())
    make_clip(tmp_path / "b.mp4", frames=7, shift_per_frame=3, audio=("aac",))
    (tmp_path / "c.mp4").write_bytes(b"\x00" * 4096)
    write_image(tmp_path / "s.png", stripes(48, 48))
    (tmp_path / "jobs.yaml").write_text(
        "defaults:\n  model: random\n  size: 64\n  iterations: 8\n  iterations_later: 3\n  device: cpu\n"
        "  precision: fp32\n  crf: 0\n  preset: ultrafast\n  chains: 2\n"
        "jobs:\n  - inputs: [a.mp4, b.mp4, c.mp4]\n    styles: [s.png]\n    output: out/{input_stem}.mp4\n")
    plan = vs.plan_batch(tmp_path / "jobs.yaml")
    sizes: list[int] = []
    real = C.stylize_together
    monkeypatch.setattr(C, "stylize_together", lambda reqs, *a: sizes.append(len(reqs)) or real(reqs, *a))
    cfg = plan.renders[0].cfg
    monkeypatch.setattr(render_lockstep, "new_stylizer", lambda spec: new_stylizer(cfg, extractor=tiny_extractor()))
    outcomes = vs.run_batch(plan)
    assert [o.status for o in outcomes] == ["ok", "ok", "failed"] and "c.mp4" in outcomes[2].error
    assert max(sizes) == 2
    monkeypatch.setattr(C, "stylize_together", real)

    def frames(p: Path) -> list[np.ndarray]:
        with av.open(str(p)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]

    for name in ("a", "b"):
        alone = Chains(tmp_path / f"{name}.mp4", tmp_path / f"{name}-alone.mp4", render_spec(cfg), 1, Reporter(),
                       restart=True, overwrite=True, stylizer=new_stylizer(cfg, extractor=tiny_extractor()))
        alone.run()
        alone.pr.mux()
        got, want = frames(tmp_path / "out" / f"{name}.mp4"), frames(tmp_path / f"{name}-alone.mp4")
        assert len(got) == len(want)
        assert_same_chain(got, want)
