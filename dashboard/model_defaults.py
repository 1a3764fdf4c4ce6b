"""Bokeh's lookups of a model's property defaults, each worked out once instead of on every read.

Every read of a property a model has not set (each property of each model while Panel
makes a session's page, and again when the page is serialised) asks two questions whose
answers cannot change once Bokeh has made the class and its properties:

- the class's overridden defaults: Bokeh (`HasProps._overridden_defaults`) walks the class's
  whole method resolution order and merges each class's ``__overridden_defaults__`` into a new
  dict, about 9,000 walks per session opened. Bokeh's metaclass sets ``__overridden_defaults__``
  when it makes a class and nothing sets it afterwards, so the merged dict is made once per
  class and shared; Bokeh's callers only read it (`Property.themed_default` looks a name up
  and copies the value).
- whether a property's default may be mutable, so must be copied per model
  (`PropertyDescriptor.has_unstable_default`, which asks the property's type, recursing into
  container types' parameters, and the class's overrides, about 15,000 times per session
  opened): it depends only on the property's default and type parameters, fixed when the
  property is made, and on the class's own ``__overridden_defaults__``, so it is asked once per
  property and model class.
- the theme's values for the model (`HasProps.themed_values`, about 25,000 times per session
  opened): Bokeh asks ``getattr(model, "__themed_values__", None)``, and for a model no theme
  touched (nearly all) that is a failed lookup through `HasProps.__getattr__`, an exception made
  and caught each time. `HasProps.apply_theme` keeps them in the model's own ``__dict__`` (no model
  class has such an attribute), so they are read from there.

Together a quarter of the Python calls made to open a session (`bench/results/sessions.md`).
"""

from __future__ import annotations

import threading
from typing import Any

from bokeh.core.has_props import HasProps
from bokeh.core.property.descriptors import PropertyDescriptor

#: Bokeh's own lookups, which the cached ones call once per class or property.
_UNCACHED_DEFAULTS = HasProps._overridden_defaults.__func__
_UNCACHED_UNSTABLE = PropertyDescriptor.has_unstable_default
_UNCACHED_THEMED = HasProps.themed_values
_DEFAULTS: dict[type, dict[str, Any]] = {}
_LOCK = threading.Lock()


def _overridden_defaults(cls: type[HasProps]) -> dict[str, Any]:
    """``cls``'s overridden defaults (Bokeh's answer, worked out on the first call for ``cls``); do not change it."""
    defaults = _DEFAULTS.get(cls)
    if defaults is None:
        with _LOCK:
            defaults = _DEFAULTS.setdefault(cls, _UNCACHED_DEFAULTS(cls))
    return defaults


def _has_unstable_default(self: PropertyDescriptor, obj: HasProps) -> bool:
    """Bokeh's answer for ``obj``'s class, worked out on the first call for that class (it depends on the
    property and the class's own overrides only)."""
    answers = self.__dict__.get("_zoolens_unstable_default")
    if answers is None:
        answers = self.__dict__.setdefault("_zoolens_unstable_default", {})
    answer = answers.get(type(obj))
    if answer is None:
        answer = answers[type(obj)] = bool(_UNCACHED_UNSTABLE(self, obj))
    return answer


def _themed_values(self: HasProps) -> dict[str, Any] | None:
    """Bokeh's answer: the theme's values `HasProps.apply_theme` gave the model, or None."""
    return self.__dict__.get("__themed_values__")


def cache_model_defaults() -> None:
    """Have Bokeh work out each class's overridden defaults and each property's kind of default once and read
    a model's theme values directly (see the module); safe to call again."""
    HasProps._overridden_defaults = classmethod(_overridden_defaults)
    PropertyDescriptor.has_unstable_default = _has_unstable_default
    HasProps.themed_values = _themed_values
