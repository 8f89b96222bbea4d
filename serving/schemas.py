"""Request and response models of the inference API; a listing is the core schema's ``Listing``."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlops_cli.schema import Listing

__all__ = ["Listing", "LoadModelRequest", "LoadModelResponse", "ModelInfo", "ModelRef", "Prediction"]


class ModelRef(BaseModel):
    name: str
    version: int
    alias: str | None


class Prediction(BaseModel):
    predictions: list[float] = Field(description="predicted prices, in the order of the listings")
    unseen: list[list[str]] = Field(
        description="per listing, the text fields whose value the model never saw in training (answered "
        "from the pooled unknown category: check the spelling, e.g. 'Texas' not 'TX')"
    )
    model: ModelRef


class ModelInfo(BaseModel):
    name: str
    version: int
    alias: str | None
    run_id: str | None
    metrics: dict[str, float | None]
    loaded_at: str
    path: str = Field(description="'fast' (folded lookups + dot product) or 'pyfunc' (MLflow pyfunc)")
    fallback_reason: str | None = None


class LoadModelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # registry versions are 32-bit integers: a larger number names no version (422, not an outage)
    version: Annotated[int | None, Field(ge=1, le=2**31 - 1, description="load this version")] = None
    alias: Annotated[str | None, Field(min_length=1, max_length=64, description="load this alias")] = None

    @model_validator(mode="after")
    def _one_reference(self) -> "LoadModelRequest":
        if self.version is not None and self.alias is not None:
            raise ValueError("give a version or an alias, not both")
        return self


class LoadModelResponse(BaseModel):
    loaded: ModelInfo
    previous_version: int | None
