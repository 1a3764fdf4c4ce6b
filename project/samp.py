"""zoolens in the Virtual Observatory: SAMP messages to TOPCAT, Aladin and any other SAMP tool.

`SampLink` connects to a running SAMP hub (found the standard way: ``$SAMP_HUB`` or ``~/.samp``,
or through the lock file given) with pyvo's SAMP client, the maintained successor of
``astropy.samp``, and then

- sends a catalogue zoolens wrote (``table.load.votable``, or ``table.load.fits``),
- points the sky viewers at a position (``coord.pointAt.sky``),
- hears rows selected in another tool (``table.select.rowList``) and turns them into the
  subject ids of the catalogue it sent.

No Panel here: the command line (``zoolens export --samp``), a notebook and the app use it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: SAMP message types, by what they do.
LOAD_VOTABLE, LOAD_FITS = "table.load.votable", "table.load.fits"
POINT_AT, SELECT_ROWS = "coord.pointAt.sky", "table.select.rowList"
#: Seconds a tool has to answer that it loaded a catalogue delivered by `SampLink.deliver_catalogue` (TOPCAT
#: answers once the table is read).
DELIVERY_TIMEOUT = 120


class SampError(RuntimeError):
    """No SAMP hub to talk to, or a message it refused."""


class SampLink:
    """A zoolens client on a SAMP hub.

    Parameters
    ----------
    hub : path, optional
        The hub's lock file; default the standard discovery (``$SAMP_HUB``, else ``~/.samp``).
    name : str
        How other tools list this client.
    """

    def __init__(self, hub: str | Path | None = None, name: str = "zoolens"):
        from pyvo.samp import SAMPHubError, SAMPIntegratedClient
        from pyvo.samp.lockfile_helpers import read_lockfile

        self._client = SAMPIntegratedClient(name=name, description="zoolens: Zooniverse marks and consensus",
                                            addr="127.0.0.1")
        try:
            self._client.connect(hub_params=read_lockfile(str(hub)) if hub is not None else None)
        except (SAMPHubError, OSError) as error:
            where = f"the lock file {hub}" if hub is not None else "$SAMP_HUB or ~/.samp"
            raise SampError(f"no SAMP hub found through {where}: start TOPCAT or Aladin (they run one), "
                            f"or a hub of your own ({error})") from None
        #: table-id -> subject id of each row of the catalogue sent under it.
        self._rows: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def send_catalogue(self, path: str | Path, subject_ids, name: str | None = None) -> str:
        """Offer the catalogue file at ``path`` to every tool on the hub; its table id.

        ``subject_ids`` are the subjects of its rows, in order, so a selection sent back
        (`on_selection`) names subjects. A ``.fits`` file goes as FITS, anything else as VOTable.
        """
        table_id, mtype, params = self._catalogue_message(path, subject_ids, name)
        self._notify(mtype, params)
        return table_id

    def deliver_catalogue(self, path: str | Path, subject_ids, name: str | None = None,
                          timeout: int = DELIVERY_TIMEOUT) -> list[str]:
        """`send_catalogue`, waiting until each tool that takes catalogues has loaded it: the names of those tools.

        For a sender about to leave the hub (``zoolens export --samp``): the hub drops a notification it has not
        yet passed on once its sender has gone, so the catalogue goes to each tool as a call, answered when
        the tool has it (or refused, or unanswered after ``timeout`` seconds: a `SampError` naming the tool,
        once every other tool had its turn).
        """
        from pyvo.samp import SAMPProxyError

        _, mtype, params = self._catalogue_message(path, subject_ids, name)
        delivered, failed = [], []
        for recipient in self._client.get_subscribed_clients(mtype):
            tool = self._client.get_metadata(recipient).get("samp.name", recipient)
            try:
                reply = self._client.call_and_wait(recipient, {"samp.mtype": mtype, "samp.params": params},
                                                   str(timeout))
            except (SAMPProxyError, OSError) as error:
                failed.append(f"{tool} ({error})")
                continue
            if reply.get("samp.status") == "samp.error":
                failed.append(f"{tool} ({reply.get('samp.error', {}).get('samp.errortxt', 'refused')})")
            else:
                delivered.append(tool)
        if failed:
            raise SampError(f"{mtype} did not reach {', '.join(failed)}"
                            + (f"; it reached {', '.join(delivered)}" if delivered else ""))
        return delivered

    def _catalogue_message(self, path: str | Path, subject_ids, name: str | None) -> tuple[str, str, dict]:
        """A new table id for the catalogue at ``path`` (its rows' subjects kept), its message type and parameters."""
        path = Path(path).resolve()
        table_id = f"zoolens-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self._rows[table_id] = np.asarray(subject_ids, dtype=np.int64)
        mtype = LOAD_FITS if path.name.lower().endswith((".fits", ".fit")) else LOAD_VOTABLE
        return table_id, mtype, {"url": path.as_uri(), "table-id": table_id, "name": name or path.name}

    def point_at(self, ra: float, dec: float) -> None:
        """Point the sky viewers on the hub (Aladin) at ``ra``, ``dec`` (degrees, ICRS)."""
        self._notify(POINT_AT, {"ra": repr(float(ra)), "dec": repr(float(dec))})

    def on_selection(self, callback: Callable[[np.ndarray], None]) -> None:
        """Call ``callback(subject_ids)`` whenever another tool selects rows of a catalogue this link sent.

        Called on the SAMP client's own thread: a served app hands the ids to its session's
        event loop (``pn.state.execute``).
        """

        def selected(private_key, sender_id, msg_id, mtype, params, extra):
            self._selected(params, callback)
            self._client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})

        def notified(private_key, sender_id, mtype, params, extra):
            self._selected(params, callback)

        self._client.bind_receive_call(SELECT_ROWS, selected)
        self._client.bind_receive_notification(SELECT_ROWS, notified)

    def _selected(self, params: dict, callback) -> None:
        with self._lock:
            rows = self._rows.get(params.get("table-id"))
        if rows is None:
            return  # a table this link did not send
        chosen = np.asarray([int(row) for row in params.get("row-list", [])], dtype=np.int64)
        chosen = chosen[(chosen >= 0) & (chosen < len(rows))]
        callback(np.unique(rows[chosen]))

    def _notify(self, mtype: str, params: dict) -> None:
        from pyvo.samp import SAMPProxyError

        try:
            self._client.notify_all({"samp.mtype": mtype, "samp.params": params})
        except (SAMPProxyError, OSError) as error:
            raise SampError(f"the SAMP hub refused {mtype}: {error}") from None

    def close(self) -> None:
        if self._client.is_connected:
            self._client.disconnect()

    def __enter__(self) -> SampLink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def has_sky_positions(project) -> bool:
    """Whether any subject may have a centre on the sky (`subject_position`): ra and dec in the subject metadata, or
    a FITS image (its WCS; no file is opened)."""
    return {"ra", "dec"} <= set(project.metadata_columns) or project.sky.has_fits


def subject_position(project, subject_id: int) -> tuple[float, float] | None:
    """A subject's centre on the sky (ICRS degrees): its FITS image's WCS at the picture centre, else its
    ra/dec metadata; None when it has neither."""
    wcs, _, _ = project.sky.wcs([subject_id])
    if subject_id in wcs:
        celestial = wcs[subject_id]
        width, height = celestial.pixel_shape or (1, 1)
        centre = celestial.pixel_to_world((width - 1) / 2, (height - 1) / 2).icrs
        return float(centre.ra.deg), float(centre.dec.deg)
    subject = project.subject(subject_id)
    if subject is None or not {"ra", "dec"} <= set(subject.index):
        return None
    try:
        ra, dec = float(subject["ra"]), float(subject["dec"])
    except (TypeError, ValueError):  # missing (NA) or not a number
        return None
    return (ra, dec) if np.isfinite([ra, dec]).all() else None
