import numpy as np
import pytest

from bandits.restless import RestlessArms, from_cormab
from scenarios.cormab.capacity import CapacityInstance
from scenarios.cormab.instance import generate_arms
from scenarios.errors import InvalidInputError


def test_cormab_converter_matches_expected_reward():
    inst = CapacityInstance.generate(n_arms=6, budget=2, seed=3)
    arms = from_cormab(inst.arms)
    P, R, C, init = arms.arrays()
    assert P.shape == (6, 2, 4, 4) and np.allclose(P.sum(-1), 1)
    assert np.allclose(C, [[0, 1]] * 6)
    assert np.allclose(init[:, :2].sum(1), 1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        s = rng.integers(0, 4, 6)
        a = rng.integers(0, 2, 6)
        assert np.isclose(R[np.arange(6), s, a].sum(), inst.expected_reward(s, a))


def test_json_round_trip():
    arms = from_cormab(generate_arms(4, 1, 0))
    again = RestlessArms.parse(arms.model_dump_json())
    assert again == arms
    for a, b in zip(again.arrays(), arms.arrays(), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["transitions"][0][0][0].__setitem__(0, 2.0), "transitions"),
        (lambda d: d["costs"][0].__setitem__(1, 0.0), "costs"),
        (lambda d: d["rewards"].pop(), "rewards"),
        (lambda d: d["initial"][0].__setitem__(0, 0.5), "initial"),
    ],
)
def test_bad_input_names_the_field(change, field):
    data = from_cormab(generate_arms(2, 1, 0)).model_dump()
    change(data)
    with pytest.raises(InvalidInputError) as err:
        RestlessArms.parse(data)
    assert field in err.value.field


def test_from_arrays_defaults_and_single_action_rejected():
    P = np.full((2, 2, 3, 3), 1 / 3)
    arms = RestlessArms.from_arrays(P, np.ones((2, 3)))
    assert arms.arrays()[2].tolist() == [[0, 1], [0, 1]]
    with pytest.raises(InvalidInputError):
        RestlessArms.from_arrays(P[:, :1], np.ones((2, 3)))
