"""How the book spells datasets, protocols, metrics and methods in its tables and prose."""

#: Display names of the datasets.
DATASET_NAMES = {"synthcc": "SynthCC", "ltcc": "LTCC", "prcc": "PRCC", "last": "LaST", "deepchange": "DeepChange",
                 "celebreid": "Celeb-reID"}
#: Display names of protocols and metrics in table headers.
LABELS = {"cc": "CC", "general": "General", "sc": "SC", "top1": "R-1", "mAP": "mAP"}
#: Row names of the main variants in the book's tables (variant → display name), so that every page spells the
#: same method the same way.
METHOD_NAMES = {"cal": "CAL", "bm": "BM", "cap": "CAP", "tad": "TAD", "rlq": "RLQ", "fire2": "FIRe²",
                "id-only": "id-only"}
