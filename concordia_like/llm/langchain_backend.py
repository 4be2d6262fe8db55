"""Any LangChain chat model as a backend (an optional extra: langchain-core).

A batch goes to the model's own `abatch`, grouped by the per-request settings that have
to be bound to the model (sampling, output format), so that a step whose requests share
their settings is one `abatch` call.

Sampling and structured output depend on the kind of model:

- OpenAI-family models (langchain-openai's `ChatOpenAI` and its relatives) get the full
  sampling (temperature, top_p, max_tokens, stop, seed) bound per call, and schema or
  choices requests the same `response_format` as the `openai` backend (OpenAI's
  `json_schema` form, or llama-cpp-python's `json_object` + `schema` form, chosen as in
  `llm.response_format`). The format travels in `extra_body`, so the model answers with plain
  text the client layer parses, exactly as over the `openai` backend.
- Other chat models get `stop` bound and the other sampling settings copied onto the model
  where it declares a field of that name; a schema request whose root is an object goes
  through the model's own `with_structured_output` (tool calling or JSON mode, whatever the
  integration implements), and anything else is asked for in words.

Whatever path a request took, `structured.parse_output` validates the result.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from concordia_like.llm.backend import Backend
from concordia_like.llm.errors import BackendUnavailableError, LLMError
from concordia_like.llm.openai_compat import (
    API_KEY_ENVS,
    MODEL_ENVS,
    _env,
    estimate_tokens,
    list_first_model,
    map_finish_reason,
    probe_structured_mode,
    resolve_base_url,
)
from concordia_like.llm.response_format import ResponseFormats, StructuredMode
from concordia_like.llm.types import LLMRequest, RawCompletion

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'concordia-like[langchain]'"
_SAMPLING_FIELDS = ("temperature", "top_p", "max_tokens", "seed")


def _require_langchain() -> None:
    try:
        import langchain_core  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the langchain backend needs langchain-core, which is not installed: {INSTALL_HINT}"
        ) from exc


def _is_openai_family(chat_model: Any) -> bool:
    try:
        from langchain_openai.chat_models.base import BaseChatOpenAI
    except ImportError:
        return False
    return isinstance(chat_model, BaseChatOpenAI)


def to_langchain_messages(request: LLMRequest, instruction: str | None = None) -> list[Any]:
    """The request's messages as LangChain messages; `instruction`, if given, is appended
    to the last user message."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    messages = list(request.messages)
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    out: list[Any] = []
    for i, m in enumerate(messages):
        content = m.content
        if instruction and i == last_user:
            content = f"{content}\n\n{instruction}"
        out.append(kinds[m.role](content=content))
    if instruction and last_user is None:
        out.append(HumanMessage(content=instruction))
    return out


def instruction_for(request: LLMRequest) -> str | None:
    """Words asking for the output the request constrains, for models left unconstrained."""
    if request.choices is not None:
        options = ", ".join(json.dumps(c) for c in request.choices)
        return f"Answer with exactly one of these options and nothing else: {options}"
    if request.json_schema is not None:
        return (
            "Answer with a single JSON value and nothing else, matching this JSON schema:\n"
            + json.dumps(request.json_schema, separators=(",", ":"))
        )
    return None


def match_choice(text: str, choices: tuple[str, ...]) -> str:
    """An unconstrained answer to a choices request, mapped onto the option it names when
    it differs only in case, quotes or trailing punctuation; otherwise unchanged."""
    if text in choices:
        return text
    bare = text.strip().strip("\"'`").strip().rstrip(".!").strip().strip("\"'`")
    for c in choices:
        if bare == c:
            return c
    lowered = {c.lower(): c for c in choices}
    return lowered.get(bare.lower(), text)


