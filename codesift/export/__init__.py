"""Exporting an index as plain files for agents: see `exporter`."""
from codesift.export.exporter import ExportSummary, export_index

__all__ = ["ExportSummary", "export_index"]
