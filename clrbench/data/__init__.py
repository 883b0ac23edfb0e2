"""Data sets as arrays: the IDX format, the registry with checksums, locating or downloading
the files, stratified subsets and the train/validation split."""
