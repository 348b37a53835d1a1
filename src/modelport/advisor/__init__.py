"""The deployment advisor: profile a model on this machine, then recommend real-time, batch or edge.

>>> from modelport.advisor import Target, profile, recommend          # doctest: +SKIP
>>> p = profile("credit:3")                                            # doctest: +SKIP
>>> rec = recommend(p, Target.parse(rate="300/s", p99="25ms"))         # doctest: +SKIP
>>> rec.mode, rec.capacity                                             # doctest: +SKIP
('real-time', {'replicas': 1, 'workers': 2, 'cpu': 2, 'memory_mb': 400, ...})

:func:`profile` measures; :func:`recommend` is a pure function of a :class:`Profile` and a
:class:`Target` (the rules are in :mod:`modelport.advisor.rules`).
"""

from modelport.advisor.model import BundleProfile, Profile, RuntimeProfile, Target
from modelport.advisor.profiling import profile
from modelport.advisor.rules import Reason, Recommendation, RuntimeOption, recommend

__all__ = [
    "BundleProfile",
    "Profile",
    "Reason",
    "Recommendation",
    "RuntimeOption",
    "RuntimeProfile",
    "Target",
    "profile",
    "recommend",
]
