"""Scenarios: list them, validate an instance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.service.auth import ReadKey
from api.service.errors import ApiError, responses
from api.service.schemas import ScenarioList, ValidateRequest, ValidateResult
from scenarios import instance_class, list_scenarios, load_instance
from scenarios.errors import InvalidInputError

router = APIRouter(prefix="/scenarios", tags=["scenarios"])
Name = Annotated[str, Path(max_length=100)]


@router.get("", response_model=ScenarioList, responses=responses(401, 403))
def scenarios_list(_: ReadKey) -> dict:
    out = []
    for name in list_scenarios():
        doc = (instance_class(name).__doc__ or "").strip().splitlines()
        out.append({"name": name, "description": doc[0] if doc else ""})
    return {"scenarios": out}


@router.post("/{name}/validate", response_model=ValidateResult, responses=responses(400, 401, 403, 404, 413, 422))
def scenario_validate(name: Name, body: ValidateRequest, _: ReadKey) -> dict:
    """``valid: false`` with the error (naming the field) when the instance is rejected."""
    if name not in list_scenarios():
        raise ApiError(404, "not_found", f"unknown scenario {name!r}", "name")
    try:
        inst = load_instance(name, body.instance)
    except InvalidInputError as exc:
        return {
            "scenario": name,
            "valid": False,
            "error": {"code": "invalid_input", "message": exc.reason, "field": exc.field},
        }
    except (ValueError, TypeError, ArithmeticError) as exc:
        return {
            "scenario": name,
            "valid": False,
            "error": {"code": "invalid_input", "message": str(exc)[:500], "field": "instance"},
        }
    n = getattr(inst, "n_arms", None)
    return {"scenario": name, "valid": True, "n_arms": n if isinstance(n, int) else None}
