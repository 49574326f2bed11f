"""Saving and loading SAEs as SAELens 6 does: a folder with ``cfg.json`` and ``sae_weights.safetensors``.

Weights: ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``, ``b_dec [d_in]``
(+ ``threshold [d_sae]`` for JumpReLU), float32. ``cfg.json`` is SAELens 6's ``SAEConfig.to_dict()``
layout: ``architecture``, ``d_in``, ``d_sae``, ``dtype``, ``device``, ``apply_b_dec_to_input``,
``normalize_activations``, ``reshape_activations``, ``k`` / ``rescale_acts_by_decoder_norm`` for TopK,
and ``metadata`` (``sae_lens_version``, which tells SAELens the layout is 6.x, ``hook_name``,
``hook_head_index``, ``model_name``), plus a ``dtwidgets`` section (token kind, training notes) that
SAELens ignores.

Loading reads JSON and safetensors only and follows SAELens 6's own loader
(``SAE.load_from_disk``): a file without ``metadata.sae_lens_version`` >= 6 is read as a pre-6 file
(flat ``hook_name``, ``activation_fn_str`` / ``activation_fn_kwargs`` for TopK...). Every key that
changes the computation is either applied exactly as SAELens applies it or refused with an error
naming the file, the key, what was expected and what came; sizes and tensor shapes are checked
before anything is allocated. See ``docs/sae.md`` ("Files") for the table of keys.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .model import ARCHITECTURES, TOKENS, SAEConfig, SparseAutoencoder, check_size

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
# The SAELens release whose cfg layout save_sae writes (SAELens reads files without it as pre-6).
SAE_LENS_LAYOUT_VERSION = "6.0.0"
MAX_CFG_BYTES = 16 << 20
FLOAT32_NAMES = ("float32", "torch.float32")
# Keys SAELens' pre-6 conversion moves into metadata (sae_lens.loading.pretrained_sae_loaders.LLM_METADATA_KEYS).
PRE6_METADATA_KEYS = ("model_name", "hook_name", "hook_head_index", "model_class_name", "model_from_pretrained_kwargs",
                      "prepend_bos", "exclude_special_tokens", "neuronpedia_id", "context_size", "seqpos_slice",
                      "dataset_path", "sae_lens_version", "sae_lens_training_version", "hook_name_out",
                      "hook_head_index_out", "hf_hook_name", "hf_hook_name_out")


class SAEFileError(ValueError):
    """An SAE folder could not be read (missing files, wrong keys, shapes or values)."""


def save_sae(sae: SparseAutoencoder, folder) -> Path:
    """Write ``folder/cfg.json`` (SAELens 6 layout) and ``folder/sae_weights.safetensors``; returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c = sae.cfg
    cfg: dict = {"d_in": c.d_in, "d_sae": c.d_sae, "dtype": "float32", "device": "cpu",
                 "apply_b_dec_to_input": c.apply_b_dec_to_input, "normalize_activations": "none",
                 "reshape_activations": "hook_z" if c.hook_name.endswith("attn.hook_z") else "none"}
    if c.architecture == "topk":
        cfg.update(k=c.k, rescale_acts_by_decoder_norm=False)
    cfg["metadata"] = {"sae_lens_version": SAE_LENS_LAYOUT_VERSION, "sae_lens_training_version": None,
                       "model_name": c.model_name, "hook_name": c.hook_name, "hook_head_index": None}
    cfg["architecture"] = c.architecture
    cfg["dtwidgets"] = {"token": c.token, "notes": c.metadata}
    tensors = {n: getattr(sae, n).detach().float().contiguous().clone() for n in sae.weight_names}
    save_file(tensors, str(folder / WEIGHTS_FILENAME), metadata={"format": "sae_lens", "library": "dtwidgets"})
    (folder / CFG_FILENAME).write_text(json.dumps(cfg, indent=1))
    return folder


