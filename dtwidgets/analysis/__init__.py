"""Layer 2: analyses of a Decision Transformer through a :class:`~dtwidgets.adapters.ModelAdapter`.

Pure functions: adapter + window (torch/numpy) in, small dataclasses of numpy arrays and labels out.
No widgets. Every function works for any layer/head count and token layout, under TransformerLens
3.x (``HookedTransformer``) and 4.x (``TransformerBridge``).

===============================  ==========================================================
``preference_direction``         ``W_a - W_b`` from the action head (optionally ``ln_final.w`` folded)
                                 -> :class:`PreferenceDirection`
``logit_attribution``            exact direct logit attribution (embeddings, heads per source
                                 token, b_O, MLPs / neurons, biases) -> :class:`LogitAttribution`
``logit_lens``                   accumulated residual along the direction -> :class:`LogitLens`
``ablate``                       zero / mean ablation of heads, MLPs, neurons -> :class:`AblationResult`
``single_component_ablations``   every head and MLP ablated alone, one batched forward
``mean_activations``             reference means for mean ablation
``attention_patterns``           ``[L*H, P, P]`` -> :class:`AttentionPatterns`
``qk_map`` / ``ov_map``          one head's QK / OV circuit over the observation -> :class:`CircuitMap`
``state_embedding_projection``   ``dir · W_state`` as ``[C, W, H]`` maps + histogram
``rtg_embedding_projection``     RTG embedding · direction over an RTG grid
``time_embedding_projection``    time embedding · direction over timesteps
``rtg_scan``                     batched RTG scan -> :class:`RTGScan`
``activation_patching``          batched clean/corrupted patching sweeps -> :class:`PatchingResult`
``analyze_state``                all of the per-state analyses in one batched forward
``reference_numbers``            the reference post's numbers for a Dynamic-Obstacles DT
===============================  ==========================================================
"""
from .ablation import AblationResult, SingleAblations, ablate, ablation_hooks, mean_activations, single_component_ablations
from .attention import AttentionPatterns, attention_patterns
from .attribution import (LogitAttribution, LogitLens, attribution_hooks, component_stack, direct_contributions,
                          logit_attribution, logit_lens)
from .bundle import StateAnalysis, analyze_state
from . import extras
from .directions import PreferenceDirection, preference_direction
from .circuits import CircuitMap, ov_map, qk_map
from .embeddings import (RTGEmbeddingProjection, StateEmbeddingProjection, TimeEmbeddingProjection,
                         rtg_embedding_projection, state_embedding_projection, time_embedding_projection)
from .patching import PatchingResult, activation_patching, patched_logits
from .reference import ReferenceNumbers, ScenarioNumbers, reference_numbers
from .rtg_scan import RTGScan, default_rtgs, rtg_scan

__all__ = [
    "AblationResult", "SingleAblations", "ablate", "ablation_hooks", "mean_activations", "single_component_ablations",
    "AttentionPatterns", "attention_patterns",
    "LogitAttribution", "LogitLens", "attribution_hooks", "component_stack", "direct_contributions",
    "logit_attribution", "logit_lens", "preference_direction", "PreferenceDirection",
    "StateAnalysis", "analyze_state", "extras",
    "CircuitMap", "ov_map", "qk_map",
    "RTGEmbeddingProjection", "StateEmbeddingProjection", "TimeEmbeddingProjection",
    "rtg_embedding_projection", "state_embedding_projection", "time_embedding_projection",
    "PatchingResult", "activation_patching", "patched_logits",
    "ReferenceNumbers", "ScenarioNumbers", "reference_numbers",
    "RTGScan", "default_rtgs", "rtg_scan",
]

# ---- circuits II (policy maps, steering, path patching, weight-level and neuron views) ----
from .neurons import NeuronView, top_neurons  # noqa: E402
from .path_patching import PathPatching, path_patching  # noqa: E402
from .policy_map import Placements, PolicyMap, agent_placements, policy_map, rtg_policy_maps  # noqa: E402
from .steering import SteeringScan, patch_hooks, steering_direction, steering_hooks, steering_scan  # noqa: E402
from .weights import (CompositionScores, HeadSVD, VirtualWeights, composition_scores, head_svd,  # noqa: E402
                      virtual_weights)

__all__ += [
    "PolicyMap", "Placements", "agent_placements", "policy_map", "rtg_policy_maps",
    "SteeringScan", "patch_hooks", "steering_direction", "steering_hooks", "steering_scan",
    "PathPatching", "path_patching",
    "CompositionScores", "HeadSVD", "VirtualWeights", "composition_scores", "head_svd", "virtual_weights",
    "NeuronView", "top_neurons",
]

# ---- behaviour under intervention (a model with hooks built in: ablated, steered, patched) ----
from .ablation import component_ablation_hooks  # noqa: E402
from .intervention import IntervenedAdapter, ablated, as_intervention, intervened, patched, steered  # noqa: E402

__all__ += ["component_ablation_hooks", "IntervenedAdapter", "ablated", "as_intervention", "intervened", "patched",
            "steered"]

# ---- spaces and weights (PCA, parameter statistics, neuron congruence, residual projections, saved
# directions, NMF); see docs/spaces.md ----
from .congruence import NeuronCongruence, neuron_congruence  # noqa: E402
from .nmf import NMFResult, activation_nmf, nmf_browser_data  # noqa: E402
from .parameters import ParameterStats, parameter_stats  # noqa: E402
from .projection import ResidualProjection, residual_projection  # noqa: E402
from .saved_directions import DirectionStore, SavedDirection  # noqa: E402
from .spaces import PCAResult, activation_pca, embedding_pca, pca  # noqa: E402

__all__ += ["NeuronCongruence", "neuron_congruence", "NMFResult", "activation_nmf", "nmf_browser_data",
            "ParameterStats", "parameter_stats", "ResidualProjection", "residual_projection",
            "DirectionStore", "SavedDirection", "PCAResult", "activation_pca", "embedding_pca", "pca"]

# ---- activation-patching scans beyond layer × position (logit-difference recovery); docs/patching_scans.md ----
from .patching_scans import (PatchScan, head_input_position_scan, head_input_scan, head_position_scan,  # noqa: E402
                             head_scan, layer_block_scan, neuron_scan, token_blocks)

__all__ += ["PatchScan", "head_input_position_scan", "head_input_scan", "head_position_scan", "head_scan",
            "layer_block_scan", "neuron_scan", "token_blocks"]

# ---- automatic circuit discovery (edge attribution patching, ACDC, faithfulness / minimality) ----
from .circuit_discovery import (Circuit, EdgeScores, circuit_diagram, discover_circuit, edge_attribution,  # noqa: E402
                                exact_edge_effects)

__all__ += ["Circuit", "EdgeScores", "circuit_diagram", "discover_circuit", "edge_attribution", "exact_edge_effects"]
