"""Book tier: what the notebooks call — experiments, analyses, verdicts, plots, widgets, the book runner.

The names below are the notebooks' public API: a page imports from ``rlqlib.book`` (and ``rlqlib``) only.
"""

# tables and claims
from rlqlib.book.checks import Checked, ablation, differences, interaction, paper_values, sign_checks, tally_text
from rlqlib.book.differences import differences_table
from rlqlib.book.experiments import (Setting, aggregate, cached, config, data_options, dataset, describe_configs,
                                     describe_runs, describe_teachers, external_stats, features, labels, mean_std,
                                     paired_delta, results, run_metrics, split_images, teachers, train)
from rlqlib.book.pages.fire2_modules import accuracy_figure, module_checks, module_table
from rlqlib.book.pages.fire2_padding import (cluster_both, clusters_figure, example_figure, logged_fg_classes,
                                       padding_verdicts, preset_k1, size_figure, small_identities, worked_example)
from rlqlib.book.pages.model_size import parameter_counts
from rlqlib.book.names import DATASET_NAMES, LABELS, METHOD_NAMES
from rlqlib.book.noise import TABLE2_DIFFERENCES, TABLE2_SEEDS, TABLE2_VARIANTS, measure_seed_noise, table2_seed_noise
from rlqlib.book.pages.outfits import outfit_errors, outfit_paragraph, outfit_summary
from rlqlib.book.page import Page, glue_values, headline_protocol, open_page, seeds_text, setup_text
from rlqlib.book.plots import (delta_bars, grouped_bars, pose_cluster_grid, seed_panels, synth_preview,
                               tsne_panels)
from rlqlib.book.reported import load as load_reported, source as reported_source
from rlqlib.book.pages.summary import ClaimsSummary, gather as gather_claims
from rlqlib.book.tables import ablation_table, by_source, component_table, ours_rows, reported_rows, stack
from rlqlib.book.verdicts import (CLAIM_COLUMNS, NOT_CHECKED, VERDICTS, claims, decide, fmt_delta, load_claims,
                                  one_run, one_seed_rule, over_seeds, save_claims, seed_noise, shares)
from rlqlib.engine.presets import PRESETS, VARIANTS

# figures and analyses
from rlqlib.book.pages.ablations import pose_k_sweep, subsample_sweep
from rlqlib.book.pages.artifacts import artifact_panel
from rlqlib.book.pages.dataset_table import dataset_table
from rlqlib.book.pages.error_kinds import error_kinds, show_cases
from rlqlib.book.figure_page import models, query_matches, setting_line
from rlqlib.book.pages.gender import gender_panel
from rlqlib.book.pages.lq_clusters import lq_pairs, lq_scores, tsne_maps
from rlqlib.book.pages.match_report import match_report
from rlqlib.book.pages.pose_clusters import cluster_size_shares, pose_cluster_study
from rlqlib.book.pages.robustness import clean_sources, clean_table, robustness
from rlqlib.book.pages.severity import severity_sweep
from rlqlib.book.explorers import identity_browser
