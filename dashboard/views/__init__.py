"""One `View` per aspect of a project; importing this package registers them all."""

from .base import VIEWS, View, get_view
from .agreement import AgreementPlots
from .cutout import CutoutViewer
from .export import ExportView
from .fetch import FetchView
from .gallery import Gallery
from .machine import MachineView
from .review import ReviewPanel
from .sandbox import ReaggregationSandbox
from .samp import SampPanel
from .subjects import SubjectBrowser
from .volunteer_steps import VolunteerSteps
from .volunteers import VolunteerTable

__all__ = ["VIEWS", "View", "get_view", "AgreementPlots", "CutoutViewer", "ExportView", "FetchView", "Gallery",
           "MachineView", "ReaggregationSandbox", "ReviewPanel", "SampPanel", "SubjectBrowser", "VolunteerSteps",
           "VolunteerTable"]
