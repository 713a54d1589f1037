"""Notebook support: the notebooks' checked parameters (:mod:`.params`), the batch runner (:mod:`.runner`), how
figures and markdown are shown (:mod:`.display`) and the form git keeps of a notebook (:mod:`.strip`)."""
