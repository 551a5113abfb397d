"""Page-specific computations: each module serves one page of the book (its tables, figures, glue values);
what several pages share lives one level up in :mod:`rlqlib.book`."""
