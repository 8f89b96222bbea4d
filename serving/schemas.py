"""Request and response models of the inference API; a listing is the core schema's ``Listing``."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlops_cli.schema import Listing

__all__ = ["Listing", "LoadModelRequest", "LoadModelResponse", "ModelInfo", "ModelRef", "Prediction"]


class ModelRef(BaseModel):
    name: str
    version: int
    alias: str | None


class Contribution(BaseModel):
    feature: str
    value: str | float | None = Field(description="the listing's value (or the derived one, e.g. latitude)")
    contribution: float = Field(description="in the explanation's scale (log price or price)")
    effect: float = Field(description="in dollars: how much lower the price would be without this term")


class Explanation(BaseModel):
    scale: str = Field(description="'log': base + contributions = log(price); 'price': they add up to the price")
    base: float
    base_price: float = Field(description="the base as a price (the average listing's)")
    contributions: list[Contribution] = Field(description="every feature, largest |contribution| first")


class Prediction(BaseModel):
    predictions: list[float] = Field(description="predicted prices, in the order of the listings")
    intervals: list[list[float]] | None = Field(
        None,
        description="per listing [low, high]: the price range calibrated to hold interval_level of listings "
        "like the validation rows (split conformal); null when the model carries none",
    )
    interval_level: float | None = Field(
        None, description="the share of listings like the validation rows whose price falls in its range (e.g. 0.8)"
    )
    unseen: list[list[str]] = Field(
        description="per listing, the text fields whose value the model never saw in training (answered "
        "from the pooled unknown category: check the spelling, e.g. 'Texas' not 'TX')"
    )
    missing: list[list[str]] = Field(
        description="per listing, the fields it did not give: priced from what it has (imputed)"
    )
    explanations: list[Explanation] | None = Field(
        None, description="with ?explain=true: per listing, the exact contributions that add up to its price"
    )
    model: ModelRef


class ModelInfo(BaseModel):
    name: str
    version: int
    alias: str | None
    run_id: str | None
    metrics: dict[str, float | None]
    loaded_at: str
    path: str = Field(
        description="'fast' (folded lookups + dot product), 'trees' (compiled trees) or 'pyfunc' (MLflow pyfunc)"
    )
    fallback_reason: str | None = None
    interval: dict[str, Any] | None = Field(None, description="the calibrated price range: level, scale, half_width")
    explain: bool = Field(False, description="whether ?explain=true gives exact contributions")
    explain_reason: str | None = None


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
