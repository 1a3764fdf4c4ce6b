"""Bokeh's default lookups made once per class (`dashboard.model_defaults`): same answers, asked once."""

from bokeh.core.has_props import HasProps
from bokeh.models import ColumnDataSource, GlyphRenderer, Quad, Range1d
from bokeh.plotting import figure
from panel.models import Card

from dashboard import model_defaults
from dashboard.model_defaults import cache_model_defaults

CLASSES = (ColumnDataSource, GlyphRenderer, Quad, Range1d, type(figure()), Card)


def test_each_class_gets_bokehs_own_defaults_from_one_lookup():
    cache_model_defaults()
    for cls in CLASSES:
        assert cls._overridden_defaults() == model_defaults._UNCACHED_DEFAULTS(cls)
        # Worked out once: the same dict again, not a new walk of the class's bases.
        assert cls._overridden_defaults() is cls._overridden_defaults()
    assert HasProps._overridden_defaults.__func__ is model_defaults._overridden_defaults


def test_each_property_says_what_bokeh_says_of_its_default():
    cache_model_defaults()
    for cls in CLASSES:
        model = cls()
        for name in model.properties():
            descriptor = cls.lookup(name)
            assert descriptor.has_unstable_default(model) == bool(model_defaults._UNCACHED_UNSTABLE(descriptor, model))


def test_models_still_get_their_own_copy_of_a_mutable_default():
    cache_model_defaults()
    first, second = ColumnDataSource(), ColumnDataSource()
    first.data["x"] = [1]
    assert second.data == {} and first.data is not second.data
    plot = figure(width=321)
    assert plot.width == 321 and figure().width == 600 and figure().toolbar is not plot.toolbar


def test_a_models_theme_values_are_bokehs_own():
    cache_model_defaults()
    themed, plain = Range1d(), Range1d()
    themed.apply_theme({"start": -5})
    assert themed.themed_values() == {"start": -5} == model_defaults._UNCACHED_THEMED(themed)
    assert plain.themed_values() is None is model_defaults._UNCACHED_THEMED(plain)
    assert themed.start == -5 and plain.start == 0
    themed.apply_theme({})
    assert themed.themed_values() is None and themed.start == 0
