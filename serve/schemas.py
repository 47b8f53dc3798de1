"""Request and response shapes of the API (LibreTranslate's, plus nmt's own optional fields)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: StrictStr | list[StrictStr] = Field(description="a text, or a list of texts")
    source: StrictStr = Field(description="source language code, e.g. de, or auto to detect it")
    target: StrictStr = Field(description="target language code, e.g. en")
    format: StrictStr = Field("text", description="text, or html: the text between tags is "
                              "translated and the tags put back around the words they wrapped")
    alternatives: StrictInt = Field(0, ge=0, description="how many alternative translations")
    api_key: StrictStr | None = None
    model: StrictStr | None = Field(None, description="nmt: a model by name, else the pair's default")
    beam_size: StrictInt | None = Field(None, ge=1, description="nmt: beam size (default 4)")
    attention: StrictBool = Field(False, description="nmt: return subwords and cross-attention")
    alignment: StrictBool = Field(False, description="nmt: return word links [i, j]: word i of "
                                  "q gives word j of translatedText (split on whitespace)")


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: StrictStr | list[StrictStr] = Field(description="a text, or a list of texts")
    api_key: StrictStr | None = None


class Detection(BaseModel):
    confidence: float = Field(description="0 to 100")
    language: str


class Alignment(BaseModel):
    source_tokens: list[str]
    target_tokens: list[str]
    weights: list[list[float]]  # one row per target token, one column per source token


class TranslateResponse(BaseModel):
    translatedText: str | list[str]
    detectedLanguage: Detection | list[Detection] | None = None  # with "source": "auto"
    alternatives: list[str] | list[list[str]] | None = None
    model: str | None = None
    attention: list[Alignment] | list[list[Alignment]] | None = None
    alignment: list[list[int]] | list[list[list[int]]] | None = None


class Language(BaseModel):
    code: str
    name: str
    targets: list[str]


class ErrorResponse(BaseModel):
    error: str