def load_sae(folder, adapter=None, *, token: str | None = None) -> SparseAutoencoder:
    """Read an SAE folder (ours, or SAELens' ``standard`` / ``topk`` / ``jumprelu``, 6.x or older) as
    SAELens 6 reads it.

    Args:
        folder: the folder with ``cfg.json`` and ``sae_weights.safetensors``.
        adapter: when given, also check that the SAE's hook exists in that model with width ``d_in``.
        token: the token kind the SAE was trained on (``"state"``, ``"rtg"``, ``"action"``); needed
            when ``cfg.json`` does not say (SAELens' own files do not), refused when it disagrees.
    """
    folder = Path(folder)
    cfg_path, w_path = folder / CFG_FILENAME, folder / WEIGHTS_FILENAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise FileNotFoundError(f"expected an SAE folder with {CFG_FILENAME} and {WEIGHTS_FILENAME}, "
                                    f"{str(folder)!r} has no {p.name}")
    cfg, options = read_sae_config(cfg_path, token=token)
    tensors = _read_weights(w_path, cfg, options)
    sae = SparseAutoencoder(cfg)
    with torch.no_grad():
        for name in sae.weight_names:
            getattr(sae, name).copy_(tensors[name])
        if options["rescale_acts_by_decoder_norm"]:
            sae.normalize_decoder()  # SAELens' fold_W_dec_norm: the same encode / decode, unit decoder rows
    if adapter is not None:
        from .metrics import check_hook

        check_hook(adapter, sae)
    return sae.eval()


def read_sae_config(cfg_path, *, token: str | None = None) -> tuple[SAEConfig, dict]:
    """``(SAEConfig, options)`` from a ``cfg.json`` as SAELens 6 reads it; ``options`` holds the
    load-time keys (``rescale_acts_by_decoder_norm``, ``finetuning_scaling_factor``)."""
    path = Path(cfg_path)
    if path.stat().st_size > MAX_CFG_BYTES:
        raise SAEFileError(f"{path}: expected a cfg.json of at most {MAX_CFG_BYTES} bytes, got {path.stat().st_size}")
    try:
        raw = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise SAEFileError(f"{path}: expected JSON: {e}") from None
    if not isinstance(raw, dict):
        raise SAEFileError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    if not isinstance(raw.get("metadata", {}), dict):
        raise SAEFileError(f"{path}: key 'metadata': expected an object, got {raw['metadata']!r}")
    std = _as_v6(raw, path) if _is_v6(raw, path) else _pre6_as_v6(raw, path)
    return _config(std, raw, path, token)


def _is_v6(raw: dict, path: Path) -> bool:
    """SAELens' ``handle_config_defaulting``: 6.x layout iff ``sae_lens_version`` (top level, else in
    ``metadata``) is >= 6.0.0-rc.0."""
    v = raw.get("sae_lens_version") or raw.get("metadata", {}).get("sae_lens_version")
    if not v:
        return False
    m = re.match(r"^v?(\d+)(\.\d+)*([.-]?(rc|a|b|alpha|beta|dev|post)[.-]?\d*)*$", v) if isinstance(v, str) else None
    if m is None:
        raise SAEFileError(f"{path}: key 'sae_lens_version': expected a version like '6.0.0', got {v!r}")
    return int(m.group(1)) >= 6


def _as_v6(raw: dict, path: Path) -> dict:
    """A 6.x file: the keys as they are (SAELens ignores ones its config class lacks)."""
    if "architecture" not in raw:  # SAELens 6 needs it to pick the config class
        raise SAEFileError(f"{path}: expected key 'architecture' (one of {ARCHITECTURES}) in a SAELens 6 cfg, got none")
    return {**raw, "metadata": dict(raw.get("metadata") or {})}


