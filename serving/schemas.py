"""Request and response models of the inference API, derived from the listing schema."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mlops_cli.clean import LIMITS

Text = Annotated[str, Field(min_length=1, max_length=64)]


def _bounded(name: str, description: str) -> Any:
    low, high = LIMITS[name]
    return Field(None, ge=low, le=high, allow_inf_nan=False, description=f"{description} (missing: imputed)")


class Listing(BaseModel):
    """One listing; fields the model does not use (price, street, ...) are ignored. Text is
    normalised as at ingestion ("austin" → "Austin", 601 → "00601") by the model server,
    only when the value as sent is not one the model knows."""

    model_config = ConfigDict(
        extra="ignore",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "city": "Austin",
                    "state": "Texas",
                    "zip_code": "75003",
                    "house_size": 1800,
                    "bed": 3,
                    "bath": 2,
                    "acre_lot": 0.2,
                }
            ]
        },
    )

    city: Text
    state: Text
    zip_code: (
        Annotated[str, Field(pattern=r"^\d{3,5}(\.0+)?$", description="US zip code, e.g. 00601")]
        | Annotated[int, Field(ge=0, le=99_999)]
    )
    house_size: Annotated[
        float,
        Field(ge=LIMITS["house_size"][0], le=LIMITS["house_size"][1], allow_inf_nan=False, description="sq ft"),
    ]
    bed: Annotated[float | None, _bounded("bed", "bedrooms")] = None
    bath: Annotated[float | None, _bounded("bath", "bathrooms")] = None
    acre_lot: Annotated[float | None, _bounded("acre_lot", "lot size in acres")] = None


class ModelRef(BaseModel):
    name: str
    version: int
    alias: str | None


class Prediction(BaseModel):
    predictions: list[float] = Field(description="predicted prices, in the order of the listings")
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

    version: Annotated[int | None, Field(ge=1, description="load this version")] = None
    alias: Annotated[str | None, Field(min_length=1, max_length=64, description="load this alias")] = None


class LoadModelResponse(BaseModel):
    loaded: ModelInfo
    previous_version: int | None
