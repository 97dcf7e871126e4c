"""codesift's own code-search eval kit: make an eval set from a Python tree (generate.py), score
search results against it (score.py). Both are stdlib only, so a set can be made and scored
anywhere the repo is checked out."""
