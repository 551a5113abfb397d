"""Book tier: what the notebooks call — experiments, analyses, verdicts, plots, widgets, the book runner."""