def message_text(message: Any) -> str:
    """The text of an AI message, whatever shape its content has."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") in (None, "text"):
                parts.append(str(block.get("text", "")))
        return "".join(parts)
    return str(content)


def _usage(message: Any, request: LLMRequest, text: str) -> tuple[int, int]:
    usage = getattr(message, "usage_metadata", None) or {}
    prompt = usage.get("input_tokens")
    completion = usage.get("output_tokens")
    if not prompt:
        prompt = sum(estimate_tokens(m.content) for m in request.messages)
    if not completion:
        completion = estimate_tokens(text)
    return int(prompt), int(completion)


def _finish(message: Any) -> str:
    meta = getattr(message, "response_metadata", None) or {}
    reason = meta.get("finish_reason") or meta.get("stop_reason") or meta.get("done_reason")
    if reason in ("max_tokens", "length"):
        return "length"
    return map_finish_reason(reason)


class LangChainBackend(Backend):
    name = "langchain"
    max_batch = 64
    concurrent_batches = True

    def __init__(
        self,
        chat_model: Any,
        *,
        model_name: str | None = None,
        concurrency: int = 32,
        structured_output: StructuredMode = "auto",
        strict: bool = True,
        send_max_tokens: bool | None = None,
    ) -> None:
        """`chat_model`: any `BaseChatModel`. `structured_output` applies to OpenAI-family
        models (see `llm.response_format`). `send_max_tokens`: also send the legacy
        `max_tokens` in the body of OpenAI-family models (which send
        `max_completion_tokens`, a name llama-cpp-python's server ignores); default: when
        the model talks to a server other than api.openai.com."""
        _require_langchain()
        from langchain_core.language_models import BaseChatModel

        if not isinstance(chat_model, BaseChatModel):
            raise TypeError(
                f"LangChainBackend wraps a LangChain BaseChatModel, not {type(chat_model).__name__}"
            )
        self.formats = ResponseFormats(structured_output, strict=strict)
        self.chat_model = chat_model
        self.concurrency = concurrency
        self.max_batch = max(self.max_batch, concurrency)
        self.openai_family = _is_openai_family(chat_model)
        if send_max_tokens is None:
            base = getattr(chat_model, "openai_api_base", None) or ""
            send_max_tokens = self.openai_family and bool(base) and "api.openai.com" not in base
        self.send_max_tokens = send_max_tokens
        self._model_name = model_name

    @classmethod
    def from_options(
        cls,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        **opts: Any,
    ) -> LangChainBackend:
        """A `ChatOpenAI` on an OpenAI-compatible server, configured like the `openai`
        backend (same options and environment variables)."""
        _require_langchain()
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as exc:
            raise BackendUnavailableError(
                "the langchain backend built from options uses langchain-openai's "
                f"ChatOpenAI, which is not installed: {INSTALL_HINT}"
            ) from exc
        url = resolve_base_url(base_url)
        key = api_key or _env(API_KEY_ENVS)
        name = model or _env(MODEL_ENVS) or list_first_model(url, key)
        chat_model = ChatOpenAI(
            base_url=url,
            model=name,
            # local servers take no key, but the client insists on one
            api_key=key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
        )
        if opts.get("structured_output", "auto") == "auto":
            # settle the format now: the OpenAI client would retry a rejection (a 500 on
            # llama-cpp-python's server) with backoff before the fallback could happen
            opts["structured_output"] = probe_structured_mode(url, name, key)
        return cls(chat_model, model_name=name, **opts)

    @property
    def structured_output(self) -> str:
        """The structured-output mode in force (see `llm.response_format`)."""
        return self.formats.mode

    @property
    def model(self) -> str:
        if self._model_name:
            return self._model_name
        for attr in ("model_name", "model", "model_id", "deployment_name"):
            value = getattr(self.chat_model, attr, None)
            if isinstance(value, str) and value:
                return value
        return type(self.chat_model).__name__

    # -- per-request settings ---------------------------------------------------------

    def _plan(self, request: LLMRequest, mode: str) -> tuple[str, dict[str, Any], str | None]:
        """How to ask: (path, settings to bind, instruction appended to the prompt).
        path is "plain" or "structured" (the model's own with_structured_output)."""
        s = request.sampling
        if self.openai_family:
            bind: dict[str, Any] = {
                "temperature": s.temperature,
                "top_p": s.top_p,
                "max_tokens": s.max_tokens,
                "seed": s.seed,
            }
            if s.stop:
                bind["stop"] = list(s.stop)
            extra: dict[str, Any] = dict(getattr(self.chat_model, "extra_body", None) or {})
            if self.send_max_tokens:
                extra["max_tokens"] = s.max_tokens
            response_format = self.formats.response_format(request, mode)
            if response_format is not None:
                extra["response_format"] = response_format
            if extra:
                bind["extra_body"] = extra
            instruction = instruction_for(request) if mode == "none" else None
            return "plain", bind, instruction
        bind = {"stop": list(s.stop)} if s.stop else {}
        schema = request.json_schema
        if (
            request.schema_ is not None
            and mode != "none"
            and isinstance(schema, dict)
            and schema.get("type") == "object"
        ):
            return "structured", bind, None
        return "plain", bind, instruction_for(request)

    def _sampled_model(self, request: LLMRequest) -> Any:
        """A non-OpenAI model with the request's sampling copied onto the fields it has."""
        fields = getattr(type(self.chat_model), "model_fields", {})
        s = request.sampling
        update = {f: getattr(s, f) for f in _SAMPLING_FIELDS if f in fields}
        return self.chat_model.model_copy(update=update) if update else self.chat_model

    def _runnable(self, request: LLMRequest, path: str, bind: dict[str, Any]) -> Any:
        model = self.chat_model if self.openai_family else self._sampled_model(request)
        if path == "structured":
            schema = request.json_schema
            assert schema is not None  # `_plan` takes this path only with an object schema
            try:
                model = model.with_structured_output(schema, include_raw=True)
            except NotImplementedError:
                return None
            return model.bind(**bind) if bind else model
        return model.bind(**bind) if bind else model

    # -- batches ----------------------------------------------------------------------

    async def _run_group(self, runnable: Any, inputs: list[list[Any]]) -> list[Any | BaseException]:
        return await runnable.abatch(
            inputs, config={"max_concurrency": self.concurrency}, return_exceptions=True
        )

    async def _attempt(
        self, requests: list[LLMRequest], mode_of: list[str]
    ) -> list[RawCompletion | Exception]:
        groups: dict[str, list[int]] = {}
        runnables: dict[str, Any] = {}
        inputs: list[list[Any]] = []
        paths: list[str] = []
        for i, request in enumerate(requests):
            path, bind, instruction = self._plan(request, mode_of[i])
            runnable = None
            if path == "structured":
                runnable = self._runnable(request, path, bind)
                if runnable is None:  # the model has no structured output: ask in words
                    path, instruction = "plain", instruction_for(request)
            if runnable is None:
                runnable = self._runnable(request, path, bind)
            paths.append(path)
            inputs.append(to_langchain_messages(request, instruction))
            key = json.dumps(
                [path, bind, request.json_schema if path == "structured" else None],
                sort_keys=True,
                default=str,
            )
            if not self.openai_family:
                key += f"|{[getattr(request.sampling, f) for f in _SAMPLING_FIELDS]}"
            groups.setdefault(key, []).append(i)
            runnables.setdefault(key, runnable)
        keys = list(groups)
        outputs = await asyncio.gather(
            *(self._run_group(runnables[k], [inputs[i] for i in groups[k]]) for k in keys)
        )
        out: list[RawCompletion | Exception] = [LLMError("no answer")] * len(requests)
        for k, results in zip(keys, outputs, strict=True):
            for i, result in zip(groups[k], results, strict=True):
                out[i] = self._convert(requests[i], paths[i], result)
        return out

    def _convert(self, request: LLMRequest, path: str, result: Any) -> RawCompletion | Exception:
        if isinstance(result, Exception):
            return result
        if isinstance(result, BaseException):
            raise result
        if path == "structured":
            raw = result.get("raw") if isinstance(result, dict) else None
            parsed = result.get("parsed") if isinstance(result, dict) else None
            if parsed is not None:
                if hasattr(parsed, "model_dump"):
                    parsed = parsed.model_dump(mode="json")
                text = json.dumps(parsed, ensure_ascii=False)
            else:
                text = message_text(raw) if raw is not None else ""
                if not text.strip() and raw is not None and getattr(raw, "tool_calls", None):
                    text = json.dumps(raw.tool_calls[0].get("args", {}), ensure_ascii=False)
            message = raw
        else:
            message = result
            text = message_text(result)
            if request.choices is not None and not self.openai_family:
                text = match_choice(text, request.choices)
        prompt_tokens, completion_tokens = _usage(message, request, text)
        finish = _finish(message)
        return RawCompletion(text, prompt_tokens, completion_tokens, finish)  # type: ignore[arg-type]

    async def generate_batch(self, requests: list[LLMRequest]) -> list[RawCompletion | Exception]:
        form = self.formats.first()
        out = await self._attempt(requests, [form] * len(requests))
        if not self.openai_family:
            return out
        retry = [
            i
            for i, r in enumerate(out)
            if isinstance(r, Exception)
            and self.formats.falls_back(requests[i], form, _status(r), str(r), self.model)
        ]
        if retry:
            again = await self._attempt([requests[i] for i in retry], ["json_object"] * len(retry))
            for i, r in zip(retry, again, strict=True):
                out[i] = r
        return out

    async def aclose(self) -> None:
        """Nothing to release: LangChain's OpenAI clients are shared between instances."""


def _status(exc: Exception) -> int | None:
    """The HTTP status of a failed call, as the OpenAI client's errors carry it."""
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return status
