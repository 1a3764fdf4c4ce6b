"""The page's address (`dashboard.address`): read once when a session opens, then written by the page alone."""

from __future__ import annotations

import panel as pn
import param
from bokeh.document import Document
from panel.io.state import set_curdoc

from dashboard.address import PageAddress, opened_with


class View(param.Parameterized):
    subject = param.Integer(default=None, allow_None=True, doc="A subject.")
    min_votes = param.Integer(default=1, bounds=(1, None), doc="A threshold.")
    disagreement = param.Range(default=(0.0, 1.0), doc="A range.")


def test_a_shared_link_opens_its_view_and_a_value_the_view_cannot_take_is_left_out():
    with set_curdoc(Document()):
        pn.state.location.search = "?subject=2&min_votes=0&disagreement=%5B0.2%2C0.9%5D&other=x"
        view = View()
        assert opened_with(view, ["subject", "min_votes", "disagreement"]) == {
            "subject": 2, "min_votes": 0, "disagreement": (0.2, 0.9)}
        address = PageAddress(names=["subject", "min_votes", "disagreement"])
        address.follow(view)
    # min_votes=0 is below its bound: that parameter keeps its own value, the others are read.
    assert (view.subject, view.min_votes, view.disagreement) == (2, 1, (0.2, 0.9))
    assert address.query == {"subject": "2", "min_votes": "1", "disagreement": "[0.2, 0.9]"}


def test_the_address_follows_the_view_and_then_only_the_view_followed_last():
    first, second = View(subject=1), View(subject=7)
    address = PageAddress(names=["subject", "min_votes"])
    address.follow(first)  # no served session: nothing to read
    assert address.query == {"subject": "1", "min_votes": "1"}
    first.subject = 3
    assert address.query["subject"] == "3"
    first.subject = None  # no subject passes the filters: the address names none
    assert address.query == {"min_votes": "1"}
    address.follow(second, read=False)
    first.subject = 4
    assert address.query == {"subject": "7", "min_votes": "1"}
