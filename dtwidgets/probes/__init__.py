"""Linear probes for world-model concepts of a Decision Transformer.

===============================  ==========================================================
``concept_table``                concept values per recorded step (EnvAdapter replay)
``BUILTIN_CONCEPTS``             MiniGrid built-ins (object in front, ball ahead, ...)
``site_activations``          residual activations per (hook, token position) site
``fit_probe``                    one probe: logistic / ridge, episode folds, baseline, control
``probe_concepts``               every concept x site -> :class:`ProbeSuite`
``direction_attribution``        a direction's projection split into components
``steer``                        add ``coeff * direction`` through ``run_with_hooks``
``action_cosines`` / ``sae_cosines`` / ``cosines``   cosine with action / SAE directions
``direction_over_observation``   ``direction · W_state`` as ``[C, W, H]`` maps
===============================  ==========================================================
"""
from .activations import Activations, site_activations, default_hooks, hook_label
from .concepts import BUILTIN_CONCEPTS, Concept, ConceptTable, Step, concept_table
from .directions import (DirectionAttribution, SteeringResult, action_cosines, cosines, direction_attribution,
                         direction_over_observation, sae_cosines, steer)
from .fit import ProbeResult, ProbeUndefined, control_labels, fit_probe
from .suite import ProbeSuite, probe_concepts

__all__ = [
    "Activations", "site_activations", "default_hooks", "hook_label",
    "BUILTIN_CONCEPTS", "Concept", "ConceptTable", "Step", "concept_table",
    "DirectionAttribution", "SteeringResult", "action_cosines", "cosines", "direction_attribution",
    "direction_over_observation", "sae_cosines", "steer",
    "ProbeResult", "ProbeUndefined", "control_labels", "fit_probe", "ProbeSuite", "probe_concepts",
]