def _pre6_as_v6(raw: dict, path: Path) -> dict:
    """SAELens' ``handle_pre_6_0_config``: renamed keys, defaults, TopK from ``activation_fn_kwargs``,
    and ``metadata`` rebuilt from the top-level keys (a ``metadata`` object is dropped, as SAELens
    drops it; only our own files from before 6.x-layout saving keep their ``metadata.hook_name``)."""
    renames = {"hook_point": "hook_name", "hook_point_head_index": "hook_head_index", "activation_fn_str": "activation_fn"}
    std = {renames.get(k, k): v for k, v in raw.items()}
    std.setdefault("apply_b_dec_to_input", True)
    std.setdefault("finetuning_scaling_factor", False)
    std.setdefault("architecture", "standard")
    hook = std.get("hook_name")
    std.setdefault("reshape_activations", "hook_z" if isinstance(hook, str) and "hook_z" in hook else "none")
    fn, kwargs = std.get("activation_fn", "relu"), std.get("activation_fn_kwargs", {})
    if not isinstance(kwargs, dict):
        raise SAEFileError(f"{path}: key 'activation_fn_kwargs': expected an object, got {kwargs!r}")
    if fn == "topk":
        if kwargs.get("k") is None:
            raise SAEFileError(f"{path}: key 'activation_fn_kwargs': expected 'k' for activation_fn_str 'topk', "
                               f"got {kwargs!r} (SAELens would read a ReLU SAE)")
        if "k" in raw and raw["k"] != kwargs["k"]:
            raise SAEFileError(f"{path}: key 'k': expected it to equal activation_fn_kwargs.k={kwargs['k']!r}, "
                               f"got {raw['k']!r}")
        std["architecture"], std["k"] = "topk", kwargs["k"]
    elif std["architecture"] == "topk" and kwargs.get("k") is not None:
        std["k"] = kwargs["k"]
    if isinstance(std.get("normalize_activations"), bool):
        std["normalize_activations"] = "expected_average_only_in" if std["normalize_activations"] else "none"
    if std.get("normalize_activations") is None:
        std["normalize_activations"] = "none"
    meta = {k: std[k] for k in PRE6_METADATA_KEYS if k in std}
    ours_meta = raw.get("metadata", {}) if isinstance(raw.get("dtwidgets"), dict) else {}
    if "hook_name" not in meta and isinstance(ours_meta.get("hook_name"), str):
        meta["hook_name"] = ours_meta["hook_name"]
        meta.setdefault("model_name", ours_meta.get("model_name"))
    std["metadata"] = meta
    return std


def _config(std: dict, raw: dict, path: Path, token: str | None) -> tuple[SAEConfig, dict]:
    """Check every key that changes the computation; build the SAEConfig (sizes checked, nothing allocated)."""
    def bad(key, expected, got) -> SAEFileError:
        return SAEFileError(f"{path}: key {key!r}: expected {expected}, got {got!r}")

    arch = std["architecture"]
    if arch not in ARCHITECTURES:
        raise bad("architecture", f"one of {ARCHITECTURES}", arch)
    fn = std.get("activation_fn")  # pre-6 'activation_fn_str'; SAELens 6 follows the architecture alone
    if fn is not None and (fn not in ("relu", "topk") or (fn == "topk") != (arch == "topk")):
        want = "'topk'" if arch == "topk" else "'relu' (SAELens 6 applies its architecture's own function)"
        raise bad("activation_fn_str", f"{want} for architecture {arch!r}", fn)
    ints: dict[str, int] = {}
    for key in ("d_in", "d_sae") + (("k",) if arch == "topk" else ()):
        if key not in std:
            raise SAEFileError(f"{path}: expected key {key!r} (an integer) for architecture {arch!r}, got none"
                               + (" (SAELens would default to k=100)" if key == "k" else ""))
        try:
            ints[key] = (check_size(key, std[key], hi=ints["d_sae"], hi_label=f"d_sae={ints['d_sae']}") if key == "k"
                         else check_size(key, std[key]))
        except ValueError as e:
            raise SAEFileError(f"{path}: key {key!r}: {e}") from None
    if "dtype" not in std or std["dtype"] not in FLOAT32_NAMES:
        raise bad("dtype", "'float32' (dtwidgets computes in float32)", std.get("dtype"))
    if std.get("normalize_activations", "none") != "none":
        raise bad("normalize_activations", "'none' (fold the input scaling into the weights first)",
                  std["normalize_activations"])
    options: dict[str, bool] = {}
    for key, default in (("apply_b_dec_to_input", True), ("rescale_acts_by_decoder_norm", False),
                         ("finetuning_scaling_factor", False)):
        options[key] = std.get(key, default)
        if not isinstance(options[key], bool):
            raise bad(key, "true or false", options[key])
    if arch != "topk":
        options["rescale_acts_by_decoder_norm"] = False  # not a key of SAELens' standard / jumprelu configs
    meta = std["metadata"]
    hook = meta.get("hook_name") or ""
    if not isinstance(hook, str):
        raise bad("hook_name", "a hook name string", hook)
    if meta.get("hook_head_index") is not None:
        raise bad("hook_head_index", "null (dtwidgets reads whole hooks, not one head)", meta["hook_head_index"])
    reshape = std.get("reshape_activations", "none")
    if reshape not in ("none", "hook_z") or (reshape == "hook_z" and hook and not hook.endswith("_z")):
        raise bad("reshape_activations", f"'none', or 'hook_z' for a hook_z hook (hook_name {hook!r})", reshape)
    tok = _token(raw, path, token)
    try:
        return SAEConfig(ints["d_in"], ints["d_sae"], arch, ints.get("k", 16), hook, tok,
                         str(meta.get("model_name") or ""), _notes(raw), options["apply_b_dec_to_input"]), options
    except ValueError as e:  # d_in * d_sae too large
        raise SAEFileError(f"{path}: keys 'd_in', 'd_sae': {e}") from None


