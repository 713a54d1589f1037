"""The protocol's evidence: its plan (:mod:`.plan`: seeds by power, compute, PROTOCOL.md's text), its rate sweeps
(:mod:`.rates`), its tables (:mod:`.tables`) and freeze ablation (:mod:`.ablation`), the tests they are decided by
(:mod:`.significance`) and the verdicts (:mod:`.verdicts`)."""
