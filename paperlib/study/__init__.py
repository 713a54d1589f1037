"""The mini-scale study: the protocol (:mod:`.protocol`), the ledger of run records (:mod:`.ledger`), one job and
many at once (:mod:`.jobs`, :mod:`.pool`), the protocol's runs, tests and verdicts (:mod:`.evidence`), the layer
study (:mod:`.layers`), the mini check (:mod:`.check`), FID tables at smoke and paper scale (:mod:`.tables`), the
paper's numbers (:mod:`.paper_numbers`), the training-curves figures (:mod:`.curves`), the generated documents
(:mod:`.report`) and the registry of studies that ``python -m paperlib run`` runs (:mod:`.registry`)."""
