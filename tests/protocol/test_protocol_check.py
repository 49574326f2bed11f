"""isinstance(obj, ModelAdapter / EnvAdapter) checks members without running them, so it never raises:
a property that raises (W_state of a nonlinear state encoder) still counts as present, a missing
member makes it False, and an adapter that delegates through __getattr__ is recognised."""
from __future__ import annotations

import typing

from dtwidgets.adapters import EnvAdapter, ModelAdapter
from dtwidgets.adapters.protocol import OPTIONAL_MODEL_MEMBERS


def test_members_are_the_protocols_own():
    optional = {ModelAdapter: set(OPTIONAL_MODEL_MEMBERS), EnvAdapter: set()}
    for proto in (ModelAdapter, EnvAdapter):
        assert set(proto._members) == set(typing._get_protocol_attrs(proto)) - {"_members"} - optional[proto]
    assert set(OPTIONAL_MODEL_MEMBERS) <= set(typing._get_protocol_attrs(ModelAdapter))  # documented there


def test_w_state_and_embed_state_are_optional():
    """A nonlinear encoder's adapter (no W_state, no embed_state attribute at all) is still a ModelAdapter;
    removing a required member is not."""
    from dtwidgets.demo import load_demo

    adapter = load_demo("post")[0]

    class Only:
        pass

    o = Only()
    for m in ModelAdapter._members:
        setattr(o, m, getattr(adapter, m))
    assert not hasattr(o, "W_state") and not hasattr(o, "embed_state") and isinstance(o, ModelAdapter)
    delattr(o, "embed_rtg")
    assert not isinstance(o, ModelAdapter)


def test_isinstance_never_calls_a_property():
    from dtwidgets.demo import load_demo

    adapter, env = load_demo("post")
    calls = []

    class NonlinearEncoder(type(adapter)):
        @property
        def W_state(self):
            calls.append(1)
            raise NotImplementedError("a CNN state encoder has no linear W_state")

    b = NonlinearEncoder.__new__(NonlinearEncoder)
    b.__dict__.update(adapter.__dict__)
    assert isinstance(b, ModelAdapter) and calls == []
    assert isinstance(env, EnvAdapter) and not isinstance(adapter, EnvAdapter)


def test_missing_members_and_delegation():
    from dtwidgets.demo import load_demo

    adapter = load_demo("post")[0]

    class Partial:
        backbone = layout = schema = None
        action_names = ()

    assert not isinstance(Partial(), ModelAdapter) and not isinstance(object(), ModelAdapter)

    class Delegating:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            if name.startswith("_"):
                raise AttributeError(name)
            return getattr(self._inner, name)

    assert isinstance(Delegating(adapter), ModelAdapter)

    class Broken(Delegating):
        def __getattr__(self, name):
            raise RuntimeError("boom")  # a broken __getattr__ makes members absent, never an error

    assert not isinstance(Broken(adapter), ModelAdapter)
