"""Figures: saving and log axes (:mod:`.figures`), sample grids (:mod:`.grids`), training curves and Figure 1A
(:mod:`.curves`), layer activation against noise level (:mod:`.activation`). They draw what they are given; nothing
here reads the study's files."""
