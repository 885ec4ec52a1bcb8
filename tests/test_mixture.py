import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.mixture import InvalidMixture, Mixture, MixtureSpace
from harness.spec import RunSpec

SPACE = MixtureSpace(("COCO", "LISA", "GeoQAV", "SAT", "ScienceQA"))


def test_valid_mixture_is_an_immutable_mapping():
    m = Mixture({"A": 0.25, "B": 0.75})
    assert m["B"] == 0.75 and list(m) == ["A", "B"] and len(m) == 2
    with pytest.raises(TypeError):
        m["A"] = 0.5  # type: ignore[index]


@pytest.mark.parametrize(
    "weights, fragment",
    [
        ({"A": 0.5, "B": 0.6}, "sum to 1.1"),
        ({"A": -0.1, "B": 1.1}, "'A' is negative"),
        ({"A": math.nan, "B": 1.0}, "'A' is nan"),
        ({"A": math.inf, "B": 0.0}, "'A' is inf"),
    ],
)
def test_invalid_weights_name_the_offender(weights, fragment):
    with pytest.raises(InvalidMixture, match=fragment.replace("(", r"\(")):
        Mixture(weights)


def test_normalized_is_explicit():
    assert Mixture.normalized({"A": 1, "B": 3})["B"] == 0.75
    with pytest.raises(InvalidMixture, match="all weights are zero"):
        Mixture.normalized({"A": 0, "B": 0})


def test_space_parse_and_unknown_name_suggestion():
    m = SPACE.parse("COCO=0.5, SAT=0.5")
    assert m["LISA"] == 0.0 and list(m) == list(SPACE.datasets)
    with pytest.raises(InvalidMixture, match="unknown dataset 'LIZA'; did you mean 'LISA'"):
        SPACE.parse("LIZA=0.5,SAT=0.5")
    with pytest.raises(InvalidMixture, match="'abc' of dataset 'SAT' is not a number"):
        SPACE.parse("SAT=abc")
    with pytest.raises(InvalidMixture, match="appears twice"):
        SPACE.parse("SAT=0.5,SAT=0.5")


def test_from_vector_clips_only_roundoff():
    assert SPACE.from_vector([1 + 1e-13, -1e-13, 0, 0, 0])["LISA"] == 0.0
    with pytest.raises(InvalidMixture, match="negative"):
        SPACE.from_vector([1.1, -0.1, 0, 0, 0])
    with pytest.raises(InvalidMixture, match="3 entries"):
        SPACE.from_vector([0.5, 0.25, 0.25])


@given(st.lists(st.floats(0.01, 10), min_size=5, max_size=5), st.permutations(range(5)))
def test_identity_ignores_order_and_roundoff(raw, perm):
    m = SPACE.from_vector(np.array(raw) / sum(raw), normalize=True)
    shuffled = Mixture({SPACE.datasets[i]: m[SPACE.datasets[i]] for i in perm})
    assert shuffled == m and hash(shuffled) == hash(m)
    a = RunSpec("s@1", "p", m, 3)
    b = RunSpec("s@1", "p", shuffled, 3)
    assert a.key == b.key


def test_runspec_key_changes_with_every_field():
    m = SPACE.uniform()
    base = RunSpec("s@1", "p", m, 0)
    others = [
        RunSpec("s@2", "p", m, 0),
        RunSpec("s@1", "q", m, 0),
        RunSpec("s@1", "p", m, 1),
        RunSpec("s@1", "p", m, 0, 0.5),
        RunSpec("s@1", "p", SPACE.vertices()[0], 0),
    ]
    assert len({base.key, *(o.key for o in others)}) == 6
    assert RunSpec.from_dict(base.to_dict()).key == base.key
