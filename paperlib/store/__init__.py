"""Files: safe pickle reading (:mod:`.safe_pickle`), EDM/GDD pickles and paperlib's network format
(:mod:`.checkpoints`), digests and size checks (:mod:`.integrity`), atomic writes (:mod:`.files`) and a training run's
folder (:mod:`.run_folder`). Nothing here imports the study, the plots or the notebook support."""
