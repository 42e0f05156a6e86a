"""Sphinx configuration for fstat (builds offline: no intersphinx, no downloads)."""

import os
import sys
import warnings

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import fstat  # noqa: E402

project = "fstat"
author = "the fstat developers"
copyright = "2026, the fstat developers"
release = fstat.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {
    "members": True,
    "inherited-members": False,
    # sklearn's generated metadata-routing setters carry sklearn-internal cross-references
    "exclude-members": (
        "set_fit_request,set_predict_request,set_score_request,set_transform_request,"
        "set_partial_fit_request,set_score_samples_request,set_decision_function_request"
    ),
}
# sklearn's inherited ``score`` docstrings link to labels of sklearn's own documentation
suppress_warnings = ["ref.ref"]
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/*.examples"]
html_theme = "alabaster"
nitpicky = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "plot_gallery": os.environ.get("FSTAT_DOCS_PLOT", "True"),
}

warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")
