"""dtwidgets.load(path, device=...): the weights go to the device asked for, the adapter says where
they are (``adapter.device``), and a device this machine lacks is one clear error naming ``device``."""
from __future__ import annotations

import pytest
import torch

import dtwidgets
from dtwidgets.adapters import device_of, resolve_device
from dtwidgets.demo import demo_path, load_demo
from dtwidgets.model import DTAdapter, load_checkpoint, load_model

NO_CUDA = not torch.cuda.is_available()


def test_resolve_device_accepts_cpu_and_torch_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "", 3, 1.5, ["cpu"]])
def test_resolve_device_refuses_what_is_not_a_device(bad):
    with pytest.raises(ValueError, match=r"^device: expected .*got"):
        resolve_device(bad)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("cuda", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_cuda_without_cuda_is_one_clear_error(cuda):
    with pytest.raises(ValueError, match=r"^device: expected a device this machine has, got .*CUDA is not available"):
        resolve_device(cuda)


def test_the_error_names_the_argument_it_checks():
    with pytest.raises(ValueError, match=r"^placement: expected"):
        resolve_device("tpu", argument="placement")


def test_load_on_cpu_puts_every_weight_on_cpu_and_gives_the_same_logits():
    default, on_cpu = dtwidgets.load(demo_path("post")), dtwidgets.load(demo_path("post"), device="cpu")
    assert on_cpu.device == torch.device("cpu") == device_of(on_cpu)
    assert {p.device for p in on_cpu.model.parameters()} == {torch.device("cpu")}
    adapter, env = load_demo("post", device="cpu")
    w = adapter.make_window(env.reset(seed=1), 0.9, [0])
    torch.testing.assert_close(on_cpu.forward(w), default.forward(w), atol=0, rtol=0)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_load_with_cuda_but_no_cuda_raises_before_reading_anything(tmp_path, reference_ckpt_path):
    for path in (demo_path("post"), reference_ckpt_path, tmp_path / "missing.pt"):
        with pytest.raises(ValueError, match=r"^device: .*CUDA is not available"):
            dtwidgets.load(path, device="cuda")
    with pytest.raises(ValueError, match=r"^device: "):
        load_checkpoint(reference_ckpt_path, device="cuda")
    with pytest.raises(ValueError, match=r"^device: expected"):
        dtwidgets.load(demo_path("post"), device="gpu")


def test_reference_checkpoint_on_cpu(reference_ckpt_path):
    a = load_checkpoint(reference_ckpt_path, device="cpu")
    assert a.device == torch.device("cpu")


def test_device_of_reads_the_optional_member():
    class Bare:  # an adapter that does not say: CPU
        pass

    class Meta:
        device = torch.device("meta")

    assert device_of(Bare()) == torch.device("cpu")
    assert device_of(Meta()) == torch.device("meta")


def test_adapter_to_moves_the_model_and_reports_it():
    a = DTAdapter(load_model(demo_path("post")))
    assert a.to("cpu") is a and a.device == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^device: expected"):
        a.to("nowhere")


def test_dynamics_checks_its_device_before_loading_anything(tmp_path):
    from dtwidgets.dynamics import dynamics

    with pytest.raises(ValueError, match=r"^device: expected"):
        dynamics(tmp_path / "no-such-run", None, device="gpu")
    if NO_CUDA:
        with pytest.raises(ValueError, match=r"^device: .*CUDA is not available"):
            dynamics(tmp_path / "no-such-run", None, device="cuda")


def test_explorer_demo_places_the_demo_on_the_device_and_checks_it():
    from dtwidgets.compositions import Explorer

    with pytest.warns(UserWarning, match="needs a notebook front-end"):
        e = Explorer.demo(device="cpu", coalesce_s=0)
    assert device_of(e.adapter) == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^device: expected"):
        Explorer.demo(device="gpu")
