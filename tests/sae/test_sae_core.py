"""SAE core: recovery of known sparse directions, reproducibility, metrics, files, and refusals."""
from __future__ import annotations

import json

import pytest
import torch

from dtwidgets.sae import (SAEConfig, SAEFileError, SparseAutoencoder, check_activations, load_sae,
                           reconstruction_metrics, save_sae, train_sae)


def synthetic(n=12000, d_in=32, n_true=40, active=3, seed=0):
    """x = sum of `active` random ground-truth unit directions with magnitudes in [0.5, 1.5]."""
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(n_true, d_in, generator=g)
    D /= D.norm(dim=1, keepdim=True)
    idx = torch.stack([torch.randperm(n_true, generator=g)[:active] for _ in range(n)])
    mag = 0.5 + torch.rand(n, active, generator=g)
    codes = torch.zeros(n, n_true).scatter(1, idx, mag)
    return codes @ D, D, codes


def best_cosines(sae, D):
    W = sae.W_dec.detach()
    return (D @ (W / W.norm(dim=1, keepdim=True)).T).max(1).values


@pytest.mark.parametrize("arch,kw", [("topk", {"k": 3, "epochs": 15}),
                                     ("standard", {"l1_coefficient": 0.15, "epochs": 25})])
def test_recovers_ground_truth_directions(arch, kw):
    x, D, _ = synthetic(n=6000)
    sae, hist = train_sae(x, d_sae=64, architecture=arch, batch_size=256, lr=3e-3, seed=1, progress=False,
                          dead_after=2000, threads=1, **kw)
    cos = best_cosines(sae, D)
    assert float((cos >= 0.9).float().mean()) >= 0.8, cos.sort().values
    # unit-norm decoder rows, and the SAE explains most of the variance
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)
    m = reconstruction_metrics(sae, x)
    assert m.fvu < 0.2 and hist.mse[-1] < hist.mse[0]
    if arch == "topk":
        assert m.l0 <= 3 + 1e-6


def test_training_is_seeded_and_reproducible():
    x, _, _ = synthetic(n=3000)
    a, _ = train_sae(x, d_sae=48, k=3, epochs=3, batch_size=256, seed=7, progress=False, threads=1)
    b, _ = train_sae(x, d_sae=48, k=3, epochs=3, batch_size=256, seed=7, progress=False, threads=1)
    c, _ = train_sae(x, d_sae=48, k=3, epochs=3, batch_size=256, seed=8, progress=False, threads=1)
    for n in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(a, n), getattr(b, n))
    assert not torch.equal(a.W_dec, c.W_dec)


def test_metrics_against_plain_torch():
    x, _, _ = synthetic(n=2000)
    sae, _ = train_sae(x, d_sae=48, k=3, epochs=2, batch_size=256, progress=False)
    m = reconstruction_metrics(sae, x, batch_size=300, dense_threshold=0.05)
    with torch.no_grad():  # independent: dense encode by hand
        pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
        thr = pre.topk(3, dim=1).values[:, -1:]
        f = torch.where(pre >= thr, pre.relu(), torch.zeros_like(pre))
        x_hat = f @ sae.W_dec + sae.b_dec
    err = (x - x_hat).double().pow(2).sum()
    assert m.mse == pytest.approx(float(err) / len(x), rel=1e-4)
    assert m.fvu == pytest.approx(float(err / (x - x.mean(0)).double().pow(2).sum()), rel=1e-4)
    assert m.l0 == pytest.approx(float((f > 0).sum(1).float().mean()), rel=1e-6)
    freq = (f > 0).float().mean(0).numpy()
    assert m.dead_fraction == pytest.approx(float((freq == 0).mean()))
    assert m.dense_fraction == pytest.approx(float((freq > 0.05).mean()))


def test_nan_activations_refused():
    x, _, _ = synthetic(n=500)
    x[17, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train_sae(x, d_sae=16, k=2, epochs=1, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        check_activations(torch.tensor([[1.0, float("inf")]]))


def test_files_round_trip_bit_exact_in_saelens_layout(tmp_path):
    from safetensors.torch import load_file

    x, _, _ = synthetic(n=1000)
    sae, _ = train_sae(x, d_sae=48, k=3, epochs=1, progress=False, hook_name="blocks.0.hook_resid_post")
    folder = save_sae(sae, tmp_path / "sae")
    raw = load_file(str(folder / "sae_weights.safetensors"))
    assert {k: tuple(v.shape) for k, v in raw.items()} == {"W_enc": (32, 48), "b_enc": (48,), "W_dec": (48, 32),
                                                           "b_dec": (32,)}
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["k"] == 3 and cfg["d_in"] == 32 and cfg["d_sae"] == 48
    assert cfg["metadata"]["hook_name"] == "blocks.0.hook_resid_post"
    assert cfg["metadata"]["sae_lens_version"].startswith("6.")  # else SAELens 6 reads it as pre-6, without hook_name
    assert cfg["apply_b_dec_to_input"] is True and cfg["normalize_activations"] == "none"
    back = load_sae(folder)
    for n in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(back, n), getattr(sae, n))
    assert back.cfg.to_dict() == sae.cfg.to_dict()
    assert torch.equal(back.encode(x[:50]), sae.encode(x[:50]))


def test_bad_files_give_clear_errors(tmp_path):
    sae = SparseAutoencoder(SAEConfig(8, 16, k=2, hook_name="blocks.0.hook_resid_post"))
    folder = save_sae(sae, tmp_path / "s")
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["d_in"] = 9
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(SAEFileError, match=r"'W_enc': expected shape \(9, 16\).*got \(8, 16\)"):
        load_sae(folder)
    (folder / "cfg.json").write_text("[1, 2]")
    with pytest.raises(SAEFileError, match="JSON object"):
        load_sae(folder)
    with pytest.raises(FileNotFoundError, match="cfg.json"):
        load_sae(tmp_path / "nothing")


def test_config_validation():
    with pytest.raises(ValueError, match="architecture"):
        SAEConfig(8, 16, architecture="gated")
    with pytest.raises(ValueError, match=r"k an integer in \[1, d_sae=16\], got 17"):
        SAEConfig(8, 16, k=17)
    with pytest.raises(ValueError, match="d_in=8"):
        SparseAutoencoder(SAEConfig(8, 16, k=2)).encode(torch.zeros(3, 9))
