"""The roadmap file: indicator model, loader and trajectories."""

from contracts.roadmap.loader import Problem, RoadmapFileError, load_roadmap, parse_roadmap
from contracts.roadmap.model import Indicator, RoadmapFile, Severity, Window
from contracts.roadmap.trajectory import TargetTrajectory

__all__ = [
    "Indicator",
    "Problem",
    "RoadmapFile",
    "RoadmapFileError",
    "Severity",
    "TargetTrajectory",
    "Window",
    "load_roadmap",
    "parse_roadmap",
]
