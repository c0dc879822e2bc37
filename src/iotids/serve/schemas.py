"""Request and response schemas of the HTTP service, built from the model's feature columns.

A flow is a JSON object with one number per feature the model reads (canonical names, see
:mod:`iotids.schema`), finite and within the float32 range; an optional ``id`` is echoed back. Other keys are
ignored, so a whole CICFlowMeter record converted to canonical names can be sent as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from iotids.schema import FEATURES_BY_NAME, META_COLUMNS
from iotids.stream.records import FLOAT32_MAX

FlowId = str | int | None


def _number(name: str) -> Any:
    feature = FEATURES_BY_NAME.get(name)
    unit = f" ({feature.unit})" if feature is not None and feature.unit else ""
    spelling = (feature.cicids2017 or feature.engelen2021) if feature is not None else META_COLUMNS[name][0]
    return (Annotated[float, Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX,
                                   description=f"CICFlowMeter '{spelling}'{unit}")], ...)


def flow_model(columns: Sequence[str]) -> type[BaseModel]:
    """The pydantic model of one flow: every column required, a finite number."""
    fields: dict[str, Any] = {name: _number(name) for name in columns}
    fields["id"] = (FlowId, Field(None, description="any identifier of yours, echoed in the result"))
    return create_model("Flow", __config__=ConfigDict(extra="ignore"), **fields)


def request_model(flow: type[BaseModel], max_flows: int) -> type[BaseModel]:
    """The body of ``POST /v1/score``: ``{"flows": [flow, ...]}`` with 1 to ``max_flows`` flows."""
    return create_model(
        "ScoreRequest",
        flows=(Annotated[list[flow], Field(min_length=1, max_length=max_flows)], ...),  # type: ignore[valid-type]
    )


class ScoreResult(BaseModel):
    """The verdict on one flow, in the order of the request."""

    score: float = Field(description="higher = more likely an attack (a probability for the CNN-LSTM)")
    attack: bool = Field(description="score >= threshold")
    id: FlowId = Field(None, description="the flow's id, when the request gave one")


class ScoreResponse(BaseModel):
    model: str
    threshold: float
    count: int = Field(description="flows scored")
    alerts: int = Field(description="flows at or above the threshold")
    results: list[ScoreResult]


class Health(BaseModel):
    status: str
    model: str
    backend: str
    features: int
