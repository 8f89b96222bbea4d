"""The API's request and response models: what a client may send to /load_model, what /predict answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.schemas import LoadModelRequest, ModelInfo, Prediction


def test_a_load_names_a_version_or_an_alias_never_both() -> None:
    assert LoadModelRequest(version=3).version == 3 and LoadModelRequest(alias="challenger").alias == "challenger"
    assert LoadModelRequest() == LoadModelRequest(version=None, alias=None), "neither: the champion"
    for bad in ({"version": 3, "alias": "champion"}, {"version": 0}, {"version": 2**31}, {"alias": ""},
                {"alias": "x" * 65}, {"stage": "Production"}):  # fmt: skip
        with pytest.raises(ValidationError):
            LoadModelRequest(**bad)


def test_every_answer_field_is_documented_for_the_openapi_page() -> None:
    undocumented = [
        name for name, field in Prediction.model_fields.items() if not field.description and name != "model"
    ]
    assert undocumented == []
    assert "trees" in ModelInfo.model_fields["path"].description, "every serving path is named"
