"""The declarative shell: frozen descriptions of pipelines, with no I/O and no Trio."""

from .pipeline import Pipeline as Pipeline
from .step import Step as Step
