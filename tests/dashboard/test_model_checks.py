"""Pages built without Bokeh's value checks and error diagnostics (`dashboard.model_checks`)."""

import pytest
from bokeh.core.property.bases import validation_on
from bokeh.models import Range1d
from bokeh.settings import settings

from dashboard.model_checks import unchecked_models


def test_checks_and_diagnostics_are_off_while_any_page_is_built_and_back_on_after():
    assert validation_on() and settings.perform_error_diagnostics()
    with unchecked_models():
        with unchecked_models():  # a second page built meanwhile
            assert not validation_on() and not settings.perform_error_diagnostics()
        assert not validation_on() and not settings.perform_error_diagnostics()
        # A callback is registered without inspecting its signature.
        Range1d().on_change("start", lambda: None)
    assert validation_on() and settings.perform_error_diagnostics()
    with pytest.raises(ValueError, match="signature"):
        Range1d().on_change("start", lambda: None)
