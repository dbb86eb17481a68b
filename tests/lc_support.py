"""A scripted chat model (no network, no LLM) and tools for driving real LangChain agents."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

SHOP = "https://acme.example/shop"


class ScriptedChatModel(BaseChatModel):
    """Answers with the next scripted message, whatever it is asked; records what it saw."""

    _script: list[AIMessage] = PrivateAttr(default_factory=list)
    _seen: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    def __init__(self, script: list[AIMessage], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._script = list(script)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self._seen.append(list(messages))
        message = self._script.pop(0) if self._script else AIMessage(content="done")
        return ChatResult(generations=[ChatGeneration(message=message)])

    @property
    def seen(self) -> list[list[BaseMessage]]:
        return self._seen

    @property
    def _llm_type(self) -> str:
        return "scripted"


def tool_call(call_id: str, name: str = "buy_item", **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"id": call_id, "name": name, "args": args}])


def purchase(call_id: str, item: str, amount: object, vendor: str = SHOP) -> AIMessage:
    return tool_call(call_id, item=item, amount=amount, vendor_url=vendor)


GOOD_ARGS = {"item": "chair", "amount": 120.0, "vendor_url": SHOP}
