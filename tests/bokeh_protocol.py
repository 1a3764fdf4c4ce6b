"""A client of the Bokeh server protocol: one zoolens session driven as BokehJS would, drawing nothing.

It opens a session over a websocket (``ACK``, ``PULL-DOC``), clicks buttons and changes
widgets (``PATCH-DOC`` events) and waits for the server's patches that answer them. The server
tests use it where a browser is not what is tested, and ``bench/bench_sessions.py`` runs many
at once from one asyncio loop, which 50 browsers on a 2-core machine could not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
import time
import uuid

from dashboard.explorer import TABS

#: Seconds an action may wait for the server's answer before it counts as an error.
TIMEOUT = 60.0
#: Seconds opening a session may take: a server makes sessions one at a time, so many opened at
#: once queue for it.
OPEN_TIMEOUT = 300.0
def run_apart(coroutine):
    """Run ``coroutine`` to its end on a loop of its own thread, and return its result.

    A test process may already run an event loop in its main thread (playwright's sync API
    does, for the browser tests), where `asyncio.run` is refused.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


#: What a `Client` times.
ACTIONS = ("open", "switch", "filter", "decide", "export")


def find_models(document: object, name: str) -> list[dict]:
    """Every model of type ``name`` in a Bokeh JSON document or patch, as its JSON object."""
    found, stack = [], [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            # Panel's models are named by module: panel.models.widgets.Button.
            if item.get("type") == "object" and str(item.get("name")).rpartition(".")[2] == name:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


class Client:
    """One simulated reviewer: a websocket speaking the Bokeh protocol to one session of the server."""

    def __init__(self, url: str, number: int):
        self.url, self.number = url, number
        self.socket = None
        self.patches: list[str] = []
        self.arrived = asyncio.Event()
        self.times: dict[str, list[float]] = {action: [] for action in (*ACTIONS, "tab")}
        self.errors: list[str] = []
        self.document: dict | None = None
        self.acknowledged = False
        self.export_button: str | None = None

    async def _send(self, msgtype: str, content: dict) -> None:
        header = {"msgid": uuid.uuid4().hex, "msgtype": msgtype}
        await self.socket.write_message(json.dumps(header))
        await self.socket.write_message("{}")
        await self.socket.write_message(json.dumps(content))

    async def _read(self) -> None:
        """Collect the server's messages: the document on PULL-DOC-REPLY, every PATCH-DOC as text."""
        from bokeh.protocol import Protocol
        from bokeh.protocol.receiver import Receiver

        receiver = Receiver(Protocol())
        while True:
            fragment = await self.socket.read_message()
            if fragment is None:
                return
            message = await receiver.consume(fragment)
            if message is None:
                continue
            if message.msgtype == "ACK":
                self.acknowledged = True
            elif message.msgtype == "PULL-DOC-REPLY":
                self.document = message.content["doc"]
            elif message.msgtype == "PATCH-DOC":
                self.patches.append(json.dumps(message.content))
            self.arrived.set()

    async def wait_for(self, action: str, sent_at: float, since: int, answered) -> bool:
        """Wait for a patch after index ``since`` that ``answered``; record the time or the error."""
        deadline = sent_at + TIMEOUT
        while True:
            new = self.patches[since:]
            failed = [patch for patch in new if '"notification_type"' in patch or '"type": "error"' in patch]
            if any('"error"' in patch and "notification" in patch for patch in failed):
                self.errors.append(f"{action}: the server notified an error")
                return False
            if any(answered(patch) for patch in new):
                self.times[action].append(time.perf_counter() - sent_at)
                return True
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                self.errors.append(f"{action}: no answer in {TIMEOUT:.0f} s")
                return False
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                pass

    def _model(self, name: str, **attributes) -> str:
        for model in find_models(self.document, name):
            if all(model.get("attributes", {}).get(key) == value for key, value in attributes.items()):
                return model["id"]
        raise LookupError(f"no {name} with {attributes} in the page")

    async def _click(self, model_id: str) -> None:
        event = {"type": "event", "name": "button_click", "values": {"model": {"id": model_id}}}
        await self._send("PATCH-DOC", {"events": [{"kind": "MessageSent", "msg_type": "bokeh_event",
                                                   "msg_data": event}]})

    async def _change(self, model_id: str, attribute: str, value) -> None:
        await self._send("PATCH-DOC", {"events": [{"kind": "ModelChanged", "model": {"id": model_id},
                                                   "attr": attribute, "new": value}]})

    async def open(self) -> None:
        """Open the session as a browser does and find the widgets the actions use."""
        await self.connect()
        self.next_button = self._model("Button", label="Next ▶")
        self.min_volunteers = next(model["id"] for model in find_models(self.document, "IntInput")
                                   + find_models(self.document, "Spinner")
                                   if "volunteers" in str(model["attributes"].get("title", "")).lower())
        self.tabs = find_models(self.document, "Tabs")[0]["id"]
        name_box = [model for model in find_models(self.document, "TextInput")
                    if model.get("attributes", {}).get("placeholder") == "needed to record decisions"]
        if name_box:  # served with a review store: decide under a name
            self.accept_button = self._model("Button", label="Accept")
            await self._change(name_box[0]["id"], "value", f"load-test-{self.number}")

    async def connect(self) -> None:
        """Open a session: the websocket, the page's document, and "the page is drawn" as BokehJS says it."""
        from bokeh.util.token import generate_jwt_token
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        start = time.perf_counter()
        session_id = uuid.uuid4().hex
        # The server answers the websocket's upgrade once it has made the session: wait as long as an open may.
        request = HTTPRequest(f"{self.url.replace('http', 'ws')}/ws", connect_timeout=OPEN_TIMEOUT,
                              request_timeout=OPEN_TIMEOUT)
        self.socket = await websocket_connect(request, subprotocols=["bokeh", generate_jwt_token(session_id)],
                                              max_message_size=200 * 2**20)
        self.reader = asyncio.ensure_future(self._read())
        # The server makes the session, then says ACK; only then does it read messages.
        while not self.acknowledged:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout=OPEN_TIMEOUT)
        await self._send("PULL-DOC-REQ", {})
        while self.document is None:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout=OPEN_TIMEOUT)
        # BokehJS says so once the page is drawn; the app's onload work waits for it.
        await self._send("PATCH-DOC", {"events": [{"kind": "MessageSent", "msg_type": "bokeh_event",
                                                   "msg_data": {"type": "event", "name": "document_ready",
                                                                "values": {}}}]})
        self.times["open"].append(time.perf_counter() - start)

    async def switch(self) -> None:
        since, start = len(self.patches), time.perf_counter()
        await self._click(self.next_button)
        await self.wait_for("switch", start, since, lambda patch: "Subject " in patch)

    async def filter(self) -> None:
        since, start = len(self.patches), time.perf_counter()
        # A new value each time: the same value again would change nothing and get no answer.
        self.min_volunteers_value = random.choice([value for value in (0, 12, 15, 18)
                                                   if value != getattr(self, "min_volunteers_value", 0)])
        await self._change(self.min_volunteers, "value", self.min_volunteers_value)
        await self.wait_for("filter", start, since, lambda patch: " subjects" in patch or "Subject " in patch)

    async def decide(self) -> None:
        since, start = len(self.patches), time.perf_counter()
        await self._click(self.accept_button)
        await self.wait_for("decide", start, since, lambda patch: "accepted" in patch)

    async def export(self) -> None:
        if self.export_button is None:
            since, start = len(self.patches), time.perf_counter()
            await self._change(self.tabs, "active", TABS.index("Export"))
            if not await self.wait_for("export", start, since, lambda patch: 'FileDownload"' in patch):
                return
            self.times["export"].pop()  # opening the tab is not the export
            opened = next(json.loads(patch) for patch in self.patches[since:] if 'FileDownload"' in patch)
            self.export_button = find_models(opened, "FileDownload")[0]["id"]
        else:
            await self._show_tab(TABS.index("Export"), "FileDownload")
        since, start = len(self.patches), time.perf_counter()
        self.downloads = getattr(self, "downloads", 0) + 1
        await self._change(self.export_button, "clicks", self.downloads)
        await self.wait_for("export", start, since,
                          lambda patch: '"data"' in patch and self.export_button in patch)
        await self._show_tab(0, "Button")  # back to reviewing, as a reviewer would after downloading

    async def _show_tab(self, index: int, shows: str) -> None:
        """Bring tab ``index`` forward and wait until its models arrive (Panel renders only the shown tab)."""
        since, start = len(self.patches), time.perf_counter()
        await self._change(self.tabs, "active", index)
        if await self.wait_for("tab", start, since, lambda patch: f'{shows}"' in patch):
            self.times["tab"].pop()
            for patch in self.patches[since:]:
                document = json.loads(patch)
                for model in find_models(document, "Button"):
                    label = model.get("attributes", {}).get("label")
                    if label == "Next ▶":
                        self.next_button = model["id"]
                    elif label == "Accept":
                        self.accept_button = model["id"]

    async def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if getattr(self, "reader", None) is not None:
            self.reader.cancel()
