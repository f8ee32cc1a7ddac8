"""The lines of paperlib.train.loop that run only on CUDA, run on this CPU with the CUDA calls faked.

Issue 8: ``paperlib train --device cuda`` stopped in ``torch.cuda.set_device(torch.device('cuda'))``
(a device without an index) before the first step, and no CPU test reached that line. Here
torch.cuda's queries (``is_available``, ``device_count``, ``current_device``,
``is_bf16_supported``), ``set_device`` and torch.distributed's group start are replaced by
fakes that record their calls. The fake ``set_device`` reads its argument with torch's own index
check, so an index-less device fails here exactly as it fails on a GPU; the fake
``is_bf16_supported`` answers as the real one does on a GPU that only emulates bf16.

Covered: device selection for every spelling and its errors, ``set_device`` with an indexed
device, cuDNN benchmark, the process-group backend (nccl / gloo), DataLoader ``pin_memory`` and
worker count as ``train`` passes them, and the autocast dtype.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch.cuda._utils import _get_device_index

import paperlib.train.loop
from paperlib.checks import InputError
from paperlib.cli.main import main
from paperlib.devices import DistributedEnv, resolve_device
from paperlib.train.config import config_from
from paperlib.train.loop import train
from paperlib.train.runtime import autocast_dtype, setup_device

SINGLE = DistributedEnv(rank=0, world_size=1, local_rank=0, local_world_size=1)


def rank_of(local_rank: int, world: int = 2) -> DistributedEnv:
    """One process of a single-machine torchrun run of ``world`` processes."""
    return DistributedEnv(rank=local_rank, world_size=world, local_rank=local_rank, local_world_size=world)


class FakeCuda:
    """A machine with ``count`` GPUs, as torch.cuda and torch.distributed would describe it."""

    def __init__(self, monkeypatch, *, count: int = 2):
        self.count, self.current, self.native_bf16 = count, 0, True
        self.set_device_calls: list = []
        self.bf16_queries: list[bool] = []
        self.groups: list[str] = []
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: self.count)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: self.current)
        monkeypatch.setattr(torch.cuda, "set_device", self._set_device)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", self._is_bf16_supported)
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # restored after the test
        monkeypatch.setattr(dist, "is_initialized", lambda: False)
        monkeypatch.setattr(dist, "init_process_group", lambda backend, **kwargs: self.groups.append(backend))

    def _set_device(self, device) -> None:
        self.set_device_calls.append(device)
        _get_device_index(device)  # torch's own check: ValueError for a device without an index

    def _is_bf16_supported(self, including_emulation: bool = True) -> bool:
        # torch's default counts emulated bf16 (any CUDA GPU) as supported
        self.bf16_queries.append(including_emulation)
        return self.native_bf16 or including_emulation


@pytest.fixture
def fake_cuda(monkeypatch) -> FakeCuda:
    return FakeCuda(monkeypatch)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# ---------------------------------------------------------------- device selection


@pytest.mark.parametrize("requested, env, current, want", [
    (None, SINGLE, 0, "cuda:0"),
    (None, SINGLE, 1, "cuda:1"),          # the current device, as torch.cuda defines it
    ("cuda", SINGLE, 0, "cuda:0"),        # issue 8's spelling
    ("cuda", SINGLE, 1, "cuda:1"),
    ("cuda:1", SINGLE, 0, "cuda:1"),
    ("cuda:0", SINGLE, 1, "cuda:0"),
    ("cuda", rank_of(1), 0, "cuda:1"),    # torchrun: one GPU per local rank
    (None, rank_of(1), 0, "cuda:1"),
    ("cuda:0", rank_of(1), 1, "cuda:0"),  # an explicit index is kept
    ("cpu", SINGLE, 0, "cpu"),            # the CPU on a GPU machine, when asked for
])
def test_every_spelling_gives_an_indexed_device(fake_cuda, requested, env, current, want):
    fake_cuda.current = current
    device = resolve_device(requested, env)
    assert device == torch.device(want)  # torch.device('cuda') != torch.device('cuda:0')
    assert device.type != "cuda" or device.index is not None


@pytest.mark.parametrize("requested", ["gpu", "cuda:x", "cuda:-1", "CUDA", ""])
def test_a_bad_device_string_names_the_flag(fake_cuda, requested):
    with pytest.raises(InputError, match=r"^--device .* is not a device; use cpu, cuda or cuda:N"):
        resolve_device(requested, SINGLE)
    with pytest.raises(InputError, match=r"device \(--device\) must be a torch device string"):
        config_from("smoke", device=requested)


def test_cuda_without_cuda_is_an_input_error(no_cuda):
    assert resolve_device(None, SINGLE) == torch.device("cpu")
    assert resolve_device(None, rank_of(1)) == torch.device("cpu")
    for requested in ("cuda", "cuda:0"):
        with pytest.raises(InputError, match=f"--device {requested}: CUDA is not available"):
            resolve_device(requested, SINGLE)


def test_an_index_beyond_the_gpus_is_an_input_error(fake_cuda):
    with pytest.raises(InputError, match=r"--device cuda:2: this machine has 2 CUDA device\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2", SINGLE)
    assert resolve_device("cuda:1", SINGLE) == torch.device("cuda", 1)  # the last one is fine
    with pytest.raises(InputError, match=r"--device cuda: LOCAL_RANK 2 asks for cuda:2, but this machine has 2"):
        resolve_device("cuda", rank_of(2, world=3))


@pytest.mark.parametrize("device, message", [("gpu", "(--device) must be a torch device string"),
                                             ("cuda", "--device cuda: CUDA is not available")])
def test_the_command_prints_a_device_error_as_one_line(no_cuda, tmp_path, capsys, device, message):
    argv = ["-q", "train", "--preset", "smoke", "--data-root", str(tmp_path), "--out", str(tmp_path / "run"),
            "--device", device]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


# ---------------------------------------------------------------- the set-up train() runs


def test_the_fake_set_device_refuses_what_torch_refuses(fake_cuda):
    # Without this, the tests below could pass on a device that crashes a real GPU run.
    with pytest.raises(ValueError, match="specified index"):
        torch.cuda.set_device(torch.device("cuda"))


@pytest.mark.parametrize("requested", [None, "cuda", "cuda:1"])
def test_cuda_setup_makes_an_indexed_device_current_and_tunes_cudnn(fake_cuda, requested):
    fake_cuda.current = 1
    setup = setup_device(requested, SINGLE)
    assert fake_cuda.set_device_calls == [torch.device("cuda", 1)]
    assert torch.backends.cudnn.benchmark is True
    assert setup.device == torch.device("cuda", 1) and setup.pin_memory is True
    assert setup.backend is None and fake_cuda.groups == []  # one process: no group


def test_cpu_setup_touches_no_cuda_state(fake_cuda):
    setup = setup_device("cpu", SINGLE)
    assert fake_cuda.set_device_calls == [] and torch.backends.cudnn.benchmark is False
    assert (setup.device, setup.pin_memory, setup.workers, setup.backend) == (torch.device("cpu"), False, 0, None)


@pytest.mark.parametrize("requested, backend", [("cuda", "nccl"), (None, "nccl"), ("cpu", "gloo")])
def test_a_multi_process_run_starts_its_group_with_the_device_backend(fake_cuda, requested, backend):
    setup = setup_device(requested, rank_of(1))
    assert fake_cuda.groups == [backend] and setup.backend == backend
    on_cuda = backend == "nccl"
    assert fake_cuda.set_device_calls == ([torch.device("cuda", 1)] if on_cuda else [])
    assert setup.pin_memory is on_cuda and torch.backends.cudnn.benchmark is on_cuda


def test_a_group_started_by_the_caller_is_kept(fake_cuda, monkeypatch):
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda: "gloo")
    assert setup_device("cuda", rank_of(0)).backend == "gloo" and fake_cuda.groups == []


def test_loader_workers_on_cuda_share_the_cpus_among_local_ranks(fake_cuda, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert setup_device("cuda", SINGLE).workers == 8                  # capped at 8
    assert setup_device("cuda", rank_of(1, world=4)).workers == 4     # 16 CPUs over 4 ranks
    assert setup_device("cuda", SINGLE, num_workers=3).workers == 3   # an explicit count wins
    assert setup_device("cpu", SINGLE).workers == 0                   # the CPU's cores train


# ---------------------------------------------------------------- autocast


def test_autocast_is_bf16_on_cuda_only_where_bf16_is_native(fake_cuda):
    cuda = torch.device("cuda", 0)
    assert autocast_dtype("auto", cuda) is torch.bfloat16            # Ampere and later
    fake_cuda.native_bf16 = False                                    # e.g. V100, T4: emulated only
    assert autocast_dtype("auto", cuda) is None
    assert fake_cuda.bf16_queries == [False, False]                  # emulation never counts
    assert autocast_dtype("auto", torch.device("cpu")) is None       # CPU runs stay float32
    assert autocast_dtype("bf16", cuda) is torch.bfloat16 and autocast_dtype("off", cuda) is None


# ---------------------------------------------------------------- train() with the CUDA set-up


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from paperlib.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    synthesize(root, n=12, seed=0, split="tr", progress=False)
    return root


def test_train_runs_the_cuda_setup_and_hands_it_to_every_loader(fake_cuda, monkeypatch, data_root, tmp_path):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(6)), raising=False)
    setups = []

    def cuda_setup_on_the_cpu(requested, env, *, num_workers=None):
        setup = setup_device(requested, env, num_workers=num_workers)  # the CUDA path, faked
        setups.append(setup)
        # From here on the run is a CPU run: tensors cannot go to a fake GPU, and torch's
        # optimisers query the real CUDA runtime when told that it is available.
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        return setup._replace(device=torch.device("cpu"))

    loaders = []
    real_loader = torch.utils.data.DataLoader

    def loader_spy(*args, **kwargs):
        loaders.append(kwargs)
        return real_loader(*args, **{**kwargs, "num_workers": 0, "pin_memory": False})

    monkeypatch.setattr(paperlib.train.loop, "setup_device", cuda_setup_on_the_cpu)
    monkeypatch.setattr(torch.utils.data, "DataLoader", loader_spy)
    # 11 training images, batches of 4: an epoch is 2 steps, then the held-out image is validated.
    config = config_from("smoke", data_root=data_root, image_size=32, resize_short=36, batch_size=4,
                         val_fraction=0.1, max_steps=2, device="cuda", amp="off")
    result = train(config, tmp_path / "run", progress=False)
    assert result.step == 2 and len(result.val_iou) == 1
    assert [s.device for s in setups] == [torch.device("cuda", 0)]
    assert fake_cuda.set_device_calls == [torch.device("cuda", 0)] and torch.backends.cudnn.benchmark is True
    assert len(loaders) == 2  # the epoch's training loader and the validation loader
    assert all(kw["pin_memory"] is True and kw["num_workers"] == 6 for kw in loaders), loaders
