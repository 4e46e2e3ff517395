"""Auto selector: exact either way; enumeration when the feasible set is small enough, else the MILP."""

from __future__ import annotations

from engine.decision import Decision
from engine.sequoia.selectors.enumerate import EnumerateSelector
from engine.sequoia.selectors.mip import DEFAULT_MIP_REL_GAP, MipSelector
from engine.sequoia.state_q import StateQ


class AutoSelector:
    name = "auto"

    def __init__(
        self,
        max_enumerated: int = 20_000,
        mip_rel_gap: float = DEFAULT_MIP_REL_GAP,
        time_limit: float | None = 10.0,
    ) -> None:
        self.max_enumerated = max_enumerated
        self._enumerate = EnumerateSelector(max_actions=max_enumerated)
        self._mip = MipSelector(mip_rel_gap=mip_rel_gap, time_limit=time_limit)
        self._small: dict[int, bool] = {}

    def _is_small(self, q: StateQ) -> bool:
        key = q.model.uid
        if key not in self._small:
            try:
                q.model.enumerate(self.max_enumerated, max_seconds=0.25)  # exact either way: never wait long
                self._small = {key: True}
            except ValueError:
                self._small = {key: False}
        return self._small[key]

    def select(self, q: StateQ, time_limit: float | None = None) -> Decision:
        chosen = self._enumerate if self._is_small(q) else self._mip
        decision = chosen.select(q, time_limit)
        decision.selector = f"{self.name}:{chosen.name}"
        return decision
