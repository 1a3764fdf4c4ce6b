"""Recognising right ascension and declination columns, and turning them into degrees.

Subject metadata and catalogues name sky positions in many ways (``ra``/``dec``,
``RA``/``DEC``, ``RAJ2000``/``DEJ2000``, ``RA_ICRS``/``DE_ICRS``,
``right_ascension``/``declination``), and a catalogue can hold several
positions side by side, such as a galaxy's ``ra``/``dec`` and its clump's
``clump_ra``/``clump_dec``. `find_positions` lists every pair found, keyed by
its prefix (``""`` for the unprefixed pair); `sky_degrees` converts a pair of
columns given as degrees, hours or sexagesimal text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Names of a right ascension column, lower case, in order of preference.
RA_NAMES = ("ra", "ra_deg", "radeg", "raj2000", "_raj2000", "ra_j2000", "ra2000", "ra_icrs",
            "right_ascension", "rightascension", "alpha_j2000")
#: Names of a declination column, lower case: the RA name at the same index pairs with it
#: (both spellings of right ascension pair with ``declination``).
DEC_NAMES = ("dec", "dec_deg", "decdeg", "dej2000", "_dej2000", "dec_j2000", "dec2000", "de_icrs",
             "declination", "declination", "delta_j2000")
#: Declination names that also pair with any RA name (``RAJ2000`` with ``DECJ2000``).
DEC_ALIASES = ("decj2000", "dec_icrs", "de")


def find_positions(columns) -> dict[str, tuple[str, str]]:
    """Every RA/Dec column pair in ``columns``, keyed by prefix (``""`` when unprefixed).

    A prefixed pair is ``<prefix>_<ra name>`` with ``<prefix>_<dec name>``
    (``clump_ra`` with ``clump_dec``). Within one prefix the first pair in the
    order of `RA_NAMES` wins.
    """
    lowered: dict[str, str] = {}
    for column in columns:
        lowered.setdefault(str(column).lower(), str(column))
    pairs: dict[str, tuple[str, str]] = {}
    prefixes = {""} | {name.rsplit("_", 1)[0] + "_" for name in lowered if "_" in name.strip("_")}
    for prefix in sorted(prefixes, key=len):
        for ra_name, dec_name in zip(RA_NAMES, DEC_NAMES):
            ra_column = lowered.get(prefix + ra_name)
            dec_column = lowered.get(prefix + dec_name)
            if dec_column is None:
                dec_column = next((lowered[prefix + alias] for alias in DEC_ALIASES
                                   if prefix + alias in lowered), None)
            if ra_column and dec_column and (ra_column, dec_column) not in pairs.values():
                pairs.setdefault(prefix.rstrip("_"), (ra_column, dec_column))
                break
    return pairs


def sky_degrees(ra, dec, ra_factor: float = 1.0, dec_factor: float = 1.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Right ascension and declination in degrees; NaN where missing, unreadable or out of range.

    Parameters
    ----------
    ra, dec : array-like
        Numbers or text. Text such as ``"12:34:56.7"`` or ``"12h34m56.7s"`` is
        sexagesimal: hours for RA, degrees for Dec.
    ra_factor, dec_factor : float
        Degrees per unit of the numeric values: 15 for RA in hours, as some
        catalogue column units say; 1 for degrees.
    """
    ra_degrees = _angles(ra, hours=True, factor=ra_factor)
    dec_degrees = _angles(dec, hours=False, factor=dec_factor)
    ra_degrees[~((ra_degrees >= 0) & (ra_degrees <= 360))] = np.nan
    dec_degrees[~((dec_degrees >= -90) & (dec_degrees <= 90))] = np.nan
    return ra_degrees, dec_degrees


def _angles(values, hours: bool, factor: float) -> np.ndarray:
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    numeric = np.array(pd.to_numeric(series, errors="coerce"), dtype=float) * factor
    text = series.map(lambda value: value if isinstance(value, str) else None)
    sexagesimal = np.isnan(numeric) & text.str.contains(r"\d[\s:hdm°]+\d", regex=True,
                                                        na=False).to_numpy()
    if sexagesimal.any():
        from astropy.coordinates import Angle

        unit = "hourangle" if hours else "deg"
        for index in np.flatnonzero(sexagesimal):
            try:
                numeric[index] = Angle(text.iloc[index].strip(), unit=unit).degree
            except (ValueError, TypeError):
                numeric[index] = np.nan
    return numeric
