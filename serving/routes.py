"""The inference API's routes besides /predict, and the dependencies every route shares: the
holder of the served model, the model itself (503 until one is loaded), the bearer token that
guards /load_model."""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mlops_cli.config import Settings
from mlops_cli.errors import ModelRefused, RegistryUnavailable, VersionNotFound
from serving.model_server import LoadedModel, ModelHolder
from serving.schemas import LoadModelRequest, LoadModelResponse, ModelInfo

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.

bearer = HTTPBearer(auto_error=False, description="MLOPS_API_TOKEN")


def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


Holder = Annotated[ModelHolder, Depends(get_holder)]


def serving_model(holder: ModelHolder) -> LoadedModel:
    model = holder.current
    if model is None:
        raise HTTPException(503, detail=f"no model loaded yet: {holder.last_error}")
    return model


def model_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["model"])

    def check_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        expected = settings.api_token_value()
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
            raise HTTPException(401, detail="a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    @router.get("/model", response_model=ModelInfo, responses={503: {"description": "no model loaded yet"}})
    def model_info(holder: Holder) -> dict[str, Any]:
        """The model being served: name, version, alias, run, metrics, when it was loaded, which path."""
        return serving_model(holder).info()

    @router.post(
        "/load_model",
        response_model=LoadModelResponse,
        dependencies=[Depends(check_token)],
        responses={
            400: {"description": "the body is not JSON text (e.g. not UTF-8)"},
            401: {"description": "missing or wrong token"},
            404: {"description": "no such version or alias"},
            409: {"description": "a version mlops training did not sign (or not sklearn): refused"},
            503: {"description": "MLflow unreachable; the old model keeps serving"},
        },
    )
    def load_model(holder: Holder, body: Annotated[LoadModelRequest | None, Body()] = None) -> dict[str, Any]:
        """Reload the champion alias (default) or load a given version or alias. The swap is atomic;
        a failed load keeps the old model serving and returns the error."""
        ref = None if body is None else (body.version or body.alias)
        previous = holder.current.version if holder.current else None
        try:
            loaded = holder.load(ref)
        except VersionNotFound as exc:
            raise HTTPException(404, detail=f"{exc}; still serving version {previous}") from None
        except RegistryUnavailable as exc:
            raise HTTPException(503, detail=f"{exc}; still serving version {previous}") from None
        except ModelRefused as exc:
            raise HTTPException(409, detail=f"{exc}; still serving version {previous}") from None
        except Exception as exc:
            raise HTTPException(
                502, detail=f"load failed ({type(exc).__name__}: {exc}); still serving {previous}"
            ) from None
        return {"loaded": loaded.info(), "previous_version": previous}

    return router


def health_router() -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> dict[str, str]:
        """The process answers."""
        return {"status": "alive"}

    @router.get("", responses={503: {"description": "no model loaded yet, with the reason"}})
    @router.get("/ready", responses={503: {"description": "no model loaded yet, with the reason"}})
    async def ready(holder: Holder) -> dict[str, Any]:
        """Ready once a model is loaded (and from then on, even if MLflow goes away); with
        MLOPS_API_READY_WITHOUT_CHAMPION, also while the registry has no champion at all."""
        if holder.current is None and holder.no_champion and holder.settings.api_ready_without_champion:
            return {"status": "ready", "model": None, "version": None, "detail": holder.last_error}
        model = serving_model(holder)
        return {"status": "ready", "model": model.name, "version": model.version, "path": model.kind}

    return router