def _token(raw: dict, path: Path, token: str | None) -> str:
    """The token kind: ``dtwidgets.token`` in the file, else the caller's ``token``; refused when neither
    says, when either is not a kind, or when they disagree."""
    ours = raw.get("dtwidgets")
    stated = ours.get("token") if isinstance(ours, dict) else None
    for where, t in (("key 'dtwidgets.token'", stated), ("load_sae(token=...)", token)):
        if t is not None and t not in TOKENS:
            raise SAEFileError(f"{path}: {where}: expected one of {TOKENS}, got {t!r}")
    if stated is None and token is None:
        raise SAEFileError(f"{path}: key 'dtwidgets.token': expected the token kind the SAE was trained on "
                           f"(one of {TOKENS}), got none; pass load_sae(folder, token=...)")
    if stated is not None and token is not None and stated != token:
        raise SAEFileError(f"{path}: key 'dtwidgets.token': the file says {stated!r}, load_sae(token=...) got {token!r}")
    return str(stated or token)


def _notes(raw: dict) -> dict:
    ours = raw.get("dtwidgets")
    notes = ours.get("notes") if isinstance(ours, dict) else None
    return dict(notes) if isinstance(notes, dict) else {}


def _read_weights(w_path: Path, cfg: SAEConfig, options: dict) -> dict:
    """The tensors, float32, after checking names, shapes (from the header, before reading any data),
    dtypes and finiteness; a ``scaling_factor`` is accepted only when all ones, as SAELens 6 does."""
    from safetensors import SafetensorError, safe_open

    want = {"W_enc": (cfg.d_in, cfg.d_sae), "b_enc": (cfg.d_sae,), "W_dec": (cfg.d_sae, cfg.d_in), "b_dec": (cfg.d_in,)}
    if cfg.architecture == "jumprelu":
        want["threshold"] = (cfg.d_sae,)
    optional = {"scaling_factor": (cfg.d_sae,)}
    size = f"(d_in={cfg.d_in}, d_sae={cfg.d_sae})"
    try:
        with safe_open(str(w_path), framework="pt") as f:
            keys = set(f.keys())
            extra, missing = sorted(keys - set(want) - set(optional)), sorted(set(want) - keys)
            if extra or missing:
                raise SAEFileError(f"{w_path}: expected tensors {sorted(want)} for architecture {cfg.architecture!r}, "
                                   f"got {sorted(keys)}" + (f" (unexpected: {extra})" if extra else ""))
            for name in [n for n in (*want, *optional) if n in keys]:
                shape, dt = tuple(f.get_slice(name).get_shape()), f.get_slice(name).get_dtype()
                if shape != {**want, **optional}[name]:
                    raise SAEFileError(f"{w_path}: tensor {name!r}: expected shape {({**want, **optional})[name]} "
                                       f"{size}, got {shape}")
                if dt not in ("F64", "F32", "F16", "BF16"):
                    raise SAEFileError(f"{w_path}: tensor {name!r}: expected a floating-point dtype, got {dt}")
            tensors = {name: f.get_tensor(name).float() for name in keys}
    except (SafetensorError, OSError, RuntimeError) as e:
        raise SAEFileError(f"{w_path}: expected a safetensors file: {e}") from None
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise SAEFileError(f"{w_path}: tensor {name!r}: expected finite values, got NaN or inf")
    scale = tensors.pop("scaling_factor", None)
    if scale is not None and not torch.allclose(scale, torch.ones_like(scale)):
        raise SAEFileError(f"{w_path}: tensor 'scaling_factor': expected all ones (SAELens 6 applies no finetuning "
                           f"scaling factor), got values in [{float(scale.min()):.4g}, {float(scale.max()):.4g}]")
    if options["finetuning_scaling_factor"] and scale is None:
        raise SAEFileError(f"{w_path.parent / CFG_FILENAME}: key 'finetuning_scaling_factor': expected false "
                           f"(no 'scaling_factor' tensor in {WEIGHTS_FILENAME}), got True")
    return tensors
