"""Load SAE folders with SAELens' own loader and compare its encode / decode with ours.

Run in a virtualenv that has ``sae-lens`` (it pins TransformerLens 3.x), not in the project's:

    .venv-saelens/bin/python tests/interop/saelens_check.py CASES_DIR

``CASES_DIR`` is written by ``tests/interop/saelens_cases.py`` in the project's environment: one
folder per case with ``sae/`` (``cfg.json`` + ``sae_weights.safetensors``), ``x.npy`` (inputs
``[N, d_in]``), ``encode.npy`` / ``decode.npy`` (what dtwidgets computes) and ``case.json`` (what
SAELens must report: architecture, k, hook name..., the tolerance, and ``n_heads`` for hook_z SAEs,
whose inputs SAELens takes as ``[N, n_heads, d_head]``). Prints one line per case; exits 1 when any
case differs. Needs only sae_lens, torch and numpy.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch


def check_case(case: Path) -> list[str]:
    """The problems of one case (empty when SAELens agrees with dtwidgets)."""
    from sae_lens import SAE

    spec = json.loads((case / "case.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sae = SAE.load_from_disk(str(case / "sae"), device="cpu")
    problems = []
    got = {"architecture": sae.cfg.architecture(), "k": getattr(sae.cfg, "k", None),
           "hook_name": sae.cfg.metadata.hook_name, "apply_b_dec_to_input": sae.cfg.apply_b_dec_to_input,
           "d_in": sae.cfg.d_in, "d_sae": sae.cfg.d_sae}
    for key, want in spec["expect"].items():
        if got[key] != want:
            problems.append(f"{key}: SAELens read {got[key]!r}, dtwidgets {want!r}")
    x = torch.from_numpy(np.load(case / "x.npy"))
    if spec.get("n_heads"):
        x = x.reshape(x.shape[0], spec["n_heads"], -1)
    with torch.no_grad():
        f = sae.encode(x)
        x_hat = sae.decode(f).reshape(x.shape[0], -1)
    for name, theirs in (("encode", f), ("decode", x_hat)):
        ours = torch.from_numpy(np.load(case / f"{name}.npy"))
        if theirs.shape != ours.shape:
            problems.append(f"{name}: SAELens shape {tuple(theirs.shape)}, dtwidgets {tuple(ours.shape)}")
            continue
        diff = float((theirs - ours).abs().max())
        if not diff <= spec["atol"]:
            problems.append(f"{name}: max |SAELens - dtwidgets| = {diff:.3g} > {spec['atol']:g}")
    if not problems:
        exact = all(torch.equal(t, torch.from_numpy(np.load(case / f"{n}.npy"))) for n, t in (("encode", f), ("decode", x_hat)))
        print(f"ok   {case.name}: {type(sae).__name__} k={got['k']} hook={got['hook_name']!r}"
              f" ({'bit-identical' if exact else 'within ' + format(spec['atol'], 'g')})")
    return problems


def main(argv: list[str]) -> int:
    import sae_lens

    root = Path(argv[1])
    cases = sorted(p for p in root.iterdir() if (p / "case.json").is_file())
    print(f"sae_lens {sae_lens.__version__}, torch {torch.__version__}: {len(cases)} cases in {root}")
    failed = 0
    for case in cases:
        try:
            problems = check_case(case)
        except Exception as e:  # a load failure is a failed case, reported with the others
            problems = [f"{type(e).__name__}: {e}"]
        for p in problems:
            print(f"FAIL {case.name}: {p}")
        failed += bool(problems)
    if not cases:
        print("FAIL no cases")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
